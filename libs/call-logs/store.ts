import type { Db, Prisma } from "../db/index.ts";
import type { CallLogChunk, CallLogLimits } from "./call-log.ts";
import type { CallLogEntry } from "./entry.ts";

// A call's log in Postgres (the CallLog table): chunks of entries appended by the media plane at the
// call's checkpoints and end, and single entries appended by the worker as server messages are
// delivered (after the call too). Read back as one list in time order, cut to the cap.

/** The media plane's flush: one row per chunk. */
export async function appendCallLogChunk(db: Db, chunk: CallLogChunk): Promise<void> {
  await db.callLog.create({
    data: {
      callId: chunk.callId,
      orgId: chunk.orgId,
      entries: chunk.entries as unknown as Prisma.InputJsonValue,
      count: chunk.count,
      bytes: chunk.bytes,
    },
  });
}

/** Whether the call has any stored log. */
export async function hasCallLog(db: Db, callId: string): Promise<boolean> {
  return (await db.callLog.findFirst({ where: { callId }, select: { id: true } })) !== null;
}

/**
 * The call's log, oldest first (chunks in the order stored, entries from elsewhere merged by time),
 * at most `limits.maxEntries` entries: anything beyond ends in a note that says so.
 */
export async function readCallLog(db: Db, callId: string, limits: CallLogLimits): Promise<CallLogEntry[]> {
  const rows = await db.callLog.findMany({
    where: { callId },
    orderBy: { id: "asc" },
    select: { entries: true },
  });
  const all: CallLogEntry[] = [];
  for (const r of rows) if (Array.isArray(r.entries)) all.push(...(r.entries as unknown as CallLogEntry[]));
  // Stable: entries of one chunk keep their order; the worker's fall in by their time.
  const entries = all
    .map((e, i) => ({ e, i, t: Date.parse(e.time) }))
    .sort((a, b) => a.t - b.t || a.i - b.i)
    .map((x) => x.e);
  if (entries.length <= limits.maxEntries) return entries;
  const kept = entries.slice(0, limits.maxEntries - 1);
  const last = kept[kept.length - 1];
  kept.push({
    time: last?.time ?? new Date(0).toISOString(),
    secondsFromStart: last?.secondsFromStart ?? 0,
    level: "warn",
    category: "log",
    message: "the call log reached its limit: what happened after this is not in it",
    data: { maxEntries: limits.maxEntries, dropped: entries.length - kept.length },
  });
  return kept;
}
