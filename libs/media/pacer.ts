import { type AudioFormat, frameBytes, MULAW_8K } from "./audio-format.ts";
import type { AudioTap } from "./session/audio-tap.ts";

// Outbound audio to the caller, paced in 20 ms frames of the call's format off ONE timer shared by
// every call in the process. The far end (Twilio, a browser) buffers what we send and plays it in
// order, so pacing is what keeps `clear` effective: only a few frames of lead sit in its buffer when
// the caller barges in.

export const FRAME_MS = 20;
/** A 20 ms frame of μ-law 8 kHz (Twilio's); other formats: `frameBytes(format)`. */
export const FRAME_BYTES = 160;
/** Frames sent ahead of real time: absorbs timer jitter without making `clear` slow. */
const LEAD_FRAMES = 3;
/**
 * The shared timer runs at half the frame period. Each call's schedule starts whenever its audio
 * arrives, so a 20 ms tick would send a due frame up to 20 ms after its due time (timer phase) before
 * any event-loop lag, leaving little of the lead for a stall; at 10 ms the phase costs at most 10 ms.
 * Frames per call are unchanged (a tick sends only what is due); a tick with nothing due is a loop
 * over the active calls.
 */
const TICK_MS = FRAME_MS / 2;

/** Where frames and marks go (the call's transport). */
export interface OutboundSink {
  /**
   * One frame of audio in the call's format (the last of an utterance may be short). The sink may
   * keep it (a websocket sends it later without copying): the pacer never writes to it again.
   */
  sendMedia(frame: Buffer): void;
  sendMark(name: string): void;
}

type Item = { audio: Buffer; off: number } | { mark: string };

/** A frame sent more than this behind its place in the utterance's schedule is late. */
export const LATE_FRAME_MS = 40;

/** Pacing health of a process (all calls): what `npm run bench:media` reports as late frames. */
export interface PacingStats {
  framesSent: number;
  /** Frames sent more than LATE_FRAME_MS after their due time (an audible gap at the caller). */
  lateFrames: number;
  maxLateMs: number;
}

export function emptyPacingStats(): PacingStats {
  return { framesSent: 0, lateFrames: 0, maxLateMs: 0 };
}

/** One call's outbound queue. The pacer drains it; the session fills it and clears it on barge-in. */
export class OutboundAudio {
  readonly #sink: OutboundSink;
  readonly #items: Item[] = [];
  #head = 0;
  #format: AudioFormat = MULAW_8K;
  #frameBytes = FRAME_BYTES;
  #playStartAt = 0;
  #framesSent = 0;
  /** Frames really emitted since the schedule started (#framesSent also counts skipped slots). */
  #emitted = 0;
  #queuedBytes = 0;
  /** Bytes handed to Twilio since the call started. */
  bytesSent = 0;
  /** Wall time of the first frame sent since the last idle period (for voice latency). */
  onFirstFrame: ((at: number) => void) | undefined;
  /** Audio may not start before this wall time (startSpeakingPlan.waitSeconds, backoff). */
  notBefore = 0;
  /** Where late frames are counted (the shared pacer's, once added to it). */
  stats: PacingStats = emptyPacingStats();
  /** Who taps the call's audio (live listeners): every frame sent, and each clear. */
  tap: AudioTap | undefined;
  /** The latest time the pacer was given: a clear is timed by it (within a tick of the truth). */
  #lastNow = 0;

  constructor(sink: OutboundSink, format: AudioFormat = MULAW_8K) {
    this.#sink = sink;
    this.format = format;
  }

  /** The call's outbound audio format: what is queued, and what frames are cut in. */
  get format(): AudioFormat {
    return this.#format;
  }

  /** Set once the call's format is known (its row is claimed), before any audio is queued. */
  set format(format: AudioFormat) {
    this.#format = format;
    this.#frameBytes = frameBytes(format);
  }

  get idle(): boolean {
    return this.#head >= this.#items.length;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  enqueueAudio(audio: Buffer, now: number): void {
    this.#lastNow = now;
    if (audio.length === 0) return;
    const wasIdle = this.idle;
    this.#items.push({ audio, off: 0 });
    this.#queuedBytes += audio.length;
    if (wasIdle) {
      // Start a fresh schedule and send the lead frames now: the first audio of a reply never
      // waits for the next tick.
      this.#playStartAt = Math.max(now, this.notBefore);
      this.#framesSent = 0;
      this.#emitted = 0;
      this.pump(now);
    }
  }

  enqueueMark(name: string, now: number): void {
    const wasIdle = this.idle;
    this.#items.push({ mark: name });
    if (wasIdle) this.pump(now);
  }

  /** Drops everything not yet sent; returns the number of audio bytes dropped. */
  clear(): number {
    if (this.tap) this.tap.clear(this.#lastNow);
    const dropped = this.#queuedBytes;
    this.#items.length = 0;
    this.#head = 0;
    this.#queuedBytes = 0;
    return dropped;
  }

  /** Sends every frame (and mark) due by `now`. Called by the shared pacer every tick. */
  pump(now: number): void {
    this.#lastNow = now;
    if (this.idle || now < this.#playStartAt) return;
    const due = Math.floor((now - this.#playStartAt) / FRAME_MS) + 1 + LEAD_FRAMES;
    let budget = due - this.#framesSent;
    // A long stall (GC, debugger) must not turn into a burst Twilio would buffer.
    if (budget > LEAD_FRAMES * 4) {
      this.#framesSent = due - LEAD_FRAMES * 4;
      budget = LEAD_FRAMES * 4;
    }
    const size = this.#frameBytes;
    while (budget > 0 && this.#head < this.#items.length) {
      const item = this.#items[this.#head] as Item;
      if ("mark" in item) {
        this.#head++;
        this.#sink.sendMark(item.mark);
        continue;
      }
      const left = item.audio.length - item.off;
      if (left >= size) {
        // A view, not a copy: queued audio is never written to.
        this.#emit(item.audio.subarray(item.off, item.off + size), now);
        item.off += size;
        if (item.off >= item.audio.length) this.#head++;
        budget--;
        continue;
      }
      // Tail of a chunk: fill one frame from the following chunks (or send it short at the end),
      // in a buffer of its own (the only copy on this path; a sink may still hold the previous one).
      const partial = Buffer.allocUnsafe(size);
      let filled = 0;
      let idx = this.#head;
      while (filled < size && idx < this.#items.length) {
        const it = this.#items[idx] as Item;
        if ("mark" in it) break;
        const take = Math.min(size - filled, it.audio.length - it.off);
        it.audio.copy(partial, filled, it.off, it.off + take);
        it.off += take;
        filled += take;
        if (it.off >= it.audio.length) idx++;
      }
      this.#head = idx;
      this.#emit(filled === size ? partial : partial.subarray(0, filled), now);
      budget--;
    }
    // Marks right after the last frame go out with it (Twilio echoes them when that audio has played).
    while (this.#head < this.#items.length) {
      const item = this.#items[this.#head] as Item;
      if (!("mark" in item)) break;
      this.#head++;
      this.#sink.sendMark(item.mark);
    }
    if (this.idle) {
      this.#items.length = 0;
      this.#head = 0;
    }
  }

  #emit(frame: Buffer, now: number): void {
    const bytes = frame.length;
    if (this.#framesSent === 0 && this.onFirstFrame) this.onFirstFrame(now);
    // Late against the schedule the caller hears: frame k of an utterance plays at
    // start + (k − lead) × 20 ms, whatever slots a stall made the pacer skip.
    const lateBy = now - (this.#playStartAt + Math.max(0, this.#emitted - LEAD_FRAMES) * FRAME_MS);
    const stats = this.stats;
    stats.framesSent++;
    if (lateBy > LATE_FRAME_MS) {
      stats.lateFrames++;
      if (lateBy > stats.maxLateMs) stats.maxLateMs = lateBy;
    }
    this.#emitted++;
    this.#framesSent++;
    this.#queuedBytes -= bytes;
    this.bytesSent += bytes;
    if (this.tap) this.tap.assistantAudio(frame, this.#format, now);
    this.#sink.sendMedia(frame);
  }
}

/**
 * The one pacing timer of the process: every tick, each call sends the frames that are due.
 *
 * A timer only fires between I/O batches: when many calls' inbound messages arrive together (a
 * burst from the network, or the process catching up after the scheduler or a collection held it)
 * the whole batch is handled first and outbound frames wait behind it. So the busiest inbound path
 * (Twilio media frames, 50 per second per call) also `poke`s the pacer, which runs a tick in line
 * whenever one is due: outbound audio keeps its schedule through a burst at the cost of one clock
 * read per inbound frame.
 */
export class SharedPacer {
  readonly #active = new Set<OutboundAudio>();
  #timer: NodeJS.Timeout | undefined;
  #lastTickAt = 0;
  readonly #now: () => number;
  /** Every frame this process sent, and how many were late (read by the benchmark). */
  readonly stats: PacingStats = emptyPacingStats();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(out: OutboundAudio): void {
    out.stats = this.stats;
    this.#active.add(out);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.tick(), TICK_MS);
      this.#timer.unref();
    }
  }

  remove(out: OutboundAudio): void {
    this.#active.delete(out);
    if (this.#active.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  tick(): void {
    const now = this.#now();
    this.#lastTickAt = now;
    for (const out of this.#active) {
      if (!out.idle) out.pump(now);
    }
  }

  /** Runs a tick now if one is due (see the class comment); cheap when none is. */
  poke(): void {
    if (this.#active.size > 0 && this.#now() - this.#lastTickAt >= TICK_MS) this.tick();
  }

  get size(): number {
    return this.#active.size;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#active.clear();
  }
}
