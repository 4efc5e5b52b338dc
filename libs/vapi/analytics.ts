import { type Static, Type } from "@sinclair/typebox";
import { STRICT, StringEnum } from "./common.ts";

// Vapi's `POST /analytics` (AnalyticsQueryDTO → AnalyticsQueryResult[], @vapi-ai/server-sdk): named
// queries over the organisation's calls, each aggregating columns with sum/avg/count/min/max/history,
// grouped by call fields and bucketed by a time step in a timezone. Field names and enum strings are
// Vapi's; the bounds (queries per request, operations per query) are Switchboard's.

export const ANALYTICS_TABLES = ["call", "subscription"] as const;
export const ANALYTICS_OPERATIONS = ["sum", "avg", "count", "min", "max", "history"] as const;
export const ANALYTICS_COLUMNS = [
  "id",
  "cost",
  "costBreakdown.llm",
  "costBreakdown.stt",
  "costBreakdown.tts",
  "costBreakdown.vapi",
  "costBreakdown.transport",
  "costBreakdown.analysisBreakdown.summary",
  "costBreakdown.transcriber",
  "costBreakdown.ttsCharacters",
  "costBreakdown.llmPromptTokens",
  "costBreakdown.llmCompletionTokens",
  "costBreakdown.llmCachedPromptTokens",
  "duration",
  "concurrency",
  "minutesUsed",
] as const;
export const ANALYTICS_GROUP_BYS = [
  "type",
  "assistantId",
  "endedReason",
  "analysis.successEvaluation",
  "status",
] as const;
export const ANALYTICS_STEPS = [
  "second",
  "minute",
  "hour",
  "day",
  "week",
  "month",
  "quarter",
  "year",
  "decade",
  "century",
  "millennium",
] as const;
export type AnalyticsOperationName = (typeof ANALYTICS_OPERATIONS)[number];
export type AnalyticsColumn = (typeof ANALYTICS_COLUMNS)[number];
export type AnalyticsGroupBy = (typeof ANALYTICS_GROUP_BYS)[number];
export type AnalyticsStep = (typeof ANALYTICS_STEPS)[number];

export const MAX_ANALYTICS_QUERIES = 10;
export const MAX_ANALYTICS_OPERATIONS = 20;

export const AnalyticsOperation = Type.Object(
  {
    operation: StringEnum(ANALYTICS_OPERATIONS, {
      description:
        "sum, avg, count, min, max over the calls of each group and bucket; history: the running total of the column (running peak for concurrency) from the first bucket to this one",
    }),
    column: StringEnum(ANALYTICS_COLUMNS, {
      description:
        "cost and costBreakdown.*: USD (transcriber = stt); tokens and ttsCharacters: counts; duration: minutes from start to end; minutesUsed: billed minutes; concurrency: the organisation's calls in progress when the call started (itself included); id: the calls (count)",
    }),
    alias: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 40,
        description:
          "The key of the value in each result row. Defaults to the operation followed by the column in camel case, e.g. sumDuration, countId, avgCostBreakdownLlm",
      }),
    ),
  },
  { ...STRICT, title: "AnalyticsOperation" },
);
export type AnalyticsOperation = Static<typeof AnalyticsOperation>;

export const TimeRange = Type.Object(
  {
    step: Type.Optional(
      StringEnum(ANALYTICS_STEPS, {
        description: "The bucket size; without it, one bucket for the whole range (rows have no date)",
      }),
    ),
    start: Type.Optional(
      Type.String({ format: "date-time", description: "Inclusive; default 7 days before end" }),
    ),
    end: Type.Optional(Type.String({ format: "date-time", description: "Exclusive; default now" })),
    timezone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description:
          'IANA name (e.g. "America/New_York"); buckets start at local midnight, the local hour, … in it. Default UTC',
      }),
    ),
  },
  { ...STRICT, title: "TimeRange" },
);
export type TimeRange = Static<typeof TimeRange>;

export const AnalyticsQuery = Type.Object(
  {
    table: StringEnum(ANALYTICS_TABLES, { description: 'Only "call" is served' }),
    groupBy: Type.Optional(
      Type.Array(StringEnum(ANALYTICS_GROUP_BYS), {
        uniqueItems: true,
        maxItems: ANALYTICS_GROUP_BYS.length,
        description: "Each result row carries these fields, under these names",
      }),
    ),
    groupByVariableValue: Type.Optional(
      Type.Array(Type.Object({ key: Type.String({ maxLength: 100 }) }, STRICT), {
        maxItems: 10,
        description: "Not supported here: must be absent or empty (400 otherwise)",
      }),
    ),
    name: Type.String({
      minLength: 1,
      maxLength: 40,
      description: "Identifies the query's answer in the response",
    }),
    timeRange: Type.Optional(TimeRange),
    operations: Type.Array(AnalyticsOperation, { minItems: 1, maxItems: MAX_ANALYTICS_OPERATIONS }),
  },
  { ...STRICT, title: "AnalyticsQuery" },
);
export type AnalyticsQuery = Static<typeof AnalyticsQuery>;

export const AnalyticsQueryDTO = Type.Object(
  { queries: Type.Array(AnalyticsQuery, { minItems: 1, maxItems: MAX_ANALYTICS_QUERIES }) },
  { ...STRICT, title: "AnalyticsQueryDTO" },
);
export type AnalyticsQueryDTO = Static<typeof AnalyticsQueryDTO>;

const ResultTimeRange = Type.Object(
  {
    step: Type.Optional(StringEnum(ANALYTICS_STEPS)),
    start: Type.String({ format: "date-time" }),
    end: Type.String({ format: "date-time" }),
    timezone: Type.String(),
  },
  { title: "AnalyticsTimeRange", description: "The range the query ran over, defaults filled in" },
);

export const AnalyticsQueryResult = Type.Object(
  {
    name: Type.String(),
    timeRange: ResultTimeRange,
    result: Type.Array(Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Null()])), {
      description:
        "One row per bucket and group that has calls, oldest bucket first: `date` (the bucket's start, ISO 8601 UTC; only with a step), the groupBy fields (null when the call has none), and one number per operation under its alias (sum and count of nothing are 0; avg, min and max of nothing are null)",
    }),
  },
  { title: "AnalyticsQueryResult" },
);
export type AnalyticsQueryResult = Static<typeof AnalyticsQueryResult>;
