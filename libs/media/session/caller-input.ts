import { hasVoice as hasVoiceMulaw } from "../../providers/audio.ts";
import {
  isAbortError,
  ProviderError,
  type SpeechToText,
  type SttEvent,
  type SttStream,
} from "../../providers/types.ts";
import {
  type ResolvedAssistantConfig,
  type ResolvedTranscriber,
  transcriberModel,
} from "../../vapi/defaults.ts";
import { speechUpdateMessage, transcriptMessage } from "../../webhooks/index.ts";
import {
  AudioConverter,
  type AudioFormat,
  bytesPerMs,
  bytesPerSecond,
  frameBytes,
  hasVoice,
  LINEAR16_16K,
  MULAW_8K,
  sameAudioFormat,
} from "../audio-format.ts";
import { AudioJournal } from "../audio-journal.ts";
import { KeypadInput, keypadEntryText } from "../keypad.ts";
import { SilenceBatcher } from "../silence-batcher.ts";
import { TurnDetector } from "../turn-detector.ts";
import type { CallContext } from "./context.ts";
import { fallbackTranscriber } from "./fallbacks.ts";
import { backoffMs } from "./resilience.ts";
import { transcriberOptions, UTTERANCE_END_MS } from "./transcriber-options.ts";

// What the caller does: their audio (kept while the call starts, then streamed to the transcriber
// with long silences gathered), the transcriber's events (speech updates, transcripts, the turn
// detector deciding when the caller has finished), and their keypad digits. Finished turns go to
// the turn loop; voice while the assistant speaks goes to the interruption part.

/** Caller audio kept while the call starts (token check, loading, transcriber connect): 5 s of μ-law. */
export const EARLY_AUDIO_MAX_BYTES = 40_000;
const EARLY_AUDIO_MAX_MS = 5000;
/** Margin past the transcriber's silence windows before the caller's silence is gathered. */
const SILENCE_BATCH_MARGIN_MS = 500;
/**
 * The caller's audio kept since the transcriber's last final, to send again to a reconnected (or
 * fallback) transcriber so the words it had not finalised are not lost: at most this much.
 */
export const RESEND_MAX_MS = 10_000;

/**
 * What the transcriber is sent for caller audio in `caller`: that format when the provider takes it
 * natively (nothing converted on the hot path), else μ-law 8 kHz for μ-law callers and PCM 16 kHz
 * for the rest (or whichever of the two the provider takes).
 */
export function transcriberFormat(stt: SpeechToText, caller: AudioFormat): AudioFormat {
  if (stt.accepts(caller)) return caller;
  const preferred = caller.encoding === "mulaw" ? MULAW_8K : LINEAR16_16K;
  if (stt.accepts(preferred)) return preferred;
  return preferred === MULAW_8K ? LINEAR16_16K : MULAW_8K;
}

export class CallerInput {
  readonly #c: CallContext;
  #stt: SttStream | undefined;
  /** Wall time the last voiced frame of the caller went to the transcriber. */
  lastVoiceSentAt = 0;
  /** The caller's long silences, gathered into fewer messages to the transcriber. */
  #silence = new SilenceBatcher();
  /** The caller's audio format; its voice test and bytes per ms (μ-law 8 kHz until told otherwise). */
  #format: AudioFormat = MULAW_8K;
  #hasVoice: (frame: Buffer) => boolean = hasVoiceMulaw;
  #bytesPerMs = 8;
  #earlyMaxBytes = EARLY_AUDIO_MAX_BYTES;
  /** Caller audio → the transcriber's format, when the transcriber does not take the caller's. */
  #toStt: AudioConverter | undefined;
  /** Quiet this long (no transcriber decision pending on it), the caller's silence is gathered. */
  #quietAfterMs = Number.POSITIVE_INFINITY;
  /** The transcriber has ended the caller's utterance and times nothing more: silence is gathered from now on. */
  #silenceSettled = false;
  #endpointingMs = 10;
  #sttAudioStartedAt = 0;
  /** Caller audio received before the transcriber was open, oldest first (bounded). */
  #early: Buffer[] = [];
  #earlyBytes = 0;
  /** The caller is speaking (a `speech-update` started was sent, stopped not yet). */
  #userSpeaking = false;
  #detector: TurnDetector | undefined;
  /** The caller's keypad digits, gathered per the assistant's keypadInputPlan. */
  #keypad: KeypadInput | undefined;
  /**
   * The caller's audio since the transcriber's last final (what a reconnected transcriber is sent
   * again), at most `#journalMaxBytes`. It ends at `meter.sttBytes`.
   */
  readonly #journal = new AudioJournal();
  #journalMaxBytes = RESEND_MAX_MS * 8;
  /** Bytes per sample of the caller's format: the journal is cut at whole samples. */
  #sampleBytes = 1;
  /** Position (in `meter.sttBytes`) and audio time of the current connection's first byte. */
  #streamStartMs = 0;
  /** Events of earlier connections are ignored: each connection has its number. */
  #generation = 0;
  #recovering = false;
  /** The call-start transcriber (its fallback plan), and the plan's next entry. */
  #primary: ResolvedTranscriber | undefined;
  #fallbackIndex = 0;

  constructor(c: CallContext) {
    this.#c = c;
  }

  get transcribing(): boolean {
    return this.#stt !== undefined;
  }

  /** The caller's audio format (known once the call is claimed; μ-law 8 kHz keeps the phone path). */
  useFormat(format: AudioFormat): void {
    this.#format = format;
    this.#hasVoice = sameAudioFormat(format, MULAW_8K) ? hasVoiceMulaw : (frame) => hasVoice(frame, format);
    this.#bytesPerMs = bytesPerMs(format);
    this.#earlyMaxBytes = Math.round(EARLY_AUDIO_MAX_MS * this.#bytesPerMs);
    this.#journalMaxBytes = Math.round(RESEND_MAX_MS * this.#bytesPerMs);
    this.#sampleBytes = format.encoding === "linear16" ? 2 : 1;
    this.#journalMaxBytes -= this.#journalMaxBytes % this.#sampleBytes;
    this.#c.meter.sttBytesPerSecond = bytesPerSecond(format);
  }

  /** A new assistant runs the call: its endpointing and keypad plans (digits gathered so far are dropped). */
  useAssistant(assistant: ResolvedAssistantConfig): void {
    const { now, timers, turns, callLog } = this.#c;
    this.#detector?.dispose();
    this.#detector = new TurnDetector(
      assistant.startSpeakingPlan.transcriptionEndpointingPlan,
      (turn) => {
        callLog.add("turn", "the caller's turn ended", {
          words: turn.text,
          waitedMs: Math.round(turn.endpointedAt - turn.speechEndedAt),
        });
        turns.onUserTurn(turn);
      },
      now,
      (waitMs, rule) => callLog.add("turn", "endpointing: waiting for more words", { waitMs, rule }),
    );
    this.#keypad?.dispose();
    this.#keypad = new KeypadInput(
      assistant.keypadInputPlan,
      (digits) => this.#onKeypadEntry(digits),
      timers.schedule,
    );
  }

  /** Opens the call's transcriber (the call-start assistant's) with its endpointing. */
  async connect(): Promise<SttStream> {
    this.#primary ??= this.#c.state.assistant.config.transcriber;
    return this.#open();
  }

  /** Connects the call's current transcriber (the call-start one, or the fallback it switched to). */
  async #open(): Promise<SttStream> {
    const c = this.#c;
    const transcriber = c.state.transcriber;
    if (!transcriber) throw new Error("the assistant has no transcriber");
    const t = transcriber.config ?? this.#primary;
    if (!t) throw new Error("the assistant has no transcriber");
    const audio = transcriberFormat(transcriber.provider, this.#format);
    this.#toStt = sameAudioFormat(audio, this.#format) ? undefined : new AudioConverter(this.#format, audio);
    this.#silence = new SilenceBatcher(frameBytes(audio));
    // A new connection times the caller's silence afresh.
    this.#silenceSettled = false;
    const options = transcriberOptions(t, { apiKey: transcriber.key.apiKey, audio, signal: c.signal });
    this.#endpointingMs = options.endpointingMs;
    const generation = ++this.#generation;
    return transcriber.provider.connect(options, (e) => {
      if (generation === this.#generation) this.onStt(e);
    });
  }

  /** The transcriber is open: what the caller said while the call was starting goes first, in order. */
  startTranscribing(stt: SttStream): void {
    const { meter, now } = this.#c;
    // It counts as their latest voice: silence after it is timed by the transcriber, so it is not gathered yet.
    for (const buf of this.#early) {
      meter.sttBytes += buf.length;
      this.#journal.append(buf);
      const audio = this.#toStt ? this.#toStt.convert(buf) : buf;
      if (audio.length > 0) stt.sendAudio(audio);
      if (this.#hasVoice(buf)) this.lastVoiceSentAt = now();
    }
    this.#early = [];
    this.#earlyBytes = 0;
    this.#journal.trimTo(this.#journalMaxBytes);
    this.#quietAfterMs = Math.max(this.#endpointingMs, UTTERANCE_END_MS) + SILENCE_BATCH_MARGIN_MS;
    this.#stt = stt;
  }

  /** One frame of caller audio: the hot path (50 per second per call). */
  onAudio(buf: Buffer): void {
    const c = this.#c;
    c.taps.active?.callerAudio(buf, this.#format, c.now());
    // Audio time 0 at the transcriber is the first byte it gets: the first frame kept.
    if (this.#sttAudioStartedAt === 0) this.#sttAudioStartedAt = c.now();
    const stt = this.#stt;
    if (!stt) {
      this.#keepEarly(buf);
      return;
    }
    c.meter.sttBytes += buf.length;
    // Kept (a copy, in pooled chunks) until the transcriber finalises it: a reconnect sends it again.
    this.#journal.append(buf);
    this.#journal.trimTo(this.#journalMaxBytes);
    const voiced = this.#hasVoice(buf);
    // Converted only when the transcriber cannot take the caller's format (never on a phone call).
    const audio = this.#toStt ? this.#toStt.convert(buf) : buf;
    if (!voiced && (this.#silenceSettled || c.now() - this.lastVoiceSentAt >= this.#quietAfterMs)) {
      const batch = this.#silence.hold(audio);
      if (batch && batch.length > 0) stt.sendAudio(batch);
    } else {
      // An empty message would be Deepgram's close: a resampler's first call may return nothing.
      if (audio.length > 0) stt.sendAudio(this.#silence.release(audio));
      if (voiced) {
        this.lastVoiceSentAt = c.now();
        this.#silenceSettled = false;
      }
    }
    if (c.state.phase !== "live") return;
    c.interruption.onFrame(buf, voiced);
  }

  /** Keeps audio that arrived before the transcriber was open, dropping the oldest beyond the bound. */
  #keepEarly(buf: Buffer): void {
    this.#early.push(buf);
    this.#earlyBytes += buf.length;
    let excess = this.#earlyBytes - this.#earlyMaxBytes;
    while (excess > 0) {
      const oldest = this.#early[0];
      if (!oldest) break;
      const drop = Math.min(excess, oldest.length);
      if (drop === oldest.length) this.#early.shift();
      else this.#early[0] = oldest.subarray(drop);
      this.#earlyBytes -= drop;
      excess -= drop;
      // The transcriber's audio clock now starts later by what was dropped.
      this.#sttAudioStartedAt += drop / this.#bytesPerMs;
    }
  }

  onStt(e: SttEvent): void {
    const c = this.#c;
    const detector = this.#detector;
    if (c.state.phase !== "live" || !detector) return;
    switch (e.type) {
      case "speech-started":
        this.#silenceSettled = false;
        c.turns.clearSilence();
        this.userSpeech("started");
        detector.speechStarted();
        return;
      case "transcript": {
        const text = e.text.trim();
        if (text !== "") {
          this.#silenceSettled = false;
          c.turns.clearSilence();
          this.userSpeech("started");
          const transcriptType = e.isFinal ? "final" : "partial";
          c.messages.emit({ type: "transcript", transcriptType }, () =>
            transcriptMessage(c.messages.context(), { role: "user", transcriptType, transcript: text }),
          );
          c.interruption.onWords(text);
        }
        const lastWordAt = (this.#sttAudioStartedAt || c.now()) + this.#streamStartMs + e.endMs;
        detector.transcript(text, e.isFinal, e.speechFinal, lastWordAt);
        if (e.isFinal) {
          c.recovery.succeeded("transcriber");
          this.#forgetUntil(e.endMs);
        }
        return;
      }
      case "utterance-end": {
        detector.utteranceEnd();
        if (detector.hasPending) return;
        // The transcriber's last decision on this silence, and no turn waits on a final: it may be
        // gathered at once rather than after the fixed window, unless the caller spoke again
        // meanwhile (voice within the last half window cannot belong to the utterance that ended a
        // whole window after its last word).
        if (c.now() - this.lastVoiceSentAt >= UTTERANCE_END_MS / 2) this.#silenceSettled = true;
        // Voice that never became words (noise): no turn will end it, the utterance end does.
        this.userSpeech("stopped");
        return;
      }
      case "error":
        void this.#recover(e.error);
        return;
      case "closed": {
        const where = this.#sttFailure();
        void this.#recover(new ProviderError(where.provider, "transcriber", "transcriber closed", true));
        return;
      }
    }
  }

  #sttFailure(): { provider: string; kind: "transcriber"; model?: string } {
    const t = this.#c.state.transcriber;
    const config = t?.config ?? this.#primary;
    return {
      provider: t?.provider.provider ?? "deepgram",
      kind: "transcriber",
      ...(config ? { model: transcriberModel(config) } : {}),
    };
  }

  /**
   * The transcriber failed mid-call (an error, or its socket closed): connect again after a bounded
   * backoff (a retryable failure, up to RETRIES_PER_PROVIDER times), else the fallback plan's next
   * transcriber, for the rest of the call; the caller's audio since the last final is sent again, so
   * no word is lost and none is transcribed twice (the words finalised before are not in it). While
   * it reconnects the caller's audio is kept as at call start. Nothing left: the call fails.
   */
  async #recover(failure: unknown): Promise<void> {
    const c = this.#c;
    if (c.state.phase !== "live" || this.#recovering || !this.#stt) return;
    this.#recovering = true;
    const old = this.#stt;
    this.#stt = undefined;
    // Later events of the failed connection are not the caller's (its close, a late error).
    this.#generation++;
    void old.close().catch(() => {});
    let err = failure;
    try {
      for (;;) {
        const where = this.#sttFailure();
        const decision = c.recovery.decide("transcriber", err);
        if (decision.action === "retry") {
          c.recovery.record("retry", err, where);
          if (!(await c.recovery.wait(backoffMs(decision.retry)))) return;
        } else {
          const next = this.#primary ? fallbackTranscriber(c, this.#primary, this.#fallbackIndex) : undefined;
          if (!next) {
            void c.fail(err, where);
            return;
          }
          this.#fallbackIndex = next.index + 1;
          const { provider, config } = next.choice;
          c.recovery.record("fallback", err, where, {
            provider: provider.provider,
            model: transcriberModel(config),
          });
          c.meter.switchStt(c.state);
          c.state.transcriber = next.choice;
        }
        if (c.state.phase !== "live") return;
        try {
          const stt = await this.#open();
          if (c.state.phase !== "live") {
            await stt.close();
            return;
          }
          this.#resend(stt);
          return;
        } catch (e) {
          if (isAbortError(e) || c.state.phase !== "live") return;
          err = e;
        }
      }
    } finally {
      this.#recovering = false;
    }
  }

  /** A new connection: the audio not finalised by the last one first, then what came meanwhile. */
  #resend(stt: SttStream): void {
    const start = this.#c.meter.sttBytes - this.#journal.bytes;
    // The new connection's audio clock starts where the kept audio does.
    this.#streamStartMs = start / this.#bytesPerMs;
    // In messages of up to a second (a transcriber takes 20 ms – 1 s per message), whole samples.
    const most = Math.max(this.#sampleBytes, Math.round(1000 * this.#bytesPerMs));
    for (const caller of this.#journal.read(most - (most % this.#sampleBytes))) {
      const audio = this.#toStt ? this.#toStt.convert(caller) : caller;
      if (audio.length > 0) stt.sendAudio(audio);
    }
    this.startTranscribing(stt);
  }

  /** The transcriber finalised its audio up to `endMs` (of the current connection): not sent again. */
  #forgetUntil(endMs: number): void {
    const pos = this.#c.meter.sttBytes - this.#journal.bytes;
    const until = (this.#streamStartMs + endMs) * this.#bytesPerMs;
    const drop = Math.floor(until - pos);
    this.#journal.drop(drop - (drop % this.#sampleBytes));
  }

  /** `speech-update` for the caller: started on voice or the first words, stopped at the endpoint. */
  userSpeech(status: "started" | "stopped"): void {
    if (this.#userSpeaking === (status === "started")) return;
    this.#userSpeaking = status === "started";
    const { messages } = this.#c;
    messages.emit("speech-update", () => speechUpdateMessage(messages.context(), { status, role: "user" }));
  }

  /** A key the caller pressed: gathered per the keypad plan; with keypad input off (Vapi's default), ignored. */
  onDigit(digit: string): void {
    const keypad = this.#keypad;
    if (!keypad?.enabled) return;
    const { turns } = this.#c;
    turns.clearSilence();
    keypad.press(digit);
    // Still gathering (no delimiter yet): the caller was active, their silence is timed from now.
    if (keypad.pending !== "" && !turns.replying) turns.armSilence();
  }

  /** The caller's keypad entry is complete: one user turn, in Vapi's wording. */
  #onKeypadEntry(digits: string): void {
    const c = this.#c;
    if (c.state.phase !== "live") return;
    this.#detector?.reset();
    const now = c.now();
    c.turns.onUserTurn({
      text: keypadEntryText(digits),
      speechEndedAt: now,
      lastWordAt: now,
      endpointedAt: now,
      startedAt: now,
      dtmf: true,
    });
  }

  /**
   * The call is ending: no more turns or digits; the caller's gathered silence goes before the
   * transcriber closes (every byte is transcribed audio). Resolves once the transcriber is closed.
   */
  async stop(): Promise<void> {
    this.#detector?.dispose();
    this.#keypad?.dispose();
    const stt = this.#stt;
    this.#stt = undefined;
    this.#journal.clear();
    const held = this.#silence.flush();
    if (held) stt?.sendAudio(held);
    await stt?.close();
  }
}
