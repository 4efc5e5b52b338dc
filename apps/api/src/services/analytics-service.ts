import { type Db, Prisma } from "../../../../libs/db/index.ts";
import { ValidationError } from "../../../../libs/errors/index.ts";
import type {
  AnalyticsColumn,
  AnalyticsGroupBy,
  AnalyticsOperation,
  AnalyticsQuery,
  AnalyticsQueryDTO,
  AnalyticsQueryResult,
  AnalyticsStep,
} from "../../../../libs/vapi/index.ts";
import { EARLIEST_INSTANT_MS, type ServiceContext } from "./common.ts";

// Vapi's POST /analytics over the organisation's calls, computed in Postgres from CallMetric (one
// narrow row per call, kept in step with Call by a trigger: plain numbers instead of each call's
// JSON). A call belongs to the bucket of its createdAt; buckets are cut by date_trunc in the
// query's timezone, so a day is a local day (23 or 25 hours across a DST change) and a week starts
// on Monday. Only buckets and groups that have calls are answered (as Vapi's documented answer).
//
// Column meanings: cost and costBreakdown.* in USD as recorded on the call (transcriber = stt);
// tokens and characters as counts; duration in minutes from start to end (Vapi reports call minutes
// under it); minutesUsed the billed minutes (the platform fee's quantity, rounded up to the
// organisation's billing increment); concurrency, per call, how many of the organisation's calls
// were in progress when it started (itself included; counted by the trigger when the start is
// written), so `max concurrency` per bucket is the peak.
// `history` is the running total of the column over the range's buckets, per group (for
// concurrency: the running peak). Bounds: queries and operations per request (schema), buckets per
// query (MAX_BUCKETS, from the step and the range) and rows per query (MAX_RESULT_ROWS).

export const MAX_BUCKETS = 2_000;
export const MAX_RESULT_ROWS = 10_000;
const DEFAULT_RANGE_MS = 7 * 86_400_000;
/**
 * The spacing of the instants whose buckets make up a range's bucket starts: finer than the
 * shortest bucket of the step, so every bucket of the range holds at least one (a local hour can be
 * 30 minutes at a half-hour DST change, a local day 23 hours).
 */
const GRID: Record<AnalyticsStep, string> = {
  second: "1 second",
  minute: "1 minute",
  hour: "15 minutes",
  day: "1 hour",
  week: "1 hour",
  month: "1 day",
  quarter: "1 day",
  year: "1 month",
  decade: "1 year",
  century: "10 years",
  millennium: "100 years",
};

/** The shortest a bucket of each step can be (a DST day is 23 h, February 28 days), in ms. */
const MIN_STEP_MS: Record<AnalyticsStep, number> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 82_800_000,
  week: 604_800_000 - 3_600_000,
  month: 28 * 86_400_000 - 3_600_000,
  quarter: 89 * 86_400_000 - 3_600_000,
  year: 365 * 86_400_000,
  decade: 3_652 * 86_400_000,
  century: 36_524 * 86_400_000,
  millennium: 365_242 * 86_400_000,
};

const COLUMN_SQL: Record<AnalyticsColumn, string> = {
  id: `m."callId"`,
  cost: `m."cost"`,
  "costBreakdown.llm": `m."costLlm"`,
  "costBreakdown.stt": `m."costStt"`,
  "costBreakdown.tts": `m."costTts"`,
  "costBreakdown.vapi": `m."costVapi"`,
  "costBreakdown.transport": `m."costTransport"`,
  "costBreakdown.analysisBreakdown.summary": `m."costAnalysisSummary"`,
  "costBreakdown.transcriber": `m."costStt"`,
  "costBreakdown.ttsCharacters": `m."ttsCharacters"`,
  "costBreakdown.llmPromptTokens": `m."llmPromptTokens"`,
  "costBreakdown.llmCompletionTokens": `m."llmCompletionTokens"`,
  "costBreakdown.llmCachedPromptTokens": `m."llmCachedPromptTokens"`,
  duration: `EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) / 60`,
  concurrency: `m."concurrency"`,
  minutesUsed: `m."minutesUsed"`,
};

const GROUP_SQL: Record<AnalyticsGroupBy, string> = {
  type: `m."type"`,
  assistantId: `m."assistantId"::text`,
  endedReason: `m."endedReason"`,
  "analysis.successEvaluation": `m."successEvaluation"`,
  status: `m."status"`,
};

/** Vapi's default alias, `${operation}${column}` in camel case: sumDuration, avgCostBreakdownLlm. */
export function defaultAlias(op: Pick<AnalyticsOperation, "operation" | "column">): string {
  return (
    op.operation +
    op.column
      .split(".")
      .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
      .join("")
  );
}

interface PlannedOperation {
  key: string;
  /** The per-bucket aggregate (over v<i>). */
  aggregate: string;
  /** Set for history: the window over the per-bucket aggregate. */
  running?: "sum" | "max";
}

interface PlannedQuery {
  name: string;
  start: Date;
  end: Date;
  step?: AnalyticsStep;
  timezone: string;
  groupBy: AnalyticsGroupBy[];
  columns: AnalyticsColumn[];
  operations: PlannedOperation[];
}

export interface AnalyticsServiceOptions {
  now?: () => number;
}

export class AnalyticsService {
  readonly #db: Db;
  readonly #now: () => number;
  #timezones: Promise<Map<string, string>> | undefined;

  constructor(db: Db, options: AnalyticsServiceOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async query(ctx: ServiceContext, dto: AnalyticsQueryDTO): Promise<AnalyticsQueryResult[]> {
    const planned: PlannedQuery[] = [];
    for (const [i, q] of dto.queries.entries()) planned.push(await this.#plan(q, `body.queries[${i}]`));
    return Promise.all(planned.map((p, i) => this.#run(ctx.orgId, p, `body.queries[${i}]`)));
  }

  /** Postgres's own timezone names (what date_trunc accepts), by lower-cased name. */
  #timezoneNames(): Promise<Map<string, string>> {
    this.#timezones ??= this.#db.$queryRaw<{ name: string }[]>`SELECT name FROM pg_timezone_names`
      .then((rows) => new Map(rows.map((r) => [r.name.toLowerCase(), r.name])))
      .catch((err: unknown) => {
        this.#timezones = undefined;
        throw err;
      });
    return this.#timezones;
  }

  async #plan(q: AnalyticsQuery, at: string): Promise<PlannedQuery> {
    if (q.table !== "call") {
      throw new ValidationError(`${at}.table ${JSON.stringify(q.table)} is not supported: only "call" is`);
    }
    if (q.groupByVariableValue && q.groupByVariableValue.length > 0) {
      throw new ValidationError(`${at}.groupByVariableValue is not supported: group by groupBy fields`);
    }
    const tr = q.timeRange ?? {};
    const end = tr.end ? instant(tr.end, `${at}.timeRange.end`) : new Date(this.#now());
    const start = tr.start
      ? instant(tr.start, `${at}.timeRange.start`)
      : new Date(end.getTime() - DEFAULT_RANGE_MS);
    if (end.getTime() <= start.getTime()) {
      throw new ValidationError(`${at}.timeRange.end must be after ${at}.timeRange.start`);
    }
    let timezone = "UTC";
    if (tr.timezone !== undefined) {
      const known = (await this.#timezoneNames()).get(tr.timezone.toLowerCase());
      if (!known) {
        throw new ValidationError(
          `${at}.timeRange.timezone ${JSON.stringify(tr.timezone)} is not a known IANA timezone (e.g. "Europe/Paris", "UTC")`,
        );
      }
      timezone = known;
    }
    if (tr.step) {
      const buckets = Math.ceil((end.getTime() - start.getTime()) / MIN_STEP_MS[tr.step]) + 1;
      if (buckets > MAX_BUCKETS) {
        throw new ValidationError(
          `${at}.timeRange.step "${tr.step}" cuts this range into up to ${buckets.toLocaleString("en-US")} buckets; at most ${MAX_BUCKETS.toLocaleString("en-US")} (use a larger step or a shorter range)`,
        );
      }
    }
    const groupBy = q.groupBy ?? [];
    const taken = new Set<string>(["date", ...groupBy]);
    const columns: AnalyticsColumn[] = [];
    const operations = q.operations.map((op, j): PlannedOperation => {
      const where = `${at}.operations[${j}]`;
      const key = op.alias ?? defaultAlias(op);
      if (taken.has(key)) {
        throw new ValidationError(
          `${where}.alias ${JSON.stringify(key)} is already a key of the query's rows (date, a groupBy field or another operation); give it another alias`,
        );
      }
      taken.add(key);
      if (op.column === "id" && !["count", "sum", "history"].includes(op.operation)) {
        throw new ValidationError(
          `${where}.operation "${op.operation}" does not apply to column "id": count (or sum, or history) counts the calls`,
        );
      }
      let v = columns.indexOf(op.column);
      if (v < 0) v = columns.push(op.column) - 1;
      const x = `v${v}`;
      // The calls are counted: `id` sums to the number of calls, and so runs its history.
      const total = op.column === "id" ? `COUNT(${x})::float8` : `COALESCE(SUM(${x}), 0)::float8`;
      switch (op.operation) {
        case "count":
          return { key, aggregate: `COUNT(${x})::float8` };
        case "sum":
          return { key, aggregate: total };
        case "avg":
          return { key, aggregate: `AVG(${x})::float8` };
        case "min":
          return { key, aggregate: `MIN(${x})::float8` };
        case "max":
          return { key, aggregate: `MAX(${x})::float8` };
        case "history":
          return op.column === "concurrency"
            ? { key, aggregate: `MAX(${x})::float8`, running: "max" }
            : { key, aggregate: total, running: "sum" };
      }
      return op.operation satisfies never;
    });
    return { name: q.name, start, end, step: tr.step, timezone, groupBy, columns, operations };
  }

  async #run(orgId: string, p: PlannedQuery, at: string): Promise<AnalyticsQueryResult> {
    const groups = p.groupBy.map((g, i) => `${GROUP_SQL[g]} AS g${i}`);
    const values = p.columns.map((c, i) => `${COLUMN_SQL[c]} AS v${i}`);
    const groupNames = p.groupBy.map((_, i) => `g${i}`);
    // Bucket starts are cut once per query (date_trunc in the timezone over a grid of the range) and
    // each call finds its bucket by binary search (width_bucket): date_trunc with a timezone on
    // every row costs several times the rest of the query.
    const bounds = p.step
      ? Prisma.sql`bounds AS (
          SELECT array_agg(b ORDER BY b) AS b FROM (
            SELECT date_trunc(${p.step}::text, ${p.start}::timestamptz, ${p.timezone}::text) AS b
            UNION
            SELECT date_trunc(${p.step}::text, g, ${p.timezone}::text)
              FROM generate_series(${p.start}::timestamptz, ${p.end}::timestamptz, ${GRID[p.step]}::interval) AS g
          ) AS x
        ),`
      : Prisma.empty;
    const bucket = p.step
      ? Prisma.sql`(SELECT b FROM bounds)[width_bucket(m."createdAt", (SELECT b FROM bounds))]`
      : Prisma.sql`NULL::timestamptz`;
    const partition = groupNames.length > 0 ? `PARTITION BY ${groupNames.join(", ")} ` : "";
    const outputs = p.operations.map((o, i) =>
      o.running
        ? `${o.running.toUpperCase()}(a${i}) OVER (${partition}ORDER BY d ROWS UNBOUNDED PRECEDING) AS o${i}`
        : `a${i} AS o${i}`,
    );
    const sql = Prisma.sql`
      WITH ${bounds} base AS (
        SELECT ${bucket} AS d${Prisma.raw([...groups, ...values].map((s) => `, ${s}`).join(""))}
        FROM "CallMetric" AS m
        WHERE m."orgId" = ${orgId}::uuid AND m."createdAt" >= ${p.start}::timestamptz
          AND m."createdAt" < ${p.end}::timestamptz
      ), agg AS (
        SELECT d${Prisma.raw(groupNames.map((g) => `, ${g}`).join(""))}${Prisma.raw(
          p.operations.map((o, i) => `, ${o.aggregate} AS a${i}`).join(""),
        )}
        FROM base GROUP BY d${Prisma.raw(groupNames.map((g) => `, ${g}`).join(""))}
      )
      SELECT d${Prisma.raw(groupNames.map((g) => `, ${g}`).join(""))}${Prisma.raw(outputs.map((o) => `, ${o}`).join(""))}
      FROM agg
      ORDER BY d${Prisma.raw(groupNames.map((g) => `, ${g} COLLATE "C" NULLS LAST`).join(""))}
      LIMIT ${MAX_RESULT_ROWS + 1}`;
    const rows = await this.#db.$queryRaw<Record<string, unknown>[]>(sql);
    if (rows.length > MAX_RESULT_ROWS) {
      throw new ValidationError(
        `${at} answers more than ${MAX_RESULT_ROWS.toLocaleString("en-US")} rows: use a larger timeRange.step, a shorter range or fewer groupBy fields`,
      );
    }
    return {
      name: p.name,
      timeRange: {
        ...(p.step ? { step: p.step } : {}),
        start: p.start.toISOString(),
        end: p.end.toISOString(),
        timezone: p.timezone,
      },
      result: rows.map((r) => {
        const out: Record<string, number | string | null> = {};
        if (p.step) out.date = r.d instanceof Date ? r.d.toISOString() : null;
        p.groupBy.forEach((g, i) => {
          const v = r[`g${i}`];
          out[g] = typeof v === "string" ? v : null;
        });
        p.operations.forEach((o, i) => {
          const v = r[`o${i}`];
          out[o.key] = typeof v === "number" && Number.isFinite(v) ? v : v === null ? null : Number(v);
        });
        return out;
      }),
    };
  }
}

function instant(value: string, field: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ValidationError(`${field} is not a valid date-time`);
  if (d.getTime() < EARLIEST_INSTANT_MS) {
    throw new ValidationError(`${field} must be at or after the start of year 0001 (UTC)`);
  }
  return d;
}
