// Decides when the caller has finished a turn (startSpeakingPlan.transcriptionEndpointingPlan) from
// the transcriber's events: finals accumulate; a final with speech_final (Deepgram's endpoint) or an
// utterance-end starts a wait whose length depends on how the text ends (punctuation → short, a
// number → medium, neither → long); any new speech cancels the wait.

export interface EndpointingPlan {
  onPunctuationSeconds: number;
  onNoPunctuationSeconds: number;
  onNumberSeconds: number;
}

export interface UserTurn {
  text: string;
  /** Wall time the transcriber said speech ended (the final with speech_final / utterance end). */
  speechEndedAt: number;
  /** Wall time the caller's last word ended (audio time mapped to wall time). */
  lastWordAt: number;
  /** Wall time the turn was declared over. */
  endpointedAt: number;
  /** Wall time speech started, if known. */
  startedAt: number;
}

/** Why the wait before a turn ends is as long as it is: how the words end, or the transcriber's utterance end. */
export type EndpointingRule = "number" | "punctuation" | "no-punctuation" | "utterance-end";

export function endpointRule(text: string): Exclude<EndpointingRule, "utterance-end"> {
  const t = text.trimEnd();
  if (/\d$/.test(t)) return "number";
  if (/[.!?]$/.test(t)) return "punctuation";
  return "no-punctuation";
}

export function endpointDelayMs(text: string, plan: EndpointingPlan): number {
  const rule = endpointRule(text);
  if (rule === "number") return plan.onNumberSeconds * 1000;
  if (rule === "punctuation") return plan.onPunctuationSeconds * 1000;
  return plan.onNoPunctuationSeconds * 1000;
}

/** The detector chose how long to wait before the turn ends (the call log says so). */
export type OnEndpointWait = (waitMs: number, rule: EndpointingRule) => void;

export class TurnDetector {
  readonly #plan: EndpointingPlan;
  readonly #onTurn: (turn: UserTurn) => void;
  readonly #now: () => number;
  readonly #onWait: OnEndpointWait | undefined;
  #finals: string[] = [];
  #interim = "";
  #timer: NodeJS.Timeout | undefined;
  #speechEndedAt = 0;
  #lastWordAt = 0;
  #startedAt = 0;

  constructor(
    plan: EndpointingPlan,
    onTurn: (turn: UserTurn) => void,
    now: () => number = Date.now,
    onWait?: OnEndpointWait,
  ) {
    this.#plan = plan;
    this.#onTurn = onTurn;
    this.#now = now;
    this.#onWait = onWait;
  }

  /** Words heard in the current (unfinished) turn, finals plus the latest interim. */
  get pendingText(): string {
    return [...this.#finals, this.#interim].filter(Boolean).join(" ");
  }

  get hasPending(): boolean {
    return this.#finals.length > 0 || this.#interim !== "";
  }

  speechStarted(): void {
    if (!this.hasPending) this.#startedAt = this.#now();
    this.#cancel();
  }

  transcript(text: string, isFinal: boolean, speechFinal: boolean, lastWordAt: number): void {
    const words = text.trim();
    if (words !== "") {
      if (!this.hasPending) this.#startedAt = this.#now();
      // New words while waiting: the caller carried on.
      this.#cancel();
    }
    if (isFinal) {
      if (words !== "") {
        this.#finals.push(words);
        this.#lastWordAt = lastWordAt;
      }
      this.#interim = "";
    } else {
      this.#interim = words;
    }
    if (speechFinal && this.#finals.length > 0) {
      const text = this.pendingText;
      const waitMs = endpointDelayMs(text, this.#plan);
      this.#onWait?.(waitMs, endpointRule(text));
      this.#arm(waitMs);
    }
  }

  utteranceEnd(): void {
    if (this.#finals.length > 0 && !this.#timer) {
      this.#onWait?.(0, "utterance-end");
      this.#arm(0);
    }
  }

  /** Dial-pad digits are a complete turn on their own. */
  reset(): void {
    this.#cancel();
    this.#finals = [];
    this.#interim = "";
  }

  #arm(delayMs: number): void {
    this.#cancel();
    this.#speechEndedAt = this.#now();
    if (delayMs <= 0) {
      this.#fire();
      return;
    }
    this.#timer = setTimeout(() => this.#fire(), delayMs);
  }

  #fire(): void {
    this.#timer = undefined;
    const text = this.#finals.join(" ").trim();
    if (text === "") return;
    const turn: UserTurn = {
      text,
      speechEndedAt: this.#speechEndedAt,
      lastWordAt: Math.min(this.#lastWordAt || this.#speechEndedAt, this.#speechEndedAt),
      endpointedAt: this.#now(),
      startedAt: this.#startedAt || this.#speechEndedAt,
    };
    this.#finals = [];
    this.#interim = "";
    this.#onTurn(turn);
  }

  #cancel(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  dispose(): void {
    this.#cancel();
  }
}
