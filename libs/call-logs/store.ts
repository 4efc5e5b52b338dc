import { type Db, Prisma } from "../db/index.ts";
import type { CallLogChunk, CallLogLimits } from "./call-log.ts";
import type { CallLogEntry } from "./entry.ts";

// A call's log in Postgres (the CallLog table): chunks of entries appended by the media plane at the
// call's checkpoints and end, and single entries appended by the worker as server messages are
// delivered (after the call too). Read back as one list in time order, cut to the cap.

/** How long a chunk waits for other calls' chunks to be inserted with it. */
export const CALL_LOG_BATCH_MS = 250;
/** A batch this large is inserted at once. */
const MAX_BATCH = 500;

/**
 * The media plane's chunks of every call on a process, inserted together: one INSERT of many rows
 * at most CALL_LOG_BATCH_MS after a chunk arrives (one batch at a time), instead of a statement per
 * call and checkpoint (a query through Prisma costs the media process more CPU than a second of a
 * call's audio). Each chunk's promise settles when its batch is written or has failed.
 */
class ChunkWriter {
  readonly #db: Db;
  #due: Array<{ chunk: CallLogChunk; done: (err?: unknown) => void }> = [];
  #timer: NodeJS.Timeout | undefined;
  #writing = false;

  constructor(db: Db) {
    this.#db = db;
  }

  add(chunk: CallLogChunk): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#due.push({ chunk, done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.#schedule(this.#due.length >= MAX_BATCH ? 0 : CALL_LOG_BATCH_MS);
    });
  }

  #schedule(ms: number): void {
    if (this.#writing) return;
    if (ms === 0 || !this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.#write(), ms);
      this.#timer.unref();
    }
  }

  async #write(): Promise<void> {
    this.#timer = undefined;
    const batch = this.#due;
    this.#due = [];
    if (batch.length === 0) return;
    this.#writing = true;
    // Raw rows (the entries' JSON as text): Prisma's createMany costs nearly as much per row as a
    // create did.
    const insert = (chunks: CallLogChunk[]) =>
      this.#db.$executeRaw(Prisma.sql`
        INSERT INTO "CallLog" ("callId", "orgId", "entries", "count", "bytes")
        SELECT v.c::uuid, v.o::uuid, v.e::jsonb, v.n::int, v.b::int
        FROM (VALUES ${Prisma.join(
          chunks.map(
            (c) =>
              Prisma.sql`(${c.callId}, ${c.orgId}, ${JSON.stringify(c.entries)}, ${c.count}, ${c.bytes})`,
          ),
        )}) AS v(c, o, e, n, b)`);
    try {
      await insert(batch.map((d) => d.chunk));
      for (const { done } of batch) done();
    } catch (err) {
      // One bad chunk (its call deleted meanwhile) must not cost the others theirs: one at a time.
      if (batch.length === 1) batch[0]?.done(err ?? new Error("call log chunk not stored"));
      else
        for (const { chunk, done } of batch)
          await insert([chunk]).then(
            () => done(),
            (e: unknown) => done(e ?? new Error("call log chunk not stored")),
          );
    } finally {
      this.#writing = false;
    }
    if (this.#due.length > 0) this.#schedule(this.#due.length >= MAX_BATCH ? 0 : CALL_LOG_BATCH_MS);
  }
}

const writers = new WeakMap<Db, ChunkWriter>();

/** The media plane's flush: one row per chunk, inserted with the other calls' chunks due. */
export function appendCallLogChunk(db: Db, chunk: CallLogChunk): Promise<void> {
  let writer = writers.get(db);
  if (!writer) {
    writer = new ChunkWriter(db);
    writers.set(db, writer);
  }
  return writer.add(chunk);
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
