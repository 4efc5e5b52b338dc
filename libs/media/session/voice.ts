import { speechUpdateMessage, transcriptMessage } from "../../webhooks/index.ts";
import { truncateAtWord } from "../conversation.ts";
import { Utterance } from "../speaker.ts";
import type { CallContext } from "./context.ts";

// The assistant's voice: every utterance (reply, first message, tool message, goodbye…) is made
// here, with its speech updates; fixed text is spoken as one assistant message and waited for; the
// far end's playback marks are matched to what is playing.

/** Bounds how long a final message (goodbye, apology) may hold the call open. */
const FINAL_MESSAGE_TIMEOUT_MS = 15_000;

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

  constructor(c: CallContext) {
    this.#c = c;
  }

  newUtterance(interruptible: boolean): Utterance {
    const c = this.#c;
    const { tts, ttsOptions } = c.state.assistant;
    const u = new Utterance(
      {
        out: c.out,
        tts: tts.provider,
        ttsOptions,
        now: c.now,
        // The voice running the call when the error comes (a hand-off may have changed it).
        onError: (err) =>
          void c.fail(err, { provider: c.state.assistant.tts.provider.provider, kind: "voice" }),
      },
      interruptible,
    );
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
    state.conversation.finishBot(entry, spoken, c.now());
    c.meter.ttsCharacters += u.text.length;
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
