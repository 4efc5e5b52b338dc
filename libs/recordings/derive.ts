import { endianness } from "node:os";
import { Readable } from "node:stream";

// The mono, customer and assistant tracks of a recording, derived from its stereo WAV as they are
// read (customer left, assistant right; mono their sum, clipped at full scale: the parties rarely
// overlap, so it is the line as the caller heard it). Only the stereo WAV is stored: deriving the
// three tracks and storing four files when every call ended was the larger part of what recording
// cost the media process. A read streams the stereo object's matching bytes through here, a chunk
// at a time, so nothing is held in memory whatever the recording's length, and any byte range of a
// derived track maps onto a range of the stereo one (Range requests, seeking in an <audio>).

export type DerivedTrack = "mono" | "customer" | "assistant";

const STEREO = 4;
const NATIVE_LE = endianness() === "LE";

/** Data bytes of a derived track whose stereo recording holds `stereoDataBytes` (whole samples). */
export function derivedDataBytes(stereoDataBytes: number): number {
  return Math.floor(Math.max(0, stereoDataBytes) / STEREO) * 2;
}

/** The stereo data bytes [start, end] that hold a derived track's data bytes [from, to] (inclusive). */
export function stereoRangeOf(from: number, to: number): { start: number; end: number } {
  return { start: (from >> 1) * STEREO, end: (to >> 1) * STEREO + STEREO - 1 };
}

function clamp(v: number): number {
  return Math.min(32767, Math.max(-32768, v));
}

/** One channel, or their sum, of `n` whole stereo samples of `src` from byte `at`, into `out`. */
function deriveSamples(track: DerivedTrack, src: Buffer, at: number, n: number, out: Buffer): void {
  // Views when both are aligned on a sample on a little-endian machine (WAV's order); Buffer's
  // accessors otherwise (a chunk of a stream may start at any byte).
  const aligned = NATIVE_LE && ((src.byteOffset + at) & 1) === 0 && (out.byteOffset & 1) === 0;
  if (aligned) {
    const s16 = new Int16Array(src.buffer, src.byteOffset + at, n * 2);
    const o16 = new Int16Array(out.buffer, out.byteOffset, n);
    if (track === "customer") for (let i = 0; i < n; i++) o16[i] = s16[2 * i] as number;
    else if (track === "assistant") for (let i = 0; i < n; i++) o16[i] = s16[2 * i + 1] as number;
    else for (let i = 0; i < n; i++) o16[i] = clamp((s16[2 * i] as number) + (s16[2 * i + 1] as number));
    return;
  }
  for (let i = 0; i < n; i++) {
    const l = src.readInt16LE(at + i * STEREO);
    const r = src.readInt16LE(at + i * STEREO + 2);
    out.writeInt16LE(track === "customer" ? l : track === "assistant" ? r : clamp(l + r), i * 2);
  }
}

/**
 * A derived track's data bytes from `stereo`, the stereo data from a whole sample on (what
 * stereoRangeOf gave): the first `skip` bytes dropped (a range starting on a sample's second
 * byte), `length` bytes in all.
 */
export function deriveTrack(
  stereo: AsyncIterable<Buffer | Uint8Array>,
  track: DerivedTrack,
  skip: number,
  length: number,
): Readable {
  return Readable.from(
    (async function* () {
      // A sample split between two chunks of the stream waits here for its other bytes.
      const carry = Buffer.alloc(STEREO);
      let carried = 0;
      let toSkip = skip;
      let left = length;
      for await (const raw of stereo) {
        if (left <= 0) break;
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
        let at = 0;
        if (carried > 0) {
          const take = Math.min(STEREO - carried, chunk.length);
          chunk.copy(carry, carried, 0, take);
          carried += take;
          at = take;
          if (carried < STEREO) continue;
          carried = 0;
        }
        const n = Math.floor((chunk.length - at) / STEREO);
        const head = at > 0 ? 1 : 0;
        const out = Buffer.allocUnsafe((n + head) * 2);
        if (head) deriveSamples(track, carry, 0, 1, out);
        deriveSamples(track, chunk, at, n, out.subarray(head * 2));
        const rest = chunk.length - at - n * STEREO;
        if (rest > 0) {
          chunk.copy(carry, 0, chunk.length - rest);
          carried = rest;
        }
        let piece = out;
        if (toSkip > 0) {
          const s = Math.min(toSkip, piece.length);
          piece = piece.subarray(s);
          toSkip -= s;
        }
        if (piece.length > left) piece = piece.subarray(0, left);
        left -= piece.length;
        if (piece.length > 0) yield piece;
      }
    })(),
  );
}
