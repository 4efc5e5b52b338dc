import type { JobQueue } from "../../../libs/queue/index.ts";

/** Yesterday's UTC day as [start, end) ISO strings and its label. */
export function previousUtcDay(now: Date): { label: string; periodStart: string; periodEnd: string } {
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const start = new Date(end.getTime() - 24 * 3600_000);
  return {
    label: start.toISOString().slice(0, 10),
    periodStart: start.toISOString(),
    periodEnd: end.toISOString(),
  };
}

/**
 * Periodic jobs: once an hour every worker asks for the reconciliation of the previous UTC day.
 * The job id is the day, so however many workers ask, and however often, the day is reconciled
 * once (BullMQ keeps completed ids for 24 h; the in-process queue runs a single worker).
 */
export function schedulePeriodicJobs(
  queue: JobQueue,
  opts: { intervalMs?: number; now?: () => Date; onError?: (err: unknown) => void } = {},
): () => void {
  const now = opts.now ?? (() => new Date());
  const reconciled = new Set<string>();
  const tick = () => {
    const day = previousUtcDay(now());
    if (reconciled.has(day.label)) return;
    queue
      .enqueue(
        "billing.reconcile",
        { periodStart: day.periodStart, periodEnd: day.periodEnd },
        { jobId: `reconcile.${day.label}` },
      )
      .then(() => reconciled.add(day.label), opts.onError ?? (() => {}));
  };
  tick();
  const timer = setInterval(tick, opts.intervalMs ?? 3600_000);
  timer.unref();
  return () => clearInterval(timer);
}
