import { open, rm } from "node:fs/promises";
import type { ObjectStore } from "../storage/index.ts";
import { WAV_HEADER_BYTES, wavHeader } from "./wav.ts";

// From the spool to the store. A call is spooled as ONE stereo WAV (customer left, assistant
// right) written as the call runs; when it ends (or, for a call whose process died, when its call
// is swept) the header gets its final sizes and the file goes to the store as the call's stereo
// track. The mono, customer and assistant tracks are derived from it when they are read
// (derive.ts), off the media plane: the media process writes and moves (or uploads) one file.

const STEREO = 4;

/**
 * Finishes a spooled recording: its final header, stored under `key`. The spool is gone afterwards,
 * stored or not, unless `keepOnFailure` (a dead call's spool, tried again later). Returns the seconds
 * of audio.
 */
export async function storeSpool(
  spool: string,
  sampleRate: number,
  store: ObjectStore,
  key: string,
  keepOnFailure = false,
): Promise<number> {
  let stored = false;
  try {
    const fh = await open(spool, "r+");
    let dataBytes: number;
    try {
      const { size } = await fh.stat();
      dataBytes = Math.floor(Math.max(0, size - WAV_HEADER_BYTES) / STEREO) * STEREO;
      // A process that died mid-write can leave half a sample at the end.
      if (size !== WAV_HEADER_BYTES + dataBytes) await fh.truncate(WAV_HEADER_BYTES + dataBytes);
      await fh.write(wavHeader(dataBytes, { channels: 2, sampleRate }), 0, WAV_HEADER_BYTES, 0);
    } finally {
      await fh.close();
    }
    await store.putFile(key, spool, "audio/wav");
    stored = true;
    return dataBytes / STEREO / sampleRate;
  } finally {
    if (stored || !keepOnFailure) await rm(spool, { force: true });
  }
}
