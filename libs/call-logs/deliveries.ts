import { type Db, Prisma } from "../db/index.ts";
import type { CallLogLimits } from "./call-log.ts";
import type { CallLogEntry, CallLogLevel } from "./entry.ts";
import { Redactor } from "./redact.ts";

// Server messages are delivered by the worker, often after the call has ended (the end-of-call
// report): each delivery's outcome joins the call's log there, if the call keeps one (it has
// stored some of it: logging on), while the log is under its cap. One statement per delivery;
// recording it never fails or delays the delivery's own outcome.

export type DeliveryLogOutcome =
  | { outcome: "delivered"; status: number }
  | { outcome: "rejected"; status?: number; reason: string }
  | { outcome: "retrying" | "abandoned"; status?: number; error: string };

export interface DeliveryLogTarget {
  db: Db;
  limits: CallLogLimits;
  /** Told when the entry could not be written. */
  onError?: (err: unknown) => void;
}

const WORDS: Record<DeliveryLogOutcome["outcome"], [CallLogLevel, string]> = {
  delivered: ["info", "server message delivered"],
  rejected: ["warn", "server message rejected by the server (not retried)"],
  retrying: ["warn", "server message delivery failed (will retry)"],
  abandoned: ["error", "server message delivery abandoned (no attempts left)"],
};

const redact = new Redactor();

/** Appends a delivery's outcome to its call's log (when the call keeps one). */
export async function recordDelivery(
  target: DeliveryLogTarget | undefined,
  delivery: { callId?: string; orgId: string; messageType?: string; attempt: number; durationMs: number },
  result: DeliveryLogOutcome,
  nowMs: number = Date.now(),
): Promise<void> {
  if (!target || !delivery.callId) return;
  const [level, message] = WORDS[result.outcome];
  const { outcome, ...rest } = result;
  const entry: CallLogEntry = {
    time: new Date(nowMs).toISOString(),
    // Set by the statement from the call's start.
    secondsFromStart: 0,
    level,
    category: "server-message",
    message,
    data: redact.value({
      type: delivery.messageType,
      outcome,
      ...rest,
      attempt: delivery.attempt,
      durationMs: Math.round(delivery.durationMs),
    }) as Record<string, unknown>,
  };
  const json = JSON.stringify(entry);
  const bytes = Buffer.byteLength(json) + 2;
  const { callId, orgId } = delivery;
  const { maxEntries, maxBytes } = target.limits;
  try {
    await target.db.$executeRaw(Prisma.sql`
      INSERT INTO "CallLog" ("callId", "orgId", "entries", "count", "bytes")
      SELECT c."id", c."orgId",
        jsonb_build_array(jsonb_set(${json}::jsonb, '{secondsFromStart}',
          to_jsonb(round(extract(epoch FROM (${new Date(nowMs)}::timestamptz - coalesce(c."startedAt", c."createdAt")))::numeric, 3)))),
        1, ${bytes}
      FROM "Call" c,
        (SELECT count(*) AS chunks, coalesce(sum("count"), 0) AS n, coalesce(sum("bytes"), 0) AS b
         FROM "CallLog" WHERE "callId" = ${callId}::uuid) used
      WHERE c."id" = ${callId}::uuid AND c."orgId" = ${orgId}::uuid
        AND used.chunks > 0 AND used.n + 1 < ${maxEntries} AND used.b + ${bytes} <= ${maxBytes}`);
  } catch (err) {
    target.onError?.(err);
  }
}

/** A failed attempt as the log says it: retried, or abandoned on the last attempt. */
export function deliveryFailure(err: unknown, last: boolean): DeliveryLogOutcome {
  const status = err && typeof err === "object" && "status" in err ? err.status : undefined;
  return {
    outcome: last ? "abandoned" : "retrying",
    error: err instanceof Error ? err.message : String(err),
    ...(typeof status === "number" ? { status } : {}),
  };
}
