import type { ProviderError } from "../../providers/types.ts";
import { speechUpdateMessage, transcriptMessage } from "../../webhooks/index.ts";
import { frameBytes } from "../audio-format.ts";
import { truncateAtWord } from "../conversation.ts";
import { Utterance } from "../speaker.ts";
import type { CallContext } from "./context.ts";
import { fallbackVoice } from "./fallbacks.ts";
import { backoffMs } from "./resilience.ts";

// The assistant's voice: every utterance (reply, first message, tool message, goodbye…) is made
// here, with its speech updates; fixed text is spoken as one assistant message and waited for; the
// far end's playback marks are matched to what is playing.

/** Bounds how long a final message (goodbye, apology) may hold the call open. */
const FINAL_MESSAGE_TIMEOUT_MS = 15_000;
/** A voice's pace before the call has measured it: about 15 characters a second of speech. */
const DEFAULT_MS_PER_CHAR = 65;

export interface SpeakOptions {
  interruptible: boolean;
  source: string;
  /** The silence clock keeps running (a silence reminder is not the caller being active). */
  keepSilenceClock?: boolean;
}

export class AssistantVoice {
  readonly #c: CallContext;
  /** The utterance being spoken now (reply, first message, tool message, goodbye…). */
  speaking: Utterance | undefined;
  /** The recovery in progress after a voice failure, shared by the utterances it failed. */
  #recovering: Promise<boolean> | undefined;
  /** The assistant whose `voice.fallbackPlan` is being used, and its next entry. */
  #fallbacksOf: object | undefined;
  #fallbackIndex = 0;
  /** The current voice's measured pace: audio and characters of its whole utterances. */
  #pace = { ms: 0, chars: 0, msPerChar: DEFAULT_MS_PER_CHAR };

  constructor(c: CallContext) {
    this.#c = c;
  }

  newUtterance(interruptible: boolean): Utterance {
    const c = this.#c;
    const { state } = c;
    const u = new Utterance(
      {
        out: c.out,
        // The voice running the call now (a hand-off or a fallback plan may have changed it).
        get tts() {
          return state.assistant.tts.provider;
        },
        get ttsOptions() {
          return state.assistant.ttsOptions;
        },
        now: c.now,
        recover: (err) => this.#recover(err),
        msPerChar: () => this.#pace.msPerChar,
      },
      interruptible,
    );
    const pace = this.#pace;
    void u.played.then(() => {
      // A whole utterance, spoken through: the voice's pace (audio per character) for resumes.
      if (pace === this.#pace && u.ttsDone && !u.aborted && u.resentCharacters === 0 && u.text.length > 0) {
        pace.ms += u.bytesReceived / (frameBytes(c.out.format, 1000) / 1000);
        pace.chars += u.text.length;
        pace.msPerChar = pace.ms / pace.chars;
      }
    });
    this.speaking = u;
    const { messages } = c;
    messages.emit("speech-update", () =>
      speechUpdateMessage(messages.context(), { status: "started", role: "assistant" }),
    );
    void u.played.then(() => {
      if (!u.cleared)
        messages.emit("speech-update", () =>
          speechUpdateMessage(messages.context(), { status: "stopped", role: "assistant" }),
        );
    });
    return u;
  }

  /** Speaks fixed text as one assistant message and waits until it was heard (or cut off). */
  async speak(text: string, opts: SpeakOptions): Promise<void> {
    const c = this.#c;
    const { state } = c;
    if (state.phase !== "live" && state.phase !== "ending") return;
    if (!opts.keepSilenceClock) c.turns.clearSilence();
    const u = this.newUtterance(opts.interruptible);
    const entry = state.conversation.beginBot(c.now());
    entry.vapi.source = opts.source;
    u.say(text);
    u.end();
    await u.played;
    const spoken = u.cleared || u.aborted ? truncateAtWord(u.text, u.heardChars()) : u.text;
    c.callLog.add("voice", spoken === u.text ? "message spoken" : "message cut off", {
      source: opts.source,
      voiceMs:
        u.firstAudioAt !== undefined && u.firstTextAt !== undefined
          ? Math.round(u.firstAudioAt - u.firstTextAt)
          : undefined,
    });
    state.conversation.finishBot(entry, spoken, c.now(), u.interrupted);
    c.meter.ttsCharacters += u.text.length + u.resentCharacters;
    if (this.speaking === u) this.speaking = undefined;
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
    if (state.phase === "live" && !c.turns.replying && !opts.keepSilenceClock) c.turns.armSilence();
  }

  /**
   * A last message before the call ends (goodbye, apology, transfer notice); bounded in time, and
   * over at once if the call ends meanwhile.
   */
  async speakFinal(text: string): Promise<void> {
    const { signal, timers } = this.#c;
    let cancel: (() => void) | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      this.speak(text, { interruptible: false, source: "final" }),
      new Promise<void>((r) => {
        if (signal.aborted) return r();
        cancel = timers.after(FINAL_MESSAGE_TIMEOUT_MS, r);
        onAbort = () => r();
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    cancel?.();
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }

  /**
   * The voice failed mid-utterance: the same voice again after a bounded backoff (a retryable
   * failure, up to RETRIES_PER_PROVIDER times), else the next voice of `voice.fallbackPlan`, for the
   * rest of the call; true once a voice is ready. Utterances failing together (one socket carries
   * them all) share one recovery. Nothing left: the call fails (without an apology: no voice).
   */
  #recover(err: ProviderError): Promise<boolean> {
    this.#recovering ??= this.#recoverOnce(err).finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #recoverOnce(err: ProviderError): Promise<boolean> {
    const c = this.#c;
    const { state } = c;
    if ((state.phase !== "live" && state.phase !== "ending") || state.failing) return false;
    const assistant = state.assistant;
    const where = {
      kind: "voice" as const,
      provider: assistant.tts.provider.provider,
      model: assistant.ttsOptions.voice.model,
    };
    const decision = c.recovery.decide("voice", err);
    if (decision.action === "retry") {
      c.recovery.record("retry", err, where);
      // The adapters dial a fresh socket for the next stream when the call's one died.
      return c.recovery.wait(backoffMs(decision.retry));
    }
    if (this.#fallbacksOf !== assistant) {
      this.#fallbacksOf = assistant;
      this.#fallbackIndex = 0;
    }
    const primary = assistant.config.voice;
    const next = primary ? fallbackVoice(c, primary, this.#fallbackIndex) : undefined;
    if (!next || state.phase !== "live") {
      void c.fail(err, where);
      return false;
    }
    this.#fallbackIndex = next.index + 1;
    const { provider, key, voice } = next.choice;
    c.recovery.record("fallback", err, where, { provider: provider.provider, model: voice.model });
    c.meter.switchTts(state);
    assistant.tts = { provider, key };
    assistant.ttsOptions = {
      apiKey: key.apiKey,
      voice,
      // The call's own format when the voice makes it (nothing converted); the rest is converted.
      outputFormat: provider.outputFor(c.transport.audio.playback),
      signal: c.signal,
    };
    this.#pace = { ms: 0, chars: 0, msPerChar: DEFAULT_MS_PER_CHAR };
    provider.prewarm?.(assistant.ttsOptions);
    return true;
  }

  /** The far end played audio up to `name`. */
  onMark(name: string): void {
    if (this.speaking?.onMark(name)) return;
    // A mark of an earlier utterance (e.g. the filler before a tool result).
    this.#c.turns.replyUtterance?.onMark(name);
  }

  /** The call is ending: whatever is playing stops. */
  stop(): void {
    this.speaking?.abort(false);
  }
}
