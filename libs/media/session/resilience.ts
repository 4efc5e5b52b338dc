import { providerFailed } from "../../metrics/index.ts";
import { ProviderError } from "../../providers/types.ts";
import type { CallContext } from "./context.ts";

// What a call does when a provider fails mid-call (a dropped socket, a timeout, a 5xx): the stage
// that saw the failure (caller input, turn loop, voice) asks `decide`: retry the same provider
// after a bounded backoff, or move on to the next one of its fallback plan. Only a retryable
// ProviderError is retried (`retryable`: timeouts, connection errors, 408/429/5xx); a refused key or
// a refused option (401, 400) goes straight to the next provider. Every retry and switch is
// recorded: in the call's performance metrics (per turn, and as events), and in the provider
// errors counter. The call only ends (CallContext.fail) once a stage has nothing left to try.

/** Retries of one provider before its stage moves to the next provider of the fallback plan. */
export const RETRIES_PER_PROVIDER = 2;
/** Backoff before retry n (1-based): 250 ms, then 500 ms; never more than 1 s. */
export function backoffMs(retry: number): number {
  return Math.min(1000, 250 * 2 ** (retry - 1));
}
/** Events kept in `artifact.performanceMetrics.providerRecoveries` (the counts are exact). */
const MAX_EVENTS = 50;

export type RecoveryKind = ProviderError["kind"];

/** One retry or switch, as `artifact.performanceMetrics.providerRecoveries` lists them. */
export interface RecoveryEvent {
  /** Seconds from the start of the call. */
  secondsFromStart: number;
  kind: RecoveryKind;
  provider: string;
  model?: string;
  /**
   * `retry`: the same provider again; `fallback`: the next provider (or model) of the plan, for the
   * rest of the call; `cut-short`: the model failed after part of its reply was spoken, so the reply
   * ended there (asking again could repeat what the caller heard).
   */
  action: "retry" | "fallback" | "cut-short";
  /** The HTTP status or websocket close code of the failure, when it had one. */
  status?: number;
  /** What failed, without the provider's text: `dropped`, `timeout`, `refused`, `server-error`, `error`. */
  cause: string;
  /** The provider (or model) switched to. */
  to?: { provider: string; model?: string };
}

/** Recoveries since the previous turn's latency was recorded (Switchboard's additions to TurnLatency). */
export interface TurnRecoveries {
  providerRetries?: number;
  providerFallbacks?: number;
}

function causeOf(err: unknown): string {
  if (!(err instanceof ProviderError)) return "error";
  const s = err.status;
  if (s !== undefined && s >= 400 && s < 500 && s !== 408 && s !== 429) return "refused";
  if (s !== undefined && (s >= 500 || s === 429) && s < 1000) return "server-error";
  if (/timed out|within \d+ ms|stalled/i.test(err.message)) return "timeout";
  if (err.retryable) return "dropped";
  return "error";
}

export function isRetryable(err: unknown): boolean {
  return err instanceof ProviderError && err.retryable;
}

export class ProviderRecovery {
  readonly #c: CallContext;
  readonly events: RecoveryEvent[] = [];
  numRetries = 0;
  numFallbacks = 0;
  #turnRetries = 0;
  #turnFallbacks = 0;
  /** Consecutive failures of each stage's current provider (reset by a success). */
  readonly #failures: Record<RecoveryKind, number> = { transcriber: 0, llm: 0, voice: 0 };

  constructor(c: CallContext) {
    this.#c = c;
  }

  /**
   * After `err` on the stage's current provider: `retry` (the caller waits `backoffMs(n)` first,
   * with `n` returned) or `next` (try the next provider of the plan, or fail when there is none).
   */
  decide(kind: RecoveryKind, err: unknown): { action: "retry"; retry: number } | { action: "next" } {
    if (!isRetryable(err) || this.#failures[kind] >= RETRIES_PER_PROVIDER) {
      this.#failures[kind] = 0;
      return { action: "next" };
    }
    this.#failures[kind] += 1;
    return { action: "retry", retry: this.#failures[kind] };
  }

  /** The stage's provider worked again (a reply, a transcript, audio): its retries start over. */
  succeeded(kind: RecoveryKind): void {
    this.#failures[kind] = 0;
  }

  /** Waits `ms` on the call's timers; false when the call ended (or `signal` aborted) meanwhile. */
  wait(ms: number, signal: AbortSignal = this.#c.signal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(false);
      const onAbort = () => {
        cancel();
        resolve(false);
      };
      const cancel = this.#c.timers.after(ms, () => {
        signal.removeEventListener("abort", onAbort);
        resolve(!signal.aborted);
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Records a retry, a switch or a reply cut short (metrics, log, the call's artifact). */
  record(
    action: RecoveryEvent["action"],
    err: unknown,
    where: { kind: RecoveryKind; provider: string; model?: string },
    to?: RecoveryEvent["to"],
  ): void {
    const c = this.#c;
    if (action === "fallback") {
      this.numFallbacks++;
      this.#turnFallbacks++;
    } else {
      this.numRetries += action === "retry" ? 1 : 0;
      this.#turnRetries += action === "retry" ? 1 : 0;
    }
    providerFailed(
      err,
      where,
      action === "retry" ? "retried" : action === "fallback" ? "fallback" : "cut-short",
    );
    const status = err instanceof ProviderError ? err.status : undefined;
    const event: RecoveryEvent = {
      secondsFromStart: Math.max(0, (c.now() - c.state.startedAt) / 1000),
      kind: where.kind,
      provider: where.provider,
      ...(where.model ? { model: where.model } : {}),
      action,
      ...(status !== undefined ? { status } : {}),
      cause: causeOf(err),
      ...(to ? { to } : {}),
    };
    if (this.events.length < MAX_EVENTS) this.events.push(event);
    // The provider's message can echo what it was sent: only its class and status are logged.
    c.state.log.warn({ ...event, secondsFromStart: undefined }, "provider recovery");
    c.callLog.warn(
      where.kind === "llm" ? "model" : where.kind,
      action === "retry"
        ? `${where.provider} failed: retrying`
        : action === "fallback"
          ? `${where.provider} failed: switching to the fallback plan's next entry`
          : `${where.provider} failed after part of the reply was spoken: the reply ends there`,
      { ...event, secondsFromStart: undefined },
    );
  }

  /** The recoveries since the previous call of this (one turn's), then counting starts over. */
  takeTurnCounts(): TurnRecoveries {
    const out: TurnRecoveries = {};
    if (this.#turnRetries > 0) out.providerRetries = this.#turnRetries;
    if (this.#turnFallbacks > 0) out.providerFallbacks = this.#turnFallbacks;
    this.#turnRetries = 0;
    this.#turnFallbacks = 0;
    return out;
  }

  /** Switchboard's additions to `artifact.performanceMetrics`. */
  metrics(): {
    numProviderRetries: number;
    numProviderFallbacks: number;
    providerRecoveries: RecoveryEvent[];
  } {
    return {
      numProviderRetries: this.numRetries,
      numProviderFallbacks: this.numFallbacks,
      providerRecoveries: this.events,
    };
  }
}
