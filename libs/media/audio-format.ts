import {
  hasVoice as hasVoiceMulaw,
  isSilence as isSilenceMulaw,
  MULAW_TO_LINEAR,
} from "../providers/audio.ts";
import { type AudioFormat, MULAW_8K, sameAudioFormat } from "../providers/types.ts";

// Audio on a call's legs in either of its encodings: G.711 μ-law (Twilio, μ-law web calls) or
// 16-bit little-endian PCM at any rate (web calls). Codecs, a streaming resampler, sizes of 20 ms
// frames, and voice/silence tests per format. The μ-law 8 kHz functions of providers/audio.ts stay
// the hot path of phone calls; these dispatch to them for μ-law and only add work for PCM.

export { type AudioFormat, MULAW_8K, sameAudioFormat };

/** The canonical PCM format: what consumers that want one format (live listen, recordings) take. */
export const LINEAR16_16K: AudioFormat = { encoding: "linear16", sampleRate: 16000 };

/** Bytes per sample: 1 for μ-law, 2 for linear16. */
export function bytesPerSample(format: AudioFormat): 1 | 2 {
  return format.encoding === "mulaw" ? 1 : 2;
}

/** Bytes of one second of `format`. */
export function bytesPerSecond(format: AudioFormat): number {
  return format.sampleRate * bytesPerSample(format);
}

/** Bytes per millisecond (fractional at rates that are not a multiple of 1 kHz, e.g. 88.2 at 44.1 kHz). */
export function bytesPerMs(format: AudioFormat): number {
  return bytesPerSecond(format) / 1000;
}

/** Bytes of `ms` of audio, in whole samples. 20 ms: 160 for μ-law 8 kHz, 640 for PCM 16 kHz. */
export function frameBytes(format: AudioFormat, ms = 20): number {
  return Math.round((format.sampleRate * ms) / 1000) * bytesPerSample(format);
}

/** Duration of `bytes` of `format`, in ms. */
export function durationMs(bytes: number, format: AudioFormat): number {
  return (bytes * 1000) / bytesPerSecond(format);
}

/** The byte value of silence (μ-law 0xFF; linear16 zero). */
export function silenceByte(format: AudioFormat): number {
  return format.encoding === "mulaw" ? 0xff : 0;
}

/** A fresh buffer of `bytes` of silence in `format`. */
export function silence(format: AudioFormat, bytes: number): Buffer {
  return Buffer.alloc(bytes, silenceByte(format));
}

// ---------------------------------------------------------------- codecs

/** 16-bit sample (offset by 32768) → μ-law byte: G.711 encoding with the usual 0x84 bias and clip. */
const LINEAR_TO_MULAW: Uint8Array = (() => {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) {
    let sample = i - 32768;
    const sign = sample < 0 ? 0x80 : 0;
    if (sample < 0) sample = -sample;
    if (sample > 32635) sample = 32635;
    sample += 0x84;
    let exponent = 7;
    for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (sample >> (exponent + 3)) & 0x0f;
    table[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return table;
})();

/** μ-law bytes → 16-bit little-endian PCM at the same rate. */
export function mulawToLinear16(mulaw: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(mulaw.length * 2);
  for (let i = 0; i < mulaw.length; i++)
    out.writeInt16LE(MULAW_TO_LINEAR[mulaw[i] as number] as number, i * 2);
  return out;
}

/** 16-bit little-endian PCM (even length) → μ-law bytes at the same rate. */
export function linear16ToMulaw(pcm: Buffer): Buffer {
  const n = pcm.length >> 1;
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = LINEAR_TO_MULAW[pcm.readInt16LE(i * 2) + 32768] as number;
  return out;
}

// ---------------------------------------------------------------- resampling

/** Zero crossings of the interpolation kernel on each side, at the output's bandwidth. */
const KERNEL_ZERO_CROSSINGS = 8;
/** Kernel table resolution: values per input sample. */
const KERNEL_PHASES = 64;

/**
 * Streaming sample-rate conversion of 16-bit PCM, any rate to any rate: band-limited interpolation
 * with a Hann-windowed sinc kernel (8 zero crossings each side). Downsampling scales the kernel to
 * the output's Nyquist frequency (a low-pass, so what the lower rate cannot hold does not fold back
 * as aliasing); upsampling interpolates at the input's. State carries across `push` calls: a stream
 * cut into frames of any size converts exactly as it would in one piece, and the output has a
 * constant delay of about 8 samples of the lower rate.
 */
export class Resampler {
  readonly from: number;
  readonly to: number;
  /** Kernel half-width in input samples. */
  readonly #half: number;
  readonly #kernel: Float32Array;
  /** Input samples kept: from absolute index #bufStart on. */
  #buf: Float32Array;
  #bufStart: number;
  #bufLen = 0;
  /** The next output's position in input samples: #idx + #rem / to (exact: integers only). */
  #idx = 0;
  #rem = 0;
  /** A linear16 byte whose sample's other byte is in the next chunk. */
  #oddByte: number | undefined;

  constructor(from: number, to: number) {
    if (!(from > 0 && to > 0)) throw new Error("sample rates must be positive");
    this.from = from;
    this.to = to;
    // The kernel's cutoff, relative to the input's Nyquist frequency.
    const cutoff = Math.min(1, to / from);
    this.#half = Math.ceil(KERNEL_ZERO_CROSSINGS / cutoff);
    const n = this.#half * KERNEL_PHASES + 1;
    this.#kernel = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = i / KERNEL_PHASES;
      const x = Math.PI * cutoff * d;
      const sinc = d === 0 ? 1 : Math.sin(x) / x;
      const window = 0.5 + 0.5 * Math.cos((Math.PI * d) / this.#half);
      this.#kernel[i] = cutoff * sinc * window;
    }
    // Samples before the stream are silence: the first outputs see a kernel's width of zeros.
    this.#buf = new Float32Array(4096);
    this.#bufStart = -this.#half;
    this.#bufLen = this.#half;
  }

  /** Converts the next bytes of the stream (16-bit LE; an odd byte is carried to the next call). */
  push(pcm: Buffer): Buffer {
    this.#append(pcm);
    return this.#drain(this.#bufStart + this.#bufLen);
  }

  /** The stream ended: what the kernel's delay still holds, with silence after it. */
  flush(): Buffer {
    const end = this.#bufStart + this.#bufLen;
    this.#appendSilence(this.#half);
    const out = this.#drain(end + this.#half);
    this.reset();
    return out;
  }

  /** Forgets the stream (barge-in: what follows is unrelated audio). */
  reset(): void {
    this.#bufStart = -this.#half;
    this.#bufLen = this.#half;
    this.#buf.fill(0, 0, this.#half);
    this.#idx = 0;
    this.#rem = 0;
    this.#oddByte = undefined;
  }

  #reserve(more: number): void {
    if (this.#bufLen + more <= this.#buf.length) return;
    const bigger = new Float32Array(Math.max(this.#buf.length * 2, this.#bufLen + more));
    bigger.set(this.#buf.subarray(0, this.#bufLen));
    this.#buf = bigger;
  }

  #append(pcm: Buffer): void {
    let i = 0;
    const samples = (pcm.length + (this.#oddByte === undefined ? 0 : 1)) >> 1;
    this.#reserve(samples);
    const buf = this.#buf;
    if (this.#oddByte !== undefined && pcm.length > 0) {
      const v = ((pcm[0] as number) << 8) | this.#oddByte;
      buf[this.#bufLen++] = v > 0x7fff ? v - 0x10000 : v;
      this.#oddByte = undefined;
      i = 1;
    }
    for (; i + 1 < pcm.length; i += 2) buf[this.#bufLen++] = pcm.readInt16LE(i);
    if (i < pcm.length) this.#oddByte = pcm[i] as number;
  }

  #appendSilence(n: number): void {
    this.#reserve(n);
    this.#buf.fill(0, this.#bufLen, this.#bufLen + n);
    this.#bufLen += n;
  }

  /** Every output whose kernel lies inside the input before absolute index `end`. */
  #drain(end: number): Buffer {
    const half = this.#half;
    const from = this.from;
    const to = this.to;
    // Outputs computable now: position + half < end.
    let count = 0;
    {
      let idx = this.#idx;
      let rem = this.#rem;
      while (idx + half < end) {
        count++;
        rem += from;
        idx += Math.floor(rem / to);
        rem %= to;
      }
    }
    // Int16Array: native byte order, little-endian on every platform Node runs on.
    const out = new Int16Array(count);
    const buf = this.#buf;
    const kernel = this.#kernel;
    const start = this.#bufStart;
    let idx = this.#idx;
    let rem = this.#rem;
    for (let o = 0; o < count; o++) {
      // The kernel's phase for this position (nearest of KERNEL_PHASES): taps left of (and at) the
      // position sit at distance frac + k, taps right of it at k + 1 − frac. The buffer always
      // holds `half` samples either side (see the count above and the trim below).
      const p = Math.round((rem * KERNEL_PHASES) / to);
      const centre = idx - start;
      let acc = 0;
      for (let k = 0, kp = 0; k < half; k++, kp += KERNEL_PHASES) {
        acc +=
          (buf[centre - k] as number) * (kernel[kp + p] as number) +
          (buf[centre + k + 1] as number) * (kernel[kp + KERNEL_PHASES - p] as number);
      }
      const v = Math.round(acc);
      out[o] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      rem += from;
      if (rem >= to) {
        idx += Math.floor(rem / to);
        rem %= to;
      }
    }
    this.#idx = idx;
    this.#rem = rem;
    // Keep only what later outputs reach back to: from `idx − half + 1` on.
    const keepFrom = Math.max(0, this.#idx - half + 1 - start);
    if (keepFrom > 0) {
      buf.copyWithin(0, keepFrom, this.#bufLen);
      this.#bufLen -= keepFrom;
      this.#bufStart += keepFrom;
    }
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }
}

/**
 * A stream of audio in one format turned into another: μ-law decoded, PCM resampled, μ-law
 * encoded, each only when needed (same formats: the bytes themselves, no copy). Stateful, one per
 * direction of a call leg.
 */
export class AudioConverter {
  readonly from: AudioFormat;
  readonly to: AudioFormat;
  readonly #resampler: Resampler | undefined;
  readonly #identity: boolean;
  /** linear16 → μ-law at the same rate: an odd byte waiting for its pair. */
  #oddByte: number | undefined;

  constructor(from: AudioFormat, to: AudioFormat) {
    this.from = from;
    this.to = to;
    this.#identity = sameAudioFormat(from, to);
    this.#resampler =
      from.sampleRate === to.sampleRate ? undefined : new Resampler(from.sampleRate, to.sampleRate);
  }

  /** True when nothing is converted (both formats the same). */
  get identity(): boolean {
    return this.#identity;
  }

  convert(chunk: Buffer): Buffer {
    if (this.#identity) return chunk;
    let pcm = this.from.encoding === "mulaw" ? mulawToLinear16(chunk) : chunk;
    if (this.#resampler) pcm = this.#resampler.push(pcm);
    else if (this.from.encoding === "linear16") pcm = this.#whole(pcm);
    return this.to.encoding === "mulaw" ? linear16ToMulaw(pcm) : pcm;
  }

  /** The end of the stream: what the resampler still holds. */
  flush(): Buffer {
    if (!this.#resampler) {
      this.#oddByte = undefined;
      return Buffer.alloc(0);
    }
    const pcm = this.#resampler.flush();
    return this.to.encoding === "mulaw" ? linear16ToMulaw(pcm) : pcm;
  }

  /** Drops what is held (barge-in). */
  reset(): void {
    this.#resampler?.reset();
    this.#oddByte = undefined;
  }

  /** Whole 16-bit samples only (PCM → μ-law at one rate), a split sample carried over. */
  #whole(pcm: Buffer): Buffer {
    let buf = pcm;
    if (this.#oddByte !== undefined) {
      buf = Buffer.concat([Buffer.of(this.#oddByte), pcm]);
      this.#oddByte = undefined;
    }
    if (buf.length % 2 === 1) {
      this.#oddByte = buf[buf.length - 1] as number;
      buf = buf.subarray(0, buf.length - 1);
    }
    return buf;
  }
}

/**
 * One frame in `format` as PCM 16 kHz, for consumers that want one format (live listen,
 * recordings). Stateless: each frame is resampled on its own (its edges see silence beyond them),
 * fine for monitoring; a stream that must be exact uses an `AudioConverter`.
 */
export function toPcm16k(frame: Buffer, format: AudioFormat): Buffer {
  if (sameAudioFormat(format, LINEAR16_16K)) return frame;
  const pcm = format.encoding === "mulaw" ? mulawToLinear16(frame) : frame;
  if (format.sampleRate === 16000) return pcm;
  const r = new Resampler(format.sampleRate, 16000);
  const all = Buffer.concat([r.push(pcm), r.flush()]);
  // The same duration at 16 kHz, in whole samples.
  const want = Math.round(((pcm.length >> 1) * 16000) / format.sampleRate) * 2;
  return all.length >= want ? all.subarray(0, want) : Buffer.concat([all, Buffer.alloc(want - all.length)]);
}

// ---------------------------------------------------------------- voice and silence

/** linear16 magnitude matching μ-law magnitude code 16 (|x| ≥ 132, about −48 dBFS): `hasVoice`. */
const PCM_VOICE_MAGNITUDE = 132;

/**
 * A quick look for voice in a frame (see providers/audio.ts `hasVoice`): μ-law 8 kHz reads every
 * 8th sample; linear16 reads one sample per ms of audio (the same 1 kHz look at any rate).
 */
export function hasVoice(frame: Buffer, format: AudioFormat): boolean {
  if (format.encoding === "mulaw") {
    if (format.sampleRate === 8000) return hasVoiceMulaw(frame);
    const step = Math.max(1, Math.round(format.sampleRate / 1000));
    for (let i = 0; i < frame.length; i += step) if ((~(frame[i] as number) & 0x7f) >= 16) return true;
    return false;
  }
  const step = Math.max(1, Math.round(format.sampleRate / 1000)) * 2;
  for (let i = 0; i + 1 < frame.length; i += step) {
    const v = frame.readInt16LE(i);
    if (v >= PCM_VOICE_MAGNITUDE || v <= -PCM_VOICE_MAGNITUDE) return true;
  }
  return false;
}

/**
 * True when the mean absolute amplitude is below `threshold` (linear, of 32767; default 150, about
 * −47 dBFS), in either encoding.
 */
export function isSilence(frame: Buffer, format: AudioFormat, threshold = 150): boolean {
  if (format.encoding === "mulaw") return isSilenceMulaw(frame, threshold);
  const n = frame.length >> 1;
  if (n === 0) return true;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = frame.readInt16LE(i * 2);
    sum += v < 0 ? -v : v;
  }
  return sum < threshold * n;
}
