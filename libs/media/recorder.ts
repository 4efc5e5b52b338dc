import type { FileHandle } from "node:fs/promises";
import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import { WAV_HEADER_BYTES, wavHeader } from "../recordings/index.ts";
import type { AudioFormat } from "./audio-format.ts";
import { BLOCK_BYTES, releaseBlocks, takeBlock } from "./block-pool.ts";
import { DELAY_MS, StereoMix } from "./monitor/stereo-mix.ts";
import type { AudioTap } from "./session/audio-tap.ts";

// A call's recording as it runs: a consumer of the session's audio tap that lays both parties on
// one time line exactly as live listen does (StereoMix: the caller as received, the assistant as
// the far end plays it, cut where a barge-in's clear cut it, silence where nobody speaks) at the
// call's own rate, and appends it to a stereo WAV spool on local disk about once a second. What a
// call holds in memory: the mix's 2 s ring and up to a second or two of audio waiting for its write
// (≈ 0.1–0.2 MB at 8 kHz). Everything flushed is on disk if the process dies; the spool is stored as
// the call's stereo track when the call ends (libs/recordings/spool.ts), and the other three are
// derived from it as they are downloaded (libs/recordings/derive.ts).

/** How often the mix is taken (at a tap event at least this long after the last take). */
const TAKE_MS = 200;
/** Audio gathered before a write. */
const FLUSH_MS = 1000;
/** Audio allowed to wait while a write is slow; beyond, the recording fails (the call goes on). */
const MAX_PENDING_MS = 10_000;
/** A stretch this long without an audio event is caught up before the next (see #catchUp). */
const GAP_MS = 1000;
/** How far ahead of its send time the pacer's audio may be laid (its lead, with room). */
const LEAD_MS = 100;

/** The rate a call is recorded at: its caller's (μ-law is 8 kHz), 8-48 kHz. */
export function recordingRate(caller: AudioFormat): number {
  const rate = caller.encoding === "linear16" ? caller.sampleRate : 8000;
  return Math.min(48_000, Math.max(8000, Math.round(rate / 1000) * 1000));
}

export type RecorderOutcome = { ok: true; sampleRate: number } | { ok: false; error: string };

export class CallRecorder implements AudioTap {
  readonly file: string;
  readonly sampleRate: number;
  readonly #mix: StereoMix;
  readonly #origin: number;
  readonly #perMs: number;
  /** Stereo samples laid in the file so far (written or pending). */
  #samples = 0;
  readonly #flushBytes: number;
  readonly #maxPendingBytes: number;
  #fh: Promise<FileHandle>;
  /** Audio laid and not yet written: these blocks end to end, the last filled to `#pendingBytes`. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #lastTakeAt: number;
  #lastEventAt: number;
  #position = WAV_HEADER_BYTES;
  #writing: Promise<void> | undefined;
  #error: string | undefined;
  #stopped = false;

  /** `origin`: the wall time of the recording's sample 0 (the call's start: messages' times line up). */
  constructor(file: string, sampleRate: number, origin: number) {
    this.file = file;
    this.sampleRate = sampleRate;
    this.#mix = new StereoMix(origin, sampleRate);
    this.#origin = origin;
    this.#perMs = sampleRate / 1000;
    this.#lastTakeAt = origin;
    this.#lastEventAt = origin;
    const bytesPerMs = (sampleRate / 1000) * 4;
    this.#flushBytes = FLUSH_MS * bytesPerMs;
    this.#maxPendingBytes = MAX_PENDING_MS * bytesPerMs;
    this.#fh = this.#open();
    // Seen by finish(); never an unhandled rejection meanwhile.
    this.#fh.catch((err: unknown) => this.#fail(err));
  }

  async #open(): Promise<FileHandle> {
    let fh: FileHandle;
    try {
      fh = await open(this.file, "w");
    } catch (err) {
      // The spool directory is made by the first call that needs it, not looked up by every call.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      await mkdir(path.dirname(this.file), { recursive: true });
      fh = await open(this.file, "w");
    }
    // Sizes unknown yet (0): fixed when the call ends, or when a dead process's call is swept.
    await fh.write(wavHeader(0, { channels: 2, sampleRate: this.sampleRate }), 0, WAV_HEADER_BYTES, 0);
    return fh;
  }

  /** Why the recording failed, once it has. */
  get error(): string | undefined {
    return this.#error;
  }

  callerAudio(audio: Buffer, format: AudioFormat, at: number): void {
    if (this.#stopped) return;
    this.#catchUp(at);
    this.#mix.callerAudio(audio, format, at);
    if (at - this.#lastTakeAt >= TAKE_MS) this.#take(at);
  }

  assistantAudio(audio: Buffer, format: AudioFormat, at: number): void {
    if (this.#stopped) return;
    this.#catchUp(at);
    this.#mix.assistantAudio(audio, format, at);
    if (at - this.#lastTakeAt >= TAKE_MS) this.#take(at);
  }

  clear(at: number): void {
    if (!this.#stopped) this.#mix.clear(at);
  }

  /**
   * After a stretch with no audio event (a muted web client, the call's setup), before anything new
   * is laid: what was laid before the stretch is taken first (the mix would drop it, as it does for
   * a stalled listener, once it is more than its 2 s behind), then the mix moves to now over the
   * silence, which #lay writes back as silence.
   */
  #catchUp(at: number): void {
    const last = this.#lastEventAt;
    this.#lastEventAt = at;
    if (at - last <= GAP_MS) return;
    this.#lay(last + DELAY_MS + LEAD_MS);
    this.#take(at);
  }

  #take(at: number): void {
    this.#lastTakeAt = at;
    this.#lay(at);
    if (this.#pendingBytes >= this.#flushBytes) this.#flush();
  }

  /**
   * Queues what the mix emits up to `at` − its delay. The mix holds 2 s: past that (the call's
   * setup before the recording starts, or a stretch with no audio event at all) it drops its
   * oldest samples, which were silence; they are laid back as silence so the file keeps time.
   */
  #lay(at: number): void {
    const n = this.#mix.due(at);
    if (n === 0) return;
    if (this.#error) {
      this.#mix.drain(at, () => {});
      return;
    }
    const end = Math.floor((at - this.#origin) * this.#perMs) - DELAY_MS * this.#perMs;
    const gap = (end - n - this.#samples) * 4;
    if (gap > 0) this.#append(undefined, gap);
    this.#mix.drain(at, (view) => this.#append(view, view.length));
    this.#samples = Math.max(this.#samples, end);
  }

  /** Copies `bytes` of `src` (silence when undefined) after what is pending. */
  #append(src: Buffer | undefined, bytes: number): void {
    let done = 0;
    while (done < bytes) {
      const offset = this.#pendingBytes % BLOCK_BYTES;
      if (offset === 0) this.#pending.push(takeBlock());
      const block = this.#pending[this.#pending.length - 1] as Buffer;
      const n = Math.min(bytes - done, BLOCK_BYTES - offset);
      if (src) src.copy(block, offset, done, done + n);
      else block.fill(0, offset, offset + n);
      done += n;
      this.#pendingBytes += n;
    }
  }

  /** Starts writing what is pending, unless a write is under way (then it waits for the next). */
  #flush(): void {
    if (this.#writing || this.#pendingBytes === 0 || this.#error) {
      if (this.#pendingBytes > this.#maxPendingBytes) this.#fail(new Error("the disk did not keep up"));
      return;
    }
    const blocks = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    // Whole blocks, the last one as far as it is filled.
    const tail = bytes - (blocks.length - 1) * BLOCK_BYTES;
    const data = blocks.map((b, i) => (i === blocks.length - 1 ? b.subarray(0, tail) : b));
    const at = this.#position;
    this.#position += bytes;
    this.#writing = this.#fh
      .then((fh) => fh.writev(data, at))
      .then(
        () => {
          releaseBlocks(blocks);
          this.#writing = undefined;
          if (this.#pendingBytes >= this.#flushBytes) this.#flush();
        },
        (err: unknown) => {
          this.#writing = undefined;
          this.#fail(err);
        },
      );
  }

  #fail(err: unknown): void {
    if (this.#error) return;
    this.#error = err instanceof Error ? err.message : String(err);
    releaseBlocks(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** Stops at `at` (the call's end): the rest of the mix is written and the spool closed. */
  async finish(at: number): Promise<RecorderOutcome> {
    if (!this.#stopped) {
      this.#stopped = true;
      // Everything up to the end: the mix emits DELAY_MS behind the time it is given.
      this.#lay(at + DELAY_MS);
    }
    while (this.#writing) await this.#writing;
    this.#flush();
    while (this.#writing) await this.#writing;
    try {
      await (await this.#fh).close();
    } catch (err) {
      this.#fail(err);
    }
    return this.#error ? { ok: false, error: this.#error } : { ok: true, sampleRate: this.sampleRate };
  }

  /** Stops and removes the spool (a call that never got going). */
  async discard(): Promise<void> {
    this.#stopped = true;
    releaseBlocks(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    while (this.#writing) await this.#writing;
    try {
      await (await this.#fh).close();
    } catch {
      // never opened
    }
    await rm(this.file, { force: true });
  }
}
