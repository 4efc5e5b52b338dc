import { Value } from "@sinclair/typebox/value";
import type { UsageLine } from "../db/generated/client.ts";
import type { Db, Prisma } from "../db/index.ts";
import { ConflictError, NotFoundError } from "../errors/index.ts";
import type { CostBreakdown } from "../vapi/call.ts";
import { type CallToPrice, priceCallLedger } from "./call-pricing.ts";
import { insertUsageLines } from "./ledger.ts";
import { DEFAULT_PRICE_CATALOG, type PriceCatalog } from "./prices.ts";
import { type BilledBy, type Category, type CostItem, lineOrder, type PricedLine } from "./pricing.ts";
import { CallUsage, zeroCallUsage } from "./usage.ts";

// Finalising a call's cost, exactly once. The media plane calls `recordCallCost(db, callId)` after
// it has written the ended call with its `usage`; so may a retry, a sweeper, or a second process.
// In one transaction it locks the call row (SELECT … FOR UPDATE, so concurrent runs queue), and
// either returns the lines already in the ledger (idempotent) or prices the usage (`priceCallLedger`,
// ./call-pricing.ts, as every writer of a cost does), inserts its lines (one per category, or one
// per provider in a category the call used several in; ON CONFLICT on the line's key as a second
// guard) and writes the call's `cost`, `costBreakdown`, `costs` and `finalizedAt`. A call that
// ended by failure is priced like any other with whatever usage was recorded; one that ended with
// no usage at all (it never reached a media session: busy, no answer, failed, refused at admission)
// is priced as zero usage (five zero lines, cost 0). A usage record that is present but malformed
// is refused rather than guessed at. The analysis line is added later, by `recordCallAnalysis`
// (./analysis.ts), once the post-call analysis has run; a repeated finalisation returns it with the
// others.

export type { UsageLine };

export interface CallCostResult {
  /** USD, = costBreakdown.total = Σ costs[].cost = Σ lines. */
  cost: number;
  costBreakdown: CostBreakdown;
  costs: CostItem[];
  /**
   * The call's ledger lines in `costs[]` order: transport, stt, llm, tts (a line per provider used),
   * platform, and analysis once it ran.
   */
  lines: UsageLine[];
  totalMicros: bigint;
  billedMicros: bigint;
  passthroughMicros: bigint;
  /** False when the lines already existed (a repeated finalisation). */
  created: boolean;
}

export interface RecordCallCostOptions {
  /** The deployment's price catalogue (`priceCatalogFromEnv(env)`); the built-in table otherwise. */
  catalog?: PriceCatalog;
}

export class CallNotBillableError extends ConflictError {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_USAGE: CallUsage = {
  durationSeconds: 0,
  transport: { provider: "", direction: "inbound", seconds: 0, byo: false },
  stt: { provider: "", model: "", audioSeconds: 0, byo: false },
  llm: { provider: "", model: "", promptTokens: 0, cachedPromptTokens: 0, completionTokens: 0, byo: false },
  tts: { provider: "", model: "", characters: 0, byo: false },
};

/** A call's stored lines in `costs[]` order (by category, then by the provider's first use). */
export function orderLines(lines: UsageLine[], usage: CallUsage): UsageLine[] {
  return [...lines].sort(lineOrder(usage));
}

export function toPriced(row: UsageLine): PricedLine {
  return {
    category: row.category as Category,
    provider: row.provider,
    // The ledger stores "" for no model (its unique key cannot hold NULLs as equal).
    model: row.model === "" ? null : row.model,
    quantity: row.quantity.toFixed(),
    unit: row.unit as PricedLine["unit"],
    unitPrice: row.unitPrice.toFixed(),
    amountMicros: row.amountMicros,
    billedBy: row.billedBy as BilledBy,
    priceVersion: row.priceVersion,
    fallback: row.priceVersion.endsWith("#fallback"),
  };
}

/** Prices an ended call and writes its ledger lines and cost, exactly once. */
export async function recordCallCost(
  db: Db,
  callId: string,
  options: RecordCallCostOptions = {},
): Promise<CallCostResult> {
  if (!UUID.test(callId)) throw new NotFoundError("Call", callId);
  const catalog = options.catalog ?? DEFAULT_PRICE_CATALOG;
  return db.$transaction(async (tx) => {
    const locked = await tx.$queryRaw<
      { id: string }[]
    >`SELECT id FROM "Call" WHERE id = ${callId}::uuid FOR UPDATE`;
    if (locked.length === 0) throw new NotFoundError("Call", callId);
    const call = await tx.call.findUniqueOrThrow({ where: { id: callId } });
    const usage = Value.Check(CallUsage, call.usage) ? (call.usage as CallUsage) : undefined;

    const existing = await tx.usageLine.findMany({ where: { callId } });
    const org = await tx.org.findUniqueOrThrow({ where: { id: call.orgId } });
    const toPrice = (u: CallUsage): CallToPrice => ({
      callId,
      orgId: call.orgId,
      assistantId: call.assistantId,
      phoneNumberId: call.phoneNumberId,
      occurredAt: call.startedAt ?? call.createdAt,
      org,
      usage: u,
    });
    if (existing.length > 0) {
      const lines = orderLines(existing, usage ?? ZERO_USAGE);
      // Already priced: the cost is rebuilt from the lines as written, nothing is priced again.
      const { priced } = priceCallLedger(toPrice(usage ?? ZERO_USAGE), {
        catalog,
        existing: lines.map(toPriced),
      });
      return { ...priced, lines, created: false };
    }

    if (call.status !== "ended") {
      throw new CallNotBillableError(
        `Call ${callId} has not ended (status ${call.status}); it cannot be priced yet`,
      );
    }
    const billable =
      usage ??
      (call.usage === null
        ? zeroCallUsage(call.type === "outboundPhoneCall" ? "outbound" : "inbound")
        : null);
    if (!billable) {
      throw new CallNotBillableError(
        `Call ${callId} has a malformed usage record; it cannot be priced until it is corrected`,
      );
    }
    const { priced, newLines, columns } = priceCallLedger(toPrice(billable), { catalog });

    await insertUsageLines(tx, newLines);
    const lines = orderLines(await tx.usageLine.findMany({ where: { callId } }), billable);
    await tx.call.update({
      where: { id: callId },
      data: {
        ...columns,
        // Plain JSON objects (numbers and strings only).
        costs: columns.costs as unknown as Prisma.InputJsonArray,
        finalizedAt: call.finalizedAt ?? new Date(),
      },
    });
    return { ...priced, lines, created: true };
  });
}
