import { renderTemplate } from "../../assistants/index.ts";
import { observeTurn } from "../../metrics/index.ts";
import { ClauseChunker } from "../../providers/chunker.ts";
import {
  abortError,
  isAbortError,
  type LlmCallContext,
  type LlmEvent,
  type LlmReplay,
  ProviderError,
} from "../../providers/types.ts";
import type { ResolvedAssistantConfig } from "../../vapi/defaults.ts";
import { hangMessage, modelOutputMessage, transcriptMessage } from "../../webhooks/index.ts";
import { type BotEntry, truncateAtWord } from "../conversation.ts";
import { ENDED } from "../ended-reasons.ts";
import type { Utterance } from "../speaker.ts";
import type { DestinationDef } from "../tools.ts";
import type { UserTurn } from "../turn-detector.ts";
import { type CallContext, normalise } from "./context.ts";
import { backoffMs } from "./resilience.ts";
import type { ToolCallRequest } from "./tool-runner.ts";
import { turnLatency } from "./turn-latency.ts";

// Turn-taking: the first message, then for each finished turn of the caller's one reply (LLM, with
// tool rounds → clause chunker → TTS → paced audio), and what happens once a reply was heard (an
// ending, a transfer, the spend limit, or the caller's silence clock).

const SILENCE_REMINDER = "Are you still there?";
/** A reply with no audio this long after the turn ended is reported as `hang`. */
const HANG_AFTER_MS = 5000;
const MAX_TOOL_ROUNDS = 5;
/**
 * A model request with no event this long (before its first, or between two) is abandoned and
 * retried: generous, as a reasoning model may think for seconds before its first token.
 */
export const LLM_STALL_MS = 15_000;

export type CallerTurn = UserTurn & { dtmf?: boolean };

type ModelName = NonNullable<ResolvedAssistantConfig["model"]>["model"];

export interface Reply {
  ctrl: AbortController;
  utterance: Utterance | undefined;
  entry: BotEntry | undefined;
  turn: CallerTurn | undefined;
  llmStartedAt: number;
  firstTokenAt: number | undefined;
  /** Wall time the caller's last voiced frame of the turn went to the transcriber (0: unknown). */
  voiceEndAt: number;
  /** Audio may not start before this (startSpeakingPlan.waitSeconds after the end of speech). */
  gateAt: number;
  recorded: boolean;
  cancelHang: () => void;
  /** What the model's last round asked to be sent back with its tool calls (LlmReplay). */
  replay?: LlmReplay;
}

export class TurnLoop {
  readonly #c: CallContext;
  #reply: Reply | undefined;
  /** The call ends once the reply in flight has been heard (end-call tool or phrase). */
  endAfterReply: { reason: string; message?: string } | undefined;
  /** The call is transferred once the reply in flight has been heard (transfer tool). */
  transferAfterReply: DestinationDef | undefined;
  #spendChecked = false;
  /** The model block whose `fallbackModels` are being used, and the next one's index. */
  #fallbacksOf: object | undefined;
  #fallbackIndex = 0;

  constructor(c: CallContext) {
    this.#c = c;
  }

  get replying(): boolean {
    return this.#reply !== undefined;
  }

  /** The utterance of the reply in flight (playback marks may still come for it). */
  get replyUtterance(): Utterance | undefined {
    return this.#reply?.utterance;
  }

  async firstMessage(): Promise<void> {
    const { state, interruption, voice } = this.#c;
    const a = state.assistant.config;
    const mode = a.firstMessageMode;
    if (mode === "assistant-waits-for-user") {
      this.armSilence();
      return;
    }
    if (mode === "assistant-speaks-first-with-model-generated-message") {
      void this.respond(undefined);
      return;
    }
    const text = a.firstMessage ? renderTemplate(a.firstMessage, state.variables) : "";
    if (!text) {
      this.armSilence();
      return;
    }
    interruption.firstMessagePlaying = !a.firstMessageInterruptionsEnabled;
    await voice.speak(text, { interruptible: a.firstMessageInterruptionsEnabled, source: "first-message" });
    interruption.firstMessagePlaying = false;
  }

  onUserTurn(turn: CallerTurn): void {
    const c = this.#c;
    const { state } = c;
    if (state.phase !== "live" || state.failing) return;
    if (!turn.dtmf) c.input.userSpeech("stopped");
    if (!turn.dtmf && c.interruption.ignores(turn.text)) {
      // Too few words (or an acknowledgement) to interrupt: the assistant carries on; what the
      // caller said stays in the conversation without a reply of its own.
      c.callLog.add("interruption", "the caller's words did not interrupt the assistant", {
        words: turn.text,
      });
      state.conversation.addUser(turn.text, turn.startedAt, turn.speechEndedAt);
      c.messages.conversationUpdate();
      return;
    }
    // A new turn supersedes a reply still in flight (the caller carried on talking).
    if (this.#reply) this.cancelReply(true);
    state.conversation.addUser(turn.text, turn.startedAt, turn.speechEndedAt);
    c.messages.conversationUpdate();
    const gate = turn.speechEndedAt + state.assistant.config.startSpeakingPlan.waitSeconds * 1000;
    c.out.notBefore = Math.max(c.out.notBefore, gate);
    void this.respond(turn);
  }

  /** One assistant reply: LLM (with tool rounds) → clauses → TTS → caller. */
  async respond(turn: CallerTurn | undefined): Promise<void> {
    const c = this.#c;
    this.clearSilence();
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort();
    c.signal.addEventListener("abort", onAbort, { once: true });
    const reply: Reply = {
      ctrl,
      utterance: undefined,
      entry: undefined,
      turn,
      llmStartedAt: c.now(),
      firstTokenAt: undefined,
      voiceEndAt: turn && !turn.dtmf ? c.input.lastVoiceSentAt : 0,
      gateAt: turn ? turn.speechEndedAt + c.state.assistant.config.startSpeakingPlan.waitSeconds * 1000 : 0,
      recorded: false,
      cancelHang: c.timers.after(HANG_AFTER_MS, () => {
        if (this.#reply === reply && !reply.utterance?.firstAudioAt)
          c.messages.emit("hang", () => hangMessage(c.messages.context()));
      }),
    };
    this.#reply = reply;
    const model = c.state.assistant.config.model;
    c.callLog.add("model", turn ? "reply to the caller's turn requested" : "reply requested", {
      provider: c.state.assistant.llm.provider.provider,
      model: model?.model,
    });
    try {
      for (let round = 0; round < MAX_TOOL_ROUNDS && !ctrl.signal.aborted; round++) {
        const calls = await this.#llmRound(reply);
        if (ctrl.signal.aborted || calls.length === 0) break;
        const more = await c.tools.run(reply, calls);
        if (!more) break;
      }
      const utterance = reply.utterance;
      if (utterance && !ctrl.signal.aborted) {
        utterance.end();
        await utterance.played;
        this.finishBot(reply);
      }
    } catch (err) {
      if (!ctrl.signal.aborted && !isAbortError(err)) {
        if (reply.utterance) reply.utterance.abort(false);
        this.finishBot(reply);
        if (this.#reply === reply) this.#reply = undefined;
        await c.fail(err, { provider: c.state.assistant.llm.provider.provider, kind: "llm" });
        return;
      }
    } finally {
      reply.cancelHang();
      c.signal.removeEventListener("abort", onAbort);
    }
    if (this.#reply !== reply) return;
    this.#reply = undefined;
    if (c.voice.speaking === reply.utterance) c.voice.speaking = undefined;
    await this.#afterReply();
  }

  /** What happens once a reply has been heard: an ending, a transfer, the spend limit, or silence. */
  async #afterReply(): Promise<void> {
    const c = this.#c;
    if (c.state.phase !== "live") return;
    if (this.transferAfterReply) {
      const destination = this.transferAfterReply;
      this.transferAfterReply = undefined;
      await c.transfer.to(destination);
      return;
    }
    if (this.endAfterReply) {
      const { reason, message } = this.endAfterReply;
      if (message) await c.voice.speakFinal(message);
      await c.end(reason);
      return;
    }
    const spend = c.deps.spend;
    if (!this.#spendChecked && spend) {
      try {
        if (await spend.isOverSpendLimit(c.state.orgId)) {
          this.#spendChecked = true;
          await c.end(ENDED.spendLimit);
          return;
        }
      } catch (err) {
        c.state.log.warn({ err }, "spend limit check failed");
      }
    }
    this.armSilence();
  }

  /**
   * One request to the model (a reply, or its next round after tool results), retried within the
   * turn when it fails (recovery.ts): a request that failed before any of its text was spoken is
   * asked again with the same context, after a bounded backoff, then of the next of
   * `model.fallbackModels`. One that failed after some of its clauses went to the voice is not asked
   * again (the model would start its answer over, and the caller would hear it twice): the reply
   * ends with the clauses already spoken, and what was still unspoken of it is dropped.
   */
  async #llmRound(reply: Reply): Promise<ToolCallRequest[]> {
    const c = this.#c;
    const started = c.now();
    for (;;) {
      const model = c.state.assistant.config.model;
      if (!model) return [];
      const attempt = new AbortController();
      const onAbort = () => attempt.abort();
      reply.ctrl.signal.addEventListener("abort", onAbort, { once: true });
      const progress = { spoken: 0, events: 0 };
      const stall = this.#watchStall(attempt, progress);
      try {
        const calls = await this.#llmAttempt(reply, attempt.signal, started, progress);
        if (!attempt.signal.aborted) c.recovery.succeeded("llm");
        if (!attempt.signal.aborted || reply.ctrl.signal.aborted) return calls;
        throw attempt.signal.reason;
      } catch (err) {
        if (reply.ctrl.signal.aborted) throw err;
        // A stalled request was aborted by the watchdog: its reason is the failure, not the abort.
        const failure = attempt.signal.aborted ? attempt.signal.reason : err;
        const where = {
          kind: "llm" as const,
          provider: c.state.assistant.llm.provider.provider,
          model: model.model,
        };
        if (progress.spoken > 0) {
          c.recovery.record("cut-short", failure, where);
          return [];
        }
        reply.firstTokenAt = undefined;
        const decision = c.recovery.decide("llm", failure);
        if (decision.action === "retry") {
          c.recovery.record("retry", failure, where);
          if (!(await c.recovery.wait(backoffMs(decision.retry), reply.ctrl.signal))) throw abortError();
          continue;
        }
        const next = this.#nextModel();
        if (!next) throw failure;
        c.recovery.record("fallback", failure, where, { provider: where.provider, model: next });
        c.meter.switchLlm(c.state);
        model.model = next;
      } finally {
        stall();
        reply.ctrl.signal.removeEventListener("abort", onAbort);
      }
    }
  }

  /**
   * Abandons a request the model stopped answering: no event for LLM_STALL_MS (before its first one,
   * or between two) aborts it with a retryable timeout. Returns the watchdog's cancel.
   */
  #watchStall(attempt: AbortController, progress: { events: number }): () => void {
    const { timers, state } = this.#c;
    let cancel = () => {};
    const arm = (seen: number) => {
      cancel = timers.after(LLM_STALL_MS, () => {
        if (progress.events !== seen) return arm(progress.events);
        const provider = state.assistant.llm.provider.provider;
        attempt.abort(
          new ProviderError(
            provider,
            "llm",
            `${provider} stalled: no answer within ${LLM_STALL_MS} ms`,
            true,
          ),
        );
      });
    };
    arm(progress.events);
    return () => cancel();
  }

  /** The next of `model.fallbackModels` (for the rest of the call), or undefined when none is left. */
  #nextModel(): ModelName | undefined {
    const model = this.#c.state.assistant.config.model;
    if (!model) return undefined;
    if (this.#fallbacksOf !== model) {
      this.#fallbacksOf = model;
      this.#fallbackIndex = 0;
    }
    const list = "fallbackModels" in model ? (model.fallbackModels ?? []) : [];
    const next = list[this.#fallbackIndex];
    if (next !== undefined) this.#fallbackIndex++;
    return next;
  }

  async #llmAttempt(
    reply: Reply,
    signal: AbortSignal,
    started: number,
    progress: { spoken: number; events: number },
  ): Promise<ToolCallRequest[]> {
    const c = this.#c;
    const { assistant } = c.state;
    const model = assistant.config.model;
    if (!model) return [];
    const chunker = new ClauseChunker();
    // The client's `model-output`: the model's tokens, sent a clause at a time (when the clause goes
    // to the voice, and what is left at the end): a message per token was the largest share of a
    // web call's client messages, and a client shows the text no later than it is spoken.
    let output = "";
    const sendOutput = () => {
      if (output === "") return;
      const text = output;
      output = "";
      c.messages.client("model-output", () => modelOutputMessage({ call: {} }, { output: text }));
    };
    const calls: ToolCallRequest[] = [];
    const tools = c.tools.llmTools();
    reply.replay = undefined;
    const stream = assistant.llm.provider.stream({
      apiKey: assistant.llm.key.apiKey,
      model: model.model,
      messages: c.state.conversation.llmView(),
      tools: tools.length > 0 ? tools : undefined,
      temperature: model.temperature,
      maxTokens: model.maxTokens,
      modelConfig: model,
      callContext: () => this.#llmCallContext(),
      signal,
    });
    for await (const ev of stream as AsyncIterable<LlmEvent>) {
      if (signal.aborted) break;
      progress.events++;
      if (ev.type === "text") {
        if (reply.firstTokenAt === undefined) {
          reply.firstTokenAt = c.now();
          reply.llmStartedAt = started;
        }
        output += ev.delta;
        const clauses = chunker.push(ev.delta);
        if (clauses.length > 0) sendOutput();
        for (const clause of clauses) {
          progress.spoken++;
          this.#sayClause(reply, clause);
        }
      } else if (ev.type === "tool-call") {
        if (reply.firstTokenAt === undefined) {
          reply.firstTokenAt = c.now();
          reply.llmStartedAt = started;
        }
        calls.push({ id: ev.id, name: ev.name, arguments: ev.arguments });
      } else {
        c.meter.addLlm(ev.usage);
        reply.replay = ev.replay;
      }
    }
    if (signal.aborted) return [];
    sendOutput();
    const rest = chunker.flush();
    if (rest) this.#sayClause(reply, rest);
    return calls;
  }

  /** The call as a model provider may be told about it (custom-llm's metadataSendMode). */
  #llmCallContext(): LlmCallContext {
    const { call, phoneNumber, customer } = this.#c.messages.context();
    return { call, phoneNumber, customer, metadata: this.#c.state.assistant.config.metadata };
  }

  #sayClause(reply: Reply, clause: string): void {
    const u = this.speakInReply(reply, clause);
    this.#checkEndCallPhrase(u.text);
  }

  /** Adds text to the reply's utterance, starting one (and its assistant message) if needed. */
  speakInReply(reply: Reply, text: string): Utterance {
    const c = this.#c;
    if (!reply.utterance) {
      reply.utterance = c.voice.newUtterance(true);
      reply.entry = c.state.conversation.beginBot(c.now());
    }
    reply.utterance.say(text);
    return reply.utterance;
  }

  #checkEndCallPhrase(text: string): void {
    if (this.endAfterReply) return;
    const said = ` ${normalise(text)} `;
    for (const phrase of this.#c.state.assistant.config.endCallPhrases) {
      const p = normalise(phrase);
      if (p && said.includes(` ${p} `)) {
        this.endAfterReply = { reason: ENDED.endCallPhrase };
        return;
      }
    }
  }

  /** The reply's utterance is over: what was heard becomes the assistant's message. */
  finishBot(reply: Reply): void {
    const c = this.#c;
    const u = reply.utterance;
    const entry = reply.entry;
    if (!u || !entry) return;
    const spoken = u.cleared || u.aborted ? truncateAtWord(u.text, u.heardChars()) : u.text;
    c.state.conversation.finishBot(entry, spoken, c.now(), u.interrupted);
    c.meter.ttsCharacters += u.text.length + u.resentCharacters;
    reply.entry = undefined;
    if (spoken) {
      c.messages.emit({ type: "transcript", transcriptType: "final" }, () =>
        transcriptMessage(c.messages.context(), {
          role: "assistant",
          transcriptType: "final",
          transcript: spoken,
        }),
      );
    }
    c.messages.conversationUpdate();
    c.checkpoints.write();
  }

  /** The reply's first frame left for the caller: the turn's latency is recorded. */
  onFirstFrame(at: number): void {
    const reply = this.#reply;
    const u = reply?.utterance;
    if (!reply || reply.recorded || !reply.turn || this.#c.voice.speaking !== u || !u) return;
    reply.recorded = true;
    const latency = turnLatency(reply, reply.turn, u, at);
    // With the retries and fallbacks since the previous turn (the caller's words, this reply).
    this.#c.state.conversation.recordTurn({ ...latency, ...this.#c.recovery.takeTurnCounts() });
    observeTurn(latency);
    this.#c.callLog.add("turn", "the reply started playing", {
      turnLatencyMs: Math.round(latency.turnLatency),
      transcriberMs: Math.round(latency.transcriberLatency),
      endpointingMs: Math.round(latency.endpointingLatency),
      modelMs: Math.round(latency.modelLatency),
      voiceMs: Math.round(latency.voiceLatency),
    });
  }

  /** Barge-in stopped `u`: the reply speaking it is cancelled (what was heard stays). */
  cancelIfSpeaking(u: Utterance): void {
    if (this.#reply && this.#reply.utterance === u) this.cancelReply(false);
  }

  /** Aborts the reply in flight (LLM request and TTS stream) and keeps what was heard. */
  cancelReply(clear: boolean): void {
    const c = this.#c;
    const reply = this.#reply;
    if (!reply) return;
    this.#reply = undefined;
    reply.cancelHang();
    reply.ctrl.abort();
    const u = reply.utterance;
    if (u && !u.aborted) {
      if (clear && u.audible) {
        c.transport.clear();
        c.out.clear();
      }
      u.abort(clear || u.cleared);
    }
    this.finishBot(reply);
    if (c.voice.speaking === u) c.voice.speaking = undefined;
  }

  /** Starts the caller's silence clock: a reminder halfway, the call ends at the timeout. */
  armSilence(): void {
    const c = this.#c;
    if (c.state.phase !== "live" || c.state.failing) return;
    c.timers.armSilence(c.state.assistant.config.silenceTimeoutSeconds * 1000, {
      remind: () => {
        if (c.state.phase === "live" && !this.#reply && !c.voice.speaking) {
          // The reminder does not restart the clock: only the caller speaking does.
          void c.voice.speak(SILENCE_REMINDER, {
            interruptible: true,
            source: "silence-reminder",
            keepSilenceClock: true,
          });
        }
      },
      timeout: () => void c.end(ENDED.silence),
    });
  }

  clearSilence(): void {
    this.#c.timers.clearSilence();
  }
}
