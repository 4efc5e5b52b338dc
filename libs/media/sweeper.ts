import { Prisma } from "../db/index.ts";
import { ENDED } from "./ended-reasons.ts";
import { billAndRelease, type FinalizeDeps } from "./finalize.ts";
import { leaseTimings } from "./lease.ts";
import { endNeverConnectedCalls } from "./never-connected.ts";
import { endOrphanedCall, PROVIDER_REPORT_GRACE_MS, settleOrphan } from "./orphans.ts";

// Ends calls whose media process vanished (crash, OOM, lost host): a call `in-progress` whose
// heartbeat is older than `staleMs` is ended with `call.in-progress.error-vapifault-worker-died`
// (libs/media/orphans.ts: its last checkpoint, Twilio's duration when known, its concurrency lease
// released). Websocket calls whose client never connected before their token expired are ended
// (libs/media/never-connected.ts). Ended calls that never got their cost recorded are finished too.
// Every media and worker process runs it; several at once are harmless: ending a call is a
// conditional UPDATE that one of them wins, and recording a cost locks the row and prices it once.

const DEFAULTS = leaseTimings();
export const STALE_AFTER_MS = DEFAULTS.staleAfterMs;
export const SWEEP_INTERVAL_MS = DEFAULTS.sweepIntervalMs;

export async function sweepStaleCalls(
  deps: FinalizeDeps,
  opts: { now?: number; staleMs?: number; limit?: number; providerReportGraceMs?: number } = {},
): Promise<number> {
  const now = opts.now ?? Date.now();
  const cutoff = new Date(now - (opts.staleMs ?? STALE_AFTER_MS));
  const stale = await deps.db.call.findMany({
    where: {
      status: "in-progress",
      OR: [{ heartbeatAt: { lt: cutoff } }, { heartbeatAt: null, updatedAt: { lt: cutoff } }],
    },
    take: opts.limit ?? 100,
    orderBy: { heartbeatAt: "asc" },
  });
  let ended = 0;
  for (const call of stale) if (await endOrphanedCall(deps, call)) ended++;
  ended += await endNeverConnectedCalls(deps, { now, limit: opts.limit });
  // Calls written as ended whose billing step did not complete (the process died in between), and
  // swept phone calls whose wait for Twilio's report is over.
  const graceCutoff = new Date(now - (opts.providerReportGraceMs ?? PROVIDER_REPORT_GRACE_MS));
  const unbilled = await deps.db.call.findMany({
    where: {
      status: "ended",
      finalizedAt: null,
      usage: { not: Prisma.DbNull },
      endedAt: { lt: cutoff },
      NOT: {
        endedReason: ENDED.workerDied,
        providerCallId: { not: null },
        providerDurationSeconds: null,
        endedAt: { gte: graceCutoff },
      },
    },
    take: opts.limit ?? 100,
  });
  for (const c of unbilled) {
    if (c.endedReason === ENDED.workerDied) await settleOrphan(deps, c);
    else await billAndRelease(deps, c.id, c.orgId);
  }
  return ended;
}

/** Runs the sweeper every `intervalMs` until the returned stop function is called. */
export function startSweeper(
  deps: FinalizeDeps,
  opts: { intervalMs?: number; staleMs?: number; now?: () => number } = {},
): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepStaleCalls(deps, { staleMs: opts.staleMs, now: opts.now?.() })
      .catch((err: unknown) => deps.logger?.error({ err }, "call sweeper failed"))
      .finally(() => {
        running = false;
      });
  }, opts.intervalMs ?? SWEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
