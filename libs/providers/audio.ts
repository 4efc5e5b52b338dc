// μ-law 8 kHz helpers for the Twilio leg: 1 byte per sample, 8 bytes per ms, 160 bytes per 20 ms.

export const MULAW_SILENCE = 0xff;
export const BYTES_PER_MS = 8;
export const FRAME_MS = 20;
export const FRAME_BYTES = FRAME_MS * BYTES_PER_MS;

/** G.711 μ-law byte → 16-bit linear sample. */
export const MULAW_TO_LINEAR: Int16Array = (() => {
  const table = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    table[i] = u & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

/** Audio length of `bytes` of μ-law 8 kHz, in ms. */
export function durationMs(bytes: number): number {
  return bytes / BYTES_PER_MS;
}

/**
 * True when the mean absolute amplitude is below `threshold` (linear, of 32767). The default 150
 * (≈ −47 dBFS) sits above line noise and well below speech.
 */
export function isSilence(frame: Uint8Array, threshold = 150): boolean {
  const n = frame.length;
  if (n === 0) return true;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = MULAW_TO_LINEAR[frame[i] as number] as number;
    sum += v < 0 ? -v : v;
  }
  return sum < threshold * n;
}

/**
 * A quick look for voice in a frame: any of every 8th sample at μ-law magnitude code ≥ 16 (|x| ≥ 132,
 * about −48 dBFS). An eighth of the work of `isSilence`, on every frame of every call: it times the
 * caller's last voiced frame, decides which silence may be gathered for the transcriber, and spares
 * barge-in's `isSilence` pass on frames without voice. Reading every 8th sample (a 1 kHz sampling)
 * misses only a pure tone at an exact multiple of 500 Hz held with its zero crossings on the sampled
 * points; speech and real tones do not hold such a phase (test/providers/audio.test.ts).
 */
export function hasVoice(frame: Uint8Array): boolean {
  for (let i = 0; i < frame.length; i += 8) if ((~(frame[i] as number) & 0x7f) >= 16) return true;
  return false;
}

/** A frame of silence, for padding. Shared; do not mutate. */
export const SILENCE_FRAME: Buffer = Buffer.alloc(FRAME_BYTES, MULAW_SILENCE);

/**
 * Cuts a stream of μ-law chunks of any size (TTS output) into 20 ms frames for a pacer. Whole
 * frames are zero-copy views of the input; only a frame that straddles two chunks is copied. The
 * remainder waits for the next `push`.
 */
export class FrameSplitter {
  #carry: Buffer = Buffer.allocUnsafe(FRAME_BYTES);
  #carryLen = 0;

  /** Bytes waiting for the rest of their frame. */
  get pendingBytes(): number {
    return this.#carryLen;
  }

  /** Calls `onFrame` for every complete frame, in order. */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let off = 0;
    if (this.#carryLen > 0) {
      const need = FRAME_BYTES - this.#carryLen;
      const take = Math.min(need, chunk.length);
      chunk.copy(this.#carry, this.#carryLen, 0, take);
      this.#carryLen += take;
      off = take;
      if (this.#carryLen < FRAME_BYTES) return;
      const frame = this.#carry;
      // The pacer may still hold this frame; the next remainder needs its own buffer.
      this.#carry = Buffer.allocUnsafe(FRAME_BYTES);
      this.#carryLen = 0;
      onFrame(frame);
    }
    const end = chunk.length;
    while (end - off >= FRAME_BYTES) {
      onFrame(chunk.subarray(off, off + FRAME_BYTES));
      off += FRAME_BYTES;
    }
    if (off < end) {
      chunk.copy(this.#carry, 0, off, end);
      this.#carryLen = end - off;
    }
  }

  /** The last partial frame padded with silence (end of an utterance), or undefined. */
  flush(): Buffer | undefined {
    if (this.#carryLen === 0) return undefined;
    const frame = this.#carry;
    frame.fill(MULAW_SILENCE, this.#carryLen);
    this.#carry = Buffer.allocUnsafe(FRAME_BYTES);
    this.#carryLen = 0;
    return frame;
  }

  /** Drop the remainder (barge-in). */
  reset(): void {
    this.#carryLen = 0;
  }
}

/**
 * Splits `buf` into 20 ms frames. Pass a `FrameSplitter` to carry a remainder across calls;
 * without one, a trailing partial frame is padded with silence.
 */
export function frames20ms(buf: Buffer, splitter?: FrameSplitter): Buffer[] {
  const frames: Buffer[] = [];
  const push = (f: Buffer): void => {
    frames.push(f);
  };
  if (splitter) {
    splitter.push(buf, push);
    return frames;
  }
  const own = new FrameSplitter();
  own.push(buf, push);
  const last = own.flush();
  if (last) frames.push(last);
  return frames;
}
