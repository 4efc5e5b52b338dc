import { randomUUID } from "node:crypto";
import { Prisma } from "../db/index.ts";
import type { PricedLine } from "./pricing.ts";

// Writes priced lines to the usage ledger in one statement (arrays unnested server-side), with
// ON CONFLICT (callId, category, provider, model, billedBy) DO NOTHING: a line that exists already
// is never written twice. A category holds a line per provider, model and key ownership the call
// used in it; a line without a model (transport, platform) is stored with "" (a unique key cannot
// hold NULLs as equal).
// The same statement keeps the daily rollup (UsageDaily) in step: only the lines the INSERT really
// wrote (its RETURNING rows) are added to their (org, UTC day, assistant, phone number, category,
// billedBy) row, so a repeated or concurrent finalisation never counts a line twice. Rollup rows are
// upserted in primary-key order so concurrent writers lock them in the same order (no deadlocks).
// Run it inside the transaction that writes the call's cost and the two stay atomic.

export interface LedgerLineInput extends PricedLine {
  orgId: string;
  callId: string;
  assistantId: string | null;
  phoneNumberId: string | null;
  occurredAt: Date;
}

/** Anything that can run raw SQL: the client or an interactive transaction. */
export interface RawExecutor {
  $queryRaw<T = unknown>(
    query: TemplateStringsArray | Prisma.Sql,
    ...values: unknown[]
  ): Prisma.PrismaPromise<T>;
}

/**
 * The two CTEs `ins` (the ledger INSERT) and `rolled` (the daily rollup of what `ins` really wrote),
 * for a statement that begins `WITH`. `gate`, when given, is a condition every line must meet to be
 * written (e.g. `EXISTS (SELECT 1 FROM upd)`: only if an earlier CTE of the same statement wrote the
 * call), so one statement can write a call and its lines atomically.
 */
export function ledgerCtes(lines: readonly LedgerLineInput[], gate?: Prisma.Sql): Prisma.Sql {
  const col = <T>(f: (l: LedgerLineInput) => T): T[] => lines.map(f);
  return Prisma.sql`
    ins AS (
      INSERT INTO "UsageLine" ("id", "orgId", "callId", "category", "provider", "model", "quantity", "unit",
        "unitPrice", "amountMicros", "billedBy", "priceVersion", "assistantId", "phoneNumberId", "occurredAt")
      SELECT * FROM unnest(
        ${col(() => randomUUID())}::uuid[], ${col((l) => l.orgId)}::uuid[], ${col((l) => l.callId)}::uuid[],
        ${col((l) => l.category)}::text[], ${col((l) => l.provider)}::text[], ${col((l) => l.model ?? "")}::text[],
        ${col((l) => l.quantity)}::numeric[], ${col((l) => l.unit)}::text[], ${col((l) => l.unitPrice)}::numeric[],
        ${col((l) => l.amountMicros.toString())}::bigint[], ${col((l) => l.billedBy)}::text[],
        ${col((l) => l.priceVersion)}::text[], ${col((l) => l.assistantId)}::uuid[],
        ${col((l) => l.phoneNumberId)}::uuid[], ${col((l) => l.occurredAt.toISOString())}::timestamptz[]
      )
      ${gate ? Prisma.sql`WHERE ${gate}` : Prisma.empty}
      ON CONFLICT ("callId", "category", "provider", "model", "billedBy") DO NOTHING
      RETURNING "orgId", "occurredAt", "assistantId", "phoneNumberId", "category", "billedBy", "amountMicros", "quantity"
    ), rolled AS (
      INSERT INTO "UsageDaily" ("orgId", "day", "assistantKey", "phoneNumberKey", "category", "billedBy",
        "amountMicros", "quantity", "lines")
      SELECT "orgId", ("occurredAt" AT TIME ZONE 'UTC')::date, COALESCE("assistantId"::text, ''),
        COALESCE("phoneNumberId"::text, ''), "category", "billedBy", SUM("amountMicros"), SUM("quantity"), COUNT(*)
      FROM ins
      GROUP BY 1, 2, 3, 4, 5, 6
      ORDER BY 1, 2, 3, 4, 5, 6
      ON CONFLICT ("orgId", "day", "assistantKey", "phoneNumberKey", "category", "billedBy") DO UPDATE SET
        "amountMicros" = "UsageDaily"."amountMicros" + EXCLUDED."amountMicros",
        "quantity" = "UsageDaily"."quantity" + EXCLUDED."quantity",
        "lines" = "UsageDaily"."lines" + EXCLUDED."lines"
      RETURNING 1
    )`;
}

/** Inserts ledger lines and adds the new ones to the daily rollup; returns how many were new. */
export async function insertUsageLines(db: RawExecutor, lines: readonly LedgerLineInput[]): Promise<number> {
  if (lines.length === 0) return 0;
  const rows = await db.$queryRaw<{ inserted: bigint }[]>(
    Prisma.sql`WITH ${ledgerCtes(lines)} SELECT (SELECT COUNT(*) FROM ins) AS inserted`,
  );
  return Number(rows[0]?.inserted ?? 0n);
}
