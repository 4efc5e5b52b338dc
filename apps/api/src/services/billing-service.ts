import {
  CATEGORIES,
  type Category,
  microsToUsdString,
  monthStartUtc,
  type SpendControls,
  usdStringToMicros,
} from "../../../../libs/billing/index.ts";
import { type Db, Prisma } from "../../../../libs/db/index.ts";
import { NotFoundError, ValidationError } from "../../../../libs/errors/index.ts";
import { EARLIEST_INSTANT_MS, type ServiceContext } from "./common.ts";

// Billing reads the usage ledger through its daily rollup: the full UTC days inside [start, end)
// come from UsageDaily (a few rows per day, kept in step with UsageLine in the transaction that
// writes a call's lines), and only the partial edge days of a range that is not midnight-aligned are
// aggregated from UsageLine (over the (orgId, occurredAt) index). Either way the answer equals
// aggregating the lines alone. Money leaves as both integer micro-dollars (`…Micros`) and exact USD
// decimal strings (`…Usd`, six decimals). Periods are UTC; `end` is exclusive; lines belong to the
// moment their call started.

export const GROUP_BYS = ["day", "assistant", "category", "phoneNumber"] as const;
export type GroupBy = (typeof GROUP_BYS)[number];
export const MAX_RANGE_DAYS = 400;
const DAY_MS = 86_400_000;

export interface UsageQuery {
  start?: string;
  end?: string;
  groupBy?: GroupBy;
  /** "category": each row also carries `byCategory` (day/assistant/phoneNumber grouping only). */
  split?: "category";
}

export interface MoneySplit {
  billedMicros: number;
  billedUsd: string;
  passthroughMicros: number;
  passthroughUsd: string;
  totalMicros: number;
  totalUsd: string;
}

export interface UsageRow extends MoneySplit {
  key: string;
  label?: string;
  calls: number;
  minutes: number;
  /** Only with `split=category`: the row's money per category (all six, zeros included). */
  byCategory?: Record<Category, MoneySplit>;
}

export interface UsageReport {
  start: string;
  end: string;
  groupBy: GroupBy;
  currency: "usd";
  rows: UsageRow[];
  totals: MoneySplit & { calls: number; minutes: number };
}

export interface BillingSettings {
  monthlySpendLimitUsd: string | null;
  monthlySpendLimitMicros: number | null;
  concurrencyLimit: number;
  billingIncrement: "second" | "minute";
  billingState: string;
}

export interface SettingsPatch {
  monthlySpendLimitUsd?: string | null;
  concurrencyLimit?: number;
  billingIncrement?: "second" | "minute";
}

export interface BillingSummary extends MoneySplit {
  period: { start: string; end: string };
  currency: "usd";
  byCategory: Record<Category, MoneySplit>;
  minutes: number;
  calls: number;
  spendLimitMicros: number | null;
  spendLimitUsd: string | null;
  remainingMicros: number | null;
  remainingUsd: string | null;
  concurrencyLimit: number;
  activeCalls: number;
  billingState: string;
  billingIncrement: "second" | "minute";
}

export const CATEGORY_LABELS: Record<Category, string> = {
  transport: "Telephony",
  stt: "Transcriber (STT)",
  llm: "Model (LLM)",
  tts: "Voice (TTS)",
  platform: "Platform fee",
  analysis: "Call analysis (LLM)",
};

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseInstant(value: string, field: string): Date {
  const ok = DATE_ONLY.test(value) || DATE_TIME.test(value);
  const d = new Date(DATE_ONLY.test(value) ? `${value}T00:00:00.000Z` : value);
  if (!ok || Number.isNaN(d.getTime())) {
    throw new ValidationError(
      `querystring.${field} must be an ISO 8601 date (2025-06-01) or date-time (2025-06-01T00:00:00Z)`,
    );
  }
  if (d.getTime() < EARLIEST_INSTANT_MS) {
    throw new ValidationError(`querystring.${field} must be at or after the start of year 0001 (UTC)`);
  }
  return d;
}

function nextMonthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}

function split(billed: bigint, passthrough: bigint): MoneySplit {
  return {
    billedMicros: Number(billed),
    billedUsd: microsToUsdString(billed),
    passthroughMicros: Number(passthrough),
    passthroughUsd: microsToUsdString(passthrough),
    totalMicros: Number(billed + passthrough),
    totalUsd: microsToUsdString(billed + passthrough),
  };
}

function minutesNumber(v: Prisma.Decimal | null): number {
  return v === null ? 0 : Number(v.toDecimalPlaces(6).toFixed());
}

/** One aggregate per (group key, category, billedBy): everything the reports need. */
interface Part {
  key: string | null;
  category: string;
  billedBy: string;
  micros: bigint | null;
  quantity: Prisma.Decimal | null;
  lines: bigint | null;
}

/** Categories whose quantity is billed minutes (unit "minute"): transport, stt, platform. */
const MINUTE_CATEGORIES: ReadonlySet<string> = new Set(["transport", "stt", "platform"]);

// Group expressions come from these fixed maps only (never from input), one per source; both give
// the same text key ('YYYY-MM-DD', the id, or NULL for none).
const DAILY_KEY_SQL: Record<GroupBy | "none", Prisma.Sql> = {
  day: Prisma.sql`to_char("day", 'YYYY-MM-DD')`,
  assistant: Prisma.sql`NULLIF("assistantKey", '')`,
  phoneNumber: Prisma.sql`NULLIF("phoneNumberKey", '')`,
  category: Prisma.sql`"category"`,
  none: Prisma.sql`''`,
};
const LINE_KEY_SQL: Record<GroupBy | "none", Prisma.Sql> = {
  day: Prisma.sql`to_char(("occurredAt" AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')`,
  assistant: Prisma.sql`"assistantId"::text`,
  phoneNumber: Prisma.sql`"phoneNumberId"::text`,
  category: Prisma.sql`"category"`,
  none: Prisma.sql`''`,
};

function utcMidnightCeil(d: Date): Date {
  const floor = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return new Date(floor === d.getTime() ? floor : floor + DAY_MS);
}

function utcMidnightFloor(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Σ amountMicros, Σ quantity and line count per (key, category, billedBy) for the org's lines
 * with start ≤ occurredAt < end: the rollup for the whole UTC days in the range, the ledger for the
 * partial days at its edges.
 */
export async function usageParts(
  db: Db,
  orgId: string,
  start: Date,
  end: Date,
  groupBy: GroupBy | "none",
): Promise<Part[]> {
  const firstDay = utcMidnightCeil(start);
  const lastDay = utcMidnightFloor(end);
  const sources: Prisma.Sql[] = [];
  const lineRanges: [Date, Date][] = [];
  if (firstDay.getTime() < lastDay.getTime()) {
    sources.push(Prisma.sql`
      SELECT ${DAILY_KEY_SQL[groupBy]} AS key, "category", "billedBy", SUM("amountMicros") AS micros,
        SUM("quantity") AS quantity, SUM("lines") AS lines
      FROM "UsageDaily"
      WHERE "orgId" = ${orgId}::uuid AND "day" >= ${isoDay(firstDay)}::date AND "day" < ${isoDay(lastDay)}::date
      GROUP BY 1, 2, 3`);
    if (start.getTime() < firstDay.getTime()) lineRanges.push([start, firstDay]);
    if (lastDay.getTime() < end.getTime()) lineRanges.push([lastDay, end]);
  } else {
    lineRanges.push([start, end]);
  }
  for (const [from, to] of lineRanges) {
    sources.push(Prisma.sql`
      SELECT ${LINE_KEY_SQL[groupBy]} AS key, "category", "billedBy", SUM("amountMicros") AS micros,
        SUM("quantity") AS quantity, COUNT(*) AS lines
      FROM "UsageLine"
      WHERE "orgId" = ${orgId}::uuid AND "occurredAt" >= ${from} AND "occurredAt" < ${to}
      GROUP BY 1, 2, 3`);
  }
  return db.$queryRaw<Part[]>`
    SELECT s.key, s."category", s."billedBy", SUM(s.micros)::bigint AS micros, SUM(s.quantity) AS quantity,
      SUM(s.lines)::bigint AS lines
    FROM (${Prisma.join(sources, " UNION ALL ")}) s
    GROUP BY 1, 2, 3`;
}

interface Acc {
  billed: bigint;
  passthrough: bigint;
  minutes: Prisma.Decimal;
  calls: bigint;
  byCategory: Map<string, { billed: bigint; passthrough: bigint }>;
}

function newAcc(): Acc {
  return { billed: 0n, passthrough: 0n, minutes: new Prisma.Decimal(0), calls: 0n, byCategory: new Map() };
}

export class BillingService {
  constructor(
    private readonly db: Db,
    private readonly spend: SpendControls,
  ) {}

  /** Resolves and checks a [start, end) range: default the current UTC month. */
  resolveRange(q: UsageQuery, now: Date = new Date()): { start: Date; end: Date } {
    const start = q.start !== undefined ? parseInstant(q.start, "start") : monthStartUtc(now);
    const end = q.end !== undefined ? parseInstant(q.end, "end") : nextMonthStart(start);
    if (end.getTime() <= start.getTime()) {
      throw new ValidationError("querystring.end must be after querystring.start");
    }
    if (end.getTime() - start.getTime() > MAX_RANGE_DAYS * DAY_MS) {
      throw new ValidationError(
        `querystring.end must be at most ${MAX_RANGE_DAYS} days after querystring.start`,
      );
    }
    return { start, end };
  }

  async usage(ctx: ServiceContext, q: UsageQuery): Promise<UsageReport> {
    const groupBy: GroupBy = q.groupBy ?? "day";
    const { start, end } = this.resolveRange(q);
    const isCategory = groupBy === "category";
    const parts = await usageParts(this.db, ctx.orgId, start, end, groupBy);
    // calls: one platform line per call; minutes: the call's billed minutes (platform line). For
    // groupBy=category each row counts its own lines and minutes (0 for token/character lines).
    const groups = new Map<string, Acc>();
    const total = newAcc();
    for (const p of parts) {
      const key = p.key ?? "none";
      let acc = groups.get(key);
      if (!acc) {
        acc = newAcc();
        groups.set(key, acc);
      }
      const micros = p.micros ?? 0n;
      const passthrough = p.billedBy === "passthrough";
      const counts = isCategory || p.category === "platform";
      const minutes = isCategory ? MINUTE_CATEGORIES.has(p.category) : p.category === "platform";
      for (const a of [acc, total]) {
        if (passthrough) a.passthrough += micros;
        else if (p.billedBy === "platform") a.billed += micros;
      }
      if (counts) acc.calls += p.lines ?? 0n;
      if (minutes) acc.minutes = acc.minutes.plus(p.quantity ?? 0);
      // Totals: all calls and minutes (the platform lines), whatever the grouping.
      if (p.category === "platform") {
        total.calls += p.lines ?? 0n;
        total.minutes = total.minutes.plus(p.quantity ?? 0);
      }
      const c = acc.byCategory.get(p.category) ?? { billed: 0n, passthrough: 0n };
      if (passthrough) c.passthrough += micros;
      else if (p.billedBy === "platform") c.billed += micros;
      acc.byCategory.set(p.category, c);
    }

    const row = (key: string, a: Acc): UsageRow => ({
      key,
      calls: Number(a.calls),
      minutes: minutesNumber(a.minutes),
      ...split(a.billed, a.passthrough),
    });
    let out: UsageRow[] = [...groups].map(([key, a]) => row(key, a));

    if (groupBy === "day") {
      // Every day of the range, zeros included, oldest first (a chart's x axis).
      const byKey = new Map(out.map((r) => [r.key, r]));
      out = [];
      for (
        let t = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
        t < end.getTime();
        t += DAY_MS
      ) {
        const key = new Date(t).toISOString().slice(0, 10);
        out.push(byKey.get(key) ?? { key, calls: 0, minutes: 0, ...split(0n, 0n) });
      }
    } else {
      if (groupBy === "category") {
        const byKey = new Map(out.map((r) => [r.key, r]));
        out = CATEGORIES.map((c) => byKey.get(c) ?? { key: c, calls: 0, minutes: 0, ...split(0n, 0n) });
      } else {
        out.sort((a, b) => b.totalMicros - a.totalMicros || a.key.localeCompare(b.key));
      }
      await this.label(ctx, groupBy, out);
    }
    if (q.split === "category") {
      if (groupBy === "category") {
        throw new ValidationError("querystring.split=category needs groupBy day, assistant or phoneNumber");
      }
      for (const r of out) {
        const by = groups.get(r.key)?.byCategory;
        r.byCategory = Object.fromEntries(
          CATEGORIES.map((c) => {
            const m = by?.get(c);
            return [c, split(m?.billed ?? 0n, m?.passthrough ?? 0n)];
          }),
        ) as Record<Category, MoneySplit>;
      }
    }

    return {
      start: start.toISOString(),
      end: end.toISOString(),
      groupBy,
      currency: "usd",
      rows: out,
      totals: {
        calls: Number(total.calls),
        minutes: minutesNumber(total.minutes),
        ...split(total.billed, total.passthrough),
      },
    };
  }

  private async label(ctx: ServiceContext, groupBy: GroupBy, rows: UsageRow[]): Promise<void> {
    const ids = rows.map((r) => r.key).filter((k) => k !== "none");
    if (groupBy === "category") {
      for (const r of rows) r.label = CATEGORY_LABELS[r.key as Category];
    } else if (groupBy === "assistant") {
      const found = await this.db.assistant.findMany({
        where: { orgId: ctx.orgId, id: { in: ids } },
        select: { id: true, name: true },
      });
      const names = new Map(found.map((a) => [a.id, a.name]));
      for (const r of rows)
        r.label = r.key === "none" ? "No saved assistant" : (names.get(r.key) ?? undefined);
    } else if (groupBy === "phoneNumber") {
      const found = await this.db.phoneNumber.findMany({
        where: { orgId: ctx.orgId, id: { in: ids } },
        select: { id: true, number: true },
      });
      const numbers = new Map(found.map((p) => [p.id, p.number]));
      for (const r of rows)
        r.label = r.key === "none" ? "No phone number (web calls)" : (numbers.get(r.key) ?? undefined);
    }
  }

  async summary(ctx: ServiceContext, now: Date = new Date()): Promise<BillingSummary> {
    const org = await this.db.org.findUnique({ where: { id: ctx.orgId } });
    if (!org) throw new NotFoundError("Org", ctx.orgId);
    const start = monthStartUtc(now);
    const end = nextMonthStart(now);
    const rows = await usageParts(this.db, ctx.orgId, start, end, "none");
    const per = new Map<Category, { billed: bigint; passthrough: bigint }>(
      CATEGORIES.map((c) => [c, { billed: 0n, passthrough: 0n }]),
    );
    let billed = 0n;
    let passthrough = 0n;
    let minutes = new Prisma.Decimal(0);
    let calls = 0;
    for (const r of rows) {
      const slot = per.get(r.category as Category);
      const m = r.micros ?? 0n;
      if (r.billedBy === "platform") billed += m;
      else passthrough += m;
      if (slot) {
        if (r.billedBy === "platform") slot.billed += m;
        else slot.passthrough += m;
      }
      if (r.category === "platform") {
        minutes = minutes.plus(r.quantity ?? 0);
        calls += Number(r.lines ?? 0n);
      }
    }
    const byCategory = Object.fromEntries(
      CATEGORIES.map((c) => {
        const s = per.get(c) ?? { billed: 0n, passthrough: 0n };
        return [c, split(s.billed, s.passthrough)];
      }),
    ) as Record<Category, MoneySplit>;
    const limit = org.monthlySpendLimitMicros;
    const remaining = limit === null ? null : limit > billed ? limit - billed : 0n;
    return {
      period: { start: start.toISOString(), end: end.toISOString() },
      currency: "usd",
      ...split(billed, passthrough),
      byCategory,
      minutes: minutesNumber(minutes),
      calls,
      spendLimitMicros: limit === null ? null : Number(limit),
      spendLimitUsd: limit === null ? null : microsToUsdString(limit),
      remainingMicros: remaining === null ? null : Number(remaining),
      remainingUsd: remaining === null ? null : microsToUsdString(remaining),
      concurrencyLimit: org.concurrencyLimit,
      activeCalls: await this.spend.activeCalls(ctx.orgId),
      billingState: org.billingState,
      billingIncrement: org.billingIncrement === "minute" ? "minute" : "second",
    };
  }

  async getSettings(ctx: ServiceContext): Promise<BillingSettings> {
    const org = await this.db.org.findUnique({ where: { id: ctx.orgId } });
    if (!org) throw new NotFoundError("Org", ctx.orgId);
    return settingsView(org);
  }

  async updateSettings(ctx: ServiceContext, patch: SettingsPatch): Promise<BillingSettings> {
    const data: Prisma.OrgUpdateInput = {};
    if (patch.monthlySpendLimitUsd !== undefined) {
      data.monthlySpendLimitMicros =
        patch.monthlySpendLimitUsd === null
          ? null
          : usdStringToMicros(patch.monthlySpendLimitUsd, "body.monthlySpendLimitUsd");
    }
    if (patch.concurrencyLimit !== undefined) data.concurrencyLimit = patch.concurrencyLimit;
    if (patch.billingIncrement !== undefined) data.billingIncrement = patch.billingIncrement;
    const org = await this.db.org.update({ where: { id: ctx.orgId }, data });
    return settingsView(org);
  }
}

function settingsView(org: {
  monthlySpendLimitMicros: bigint | null;
  concurrencyLimit: number;
  billingIncrement: string;
  billingState: string;
}): BillingSettings {
  const limit = org.monthlySpendLimitMicros;
  return {
    monthlySpendLimitUsd: limit === null ? null : microsToUsdString(limit),
    monthlySpendLimitMicros: limit === null ? null : Number(limit),
    concurrencyLimit: org.concurrencyLimit,
    billingIncrement: org.billingIncrement === "minute" ? "minute" : "second",
    billingState: org.billingState,
  };
}
