import { open, rm, stat } from "node:fs/promises";
import { endianness } from "node:os";
import type { ObjectStore } from "../storage/index.ts";
import type { Track } from "./tracks.ts";
import { WAV_HEADER_BYTES, wavHeader } from "./wav.ts";

// From the spool to the store. A call is spooled as ONE stereo WAV (customer left, assistant
// right) written as the call runs; when it ends (or, for a call whose process died, when its call
// is swept) the header gets its final sizes, the three mono tracks are derived from it in one pass
// over the file (64 KB at a time), and the four files go to the store. Deriving at the end writes a
// quarter of the bytes while the call runs, and keeps one code path for a recording cut short.

const CHUNK = 64 * 1024;
const NATIVE_LE = endianness() === "LE";
const STEREO = 4;

function clamp(v: number): number {
  return Math.min(32767, Math.max(-32768, v));
}

/** Seconds of stereo audio a spool file holds (whole samples only). */
export async function spooledSeconds(file: string, sampleRate: number): Promise<number> {
  const s = await stat(file);
  return Math.floor(Math.max(0, s.size - WAV_HEADER_BYTES) / STEREO) / sampleRate;
}

/**
 * Finishes a spooled recording: final headers, the mono mix and each party's track derived, all
 * four stored under `keys`. The spool and the derived files are gone afterwards, stored or not.
 * Returns the seconds of audio.
 */
export async function storeSpool(
  spool: string,
  sampleRate: number,
  store: ObjectStore,
  keys: Record<Track, string>,
): Promise<number> {
  const outs: Record<"mono" | "customer" | "assistant", string> = {
    mono: `${spool}.mono`,
    customer: `${spool}.customer`,
    assistant: `${spool}.assistant`,
  };
  try {
    const fh = await open(spool, "r+");
    let dataBytes: number;
    try {
      const { size } = await fh.stat();
      dataBytes = Math.floor(Math.max(0, size - WAV_HEADER_BYTES) / STEREO) * STEREO;
      // A process that died mid-write can leave half a sample at the end.
      if (size !== WAV_HEADER_BYTES + dataBytes) await fh.truncate(WAV_HEADER_BYTES + dataBytes);
      await fh.write(wavHeader(dataBytes, { channels: 2, sampleRate }), 0, WAV_HEADER_BYTES, 0);
      await derive(fh, dataBytes, sampleRate, outs);
    } finally {
      await fh.close();
    }
    await store.putFile(keys.mono, outs.mono, "audio/wav");
    await store.putFile(keys.customer, outs.customer, "audio/wav");
    await store.putFile(keys.assistant, outs.assistant, "audio/wav");
    await store.putFile(keys.stereo, spool, "audio/wav");
    return dataBytes / STEREO / sampleRate;
  } finally {
    await Promise.all([spool, outs.mono, outs.customer, outs.assistant].map((f) => rm(f, { force: true })));
  }
}

async function derive(
  src: Awaited<ReturnType<typeof open>>,
  dataBytes: number,
  sampleRate: number,
  outs: Record<"mono" | "customer" | "assistant", string>,
): Promise<void> {
  const header = wavHeader(dataBytes / 2, { channels: 1, sampleRate });
  const [mono, customer, assistant] = await Promise.all([
    open(outs.mono, "w"),
    open(outs.customer, "w"),
    open(outs.assistant, "w"),
  ]);
  try {
    await Promise.all([mono.write(header), customer.write(header), assistant.write(header)]);
    // Buffers of their own (offset 0): read and written through Int16Arrays on a little-endian
    // machine (WAV's order), a sample at a time through Buffer's accessors elsewhere. Every call's
    // whole recording passes here when it ends: the accessors made it a visible share of the media
    // process's CPU.
    const inBuf = Buffer.allocUnsafeSlow(CHUNK);
    const m = Buffer.allocUnsafeSlow(CHUNK / 2);
    const c = Buffer.allocUnsafeSlow(CHUNK / 2);
    const a = Buffer.allocUnsafeSlow(CHUNK / 2);
    const view = (b: Buffer) => new Int16Array(b.buffer, b.byteOffset, b.length >> 1);
    const [in16, m16, c16, a16] = NATIVE_LE ? [view(inBuf), view(m), view(c), view(a)] : [];
    let pos = 0;
    while (pos < dataBytes) {
      const want = Math.min(CHUNK, dataBytes - pos);
      const { bytesRead } = await src.read(inBuf, 0, want, WAV_HEADER_BYTES + pos);
      if (bytesRead <= 0) break;
      const n = Math.floor(bytesRead / STEREO);
      // The parties rarely overlap: their sum is the line as the caller heard it, clipped at full scale.
      if (in16 && m16 && c16 && a16)
        for (let i = 0; i < n; i++) {
          const l = in16[2 * i] as number;
          const r = in16[2 * i + 1] as number;
          c16[i] = l;
          a16[i] = r;
          m16[i] = clamp(l + r);
        }
      else
        for (let i = 0; i < n; i++) {
          const l = inBuf.readInt16LE(i * STEREO);
          const r = inBuf.readInt16LE(i * STEREO + 2);
          c.writeInt16LE(l, i * 2);
          a.writeInt16LE(r, i * 2);
          m.writeInt16LE(clamp(l + r), i * 2);
        }
      await Promise.all([mono.write(m, 0, n * 2), customer.write(c, 0, n * 2), assistant.write(a, 0, n * 2)]);
      pos += n * STEREO;
    }
  } finally {
    await Promise.all([mono.close(), customer.close(), assistant.close()]);
  }
}
