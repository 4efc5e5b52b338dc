import {
  type CallUsage,
  ledgerCtes,
  type OrgPricingInput,
  type PriceCatalog,
  priceCallLedger,
  recordCallCost,
} from "../billing/index.ts";
import { type Db, Prisma } from "../db/index.ts";
import { callEnded } from "../metrics/index.ts";
import type { JobQueue } from "../queue/index.ts";
import type { CallRecordings } from "../recordings/index.ts";

// The end of every call, whichever way it ended: one statement writes the whole record (status,
// reason, times, transcript, messages, artifact with performance metrics, raw usage) only if the
// call is not already ended, so the session, the sweeper and a shutdown can race harmlessly.
// Then the cost is recorded (idempotent), the post-call jobs are queued with deterministic ids,
// and the organisation's concurrency lease is released.
//
// The session knows everything pricing needs (usage, start time, the organisation's pricing as
// loaded at call start), so it passes `billing` and the record, the cost and the ledger lines (with
// the daily rollup) are written by ONE statement: an UPDATE of the call (only if not already ended)
// whose RETURNING gates the INSERT of the lines. One round trip instead of a dozen queries at every
// call's end; atomic like any single statement. Without `billing` (sweeper, a call that never got
// going) or if that statement fails, the general path runs: the conditional update, then
// `recordCallCost` (which locks the row and prices exactly once).

export interface EndedCallRecord {
  callId: string;
  orgId: string;
  endedReason: string;
  startedAt: Date;
  endedAt: Date;
  transcript: string;
  messages: unknown[];
  artifact: Record<string, unknown>;
  usage: CallUsage;
  /** What pricing needs beyond the record, when the caller has it: the one-statement path. */
  billing?: {
    org: OrgPricingInput;
    assistantId: string | null;
    phoneNumberId: string | null;
  };
}

export interface FinalizeDeps {
  db: Db;
  queue?: JobQueue;
  spend?: { releaseCall(orgId: string, callId: string): Promise<void> };
  catalog?: PriceCatalog;
  /** Stores the recording of a call whose media process died, when its spool is on this disk. */
  recordings?: CallRecordings;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Waits before each retry of the cost when the database is saturated (default 250 ms, 1 s). */
  costRetryDelaysMs?: readonly number[];
}

const COST_RETRY_DELAYS_MS = [250, 1000] as const;
/** Transaction could not start in time (P2028) or no connection from the pool in time (P2024). */
const SATURATED = new Set(["P2028", "P2024"]);

function saturationCode(err: unknown): string | undefined {
  return err instanceof Prisma.PrismaClientKnownRequestError && SATURATED.has(err.code)
    ? err.code
    : undefined;
}

/**
 * Records the cost, retrying a couple of times when the database is saturated (e.g. a hundred calls
 * ending at once). Still failing: it throws, and the post-call job records the cost later.
 */
async function recordCostWithRetry(deps: FinalizeDeps, callId: string): Promise<void> {
  const delays = deps.costRetryDelaysMs ?? COST_RETRY_DELAYS_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await recordCallCost(deps.db, callId, deps.catalog ? { catalog: deps.catalog } : {});
      return;
    } catch (err) {
      const delay = delays[attempt];
      const code = saturationCode(err);
      if (delay === undefined || code === undefined) throw err;
      deps.logger?.warn(
        { callId, code, attempt: attempt + 1 },
        "recording the call cost: database saturated, retrying",
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Text as near as Postgres can store it: a call's record carries what customers' servers and
 * providers said (tool results, transcripts, model output), and one NUL character (refused in text
 * and jsonb) or unpaired UTF-16 surrogate (refused in jsonb) must not keep the whole call from
 * being written and priced. Each becomes U+FFFD, the replacement character.
 */
function storableText(s: string): string {
  return (s.includes("\u0000") ? s.replaceAll("\u0000", "\ufffd") : s).toWellFormed();
}

function storable<T>(value: T): T {
  if (typeof value === "string") return storableText(value) as T;
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[storableText(k)] = storable(v);
    return out as T;
  }
  return value;
}

/** True when this call was written now; false when something else had already ended it. */
export async function finalizeEndedCall(deps: FinalizeDeps, given: EndedCallRecord): Promise<boolean> {
  const record: EndedCallRecord = {
    ...given,
    transcript: storable(given.transcript),
    messages: storable(given.messages),
    artifact: storable(given.artifact),
  };
  if (record.billing) {
    try {
      const written = await writeAndPrice(deps, record, record.billing);
      if (written) callEnded(record.endedReason);
      await billAndRelease(deps, record.callId, record.orgId, { costRecorded: written });
      return written;
    } catch (err) {
      deps.logger?.warn({ err, callId: record.callId }, "writing the ended call in one statement failed");
    }
  }
  const json = (v: unknown) => v as Prisma.InputJsonValue;
  const written = await deps.db.call.updateMany({
    where: { id: record.callId, status: { not: "ended" } },
    data: {
      status: "ended",
      endedReason: record.endedReason,
      startedAt: record.startedAt,
      endedAt: record.endedAt,
      transcript: record.transcript,
      messages: json(record.messages),
      artifact: json(record.artifact),
      usage: json(record.usage),
    },
  });
  if (written.count === 1) callEnded(record.endedReason);
  await billAndRelease(deps, record.callId, record.orgId);
  return written.count === 1;
}

/** The ended call, its cost and its ledger lines in one statement; false when it was already ended. */
async function writeAndPrice(
  deps: FinalizeDeps,
  record: EndedCallRecord,
  billing: NonNullable<EndedCallRecord["billing"]>,
): Promise<boolean> {
  const { newLines, columns } = priceCallLedger(
    {
      callId: record.callId,
      orgId: record.orgId,
      assistantId: billing.assistantId,
      phoneNumberId: billing.phoneNumberId,
      occurredAt: record.startedAt,
      org: billing.org,
      usage: record.usage,
    },
    { catalog: deps.catalog },
  );
  const rows = await deps.db.$queryRaw<{ written: bigint }[]>(Prisma.sql`
    WITH upd AS (
      UPDATE "Call" SET
        "status" = 'ended',
        "endedReason" = ${record.endedReason},
        "startedAt" = ${record.startedAt.toISOString()}::timestamptz,
        "endedAt" = ${record.endedAt.toISOString()}::timestamptz,
        "transcript" = ${record.transcript},
        "messages" = ${JSON.stringify(record.messages)}::jsonb,
        "artifact" = ${JSON.stringify(record.artifact)}::jsonb,
        "usage" = ${JSON.stringify(record.usage)}::jsonb,
        "cost" = ${columns.cost}::numeric,
        "costBreakdown" = ${JSON.stringify(columns.costBreakdown)}::jsonb,
        "costs" = ${JSON.stringify(columns.costs)}::jsonb,
        "finalizedAt" = COALESCE("finalizedAt", now()),
        "updatedAt" = now()
      WHERE "id" = ${record.callId}::uuid AND "status" <> 'ended'
      RETURNING "id"
    ), ${ledgerCtes(newLines, Prisma.sql`EXISTS (SELECT 1 FROM upd)`)}
    SELECT (SELECT COUNT(*) FROM upd) AS written`);
  return Number(rows[0]?.written ?? 0n) === 1;
}

/** Cost, jobs and lease for an ended call; each step is idempotent and failures are logged, not thrown. */
export async function billAndRelease(
  deps: FinalizeDeps,
  callId: string,
  orgId: string,
  opts: { costRecorded?: boolean } = {},
): Promise<void> {
  if (!opts.costRecorded) {
    try {
      await recordCostWithRetry(deps, callId);
    } catch (err) {
      deps.logger?.error({ err, callId }, "recording the call cost failed");
    }
  }
  if (deps.queue) {
    const results = await Promise.allSettled([
      deps.queue.enqueue("call.post-process", { callId }, { jobId: `post.${callId}` }),
      deps.queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` }),
    ]);
    for (const r of results)
      if (r.status === "rejected") deps.logger?.warn({ err: r.reason, callId }, "post-call job not queued");
  }
  try {
    await deps.spend?.releaseCall(orgId, callId);
  } catch (err) {
    deps.logger?.warn({ err, callId }, "releasing the concurrency lease failed");
  }
}
