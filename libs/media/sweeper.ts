import { Prisma } from "../db/index.ts";
import { ENDED } from "./ended-reasons.ts";
import { billAndRelease, type FinalizeDeps } from "./finalize.ts";
import { leaseTimings } from "./lease.ts";
import { type AdoptOptions, adoptLeftoverSpools } from "./leftover-spools.ts";
import { endNeverConnectedCalls } from "./never-connected.ts";
import { endOrphanedCall, PROVIDER_REPORT_GRACE_MS, settleOrphan } from "./orphans.ts";

// Ends calls whose media process vanished (crash, OOM, lost host): a call `in-progress` whose
// heartbeat is older than `staleMs` is ended with `call.in-progress.error-vapifault-worker-died`
// (libs/media/orphans.ts: its last checkpoint, Twilio's duration when known, its concurrency lease
// released). Websocket calls whose client never connected before their token expired are ended
// (libs/media/never-connected.ts). Ended calls that never got their cost recorded are finished too.
// Spools that a dead media process left on this disk, whose calls were ended where the spool could
// not be read, are stored and put on their calls (libs/media/leftover-spools.ts).
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
  opts: {
    intervalMs?: number;
    staleMs?: number;
    now?: () => number;
    /** Also stores recording spools that dead processes left on this disk (leftover-spools.ts). */
    spools?: Omit<AdoptOptions, "now" | "quietMs">;
  } = {},
): () => void {
  const intervalMs = opts.intervalMs ?? SWEEP_INTERVAL_MS;
  const staleMs = opts.staleMs ?? STALE_AFTER_MS;
  // A pass over the spools at most once per stale period: a spool is quiet for that long first.
  const adoptEveryMs = Math.max(intervalMs, staleMs);
  let lastAdopt = Number.NEGATIVE_INFINITY;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    const now = opts.now?.();
    sweepStaleCalls(deps, { staleMs, now })
      .then(async () => {
        const at = now ?? Date.now();
        if (!opts.spools || at - lastAdopt < adoptEveryMs) return;
        lastAdopt = at;
        await adoptLeftoverSpools(deps, { ...opts.spools, quietMs: staleMs, now });
      })
      .catch((err: unknown) => deps.logger?.error({ err }, "call sweeper failed"))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
