// Vapi's keypad input (`keypadInputPlan`): the caller's DTMF digits are gathered and reach the model
// as ONE user message, worded as Vapi words it ("User's Keypad Entry: 1234"). The entry is processed
// when a delimiter is pressed or `timeoutSeconds` pass without a new digit, whichever comes first;
// the delimiter itself is not part of the entry. A timeout of 0 waits for a delimiter only, and with
// no delimiter either every digit is an entry of its own. Off (Vapi's default), digits are ignored.
// The `dtmf` tool is the other direction (the assistant pressing keys) and does not pass here.

import { realTimer, type ScheduleTimer } from "./stream-guard.ts";

export interface KeypadPlan {
  enabled: boolean;
  timeoutSeconds: number;
  /** Keys that end an entry ("#", "*"); none when empty. */
  delimiters: readonly string[];
}

/** The user message an entry becomes (Vapi's wording). */
export function keypadEntryText(digits: string): string {
  return `User's Keypad Entry: ${digits}`;
}

export class KeypadInput {
  readonly #plan: KeypadPlan;
  readonly #onEntry: (digits: string) => void;
  readonly #schedule: ScheduleTimer;
  #digits = "";
  #cancel: (() => void) | undefined;

  constructor(plan: KeypadPlan, onEntry: (digits: string) => void, schedule: ScheduleTimer = realTimer) {
    this.#plan = plan;
    this.#onEntry = onEntry;
    this.#schedule = schedule;
  }

  get enabled(): boolean {
    return this.#plan.enabled;
  }

  /** Digits pressed and not yet processed. */
  get pending(): string {
    return this.#digits;
  }

  /** One key pressed by the caller. */
  press(key: string): void {
    if (!this.#plan.enabled) return;
    if (this.#plan.delimiters.includes(key)) {
      this.flush();
      return;
    }
    this.#digits += key;
    this.#cancelTimer();
    const ms = this.#plan.timeoutSeconds * 1000;
    if (ms > 0) this.#cancel = this.#schedule(() => this.flush(), ms);
    else if (this.#plan.delimiters.length === 0) this.flush();
  }

  /** Processes what was gathered now (a delimiter, the timeout). Nothing gathered: nothing happens. */
  flush(): void {
    this.#cancelTimer();
    const digits = this.#digits;
    if (digits === "") return;
    this.#digits = "";
    this.#onEntry(digits);
  }

  /** Drops what was gathered and its timer (the call ended, another assistant took over). */
  dispose(): void {
    this.#cancelTimer();
    this.#digits = "";
  }

  #cancelTimer(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
