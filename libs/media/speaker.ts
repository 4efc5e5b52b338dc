import type { ProviderError, TextToSpeech, TtsEvent, TtsOptions, TtsStream } from "../providers/types.ts";
import { AudioConverter, type AudioFormat, frameBytes, MULAW_8K, sameAudioFormat } from "./audio-format.ts";
import type { OutboundAudio } from "./pacer.ts";

// One assistant utterance: text goes to TTS clause by clause as soon as it exists, audio goes to
// the outbound queue as it arrives, with a mark after each audio chunk (so the echoed marks tell
// how much the caller has heard) and a final mark when it is all queued. Audio the voice makes in
// another format than the call's (`ttsOptions.outputFormat` vs `out.format`) is converted here, so
// everything queued, counted and marked is in the call's format.

export interface SpeakerHost {
  out: OutboundAudio;
  /** The call's voice now: a fallback plan may switch it, also in the middle of an utterance. */
  readonly tts: TextToSpeech;
  readonly ttsOptions: TtsOptions;
  now(): number;
  /**
   * The voice failed while speaking `u`: resolves true once a voice is ready again (the same one
   * after a backoff, or the fallback plan's next) to take the text not spoken yet; false when the
   * utterance is over (the call is failing).
   */
  recover(err: ProviderError, u: Utterance): Promise<boolean>;
  /** Milliseconds of audio this voice makes per character (measured on the call), for where to resume. */
  msPerChar(): number;
}

let seq = 0;

/** Progress marks at most this often (the heard text is known to a word or two). */
const PROGRESS_MARK_MS = 400;
/** PROGRESS_MARK_MS of μ-law 8 kHz. */
export const PROGRESS_MARK_BYTES = 3200;

export class Utterance {
  readonly id = `u${++seq}`;
  readonly interruptible: boolean;
  /** Text handed to TTS, in order. */
  text = "";
  bytesReceived = 0;
  /** Bytes the caller has heard, from echoed marks. */
  heardBytes = 0;
  ttsDone = false;
  ended = false;
  cleared = false;
  aborted = false;
  /** The caller cut it off (barge-in), as its assistant message records (`interrupted`). */
  interrupted = false;
  firstTextAt: number | undefined;
  firstAudioAt: number | undefined;
  /** Resolves when the caller has heard all of it, or it was cleared / aborted. */
  readonly played: Promise<void>;
  #resolvePlayed!: () => void;
  #playedDone = false;
  readonly #host: SpeakerHost;
  #stream: TtsStream | undefined;
  #opening: Promise<void> | undefined;
  #pending: string[] = [];
  /** Audio bytes covered by the last progress mark. */
  #markedBytes = 0;
  readonly #markEveryBytes: number;
  /** The voice's audio → the call's, when they differ (made on the first audio). */
  #converter: AudioConverter | undefined;
  /** Events of an earlier stream (one that failed) are ignored: each stream has its number. */
  #generation = 0;
  #recovering = false;
  /** Characters sent to a voice again after a failure (billed too). */
  resentCharacters = 0;

  constructor(host: SpeakerHost, interruptible: boolean) {
    this.#host = host;
    this.interruptible = interruptible;
    const format = host.out.format;
    this.#markEveryBytes = sameAudioFormat(format, MULAW_8K)
      ? PROGRESS_MARK_BYTES
      : frameBytes(format, PROGRESS_MARK_MS);
    this.played = new Promise<void>((resolve) => {
      this.#resolvePlayed = resolve;
    });
  }

  /** Audio of this utterance is queued or playing. */
  get audible(): boolean {
    return this.bytesReceived > 0 && !this.#playedDone;
  }

  get done(): boolean {
    return this.#playedDone;
  }

  say(text: string): void {
    if (this.aborted || this.ended || text.trim() === "") return;
    const piece = this.text === "" ? text.trim() : ` ${text.trim()}`;
    this.text += piece;
    this.firstTextAt ??= this.#host.now();
    if (this.#stream) this.#stream.sendText(text, true);
    else {
      this.#pending.push(text);
      // While the voice recovers, text waits (the resume sends everything unspoken).
      if (!this.#recovering) this.#open();
    }
  }

  /** Raw audio that bypasses TTS (keypad tones), in `format` (μ-law 8 kHz by default). */
  play(audio: Buffer, format: AudioFormat = MULAW_8K): void {
    if (this.aborted) return;
    const to = this.#host.out.format;
    if (sameAudioFormat(format, to)) {
      this.#onAudio(audio);
      return;
    }
    const converter = new AudioConverter(format, to);
    this.#onAudio(Buffer.concat([converter.convert(audio), converter.flush()]));
  }

  /** No more text: the utterance ends after what was sent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.aborted) return;
    if (this.#stream) this.#stream.end();
    else if (!this.#opening && !this.#recovering) this.#finishQueue();
  }

  /** Barge-in: the caller cut it off; no more audio, and what was queued is dropped. */
  interrupt(): void {
    if (this.aborted) return;
    this.interrupted = true;
    this.abort(true);
  }

  /** Barge-in or teardown: no more audio from this utterance. */
  abort(cleared: boolean): void {
    if (this.aborted) return;
    this.aborted = true;
    this.cleared = cleared;
    this.#stream?.abort();
    this.#pending = [];
    this.#settle();
  }

  /** An echoed mark; true when it belonged to this utterance. */
  onMark(name: string): boolean {
    if (!name.startsWith(`${this.id}:`)) return false;
    if (this.cleared) return true;
    const tail = name.slice(this.id.length + 1);
    if (tail === "end") {
      this.heardBytes = this.bytesReceived;
      this.#settle();
    } else {
      const n = Number(tail);
      if (Number.isFinite(n) && n > this.heardBytes) this.heardBytes = n;
    }
    return true;
  }

  /** The part of `text` the caller heard (proportional to audio played). */
  heardChars(): number {
    if (this.bytesReceived === 0) return 0;
    if (this.heardBytes >= this.bytesReceived && this.ttsDone) return this.text.length;
    return Math.floor((this.text.length * this.heardBytes) / this.bytesReceived);
  }

  #open(): void {
    if (this.#opening) return;
    const generation = ++this.#generation;
    const opening = this.#host.tts
      .open(this.#host.ttsOptions, (e) => {
        if (generation === this.#generation) this.#onEvent(e);
      })
      .then((stream) => {
        if (this.aborted || generation !== this.#generation) {
          stream.abort();
          return;
        }
        this.#stream = stream;
        for (const t of this.#pending) stream.sendText(t, true);
        this.#pending = [];
        if (this.ended) stream.end();
      })
      .catch((err: unknown) => {
        if (this.aborted || generation !== this.#generation) return;
        this.#failed(err as ProviderError);
      });
    this.#opening = opening;
  }

  #onEvent(e: TtsEvent): void {
    if (this.aborted) return;
    if (e.type === "audio") this.#onVoice(e.audio);
    else if (e.type === "done") {
      this.ttsDone = true;
      // What the converter still holds (its resampler's delay) ends the audio.
      if (this.#converter) this.#onAudio(this.#converter.flush());
      this.#finishQueue();
    } else {
      this.#failed(e.error);
    }
  }

  /**
   * The voice failed (its socket dropped, it refused, it timed out): the stream is dropped and the
   * host decides what comes next. When a voice is ready again it is sent the text not spoken yet.
   */
  #failed(err: ProviderError): void {
    if (this.aborted || this.#recovering) return;
    this.#recovering = true;
    // Whatever the failed stream still sends is not this utterance's any more.
    this.#generation++;
    const stream = this.#stream;
    this.#stream = undefined;
    this.#opening = undefined;
    stream?.abort();
    void this.#host.recover(err, this).then((ready) => {
      this.#recovering = false;
      if (this.aborted) return;
      if (!ready) {
        this.abort(false);
        return;
      }
      this.#resume();
    });
  }

  /**
   * Sends the text the caller has not heard (nor been sent audio of) to the voice again. Where the
   * audio received so far ends in the text is estimated from its length at the voice's measured
   * pace, and moved on to the next word: a word may be skipped, none is heard twice. The voice's
   * remaining converter state (a few samples) is dropped with the old stream.
   */
  #resume(): void {
    this.#converter = undefined;
    const heardMs = this.bytesReceived / (frameBytes(this.#host.out.format, 1000) / 1000);
    const reached = Math.ceil(heardMs / Math.max(1, this.#host.msPerChar()));
    // Text said while the voice recovered is part of `text` too.
    const resend = this.bytesReceived === 0 ? this.text : textAfter(this.text, reached);
    this.#pending = resend === "" ? [] : [resend];
    this.resentCharacters += resend.length;
    if (this.#pending.length === 0) {
      if (this.ended) this.#finishQueue();
      return;
    }
    this.#open();
  }

  /** Audio from the voice, in its output format. */
  #onVoice(audio: Buffer): void {
    const from = this.#host.ttsOptions.outputFormat;
    const to = this.#host.out.format;
    if (!this.#converter && !sameAudioFormat(from, to)) this.#converter = new AudioConverter(from, to);
    this.#onAudio(this.#converter ? this.#converter.convert(audio) : audio);
  }

  #onAudio(audio: Buffer): void {
    if (audio.length === 0) return;
    const now = this.#host.now();
    this.firstAudioAt ??= now;
    this.bytesReceived += audio.length;
    this.#host.out.enqueueAudio(audio, now);
    // A progress mark (Twilio echoes it when that audio has played: how much the caller heard, for
    // truncation on barge-in) every PROGRESS_MARK_BYTES or so, not after every TTS chunk: each mark
    // is a message each way.
    if (this.bytesReceived - this.#markedBytes >= this.#markEveryBytes) {
      this.#markedBytes = this.bytesReceived;
      this.#host.out.enqueueMark(`${this.id}:${this.bytesReceived}`, now);
    }
  }

  #finishQueue(): void {
    if (this.bytesReceived === 0) {
      this.#settle();
      return;
    }
    this.#host.out.enqueueMark(`${this.id}:end`, this.#host.now());
  }

  #settle(): void {
    if (this.#playedDone) return;
    this.#playedDone = true;
    this.#resolvePlayed();
  }
}

/** `text` after its first `chars` characters, from the next word on ("" when nothing is left). */
export function textAfter(text: string, chars: number): string {
  if (chars <= 0) return text;
  if (chars >= text.length) return "";
  // Just past a space: the next word has not begun.
  if (text[chars - 1] === " ") return text.slice(chars).trim();
  // Inside a word (or at its end): the word is taken as spoken.
  const space = text.indexOf(" ", chars);
  return space === -1 ? "" : text.slice(space + 1).trim();
}
