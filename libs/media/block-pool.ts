// Fixed 16 KiB blocks shared by the calls of a media process, for audio a call keeps for a while
// (the caller's audio kept for a transcriber reconnect, a recording's audio waiting for its write):
// copied into reused blocks instead of buffers of its own that live long enough to be promoted,
// which made the collector's old generation churn (profiles of bench:media).

/** 16 KiB: a second of 8 kHz μ-law is 8 KB, of 16 kHz PCM 32 KB. */
export const BLOCK_BYTES = 16 * 1024;
/** Free blocks kept for reuse (8 MiB); beyond, a released block is left to the collector. */
const POOL_MAX = 512;
const pool: Buffer[] = [];

/** A block from the pool, or a new one. Its content is whatever it held before. */
export function takeBlock(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES);
}

/** Gives blocks back once nothing reads them any more. */
export function releaseBlocks(blocks: Iterable<Buffer>): void {
  for (const b of blocks) if (pool.length < POOL_MAX) pool.push(b);
}

/** Free blocks in the pool (tests). */
export function pooledBlocks(): number {
  return pool.length;
}
