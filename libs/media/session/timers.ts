import type { ScheduleTimer } from "../stream-guard.ts";

// The call's clocks: the caller's silence (a reminder halfway, the ending at the timeout) and the
// call's maximum duration, plus one-off timers the other parts arm (hang reports, the bound on a
// final message). All run on the injected scheduler, so tests advance them instead of waiting; all
// are cancelled when the call ends.

const NOOP = () => {};

export interface SilenceHandlers {
  /** Halfway through the silence timeout. */
  remind(): void;
  /** The whole silence timeout passed. */
  timeout(): void;
}

export class CallTimers {
  readonly #schedule: ScheduleTimer;
  #cancelReminder: () => void = NOOP;
  #cancelSilence: () => void = NOOP;
  #cancelMax: () => void = NOOP;
  readonly #oneOff = new Set<() => void>();
  #stopped = false;

  constructor(schedule: ScheduleTimer) {
    this.#schedule = schedule;
  }

  /** The scheduler itself, for parts with timers of their own (keypad input). */
  get schedule(): ScheduleTimer {
    return this.#schedule;
  }

  /** (Re)starts the caller's silence clock. */
  armSilence(ms: number, on: SilenceHandlers): void {
    this.clearSilence();
    if (this.#stopped) return;
    this.#cancelReminder = this.#schedule(on.remind, ms / 2);
    this.#cancelSilence = this.#schedule(on.timeout, ms);
  }

  clearSilence(): void {
    this.#cancelReminder();
    this.#cancelSilence();
    this.#cancelReminder = NOOP;
    this.#cancelSilence = NOOP;
  }

  armMaxDuration(ms: number, onMax: () => void): void {
    if (this.#stopped) return;
    this.#cancelMax = this.#schedule(onMax, ms);
  }

  /** Runs `fn` once after `ms` unless cancelled (or the call ends first). */
  after(ms: number, fn: () => void): () => void {
    if (this.#stopped) return NOOP;
    const cancel = this.#schedule(() => {
      this.#oneOff.delete(cancel);
      fn();
    }, ms);
    this.#oneOff.add(cancel);
    return () => {
      this.#oneOff.delete(cancel);
      cancel();
    };
  }

  /** The call ended: nothing fires any more. */
  stopAll(): void {
    this.#stopped = true;
    this.clearSilence();
    this.#cancelMax();
    for (const cancel of this.#oneOff) cancel();
    this.#oneOff.clear();
  }
}
