import type { LlmMessage, LlmReplay } from "../providers/types.ts";

// The call's conversation in two views kept in step: what the model sees (OpenAI-style messages)
// and what the Call record shows (Vapi's `messages`: system / bot / user / tool_calls /
// tool_call_result, with wall-clock times and seconds from the start of the call).

export interface VapiMessage {
  role: "system" | "bot" | "user" | "tool_calls" | "tool_call_result";
  message?: string;
  time: number;
  secondsFromStart: number;
  endTime?: number;
  duration?: number;
  source?: string;
  /**
   * Switchboard's addition to Vapi's BotMessage (Vapi's type has no such field; its clients ignore
   * fields they do not know): on every bot message, whether the caller cut it off (barge-in), so a
   * transcript can say which lines were interrupted rather than only how many
   * (`performanceMetrics.numAssistantInterrupted`). Absent on calls recorded before it existed.
   */
  interrupted?: boolean;
  toolCalls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  toolCallId?: string;
  name?: string;
  result?: string;
}

export interface TurnLatency {
  modelLatency: number;
  voiceLatency: number;
  transcriberLatency: number;
  endpointingLatency: number;
  turnLatency: number;
  /**
   * Switchboard's additions (not in Vapi's type): of the time from the caller's last voiced frame
   * to the reply's first frame, what the providers took (final transcript + LLM to the first
   * speakable clause + TTS to the first audio) and what the platform itself added (the rest, less
   * the waits the assistant is configured for). Absent when the turn had no voiced audio (DTMF).
   */
  providerLatency?: number;
  platformLatency?: number;
  /** Switchboard's too: provider retries and fallback switches since the previous turn (absent: none). */
  providerRetries?: number;
  providerFallbacks?: number;
}

export interface PerformanceMetrics {
  turnLatencies: TurnLatency[];
  modelLatencyAverage: number;
  voiceLatencyAverage: number;
  transcriberLatencyAverage: number;
  endpointingLatencyAverage: number;
  turnLatencyAverage: number;
  numUserInterrupted: number;
  numAssistantInterrupted: number;
}

const round = (n: number) => Math.round(n);

function average(values: number[]): number {
  return values.length === 0 ? 0 : round(values.reduce((a, b) => a + b, 0) / values.length);
}

/** One assistant utterance being spoken; its text is final once `finish` or `truncate` is called. */
export interface BotEntry {
  llmIndex: number;
  vapi: VapiMessage;
}

export class Conversation {
  readonly llm: LlmMessage[] = [];
  readonly messages: VapiMessage[] = [];
  readonly turnLatencies: TurnLatency[] = [];
  numAssistantInterrupted = 0;
  numUserInterrupted = 0;
  readonly #startedAt: number;

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  #secs(at: number): number {
    return Math.max(0, (at - this.#startedAt) / 1000);
  }

  setSystem(prompt: string, at: number): void {
    const existing = this.llm.findIndex((m) => m.role === "system");
    if (existing >= 0) this.llm.splice(existing, 1);
    if (prompt === "") return;
    this.llm.unshift({ role: "system", content: prompt });
    const vIdx = this.messages.findIndex((m) => m.role === "system");
    const entry: VapiMessage = { role: "system", message: prompt, time: at, secondsFromStart: 0 };
    if (vIdx >= 0) this.messages[vIdx] = entry;
    else this.messages.unshift(entry);
  }

  /** Extra messages from the assistant's `model.messages` (other than the system prompt). */
  addSeed(message: LlmMessage): void {
    this.llm.push(message);
  }

  addUser(text: string, startedAt: number, endedAt: number): void {
    this.llm.push({ role: "user", content: text });
    this.messages.push({
      role: "user",
      message: text,
      time: startedAt,
      endTime: endedAt,
      secondsFromStart: this.#secs(startedAt),
      duration: Math.max(0, endedAt - startedAt),
    });
  }

  /** A system note for the model only (add-message control with role system). */
  addSystemNote(text: string, at: number): void {
    this.llm.push({ role: "system", content: text });
    this.messages.push({ role: "system", message: text, time: at, secondsFromStart: this.#secs(at) });
  }

  /** Starts an assistant utterance; its text grows as clauses are spoken. */
  beginBot(at: number): BotEntry {
    this.llm.push({ role: "assistant", content: "" });
    const vapi: VapiMessage = {
      role: "bot",
      message: "",
      time: at,
      secondsFromStart: this.#secs(at),
      source: "",
      interrupted: false,
    };
    this.messages.push(vapi);
    return { llmIndex: this.llm.length - 1, vapi };
  }

  appendBot(entry: BotEntry, text: string): void {
    const m = this.llm[entry.llmIndex];
    if (m) m.content = (m.content ?? "") + text;
    entry.vapi.message = (entry.vapi.message ?? "") + text;
  }

  /**
   * Sets what the caller actually heard, and whether they cut it off (`interrupted`); an utterance
   * nobody heard leaves no message.
   */
  finishBot(entry: BotEntry, spoken: string, endedAt: number, interrupted = false): void {
    const text = spoken.trim();
    const m = this.llm[entry.llmIndex];
    if (m) m.content = text;
    entry.vapi.message = text;
    entry.vapi.interrupted = interrupted;
    entry.vapi.endTime = endedAt;
    entry.vapi.duration = Math.max(0, endedAt - entry.vapi.time);
    if (text === "") {
      const hasTools = m?.toolCalls !== undefined && m.toolCalls.length > 0;
      if (m && !hasTools) this.llm.splice(entry.llmIndex, 1);
      const vIdx = this.messages.indexOf(entry.vapi);
      if (vIdx >= 0) this.messages.splice(vIdx, 1);
    }
  }

  addToolCalls(
    entry: BotEntry | undefined,
    calls: Array<{ id: string; name: string; arguments: string }>,
    at: number,
    /** What the model's provider needs sent back with these calls (its thinking blocks). */
    replay?: LlmReplay,
  ): void {
    const m = entry ? this.llm[entry.llmIndex] : undefined;
    if (m && m.role === "assistant") {
      m.toolCalls = calls;
      if (replay) m.replay = replay;
    } else
      this.llm.push({ role: "assistant", content: null, toolCalls: calls, ...(replay ? { replay } : {}) });
    this.messages.push({
      role: "tool_calls",
      message: "",
      time: at,
      secondsFromStart: this.#secs(at),
      toolCalls: calls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      })),
    });
  }

  addToolResult(toolCallId: string, name: string, result: string, at: number): void {
    this.llm.push({ role: "tool", toolCallId, name, content: result });
    this.messages.push({
      role: "tool_call_result",
      toolCallId,
      name,
      result,
      time: at,
      secondsFromStart: this.#secs(at),
    });
  }

  /**
   * The model's view, with any assistant messages that ended up empty removed. Tool results follow
   * the assistant message that called them (OpenAI refuses anything in between): what the assistant
   * said while the tools ran (a filler) joins that message's content, as when a model speaks before
   * calling a tool; anything else said meanwhile comes after the results.
   */
  llmView(): LlmMessage[] {
    const kept = this.llm.filter(
      (m) => !(m.role === "assistant" && !m.content && !(m.toolCalls && m.toolCalls.length > 0)),
    );
    const out: LlmMessage[] = [];
    let caller: LlmMessage | undefined;
    let pending = new Set<string>();
    let deferred: LlmMessage[] = [];
    for (const m of kept) {
      if (pending.size === 0) {
        if (m.role === "assistant" && m.toolCalls && m.toolCalls.length > 0) {
          caller = { ...m };
          out.push(caller);
          pending = new Set(m.toolCalls.map((c) => c.id));
        } else out.push(m);
        continue;
      }
      if (m.role === "tool" && m.toolCallId !== undefined && pending.has(m.toolCallId)) {
        out.push(m);
        pending.delete(m.toolCallId);
        if (pending.size === 0) {
          out.push(...deferred);
          deferred = [];
        }
      } else if (caller && m.role === "assistant" && !m.toolCalls?.length && m.content) {
        caller.content = caller.content ? `${caller.content} ${m.content}` : m.content;
      } else deferred.push(m);
    }
    out.push(...deferred);
    return out;
  }

  transcript(names: { assistantName: string; userName: string }): string {
    const lines: string[] = [];
    for (const m of this.messages) {
      if (m.role === "bot" && m.message) lines.push(`${names.assistantName}: ${m.message}`);
      else if (m.role === "user" && m.message) lines.push(`${names.userName}: ${m.message}`);
    }
    return lines.join("\n");
  }

  recordTurn(t: TurnLatency): void {
    this.turnLatencies.push({
      modelLatency: round(t.modelLatency),
      voiceLatency: round(t.voiceLatency),
      transcriberLatency: round(t.transcriberLatency),
      endpointingLatency: round(t.endpointingLatency),
      turnLatency: round(t.turnLatency),
      ...(t.providerLatency !== undefined ? { providerLatency: round(t.providerLatency) } : {}),
      ...(t.platformLatency !== undefined ? { platformLatency: round(t.platformLatency) } : {}),
      ...(t.providerRetries ? { providerRetries: t.providerRetries } : {}),
      ...(t.providerFallbacks ? { providerFallbacks: t.providerFallbacks } : {}),
    });
  }

  performanceMetrics(): PerformanceMetrics {
    const t = this.turnLatencies;
    return {
      turnLatencies: t,
      modelLatencyAverage: average(t.map((x) => x.modelLatency)),
      voiceLatencyAverage: average(t.map((x) => x.voiceLatency)),
      transcriberLatencyAverage: average(t.map((x) => x.transcriberLatency)),
      endpointingLatencyAverage: average(t.map((x) => x.endpointingLatency)),
      turnLatencyAverage: average(t.map((x) => x.turnLatency)),
      numUserInterrupted: this.numUserInterrupted,
      numAssistantInterrupted: this.numAssistantInterrupted,
    };
  }
}

/** Cuts `text` to about `chars` characters, at a word boundary. */
export function truncateAtWord(text: string, chars: number): string {
  if (chars >= text.length) return text;
  if (chars <= 0) return "";
  const cut = text.slice(0, chars);
  const lastSpace = cut.lastIndexOf(" ");
  const next = text[chars];
  if (next === " " || next === undefined) return cut.trimEnd();
  return lastSpace > 0 ? cut.slice(0, lastSpace).trimEnd() : "";
}
