// The caller's long silences go to the transcriber in 200 ms messages instead of 20 ms ones.
//
// Every message to the transcriber costs a websocket frame (header, mask, a write syscall) here and
// per-message work at the provider; at 50 frames a second per call it is the media process's busiest
// write. Deepgram takes 20–250 ms of audio per message. But the timing of silence is what
// endpointing and utterance-end decide on, so it may only be gathered once no such decision can
// still be pending: the session holds silent frames only once the transcriber has ended the
// caller's utterance (its utterance-end event), or, failing that, after the caller has been quiet
// for longer than the transcriber's endpointing and utterance-end windows (most of the time the
// assistant is talking). A voiced frame is never held: it goes at once, with whatever silence was
// gathered before it, so what the caller says reaches the transcriber exactly as soon as before.

/** Frames gathered into one message: 200 ms of audio, inside Deepgram's 20–250 ms guidance. */
export const SILENCE_BATCH_FRAMES = 10;

export class SilenceBatcher {
  /** Bytes of one 20 ms frame of the transcriber's format (μ-law 8 kHz: 160). */
  readonly #frameBytes: number;
  /** The message being gathered: frames are copied in, so no frame is kept alive meanwhile. */
  #buf: Buffer | undefined;
  #bytes = 0;
  #frames = 0;

  constructor(frameBytes = 160) {
    this.#frameBytes = frameBytes;
  }

  /** Bytes gathered and not yet sent. */
  get heldBytes(): number {
    return this.#bytes;
  }

  /** Keeps a silent frame; returns the batch to send once it holds SILENCE_BATCH_FRAMES frames. */
  hold(frame: Buffer): Buffer | undefined {
    this.#append(frame);
    return this.#frames >= SILENCE_BATCH_FRAMES ? this.#take() : undefined;
  }

  /**
   * What to send now for a frame that may not wait (voice, or silence the transcriber is timing):
   * the frame itself, after whatever was gathered before it, in one message.
   */
  release(frame: Buffer): Buffer {
    if (this.#frames === 0) return frame;
    this.#append(frame);
    return this.#take();
  }

  /** Whatever is gathered (before the transcriber closes); undefined when nothing is. */
  flush(): Buffer | undefined {
    return this.#frames === 0 ? undefined : this.#take();
  }

  #append(frame: Buffer): void {
    let buf = this.#buf;
    if (!buf) {
      buf = Buffer.allocUnsafe((SILENCE_BATCH_FRAMES + 1) * this.#frameBytes);
      this.#buf = buf;
    }
    if (this.#bytes + frame.length > buf.length) {
      // Frames larger than 20 ms (a resampler's output may vary by a sample): grow.
      const bigger = Buffer.allocUnsafe((this.#bytes + frame.length) * 2);
      buf.copy(bigger, 0, 0, this.#bytes);
      buf = bigger;
      this.#buf = buf;
    }
    frame.copy(buf, this.#bytes);
    this.#bytes += frame.length;
    this.#frames++;
  }

  /** The gathered bytes, handed over: the next batch starts in a fresh buffer. */
  #take(): Buffer {
    const out = (this.#buf as Buffer).subarray(0, this.#bytes);
    this.#buf = undefined;
    this.#bytes = 0;
    this.#frames = 0;
    return out;
  }
}
