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
//
// Two paths with the same answers. The rollup path reads CallMetricHour (per UTC hour and grouping
// set, a sum and a count per column, kept by a trigger) for the range's whole UTC hours and
// CallMetric only for the partial hours at its two edges: a month is ~750 to ~27,000 rollup rows
// instead of one row per call. It serves sum, count, avg (sum / count) and history of sums, when
// the groupBy fields fit one grouping set and every bucket boundary inside the range is a whole
// UTC hour. Everything else reads CallMetric alone: min and max (a rollup cannot take a value
// away from a minimum), concurrency's running peak, groupBy fields across sets (assistantId with
// another field), steps under an hour, and timezones whose boundaries fall at :30 or :45 (Asia/Kolkata,
// Asia/Kathmandu, or a 30-minute DST shift): a 15-minute rollup grain would cover them but hold
// four times the rows (per assistant, about 60% of the calls of the bench's month) for a minority
// of queries.

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

/** Each column's pair of rollup columns (`${name}Sum`, `${name}Count`) and the divisor of its sum. */
const ROLLUP_COLUMN: Record<Exclude<AnalyticsColumn, "id">, { name: string; raw: string; scale?: number }> = {
  cost: { name: "cost", raw: `m."cost"` },
  "costBreakdown.llm": { name: "costLlm", raw: `m."costLlm"` },
  "costBreakdown.stt": { name: "costStt", raw: `m."costStt"` },
  "costBreakdown.tts": { name: "costTts", raw: `m."costTts"` },
  "costBreakdown.vapi": { name: "costVapi", raw: `m."costVapi"` },
  "costBreakdown.transport": { name: "costTransport", raw: `m."costTransport"` },
  "costBreakdown.analysisBreakdown.summary": { name: "costAnalysisSummary", raw: `m."costAnalysisSummary"` },
  "costBreakdown.transcriber": { name: "costStt", raw: `m."costStt"` },
  "costBreakdown.ttsCharacters": { name: "ttsCharacters", raw: `m."ttsCharacters"` },
  "costBreakdown.llmPromptTokens": { name: "llmPromptTokens", raw: `m."llmPromptTokens"` },
  "costBreakdown.llmCompletionTokens": { name: "llmCompletionTokens", raw: `m."llmCompletionTokens"` },
  "costBreakdown.llmCachedPromptTokens": { name: "llmCachedPromptTokens", raw: `m."llmCachedPromptTokens"` },
  // Summed in milliseconds (exact: timestamps have millisecond precision), answered in minutes.
  duration: {
    name: "durationMs",
    raw: `EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) * 1000`,
    scale: 60_000,
  },
  concurrency: { name: "concurrency", raw: `m."concurrency"` },
  minutesUsed: { name: "minutesUsed", raw: `m."minutesUsed"` },
};

/** CallMetricHour's grouping sets: the groupBy fields each one can answer. */
const ROLLUP_SETS: { set: number; fields: readonly AnalyticsGroupBy[] }[] = [
  { set: 0, fields: [] },
  { set: 1, fields: ["assistantId"] },
  { set: 2, fields: ["type", "status", "endedReason", "analysis.successEvaluation"] },
];

const ROLLUP_GROUP_SQL: Record<AnalyticsGroupBy, string> = {
  type: `h."type"`,
  assistantId: `h."assistantId"::text`,
  endedReason: `h."endedReason"`,
  "analysis.successEvaluation": `h."successEvaluation"`,
  status: `h."status"`,
};

const HOUR_MS = 3_600_000;

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
  operation: AnalyticsOperation["operation"];
  /** Index of its column in PlannedQuery.columns. */
  column: number;
  /** The per-bucket aggregate over CallMetric rows (over v<i>). */
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
  /** false: every query reads CallMetric alone (what the rollup path is checked against). */
  rollup?: boolean;
}

export class AnalyticsService {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #rollup: boolean;
  #timezones: Promise<Map<string, string>> | undefined;

  constructor(db: Db, options: AnalyticsServiceOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#rollup = options.rollup ?? true;
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
      const base = { key, operation: op.operation, column: v };
      // The calls are counted: `id` sums to the number of calls, and so runs its history.
      const total = op.column === "id" ? `COUNT(${x})::float8` : `COALESCE(SUM(${x}), 0)::float8`;
      switch (op.operation) {
        case "count":
          return { ...base, aggregate: `COUNT(${x})::float8` };
        case "sum":
          return { ...base, aggregate: total };
        case "avg":
          return { ...base, aggregate: `AVG(${x})::float8` };
        case "min":
          return { ...base, aggregate: `MIN(${x})::float8` };
        case "max":
          return { ...base, aggregate: `MAX(${x})::float8` };
        case "history":
          return op.column === "concurrency"
            ? { ...base, aggregate: `MAX(${x})::float8`, running: "max" }
            : { ...base, aggregate: total, running: "sum" };
      }
      return op.operation satisfies never;
    });
    return { name: q.name, start, end, step: tr.step, timezone, groupBy, columns, operations };
  }

  /**
   * The starts of the range's buckets, ascending: date_trunc in the timezone over a grid of the
   * range finer than the shortest bucket. Each row then finds its bucket by binary search
   * (width_bucket): date_trunc with a timezone on every row costs several times the rest.
   */
  async #bounds(p: PlannedQuery): Promise<Date[]> {
    if (!p.step) return [];
    const rows = await this.#db.$queryRaw<{ b: Date }[]>`
      SELECT b FROM (
        SELECT date_trunc(${p.step}::text, ${p.start}::timestamptz, ${p.timezone}::text) AS b
        UNION
        SELECT date_trunc(${p.step}::text, g, ${p.timezone}::text)
          FROM generate_series(${p.start}::timestamptz, ${p.end}::timestamptz, ${GRID[p.step]}::interval) AS g
      ) AS x ORDER BY b`;
    return rows.map((r) => r.b);
  }

  /**
   * The rollup's grouping set and whole UTC hours for this query, or undefined when it must read
   * CallMetric alone (see the top of this file).
   */
  #rollupPlan(p: PlannedQuery, bounds: Date[]): { set: number; from: Date; to: Date } | undefined {
    if (!this.#rollup) return undefined;
    if (p.operations.some((o) => o.operation === "min" || o.operation === "max" || o.running === "max")) {
      return undefined;
    }
    const set = ROLLUP_SETS.find((s) => p.groupBy.every((g) => s.fields.includes(g)));
    if (!set) return undefined;
    const start = p.start.getTime();
    const end = p.end.getTime();
    if (bounds.some((b) => b.getTime() > start && b.getTime() < end && b.getTime() % HOUR_MS !== 0)) {
      return undefined;
    }
    const from = Math.ceil(start / HOUR_MS) * HOUR_MS;
    const to = Math.floor(end / HOUR_MS) * HOUR_MS;
    if (from >= to) return undefined;
    return { set: set.set, from: new Date(from), to: new Date(to) };
  }

  async #run(orgId: string, p: PlannedQuery, at: string): Promise<AnalyticsQueryResult> {
    const bounds = await this.#bounds(p);
    const rollup = this.#rollupPlan(p, bounds);
    const groupNames = p.groupBy.map((_, i) => `g${i}`);
    const groupList = groupNames.map((g) => `, ${g}`).join("");
    // A scalar subquery, so the array is cast once per query (an InitPlan), not once per row.
    const boundsSql = Prisma.sql`(SELECT ${bounds.map((b) => b.toISOString())}::text[]::timestamptz[])`;
    const bucketOf = (column: string) =>
      p.step ? Prisma.sql`width_bucket(${Prisma.raw(column)}, ${boundsSql})` : Prisma.sql`0`;
    const partition = groupNames.length > 0 ? `PARTITION BY ${groupNames.join(", ")} ` : "";
    const outputs = p.operations.map((o, i) =>
      o.running
        ? `${o.running.toUpperCase()}(a${i}) OVER (${partition}ORDER BY d ROWS UNBOUNDED PRECEDING) AS o${i}`
        : `a${i} AS o${i}`,
    );
    let source: Prisma.Sql;
    let aggregates: string[];
    if (rollup) {
      // Per column a sum (s<i>) and a count of the calls that have it (n<i>), from the rollup's
      // whole hours and the edge hours' calls alike.
      const rollupValues = p.columns.map((c, i) => {
        if (c === "id") return `h."calls" AS s${i}, h."calls" AS n${i}`;
        const { name } = ROLLUP_COLUMN[c];
        return `h."${name}Sum" AS s${i}, h."${name}Count" AS n${i}`;
      });
      const rawValues = p.columns.map((c, i) => {
        if (c === "id") return `1 AS s${i}, 1 AS n${i}`;
        const { raw } = ROLLUP_COLUMN[c];
        return `${raw} AS s${i}, (${raw} IS NOT NULL)::integer AS n${i}`;
      });
      const rollupSelect = [...p.groupBy.map((g, i) => `${ROLLUP_GROUP_SQL[g]} AS g${i}`), ...rollupValues]
        .map((x) => `, ${x}`)
        .join("");
      const rawSelect = [...p.groupBy.map((g, i) => `${GROUP_SQL[g]} AS g${i}`), ...rawValues]
        .map((x) => `, ${x}`)
        .join("");
      const edge = (from: Date, to: Date) => Prisma.sql`
        SELECT ${bucketOf(`m."createdAt"`)} AS d${Prisma.raw(rawSelect)}
        FROM "CallMetric" AS m
        WHERE m."orgId" = ${orgId}::uuid AND m."createdAt" >= ${from}::timestamptz
          AND m."createdAt" < ${to}::timestamptz`;
      source = Prisma.sql`
        SELECT ${bucketOf(`h."hour"`)} AS d${Prisma.raw(rollupSelect)}
        FROM "CallMetricHour" AS h
        WHERE h."orgId" = ${orgId}::uuid AND h."groupSet" = ${rollup.set}::smallint
          AND h."hour" >= ${rollup.from}::timestamptz AND h."hour" < ${rollup.to}::timestamptz
        UNION ALL ${edge(p.start, rollup.from)}
        UNION ALL ${edge(rollup.to, p.end)}`;
      aggregates = p.operations.map((o) => {
        const column = p.columns[o.column] as AnalyticsColumn;
        const scale = column === "id" ? undefined : ROLLUP_COLUMN[column].scale;
        const sum = `COALESCE(SUM(s${o.column}), 0)`;
        const scaled = (x: string) => (scale ? `(${x} / ${scale})` : x);
        switch (o.operation) {
          case "count":
            return `SUM(n${o.column})::float8`;
          case "avg":
            return `${scaled(`SUM(s${o.column}) / NULLIF(SUM(n${o.column}), 0)`)}::float8`;
          default:
            // sum, and history's per-bucket total.
            return `${scaled(sum)}::float8`;
        }
      });
    } else {
      const values = p.columns.map((c, i) => `${COLUMN_SQL[c]} AS v${i}`);
      source = Prisma.sql`
        SELECT ${bucketOf(`m."createdAt"`)} AS d${Prisma.raw(
          [...p.groupBy.map((g, i) => `${GROUP_SQL[g]} AS g${i}`), ...values].map((x) => `, ${x}`).join(""),
        )}
        FROM "CallMetric" AS m
        WHERE m."orgId" = ${orgId}::uuid AND m."createdAt" >= ${p.start}::timestamptz
          AND m."createdAt" < ${p.end}::timestamptz`;
      aggregates = p.operations.map((o) => o.aggregate);
    }
    const sql = Prisma.sql`
      WITH base AS (${source}), agg AS (
        SELECT d${Prisma.raw(groupList)}${Prisma.raw(aggregates.map((a, i) => `, ${a} AS a${i}`).join(""))}
        FROM base GROUP BY d${Prisma.raw(groupList)}
      )
      SELECT d${Prisma.raw(groupList)}${Prisma.raw(outputs.map((o) => `, ${o}`).join(""))}
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
        if (p.step) out.date = bounds[Number(r.d) - 1]?.toISOString() ?? null;
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
