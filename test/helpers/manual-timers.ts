import type { ScheduleTimer } from "../../libs/media/stream-guard.ts";

/** A timer the test advances by hand: nothing fires until `advance()` passes its due time. */
export class ManualTimers {
  #now = 0;
  #timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];

  readonly schedule: ScheduleTimer = (fn, ms) => {
    const timer = { at: this.#now + ms, fn, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  /** Timers scheduled and neither fired nor cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time on by `ms` and runs every timer now due, earliest first. */
  advance(ms: number): void {
    this.#now += ms;
    const due = this.#timers.filter((t) => t.at <= this.#now).sort((a, b) => a.at - b.at);
    this.#timers = this.#timers.filter((t) => t.at > this.#now && !t.cancelled);
    for (const t of due) if (!t.cancelled) t.fn();
  }
}
