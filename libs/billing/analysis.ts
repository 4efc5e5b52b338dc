import { Value } from "@sinclair/typebox/value";
import type { UsageLine } from "../db/generated/client.ts";
import { type Call, type Db, Prisma } from "../db/index.ts";
import { priceCallLedger } from "./call-pricing.ts";
import { toPriced } from "./finalize.ts";
import { insertUsageLines } from "./ledger.ts";
import { DEFAULT_PRICE_CATALOG, type PriceCatalog } from "./prices.ts";
import { ANALYSIS_STEPS, type AnalysisUsage, CallUsage } from "./usage.ts";

// Recording a call's post-call analysis, exactly once. The worker's `call.post-process` job runs
// the analysis steps, then calls `recordCallAnalysis`. In one transaction:
// - the call's `analysis` is written only where it is still NULL (a conditional update): a job that
//   runs twice (a BullMQ retry, a duplicate enqueue racing the first) records nothing the second
//   time, and the caller checks `call.analysis` before running any step, so a recorded analysis is
//   never asked of the LLM again;
// - only when that update wrote the row, the analysis tokens (`usage.analysis`) are priced into the
//   analysis ledger line (category "analysis", ON CONFLICT on the line's key DO NOTHING, rollup kept
//   in step) and the call's `usage`, `cost`, `costs` and `costBreakdown` are rebuilt from all its
//   lines (cost = Σ lines still holds).
// The line needs the call's other lines and a well-formed usage record; a call without them (never
// priced, malformed usage) keeps its analysis but bills no tokens (logged).

export interface RecordAnalysisInput {
  callId: string;
  /** Vapi's `call.analysis`: what the steps produced (`{}` when none answered). */
  analysis: Record<string, unknown>;
  /** The tokens of the steps that answered, when any did. */
  usage?: AnalysisUsage;
}

export interface RecordAnalysisResult {
  /** False when the analysis had already been recorded: nothing was written. */
  recorded: boolean;
  /** The analysis line this run wrote. */
  line?: UsageLine;
  /** The call as it is now (re-read in the transaction). */
  call: Call;
}

export interface RecordAnalysisOptions {
  catalog?: PriceCatalog;
  logger?: { warn(obj: object, msg?: string): void };
}

function hasTokens(usage: AnalysisUsage | undefined): usage is AnalysisUsage {
  return usage !== undefined && ANALYSIS_STEPS.some((s) => usage[s] !== undefined);
}

export async function recordCallAnalysis(
  db: Db,
  input: RecordAnalysisInput,
  options: RecordAnalysisOptions = {},
): Promise<RecordAnalysisResult> {
  const { callId } = input;
  const catalog = options.catalog ?? DEFAULT_PRICE_CATALOG;
  return db.$transaction(async (tx) => {
    // The row lock this UPDATE takes makes a concurrent recorder wait, then find analysis set.
    const written = await tx.call.updateMany({
      where: { id: callId, analysis: { equals: Prisma.DbNull } },
      data: { analysis: input.analysis as Prisma.InputJsonObject },
    });
    if (written.count === 0) {
      return { recorded: false, call: await tx.call.findUniqueOrThrow({ where: { id: callId } }) };
    }
    const call = await tx.call.findUniqueOrThrow({ where: { id: callId } });
    if (!hasTokens(input.usage)) return { recorded: true, call };

    const base = Value.Check(CallUsage, call.usage) ? (call.usage as CallUsage) : undefined;
    const existing = await tx.usageLine.findMany({ where: { callId } });
    if (!base || !call.finalizedAt || existing.length === 0) {
      options.logger?.warn(
        { callId, usage: input.usage },
        "analysis tokens not billed: the call has no priced usage to add them to",
      );
      return { recorded: true, call };
    }
    const org = await tx.org.findUniqueOrThrow({ where: { id: call.orgId } });
    const usage: CallUsage = { ...base, analysis: input.usage };
    // The call's lines stay as they were priced; only the analysis line is new.
    const { newLines, columns } = priceCallLedger(
      {
        callId,
        orgId: call.orgId,
        assistantId: call.assistantId,
        phoneNumberId: call.phoneNumberId,
        occurredAt: call.startedAt ?? call.createdAt,
        org,
        usage,
      },
      { catalog, existing: existing.map(toPriced) },
    );
    await insertUsageLines(tx, newLines);
    const lines = await tx.usageLine.findMany({ where: { callId } });
    const updated = await tx.call.update({
      where: { id: callId },
      data: {
        usage: usage as unknown as Prisma.InputJsonObject,
        ...columns,
        costs: columns.costs as unknown as Prisma.InputJsonArray,
      },
    });
    return { recorded: true, line: lines.find((l) => l.category === "analysis"), call: updated };
  });
}
