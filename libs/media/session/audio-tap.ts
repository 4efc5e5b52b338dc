import type { AudioFormat } from "../../providers/types.ts";

// The call's audio as it happens, for whoever wants it while the call runs: live listeners today
// (libs/media/monitor), a recording next. The session reports the caller's audio as received and
// the assistant's as the pacer sends it to the caller (what they were sent, not what TTS made:
// a barge-in cuts it where the caller stopped hearing it), each with its format and the wall time.
// Nobody tapping costs one null check per frame: `AudioTaps.active` is undefined then.

/** One consumer of a call's audio. The buffers are only valid during the call: copy what you keep. */
export interface AudioTap {
  /** Caller audio as received from the transport, at wall time `at` (ms). */
  callerAudio(audio: Buffer, format: AudioFormat, at: number): void;
  /** Assistant audio as sent to the caller (one paced frame), at wall time `at`. */
  assistantAudio(audio: Buffer, format: AudioFormat, at: number): void;
  /** Assistant audio sent but not yet played was dropped at the far end (barge-in), at `at`. */
  clear(at: number): void;
}

/** Several consumers as one. */
class FanOut implements AudioTap {
  readonly #taps: AudioTap[];
  constructor(taps: AudioTap[]) {
    this.#taps = taps;
  }
  callerAudio(audio: Buffer, format: AudioFormat, at: number): void {
    for (const t of this.#taps) t.callerAudio(audio, format, at);
  }
  assistantAudio(audio: Buffer, format: AudioFormat, at: number): void {
    for (const t of this.#taps) t.assistantAudio(audio, format, at);
  }
  clear(at: number): void {
    for (const t of this.#taps) t.clear(at);
  }
}

/** A call's audio consumers: what the session calls is `active`, undefined while there are none. */
export class AudioTaps {
  readonly #taps = new Set<AudioTap>();
  readonly #onChange: (active: AudioTap | undefined) => void;
  active: AudioTap | undefined;

  /** `onChange`: the session hands the new `active` to the parts that hold it (the pacer's queue). */
  constructor(onChange: (active: AudioTap | undefined) => void = () => {}) {
    this.#onChange = onChange;
  }

  get size(): number {
    return this.#taps.size;
  }

  /** Starts feeding `tap`; returns what stops it. */
  add(tap: AudioTap): () => void {
    this.#taps.add(tap);
    this.#update();
    return () => {
      if (this.#taps.delete(tap)) this.#update();
    };
  }

  #update(): void {
    const taps = [...this.#taps];
    this.active = taps.length === 0 ? undefined : taps.length === 1 ? taps[0] : new FanOut(taps);
    this.#onChange(this.active);
  }
}
