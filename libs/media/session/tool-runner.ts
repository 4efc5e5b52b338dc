import { renderTemplate } from "../../assistants/index.ts";
import {
  resolveServer,
  type ServerTarget,
  sendServerMessage,
  toolCall,
  toolCallsMessage,
  toolWithToolCall,
} from "../../webhooks/index.ts";
import { dtmfAudio } from "../dtmf.ts";
import { ENDED } from "../ended-reasons.ts";
import type { Utterance } from "../speaker.ts";
import { destinationKey, llmTools, requestStartMessage, type ToolDef, toolMessage } from "../tools.ts";
import { type CallContext, isObj, type Json } from "./context.ts";
import type { Reply } from "./turn-loop.ts";

// The model's tool calls, one round at a time: `function` tools are posted to the customer's server
// (grouped per server, a filler spoken meanwhile), `endCall` and `transferCall` take effect once the
// reply has been heard, `dtmf` plays keypad tones. Each result joins the conversation.

export interface ToolCallRequest {
  id: string;
  name: string;
  arguments: string;
}

type FunctionCall = { call: ToolCallRequest; tool: ToolDef };

function parseArgs(args: string): Json {
  try {
    const v: unknown = JSON.parse(args || "{}");
    return isObj(v) ? v : {};
  } catch {
    return {};
  }
}

export class ToolRunner {
  readonly #c: CallContext;

  constructor(c: CallContext) {
    this.#c = c;
  }

  /** The tools as the model is offered them. */
  llmTools(): ReturnType<typeof llmTools> {
    return llmTools(this.#c.state.assistant.tools);
  }

  /** Runs one round of tool calls; true when the model should be asked again. */
  async run(reply: Reply, calls: ToolCallRequest[]): Promise<boolean> {
    const c = this.#c;
    const { state, turns } = c;
    const conversation = state.conversation;
    // The text spoken so far this round and the calls become one assistant message.
    if (reply.utterance && reply.entry) {
      conversation.appendBot(reply.entry, "");
    }
    conversation.addToolCalls(reply.entry, calls, c.now(), reply.replay);
    let askAgain = false;
    const functionCalls: FunctionCall[] = [];
    for (const call of calls) {
      const tool = state.assistant.tools.find((t) => t.name === call.name);
      const at = c.now();
      if (!tool) {
        c.callLog.warn("tool", "the model called a tool the assistant does not have", { name: call.name });
        conversation.addToolResult(call.id, call.name, `Error: no tool named ${call.name}`, at);
        askAgain = true;
        continue;
      }
      if (tool.type === "function") {
        functionCalls.push({ call, tool });
        continue;
      }
      if (tool.type === "endCall") {
        c.callLog.add("tool", "endCall: the call ends once the reply is heard", { name: call.name });
        conversation.addToolResult(call.id, call.name, "Success. The call is ending.", at);
        const endCallMessage = state.assistant.config.endCallMessage;
        const message = endCallMessage ? renderTemplate(endCallMessage, state.variables) : undefined;
        turns.endAfterReply = { reason: ENDED.assistantEnded, message };
        continue;
      }
      if (tool.type === "transferCall") {
        const wanted = parseArgs(call.arguments).destination;
        const dest =
          tool.destinations?.find((d) => destinationKey(d) === wanted) ??
          (tool.destinations?.length === 1 ? tool.destinations[0] : undefined);
        if (!dest) {
          c.callLog.warn("tool", "transferCall: no such destination", {
            name: call.name,
            destination: wanted,
          });
          conversation.addToolResult(call.id, call.name, "Error: unknown transfer destination", at);
          askAgain = true;
          continue;
        }
        c.callLog.add("tool", "transferCall: the call is transferred once the reply is heard", {
          name: call.name,
          destination: destinationKey(dest),
        });
        conversation.addToolResult(call.id, call.name, "Transferring the call.", at);
        turns.transferAfterReply = dest;
        continue;
      }
      if (tool.type === "dtmf") {
        const keys = String(parseArgs(call.arguments).keys ?? "");
        const audio = dtmfAudio(keys);
        if (audio.length > 0) {
          if (reply.utterance) {
            reply.utterance.end();
            await reply.utterance.played;
            turns.finishBot(reply);
            reply.utterance = undefined;
          }
          const u = c.voice.newUtterance(false);
          u.play(audio);
          u.end();
          await u.played;
        }
        conversation.addToolResult(
          call.id,
          call.name,
          audio.length > 0 ? `Sent ${keys}` : "Error: no valid keys",
          c.now(),
        );
        if (audio.length > 0) c.callLog.add("tool", "dtmf: keys played", { name: call.name, keys });
        else c.callLog.warn("tool", "dtmf: no valid keys", { name: call.name });
        askAgain = true;
      }
    }
    if (functionCalls.length > 0) {
      await this.#callFunctions(reply, functionCalls);
      askAgain = true;
    }
    if (turns.transferAfterReply || turns.endAfterReply?.reason === ENDED.assistantEnded) return false;
    if (askAgain && reply.utterance) {
      // The next round speaks as a new utterance after what was said so far.
      reply.utterance.end();
      await reply.utterance.played;
      if (reply.ctrl.signal.aborted) return false;
      turns.finishBot(reply);
      reply.utterance = undefined;
    }
    return askAgain;
  }

  async #callFunctions(reply: Reply, items: FunctionCall[]): Promise<void> {
    const c = this.#c;
    const { state, turns } = c;
    // The client sees what the model called (its server gets them per tool, below).
    c.messages.client("tool-calls", () => {
      const toolCallList = items.map(({ call }) => toolCall(call.id, call.name, call.arguments));
      return toolCallsMessage(
        { call: {} },
        {
          toolCallList,
          // The tool's function only: its server (URL, secret, headers) is not the client's to see.
          toolWithToolCallList: items.map(({ tool }, i) =>
            toolWithToolCall(
              { type: tool.raw.type, function: tool.raw.function },
              toolCallList[i] as ReturnType<typeof toolCall>,
            ),
          ),
        },
      );
    });
    // Spoken while the tool runs (not for async tools).
    const fillers = items.filter((i) => !i.tool.async).map((i) => requestStartMessage(i.tool));
    const filler = fillers.find((f) => f !== undefined);
    let fillerUtterance: Utterance | undefined;
    if (filler && !reply.utterance) {
      fillerUtterance = c.voice.newUtterance(true);
      const entry = state.conversation.beginBot(c.now());
      fillerUtterance.say(filler);
      fillerUtterance.end();
      reply.utterance = fillerUtterance;
      reply.entry = entry;
    }
    const groups = new Map<string, { server: ServerTarget | undefined; items: FunctionCall[] }>();
    for (const item of items) {
      const server = resolveServer({
        tool: item.tool,
        assistant: state.assistant.config as { server?: ServerTarget },
        phoneNumber: { server: c.messages.phoneServer() },
        org: { server: state.orgServer as ServerTarget | undefined },
      });
      const key = server?.url ?? "";
      const g = groups.get(key) ?? { server, items: [] };
      g.items.push(item);
      groups.set(key, g);
    }
    const failedMessages: string[] = [];
    await Promise.all(
      [...groups.values()].map(async ({ server, items: group }) => {
        const posted = c.now();
        const results = await this.#post(reply, server, group);
        const at = c.now();
        this.#logResults(server, group, results, at - posted);
        for (const { call, tool } of group) {
          if (tool.async) {
            state.conversation.addToolResult(call.id, call.name, "Success.", at);
            continue;
          }
          const r = results.get(call.id);
          const text = r?.result ?? (r?.error ? `Error: ${r.error}` : "Error: no result returned");
          state.conversation.addToolResult(call.id, call.name, text, at);
          if (r?.result === undefined) {
            const failed = toolMessage(tool, "request-failed");
            if (failed) failedMessages.push(failed);
          }
        }
      }),
    );
    c.messages.conversationUpdate();
    if (failedMessages.length > 0 && !reply.ctrl.signal.aborted) {
      // The filler has ended (no more text can join it): the failure is spoken as its own message.
      if (reply.utterance?.ended) {
        await reply.utterance.played;
        if (reply.ctrl.signal.aborted) return;
        turns.finishBot(reply);
        reply.utterance = undefined;
      }
      for (const text of failedMessages) turns.speakInReply(reply, text);
    }
  }

  /** What became of a group of function calls: their server, how long it took, each call's status. */
  #logResults(
    server: ServerTarget | undefined,
    group: FunctionCall[],
    results: Map<string, { result?: string; error?: string }>,
    durationMs: number,
  ): void {
    const calls = group.map(({ call, tool }) => {
      const r = results.get(call.id);
      const status = tool.async
        ? "sent (async)"
        : r?.result !== undefined
          ? "ok"
          : r?.error !== undefined
            ? "error"
            : "no result";
      return { id: call.id, name: call.name, status, ...(r?.error !== undefined ? { error: r.error } : {}) };
    });
    const failed = calls.some((x) => x.status === "error" || x.status === "no result");
    const data = { url: server?.url, durationMs: Math.round(durationMs), calls };
    if (failed) this.#c.callLog.warn("tool", "tool calls failed", data);
    else this.#c.callLog.add("tool", "tool calls answered", data);
  }

  /** Posts a group of calls to their server; results by tool call id. */
  async #post(
    reply: Reply,
    server: ServerTarget | undefined,
    group: FunctionCall[],
  ): Promise<Map<string, { result?: string; error?: string }>> {
    const c = this.#c;
    const out = new Map<string, { result?: string; error?: string }>();
    if (!server) {
      for (const { call } of group) out.set(call.id, { error: "no server URL is configured for this tool" });
      return out;
    }
    const toolCallList = group.map(({ call }) => toolCall(call.id, call.name, call.arguments));
    const body = toolCallsMessage(c.messages.context(), {
      toolCallList,
      toolWithToolCallList: group.map(({ tool }, i) =>
        toolWithToolCall(tool.raw, toolCallList[i] as ReturnType<typeof toolCall>),
      ),
    });
    const allAsync = group.every(({ tool }) => tool.async);
    const send = sendServerMessage<Json>(server, body, {
      signal: allAsync ? c.signal : reply.ctrl.signal,
      allowPrivate: c.deps.allowPrivateWebhookUrls,
    });
    if (allAsync) {
      send.catch((err: unknown) => c.state.log.warn({ err }, "async tool call failed"));
      return out;
    }
    try {
      const res = await send;
      const results = Array.isArray(res.results) ? res.results.filter(isObj) : [];
      for (const r of results) {
        if (typeof r.toolCallId !== "string") continue;
        const stringify = (v: unknown) =>
          v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v);
        out.set(r.toolCallId, { result: stringify(r.result), error: stringify(r.error) });
      }
      if (typeof res.error === "string") {
        for (const { call } of group) if (!out.has(call.id)) out.set(call.id, { error: res.error });
      }
    } catch (err) {
      if (reply.ctrl.signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      c.state.log.warn({ err: message }, "tool call failed");
      for (const { call } of group) out.set(call.id, { error: message });
    }
    return out;
  }
}
