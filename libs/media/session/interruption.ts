import { speechUpdateMessage, userInterruptedMessage } from "../../webhooks/index.ts";
import { type AudioFormat, bytesPerMs, isSilence, MULAW_8K } from "../audio-format.ts";
import { type CallContext, normalise } from "./context.ts";

// Barge-in: the caller talking over the assistant stops it, by the assistant's stopSpeakingPlan —
// on voice held for `voiceSeconds` (numWords 0), or on enough words that are not an
// acknowledgement (numWords > 0). The caller stops hearing the assistant within a frame; what they
// heard is what stays in the conversation, its message marked `interrupted` (the call's record says
// which lines were cut off, not only how many).

export class Interruption {
  readonly #c: CallContext;
  #voicedMs = 0;
  #unvoicedFrames = 0;
  /** A first message that may not be interrupted is playing. */
  firstMessagePlaying = false;
  /** The caller's audio format, and its bytes per ms. */
  #format: AudioFormat = MULAW_8K;
  #bytesPerMs = 8;

  constructor(c: CallContext) {
    this.#c = c;
  }

  /** The caller's audio format (known once the call is claimed). */
  useFormat(format: AudioFormat): void {
    this.#format = format;
    this.#bytesPerMs = bytesPerMs(format);
  }

  /** One frame of caller audio while the call is live (the hot path). `voiced`: `hasVoice(buf)`. */
  onFrame(buf: Buffer, voiced: boolean): void {
    const c = this.#c;
    // Local voice activity only matters while the assistant can be interrupted.
    const speaking = c.voice.speaking;
    if (!speaking?.interruptible || !speaking.audible || this.firstMessagePlaying) {
      this.#voicedMs = 0;
      return;
    }
    const plan = c.state.assistant.config.stopSpeakingPlan;
    if (plan.numWords > 0) return;
    // `hasVoice` (every 8th sample) found nothing: the frame is taken as silence without the full
    // full pass over the frame, which runs only on frames that may hold voice (a listening caller's frames
    // mostly do not). Speech always shows on those samples (test/providers/audio.test.ts).
    if (!voiced || isSilence(buf, this.#format)) {
      if (++this.#unvoicedFrames >= 2) this.#voicedMs = 0;
      return;
    }
    this.#unvoicedFrames = 0;
    this.#voicedMs += buf.length / this.#bytesPerMs;
    const needMs = Math.max(20, plan.voiceSeconds * 1000);
    if (this.#voicedMs >= needMs) {
      const voicedMs = Math.round(this.#voicedMs);
      this.#voicedMs = 0;
      this.bargeIn({ trigger: "voice", voicedMs, voiceSeconds: plan.voiceSeconds });
    }
  }

  /** stopSpeakingPlan.numWords > 0: interrupt on words, never on an acknowledgement. */
  onWords(text: string): void {
    const plan = this.#c.state.assistant.config.stopSpeakingPlan;
    const speaking = this.#c.voice.speaking;
    if (plan.numWords <= 0 || !speaking?.interruptible || !speaking.audible || this.firstMessagePlaying)
      return;
    if (this.interrupts(text)) this.bargeIn({ trigger: "words", words: text, numWords: plan.numWords });
  }

  /** Under stopSpeakingPlan.numWords > 0: whether what the caller said interrupts the assistant. */
  interrupts(text: string): boolean {
    const plan = this.#c.state.assistant.config.stopSpeakingPlan;
    const said = normalise(text);
    const words = said.split(" ").filter(Boolean);
    const interruption = plan.interruptionPhrases.some((p) => words.includes(normalise(p)));
    const acknowledgement = plan.acknowledgementPhrases.some((p) => normalise(p) === said);
    return interruption || (!acknowledgement && words.length >= plan.numWords);
  }

  /** Whether a finished turn of the caller's is too short (or an acknowledgement) to stop the assistant. */
  ignores(text: string): boolean {
    const speaking = this.#c.voice.speaking;
    return (
      this.#c.state.assistant.config.stopSpeakingPlan.numWords > 0 &&
      speaking?.interruptible === true &&
      speaking.audible &&
      !this.interrupts(text)
    );
  }

  /** `why`: what set it off (the caller's voice or words), as the call log says. */
  bargeIn(why: Record<string, unknown> = {}): void {
    const c = this.#c;
    const u = c.voice.speaking;
    if (!u) return;
    // `clear` first: the caller must stop hearing the assistant within a frame.
    c.transport.clear();
    c.out.clear();
    u.interrupt();
    c.callLog.add("interruption", "barge-in: the assistant stopped speaking", {
      ...why,
      heardCharacters: u.heardChars(),
      ofCharacters: u.text.length,
    });
    c.state.conversation.numAssistantInterrupted++;
    c.out.notBefore = c.now() + c.state.assistant.config.stopSpeakingPlan.backoffSeconds * 1000;
    c.messages.emit("user-interrupted", () => userInterruptedMessage(c.messages.context()));
    c.messages.emit("speech-update", () =>
      speechUpdateMessage(c.messages.context(), { status: "stopped", role: "assistant" }),
    );
    c.turns.cancelIfSpeaking(u);
    c.voice.speaking = undefined;
    c.state.log.debug({}, "barge-in");
  }
}
