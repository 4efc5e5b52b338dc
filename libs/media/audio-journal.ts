// The caller's audio since the transcriber's last final, kept so that a reconnected transcriber
// can be sent it again (libs/media/session/caller-input.ts): appended 50 times a second per call,
// dropped from the front at each final, read back only on a reconnect.
//
// Frames are COPIED into fixed chunks shared through a process-wide pool, not kept by reference:
// a frame from a websocket is often a view into the socket's whole read buffer, so keeping it kept
// that buffer alive for up to RESEND_MAX_MS, and a process with a hundred calls kept tens of
// thousands of them, each surviving a few scavenges into the old generation: the collector's
// largest share of a media process's CPU (profiles of bench:media). A chunk goes back to the pool
// when its audio is dropped, so a call's journal makes no garbage at all.

import { BLOCK_BYTES, pooledBlocks, releaseBlocks, takeBlock } from "./block-pool.ts";

/** The journal's chunks are the process's shared blocks (libs/media/block-pool.ts). */
export const JOURNAL_CHUNK_BYTES = BLOCK_BYTES;

/** Free chunks in the pool (tests). */
export const journalPoolSize = pooledBlocks;

export class AudioJournal {
  /** The audio is bytes [#head, #head + #bytes) of these chunks laid end to end. */
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  append(frame: Buffer): void {
    let from = 0;
    while (from < frame.length) {
      const at = this.#head + this.#bytes;
      const index = Math.floor(at / JOURNAL_CHUNK_BYTES);
      if (index === this.#chunks.length) this.#chunks.push(takeBlock());
      const offset = at - index * JOURNAL_CHUNK_BYTES;
      const n = Math.min(frame.length - from, JOURNAL_CHUNK_BYTES - offset);
      frame.copy(this.#chunks[index] as Buffer, offset, from, from + n);
      from += n;
      this.#bytes += n;
    }
  }

  /** Forgets the oldest `n` bytes (all of them, if fewer are held). */
  drop(n: number): void {
    if (n <= 0) return;
    if (n >= this.#bytes) {
      this.clear();
      return;
    }
    this.#head += n;
    this.#bytes -= n;
    const whole = Math.floor(this.#head / JOURNAL_CHUNK_BYTES);
    if (whole === 0) return;
    this.#head -= whole * JOURNAL_CHUNK_BYTES;
    releaseBlocks(this.#chunks.splice(0, whole));
  }

  /** Keeps the newest `max` bytes at most. */
  trimTo(max: number): void {
    if (this.#bytes > max) this.drop(this.#bytes - max);
  }

  /**
   * What is held, oldest first, in copies of at most `most` bytes each (a reconnect's messages:
   * a transcriber may keep a message it was given, and the chunks are reused).
   */
  read(most: number): Buffer[] {
    const out: Buffer[] = [];
    const size = Math.max(1, most);
    for (let pos = 0; pos < this.#bytes; pos += size)
      out.push(this.#copy(pos, Math.min(size, this.#bytes - pos)));
    return out;
  }

  #copy(pos: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const at = this.#head + pos + done;
      const index = Math.floor(at / JOURNAL_CHUNK_BYTES);
      const offset = at - index * JOURNAL_CHUNK_BYTES;
      const n = Math.min(length - done, JOURNAL_CHUNK_BYTES - offset);
      (this.#chunks[index] as Buffer).copy(out, done, offset, offset + n);
      done += n;
    }
    return out;
  }

  /** Forgets everything; the chunks go back to the pool. */
  clear(): void {
    releaseBlocks(this.#chunks);
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
