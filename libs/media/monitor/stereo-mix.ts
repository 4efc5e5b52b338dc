import { endianness } from "node:os";
import { MULAW_TO_LINEAR } from "../../providers/audio.ts";
import type { AudioFormat } from "../../providers/types.ts";
import { AudioConverter, LINEAR16_16K, sameAudioFormat } from "../audio-format.ts";
import type { AudioTap } from "../session/audio-tap.ts";

// A call's two parties on one time line, as Vapi's listen socket carries them: 16-bit PCM, 16 kHz,
// two channels interleaved, channel 0 the customer, channel 1 the assistant; silence where nobody
// speaks.
//
// The time line is a ring of the next CAPACITY_MS of stereo samples, emitted `DELAY_MS` behind the
// wall clock (room for the caller's frames arriving unevenly).
// - The caller's audio is laid end to end as it arrives (a frame that comes late still follows the
//   one before it); only when the caller has sent nothing for longer than the delay (a gap in the
//   stream) does it start again at the time it arrives.
// - The assistant's audio is laid where the far end plays it: at once when nothing of the assistant
//   is playing, else after what is (the pacer sends a few frames ahead; they wait their turn, as in
//   the carrier's buffer). A `clear` drops what is laid beyond its time, as the far end does.

/** Channel 0: the customer; channel 1: the assistant. */
const CUSTOMER = 0;
const ASSISTANT = 1;
const RATE = 16_000;
/** Bytes of one stereo sample (two 16-bit channels). */
const FRAME = 4;
/** How far behind the wall clock the mix is emitted. */
export const DELAY_MS = 100;
/** How far ahead of what was emitted audio may be laid; beyond, it is dropped. */
const CAPACITY_MS = 2000;

export const LISTEN_FORMAT = { encoding: "linear16", sampleRate: RATE, channels: 2 } as const;

/**
 * The ring is written through an Int16Array (platform order): every recorded call lays each of its
 * frames here (50 a second per party), and a sample at a time through Buffer's little-endian
 * accessors with a modulo each was a visible share of the media process's CPU. On a big-endian
 * machine the accessors stay.
 */
const NATIVE_LE = endianness() === "LE";

interface Channel {
  /** The next sample index where this channel's audio goes. */
  pos: number;
  converter: AudioConverter | undefined;
}

export class StereoMix implements AudioTap {
  readonly #origin: number;
  /** Samples per ms of the mix (16 for live listen's 16 kHz; a recording takes the call's rate). */
  readonly #perMs: number;
  readonly #to: AudioFormat;
  readonly #cap: number;
  readonly #ring: Buffer;
  /** The ring as stereo samples (two per instant), when the platform is little-endian. */
  readonly #ring16: Int16Array | undefined;
  /** Every sample before this index was emitted. */
  #emitted = 0;
  readonly #channels: [Channel, Channel] = [
    { pos: 0, converter: undefined },
    { pos: 0, converter: undefined },
  ];

  /** `now`: the wall time that is sample 0; `rate`: the mix's sample rate (Hz). */
  constructor(now: number, rate = RATE) {
    this.#origin = now;
    this.#perMs = rate / 1000;
    this.#to = rate === RATE ? LINEAR16_16K : { encoding: "linear16", sampleRate: rate };
    this.#cap = CAPACITY_MS * this.#perMs;
    this.#ring = Buffer.alloc(this.#cap * FRAME);
    this.#ring16 = NATIVE_LE
      ? new Int16Array(this.#ring.buffer, this.#ring.byteOffset, this.#ring.length >> 1)
      : undefined;
  }

  #index(at: number): number {
    return Math.floor((at - this.#origin) * this.#perMs);
  }

  callerAudio(audio: Buffer, format: AudioFormat, at: number): void {
    const mulaw = this.#direct(format);
    const pcm = mulaw === undefined ? this.#pcm(CUSTOMER, audio, format) : audio;
    const n = mulaw ? audio.length : pcm.length >> 1;
    const ch = this.#channels[CUSTOMER];
    const arrived = this.#index(at) - n;
    // A gap in the caller's stream longer than the delay: start again where this frame belongs.
    const start = ch.pos < arrived - DELAY_MS * this.#perMs ? arrived : ch.pos;
    this.#lay(CUSTOMER, pcm, start, mulaw === true);
  }

  assistantAudio(audio: Buffer, format: AudioFormat, at: number): void {
    const mulaw = this.#direct(format);
    const pcm = mulaw === undefined ? this.#pcm(ASSISTANT, audio, format) : audio;
    this.#lay(ASSISTANT, pcm, Math.max(this.#channels[ASSISTANT].pos, this.#index(at)), mulaw === true);
  }

  /**
   * Audio at the mix's own rate is laid as it comes, without a converted copy: true for μ-law
   * (decoded as it is laid), false for PCM; undefined when it goes through the channel's converter
   * (another rate: the resampler keeps its state across frames).
   */
  #direct(format: AudioFormat): boolean | undefined {
    if (!this.#ring16 || format.sampleRate !== this.#to.sampleRate) return undefined;
    return format.encoding === "mulaw";
  }

  clear(at: number): void {
    const ch = this.#channels[ASSISTANT];
    const from = Math.max(this.#index(at), this.#emitted);
    for (let i = from; i < ch.pos; i++) this.#ring.writeInt16LE(0, (i % this.#cap) * FRAME + ASSISTANT * 2);
    if (ch.pos > from) ch.pos = from;
    ch.converter?.reset();
  }

  /** The mix up to `DELAY_MS` before `now` not yet taken, or undefined when none is due. */
  take(now: number): Buffer | undefined {
    const n = this.due(now);
    if (n === 0) return undefined;
    const out = Buffer.allocUnsafe(n * FRAME);
    let o = 0;
    this.drain(now, (view) => {
      o += view.copy(out, o);
    });
    return out;
  }

  /** Stereo samples `take` or `drain` would give at `now` (at most the ring's). */
  due(now: number): number {
    const end = this.#index(now) - DELAY_MS * this.#perMs;
    return end <= this.#emitted ? 0 : Math.min(end - this.#emitted, this.#cap);
  }

  /**
   * What `take` gives, handed to `write` as views of the ring (one or two: it may wrap), valid only
   * during the call: a consumer that copies it where it keeps it (a recording's write blocks) makes
   * no buffer of its own per take.
   */
  drain(now: number, write: (view: Buffer) => void): void {
    let end = this.#index(now) - DELAY_MS * this.#perMs;
    if (end <= this.#emitted) return;
    // Not taken for longer than the ring holds (a stalled process): the oldest is gone.
    if (end - this.#emitted > this.#cap) this.#skipTo(end - this.#cap);
    end = Math.min(end, this.#emitted + this.#cap);
    while (this.#emitted < end) {
      const from = (this.#emitted % this.#cap) * FRAME;
      const upto = Math.min(this.#cap, (this.#emitted % this.#cap) + (end - this.#emitted)) * FRAME;
      write(this.#ring.subarray(from, upto));
      this.#ring.fill(0, from, upto);
      this.#emitted += (upto - from) / FRAME;
    }
  }

  #skipTo(index: number): void {
    while (this.#emitted < index) {
      const from = (this.#emitted % this.#cap) * FRAME;
      const upto = Math.min(this.#cap, (this.#emitted % this.#cap) + (index - this.#emitted)) * FRAME;
      this.#ring.fill(0, from, upto);
      this.#emitted += (upto - from) / FRAME;
    }
  }

  /** The audio as PCM at the mix's rate, through the channel's own converter (resampling keeps its state). */
  #pcm(channel: number, audio: Buffer, format: AudioFormat): Buffer {
    const ch = this.#channels[channel] as Channel;
    if (!ch.converter || !sameAudioFormat(ch.converter.from, format)) {
      ch.converter = new AudioConverter(format, this.#to);
    }
    return ch.converter.convert(audio);
  }

  /**
   * Lays `audio` (16-bit PCM, or μ-law bytes when `mulaw`) on one channel from sample `start` (never
   * before what was emitted; never beyond the ring).
   */
  #lay(channel: number, audio: Buffer, start: number, mulaw = false): void {
    const from = Math.max(start, this.#emitted);
    const n = Math.min(mulaw ? audio.length : audio.length >> 1, this.#emitted + this.#cap - from);
    if (n <= 0) return;
    const cap = this.#cap;
    const ring16 = this.#ring16;
    if (!ring16) {
      const ring = this.#ring;
      const offset = channel * 2;
      for (let i = 0; i < n; i++)
        ring.writeInt16LE(audio.readInt16LE(i * 2), ((from + i) % cap) * FRAME + offset);
    } else {
      // PCM aligned on a sample is read through a view; otherwise (an odd offset) by bytes.
      const pcm16 =
        !mulaw && (audio.byteOffset & 1) === 0
          ? new Int16Array(audio.buffer, audio.byteOffset, n)
          : undefined;
      // The ring wraps at most once: two runs, no modulo per sample.
      const first = Math.min(n, cap - (from % cap));
      for (let run = 0, i = 0; run < 2 && i < n; run++) {
        const end = run === 0 ? first : n;
        let o = (run === 0 ? from % cap : 0) * 2 + channel;
        if (mulaw) for (; i < end; i++, o += 2) ring16[o] = MULAW_TO_LINEAR[audio[i] as number] as number;
        else if (pcm16) for (; i < end; i++, o += 2) ring16[o] = pcm16[i] as number;
        else for (; i < end; i++, o += 2) ring16[o] = audio.readInt16LE(i * 2);
      }
    }
    (this.#channels[channel] as Channel).pos = from + n;
  }
}
