import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { AnalyticsService } from "../../apps/api/src/services/analytics-service.ts";
import { recordCallAnalysis, recordCallCost } from "../../libs/billing/index.ts";
import type { Prisma } from "../../libs/db/index.ts";
import { callUsage } from "../billing/fixtures.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";

// POST /analytics against real Postgres: calls are written as the platform writes them (the
// analytics table follows Call through its trigger), then asked about through the API.

let t: TestApi;
let org: TestOrg;
let other: TestOrg;
const ASSISTANT_X = randomUUID();
const ASSISTANT_Y = randomUUID();

type Row = Record<string, number | string | null>;

interface Seed {
  orgId?: string;
  type?: string;
  status?: string;
  endedReason?: string | null;
  assistantId?: string | null;
  /** Created (and started) at. */
  at: string;
  seconds?: number;
  cost?: number;
  llm?: number;
  stt?: number;
  promptTokens?: number;
  summary?: number;
  minutes?: number;
  success?: string;
}

async function seed(s: Seed): Promise<string> {
  const at = new Date(s.at);
  const ended = s.seconds !== undefined;
  const costBreakdown =
    s.cost === undefined
      ? undefined
      : {
          transport: 0,
          stt: s.stt ?? 0,
          llm: s.llm ?? 0,
          tts: 0,
          vapi: 0,
          total: s.cost,
          llmPromptTokens: s.promptTokens ?? 0,
          llmCompletionTokens: 0,
          llmCachedPromptTokens: 0,
          ttsCharacters: 0,
          ...(s.summary === undefined ? {} : { analysisCostBreakdown: { summary: s.summary } }),
        };
  const data: Prisma.CallUncheckedCreateInput = {
    orgId: s.orgId ?? org.orgId,
    type: s.type ?? "inboundPhoneCall",
    status: s.status ?? (ended ? "ended" : "queued"),
    endedReason: s.endedReason === undefined ? (ended ? "customer-ended-call" : null) : s.endedReason,
    assistantId: s.assistantId === undefined ? ASSISTANT_X : s.assistantId,
    createdAt: at,
    ...(ended ? { startedAt: at, endedAt: new Date(at.getTime() + (s.seconds ?? 0) * 1000) } : {}),
    ...(s.cost === undefined
      ? {}
      : {
          cost: s.cost.toFixed(6),
          costBreakdown,
          costs: [{ type: "vapi", subType: "normal", minutes: s.minutes ?? 0, cost: 0 }],
          finalizedAt: at,
        }),
    ...(s.success === undefined ? {} : { analysis: { successEvaluation: s.success } }),
  };
  return (await t.db.call.create({ data })).id;
}

async function analytics(payload: object, key = org.key) {
  return t.request({ method: "POST", url: "/analytics", key, payload });
}

async function ask(query: Record<string, unknown>, key = org.key): Promise<Row[]> {
  const res = await analytics({ queries: [{ name: "q", table: "call", ...query }] }, key);
  assert.equal(res.statusCode, 200, res.body);
  const [answer] = res.json() as { result: Row[] }[];
  assert.ok(answer);
  return answer.result;
}

/** Rounds every number of the rows to 6 decimals (sums of decimals come back as doubles). */
function r6(rows: Row[]): Row[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, typeof v === "number" ? Math.round(v * 1e6) / 1e6 : v]),
    ),
  );
}

const MARCH = { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z" };

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Acme");
  other = await t.createOrg("Other");
  // March 2026: three ended calls on two assistants, one call still queued.
  await seed({
    at: "2026-03-02T10:00:00Z",
    seconds: 120,
    cost: 0.3,
    llm: 0.1,
    stt: 0.05,
    promptTokens: 1000,
    summary: 0.001,
    minutes: 2,
    success: "true",
  });
  await seed({
    at: "2026-03-02T10:01:00Z",
    type: "outboundPhoneCall",
    endedReason: "assistant-ended-call",
    seconds: 60,
    cost: 0.1,
    llm: 0.04,
    stt: 0.01,
    promptTokens: 500,
    minutes: 1,
    success: "false",
  });
  await seed({
    at: "2026-03-03T09:00:00Z",
    type: "webCall",
    assistantId: ASSISTANT_Y,
    seconds: 180,
    cost: 0.5,
    llm: 0.2,
    stt: 0.1,
    promptTokens: 3000,
    minutes: 3,
    success: "true",
  });
  await seed({ at: "2026-03-03T12:00:00Z", assistantId: ASSISTANT_Y });
  // Another organisation's call in the same month: never counted for Acme.
  await seed({ orgId: other.orgId, at: "2026-03-02T10:00:00Z", seconds: 600, cost: 9, minutes: 10 });
});

after(async () => {
  await t.close();
});

describe("POST /analytics: operations and groupBy", () => {
  test("sum, avg, count, min and max per assistant, under Vapi's default keys or the alias given", async () => {
    const rows = await ask({
      timeRange: MARCH,
      groupBy: ["assistantId"],
      operations: [
        { operation: "count", column: "id" },
        { operation: "sum", column: "cost" },
        { operation: "avg", column: "duration" },
        { operation: "min", column: "cost" },
        { operation: "max", column: "cost", alias: "priciest" },
        { operation: "sum", column: "costBreakdown.llm" },
        { operation: "sum", column: "costBreakdown.transcriber" },
        { operation: "sum", column: "costBreakdown.llmPromptTokens" },
        { operation: "sum", column: "costBreakdown.analysisBreakdown.summary" },
        { operation: "sum", column: "minutesUsed" },
      ],
    });
    const [x, y] = [ASSISTANT_X, ASSISTANT_Y].sort();
    const byAssistant: Record<string, Row> = {
      [ASSISTANT_X]: {
        assistantId: ASSISTANT_X,
        countId: 2,
        sumCost: 0.4,
        avgDuration: 1.5,
        minCost: 0.1,
        priciest: 0.3,
        sumCostBreakdownLlm: 0.14,
        sumCostBreakdownTranscriber: 0.06,
        sumCostBreakdownLlmPromptTokens: 1500,
        sumCostBreakdownAnalysisBreakdownSummary: 0.001,
        sumMinutesUsed: 3,
      },
      [ASSISTANT_Y]: {
        // The queued call counts, has no cost and no duration.
        assistantId: ASSISTANT_Y,
        countId: 2,
        sumCost: 0.5,
        avgDuration: 3,
        minCost: 0.5,
        priciest: 0.5,
        sumCostBreakdownLlm: 0.2,
        sumCostBreakdownTranscriber: 0.1,
        sumCostBreakdownLlmPromptTokens: 3000,
        sumCostBreakdownAnalysisBreakdownSummary: 0,
        sumMinutesUsed: 3,
      },
    };
    assert.deepEqual(r6(rows), [byAssistant[x as string], byAssistant[y as string]]);
    // No step: one bucket for the range, so the rows carry no date.
    assert.ok(rows.every((row) => !("date" in row)));
  });

  test("groupBy type, endedReason, status and analysis.successEvaluation, with null for a call that has none", async () => {
    const rows = await ask({
      timeRange: MARCH,
      groupBy: ["type", "endedReason", "status", "analysis.successEvaluation"],
      operations: [{ operation: "count", column: "id" }],
    });
    const key = (r: Row) => JSON.stringify(r);
    assert.deepEqual(
      rows.map(key).sort(),
      [
        {
          type: "inboundPhoneCall",
          endedReason: "customer-ended-call",
          status: "ended",
          "analysis.successEvaluation": "true",
          countId: 1,
        },
        {
          type: "outboundPhoneCall",
          endedReason: "assistant-ended-call",
          status: "ended",
          "analysis.successEvaluation": "false",
          countId: 1,
        },
        {
          type: "webCall",
          endedReason: "customer-ended-call",
          status: "ended",
          "analysis.successEvaluation": "true",
          countId: 1,
        },
        {
          type: "inboundPhoneCall",
          endedReason: null,
          status: "queued",
          "analysis.successEvaluation": null,
          countId: 1,
        },
      ]
        .map(key)
        .sort(),
    );
  });

  test("history: the running total per group from the first bucket of the range", async () => {
    const rows = await ask({
      timeRange: { ...MARCH, step: "day" },
      groupBy: ["assistantId"],
      operations: [
        { operation: "sum", column: "cost" },
        { operation: "history", column: "cost", alias: "costSoFar" },
        { operation: "history", column: "id", alias: "callsSoFar" },
      ],
    });
    assert.deepEqual(r6(rows), [
      {
        date: "2026-03-02T00:00:00.000Z",
        assistantId: ASSISTANT_X,
        sumCost: 0.4,
        costSoFar: 0.4,
        callsSoFar: 2,
      },
      {
        date: "2026-03-03T00:00:00.000Z",
        assistantId: ASSISTANT_Y,
        sumCost: 0.5,
        costSoFar: 0.5,
        callsSoFar: 2,
      },
    ]);
    const overall = await ask({
      timeRange: { ...MARCH, step: "day" },
      operations: [{ operation: "history", column: "minutesUsed" }],
    });
    assert.deepEqual(r6(overall), [
      { date: "2026-03-02T00:00:00.000Z", historyMinutesUsed: 3 },
      { date: "2026-03-03T00:00:00.000Z", historyMinutesUsed: 6 },
    ]);
  });

  test("concurrency: the organisation's calls in progress when each call started; max is the peak", async () => {
    const peak = await t.createOrg("Peak");
    // A call from the day before still in progress at 00:05; then 09:00–09:10, 09:05–09:07 and
    // 09:06–09:20 (three at once at 09:06), and 09:20–09:25 (the third ended as it began: one).
    await seed({ orgId: peak.orgId, at: "2026-05-01T23:50:00Z", seconds: 1200 });
    await seed({ orgId: peak.orgId, at: "2026-05-02T00:05:00Z", seconds: 60 });
    await seed({ orgId: peak.orgId, at: "2026-05-02T09:00:00Z", seconds: 600 });
    await seed({ orgId: peak.orgId, at: "2026-05-02T09:05:00Z", seconds: 120 });
    await seed({ orgId: peak.orgId, at: "2026-05-02T09:06:00Z", seconds: 840 });
    await seed({ orgId: peak.orgId, at: "2026-05-02T09:20:00Z", seconds: 300 });
    const rows = await ask(
      {
        timeRange: { start: "2026-05-02T00:00:00Z", end: "2026-05-03T00:00:00Z", step: "hour" },
        operations: [
          { operation: "max", column: "concurrency" },
          { operation: "min", column: "concurrency" },
          { operation: "count", column: "id" },
          { operation: "history", column: "concurrency", alias: "peakSoFar" },
        ],
      },
      peak.key,
    );
    assert.deepEqual(rows, [
      { date: "2026-05-02T00:00:00.000Z", maxConcurrency: 2, minConcurrency: 2, countId: 1, peakSoFar: 2 },
      { date: "2026-05-02T09:00:00.000Z", maxConcurrency: 3, minConcurrency: 1, countId: 4, peakSoFar: 3 },
    ]);
  });
});

describe("POST /analytics: time buckets in a named timezone", () => {
  let ny: TestOrg;
  before(async () => {
    ny = await t.createOrg("New York");
    // America/New_York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT: a 23-hour day) and
    // falls back on 2026-11-01 (02:00 EDT → 01:00 EST: a 25-hour day).
    for (const at of [
      "2026-03-08T04:30:00Z", // 03-07 23:30 EST
      "2026-03-08T05:30:00Z", // 03-08 00:30 EST
      "2026-03-08T06:30:00Z", // 03-08 01:30 EST
      "2026-03-08T07:30:00Z", // 03-08 03:30 EDT (02:xx does not exist)
      "2026-03-09T03:30:00Z", // 03-08 23:30 EDT
      "2026-03-09T04:30:00Z", // 03-09 00:30 EDT
      "2026-11-01T04:30:00Z", // 11-01 00:30 EDT
      "2026-11-02T04:30:00Z", // 11-01 23:30 EST
      "2026-11-02T05:30:00Z", // 11-02 00:30 EST
    ]) {
      await seed({ orgId: ny.orgId, at, seconds: 60, cost: 0.01, minutes: 1 });
    }
  });

  test("day buckets start at local midnight, across the spring-forward and fall-back days", async () => {
    const spring = await ask(
      {
        timeRange: {
          start: "2026-03-07T05:00:00Z",
          end: "2026-03-10T04:00:00Z",
          step: "day",
          timezone: "America/New_York",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    assert.deepEqual(spring, [
      { date: "2026-03-07T05:00:00.000Z", countId: 1 },
      { date: "2026-03-08T05:00:00.000Z", countId: 4 },
      { date: "2026-03-09T04:00:00.000Z", countId: 1 },
    ]);
    const fall = await ask(
      {
        timeRange: {
          start: "2026-10-31T04:00:00Z",
          end: "2026-11-03T05:00:00Z",
          step: "day",
          timezone: "America/New_York",
        },
        operations: [{ operation: "sum", column: "minutesUsed" }],
      },
      ny.key,
    );
    assert.deepEqual(fall, [
      { date: "2026-11-01T04:00:00.000Z", sumMinutesUsed: 2 },
      { date: "2026-11-02T05:00:00.000Z", sumMinutesUsed: 1 },
    ]);
    // India is 5 h 30 ahead of UTC: its days start at 18:30 UTC.
    const kolkata = await ask(
      {
        timeRange: {
          start: "2026-03-07T00:00:00Z",
          end: "2026-03-10T00:00:00Z",
          step: "day",
          timezone: "Asia/Kolkata",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    assert.deepEqual(kolkata, [
      { date: "2026-03-07T18:30:00.000Z", countId: 4 },
      { date: "2026-03-08T18:30:00.000Z", countId: 2 },
    ]);
    // The same calls by UTC day fall elsewhere.
    const utc = await ask(
      {
        timeRange: { start: "2026-03-07T00:00:00Z", end: "2026-03-10T00:00:00Z", step: "day" },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    assert.deepEqual(utc, [
      { date: "2026-03-08T00:00:00.000Z", countId: 4 },
      { date: "2026-03-09T00:00:00.000Z", countId: 2 },
    ]);
  });

  test("hour buckets skip the hour that does not exist; week and month buckets follow local time", async () => {
    const hours = await ask(
      {
        timeRange: {
          start: "2026-03-08T05:00:00Z",
          end: "2026-03-08T09:00:00Z",
          step: "hour",
          timezone: "America/New_York",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    // Local 00:00 EST, 01:00 EST, then 03:00 EDT: consecutive instants, an hour apart.
    assert.deepEqual(hours, [
      { date: "2026-03-08T05:00:00.000Z", countId: 1 },
      { date: "2026-03-08T06:00:00.000Z", countId: 1 },
      { date: "2026-03-08T07:00:00.000Z", countId: 1 },
    ]);
    const weeks = await ask(
      {
        timeRange: {
          start: "2026-03-01T00:00:00Z",
          end: "2026-03-31T00:00:00Z",
          step: "week",
          timezone: "America/New_York",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    // Weeks start on Monday: 03-02 00:00 EST and 03-09 00:00 EDT.
    assert.deepEqual(weeks, [
      { date: "2026-03-02T05:00:00.000Z", countId: 5 },
      { date: "2026-03-09T04:00:00.000Z", countId: 1 },
    ]);
    const months = await ask(
      {
        timeRange: {
          start: "2026-01-01T00:00:00Z",
          end: "2027-01-01T00:00:00Z",
          step: "month",
          timezone: "America/New_York",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      ny.key,
    );
    assert.deepEqual(months, [
      { date: "2026-03-01T05:00:00.000Z", countId: 6 },
      { date: "2026-11-01T04:00:00.000Z", countId: 3 },
    ]);
  });

  test("the answer echoes the time range with its defaults filled in", async () => {
    const res = await analytics(
      {
        queries: [
          {
            name: "Calls by day",
            table: "call",
            timeRange: {
              start: "2026-03-07T05:00:00Z",
              end: "2026-03-10T04:00:00Z",
              step: "day",
              timezone: "america/new_york",
            },
            operations: [{ operation: "count", column: "id" }],
          },
          { name: "Last week", table: "call", operations: [{ operation: "count", column: "id" }] },
        ],
      },
      ny.key,
    );
    assert.equal(res.statusCode, 200, res.body);
    const [byDay, lastWeek] = res.json() as {
      name: string;
      timeRange: Record<string, string>;
      result: Row[];
    }[];
    assert.equal(byDay?.name, "Calls by day");
    assert.deepEqual(byDay?.timeRange, {
      step: "day",
      start: "2026-03-07T05:00:00.000Z",
      end: "2026-03-10T04:00:00.000Z",
      timezone: "America/New_York",
    });
    // Without a timeRange: the last 7 days, in UTC (these calls are older: nothing).
    assert.equal(lastWeek?.name, "Last week");
    assert.equal(lastWeek?.timeRange.timezone, "UTC");
    const start = Date.parse(lastWeek?.timeRange.start ?? "");
    const end = Date.parse(lastWeek?.timeRange.end ?? "");
    assert.equal(end - start, 7 * 86_400_000);
    assert.ok(Math.abs(end - Date.now()) < 60_000);
    assert.deepEqual(lastWeek?.result, []);
  });
});

describe("POST /analytics: empty ranges and organisations", () => {
  test("a range without calls answers an empty result, with or without a step", async () => {
    for (const step of [undefined, "day"]) {
      const rows = await ask({
        timeRange: { start: "2025-01-01T00:00:00Z", end: "2025-02-01T00:00:00Z", ...(step ? { step } : {}) },
        groupBy: ["status"],
        operations: [
          { operation: "sum", column: "cost" },
          { operation: "count", column: "id" },
        ],
      });
      assert.deepEqual(rows, []);
    }
  });

  test("another organisation sees only its own calls, never Acme's", async () => {
    const mine = await ask(
      {
        timeRange: MARCH,
        groupBy: ["assistantId"],
        operations: [
          { operation: "count", column: "id" },
          { operation: "sum", column: "cost" },
        ],
      },
      other.key,
    );
    assert.deepEqual(mine, [{ assistantId: ASSISTANT_X, countId: 1, sumCost: 9 }]);
    const acme = await ask({ timeRange: MARCH, operations: [{ operation: "sum", column: "cost" }] });
    assert.deepEqual(r6(acme), [{ sumCost: 0.9 }]);
  });

  test("a call priced and analysed by the platform shows its cost, summary cost and success evaluation", async () => {
    const own = await t.createOrg("Priced");
    const startedAt = new Date("2026-06-10T12:00:00Z");
    const { id: callId } = await t.db.call.create({
      data: {
        orgId: own.orgId,
        type: "inboundPhoneCall",
        status: "ended",
        endedReason: "customer-ended-call",
        createdAt: startedAt,
        startedAt,
        endedAt: new Date(startedAt.getTime() + 125_400),
        usage: callUsage(),
      },
    });
    await recordCallCost(t.db, callId);
    await recordCallAnalysis(t.db, {
      callId,
      analysis: { summary: "Booked.", successEvaluation: "true" },
      usage: {
        provider: "openai",
        model: "gpt-4o",
        byo: false,
        summary: { promptTokens: 1000, cachedPromptTokens: 0, completionTokens: 100 },
      },
    });
    const call = (await t.request({ method: "GET", url: `/call/${callId}`, key: own.key })).json() as {
      cost: number;
      costBreakdown: { llm: number; analysisCostBreakdown: { summary: number } };
    };
    const rows = await ask(
      {
        timeRange: { start: "2026-06-01T00:00:00Z", end: "2026-07-01T00:00:00Z" },
        groupBy: ["analysis.successEvaluation"],
        operations: [
          { operation: "sum", column: "cost" },
          { operation: "sum", column: "costBreakdown.llm" },
          { operation: "sum", column: "costBreakdown.analysisBreakdown.summary" },
          { operation: "sum", column: "minutesUsed" },
          { operation: "sum", column: "duration" },
        ],
      },
      own.key,
    );
    assert.deepEqual(r6(rows), [
      {
        "analysis.successEvaluation": "true",
        sumCost: call.cost,
        sumCostBreakdownLlm: call.costBreakdown.llm,
        sumCostBreakdownAnalysisBreakdownSummary: call.costBreakdown.analysisCostBreakdown.summary,
        // 125.4 s billed per started second: 126 s.
        sumMinutesUsed: 2.1,
        sumDuration: 2.09,
      },
    ]);
    assert.ok(call.costBreakdown.analysisCostBreakdown.summary > 0);
  });

  test("a call whose cost breakdown holds something else than numbers is still written; those values count as none", async () => {
    const own = await t.createOrg("Odd");
    const id = await seed({ orgId: own.orgId, at: "2026-03-05T00:00:00Z", seconds: 60, cost: 0.2, llm: 0.1 });
    await t.db.call.update({
      where: { id },
      data: { costBreakdown: { llm: "a lot", stt: 1e15, total: 0.2 }, costs: { type: "vapi" } },
    });
    const rows = await ask(
      {
        timeRange: MARCH,
        operations: [
          { operation: "sum", column: "cost" },
          { operation: "avg", column: "costBreakdown.llm" },
          { operation: "sum", column: "costBreakdown.stt" },
          { operation: "max", column: "minutesUsed" },
        ],
      },
      own.key,
    );
    assert.deepEqual(rows, [
      { sumCost: 0.2, avgCostBreakdownLlm: null, sumCostBreakdownStt: 0, maxMinutesUsed: null },
    ]);
  });

  test("a deleted call leaves the analytics with it", async () => {
    const own = await t.createOrg("Deleting");
    const id = await seed({ orgId: own.orgId, at: "2026-03-05T00:00:00Z", seconds: 10, cost: 1 });
    const query = { timeRange: MARCH, operations: [{ operation: "count", column: "id" }] };
    assert.deepEqual(await ask(query, own.key), [{ countId: 1 }]);
    assert.equal((await t.request({ method: "DELETE", url: `/call/${id}`, key: own.key })).statusCode, 200);
    assert.deepEqual(await ask(query, own.key), []);
  });
});

describe("POST /analytics: the hourly rollup answers what the calls themselves answer", () => {
  let own: TestOrg;
  let changed: string;
  const ASSISTANT_Z = randomUUID();
  // The same service reading CallMetric alone: the answers the rollup path must give.
  let raw: AnalyticsService;
  const askRaw = async (query: Record<string, unknown>): Promise<Row[]> => {
    const [answer] = await raw.query(
      { orgId: own.orgId, log: t.app.log },
      { queries: [{ name: "q", table: "call", ...query } as never] },
    );
    assert.ok(answer);
    return answer.result;
  };
  const setZeroRow = (hour: string) =>
    t.db.callMetricHour.findUnique({
      where: { orgId_groupSet_hour_key: { orgId: own.orgId, groupSet: 0, hour: new Date(hour), key: "" } },
    });

  before(async () => {
    own = await t.createOrg("Rollup");
    raw = new AnalyticsService(t.db, { rollup: false });
    const assistants = [ASSISTANT_X, ASSISTANT_Y, ASSISTANT_Z, null];
    const types = ["inboundPhoneCall", "outboundPhoneCall", "webCall"];
    const reasons = ["customer-ended-call", "assistant-ended-call", "silence-timed-out"];
    const evaluations = ["true", "false", undefined];
    // Calls every 37 minutes from 2026-03-06 to 2026-03-11 (America/New_York springs forward on
    // 03-08; Asia/Kolkata's days start at 18:30 UTC), so every hour edge, local day and DST day
    // boundary has calls on both sides, over several assistants, types, reasons and evaluations.
    const start = Date.parse("2026-03-06T00:07:00Z");
    for (let i = 0; i * 37 * 60_000 < 5 * 86_400_000; i++) {
      await seed({
        orgId: own.orgId,
        at: new Date(start + i * 37 * 60_000).toISOString(),
        assistantId: assistants[i % 4] as string | null,
        type: types[i % 3] as string,
        endedReason: reasons[i % 5 === 0 ? 2 : i % 2] as string,
        success: evaluations[i % 3],
        ...(i % 7 === 0
          ? {} // still queued: no cost, no duration
          : {
              seconds: 30 + ((i * 13) % 300) + 0.123,
              cost: 0.01 + ((i * 7) % 50) / 1000,
              llm: 0.003 + (i % 5) / 1000,
              stt: 0.001,
              promptTokens: 100 * (i % 9),
              minutes: 1 + (i % 4),
            }),
      });
    }
    // A call whose cost is recorded again after it was first written (e.g. its analysis cost added),
    // one that moves from queued to ended (another group), and one that is deleted.
    changed = await seed({ orgId: own.orgId, at: "2026-03-08T07:10:00Z", seconds: 60, cost: 0.3, llm: 0.1 });
    await t.db.call.update({
      where: { id: changed },
      data: {
        cost: "0.700000",
        costBreakdown: { transport: 0, stt: 0, llm: 0.5, tts: 0, vapi: 0, total: 0.7, llmPromptTokens: 10 },
      },
    });
    const queued = await seed({ orgId: own.orgId, at: "2026-03-08T07:20:00Z", assistantId: ASSISTANT_Z });
    await t.db.call.update({
      where: { id: queued },
      data: {
        status: "ended",
        endedReason: "assistant-ended-call",
        startedAt: new Date("2026-03-08T07:20:00Z"),
        endedAt: new Date("2026-03-08T07:25:00Z"),
      },
    });
    const deleted = await seed({ orgId: own.orgId, at: "2026-03-08T07:30:00Z", seconds: 60, cost: 5 });
    assert.equal(
      (await t.request({ method: "DELETE", url: `/call/${deleted}`, key: own.key })).statusCode,
      200,
    );
    // A call alone in its hour, then deleted: the hour leaves the rollup.
    const lonely = await seed({ orgId: own.orgId, at: "2026-03-20T10:00:00Z", seconds: 60, cost: 1 });
    assert.equal((await setZeroRow("2026-03-20T10:00:00Z"))?.calls, 1);
    assert.equal(
      (await t.request({ method: "DELETE", url: `/call/${lonely}`, key: own.key })).statusCode,
      200,
    );
  });

  test("the rollup holds the call's current values: a changed cost counts once, a deleted call not at all", async () => {
    assert.equal(await setZeroRow("2026-03-20T10:00:00Z"), null);
    const row = await setZeroRow("2026-03-08T07:00:00Z");
    const calls = await t.db.callMetric.findMany({
      where: {
        orgId: own.orgId,
        createdAt: { gte: new Date("2026-03-08T07:00:00Z"), lt: new Date("2026-03-08T08:00:00Z") },
      },
    });
    assert.ok(row);
    assert.equal(row.calls, calls.length);
    const costs = calls.filter((c) => c.cost !== null);
    assert.equal(row.costCount, costs.length);
    assert.equal(row.costSum.toFixed(6), costs.reduce((a, c) => a + Number(c.cost), 0).toFixed(6));
    assert.ok(costs.some((c) => c.callId === changed && Number(c.cost) === 0.7));
    // Through the API, over whole hours: the changed call's 0.7, not 0.3 and not 1.0; no deleted 5.
    const [hour] = await ask(
      {
        timeRange: { start: "2026-03-08T07:00:00Z", end: "2026-03-08T08:00:00Z" },
        operations: [
          { operation: "count", column: "id" },
          { operation: "sum", column: "cost" },
        ],
      },
      own.key,
    );
    assert.deepEqual(r6([hour as Row]), r6([{ countId: calls.length, sumCost: Number(row.costSum) }]));
  });

  const ranges: [string, Record<string, string>][] = [
    ["whole UTC hours", { start: "2026-03-06T00:00:00Z", end: "2026-03-11T00:00:00Z" }],
    ["partial hours at both edges", { start: "2026-03-06T05:13:20Z", end: "2026-03-10T17:42:00Z" }],
    ["inside one hour", { start: "2026-03-08T07:05:00Z", end: "2026-03-08T07:50:00Z" }],
  ];
  const steps: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ["hour", undefined],
    ["day", undefined],
    ["day", "America/New_York"],
    ["hour", "America/New_York"],
    ["day", "Asia/Kolkata"],
    ["week", "Europe/Paris"],
  ];
  const groupBys: string[][] = [
    [],
    ["assistantId"],
    ["type", "analysis.successEvaluation"],
    ["endedReason", "status"],
  ];
  const operations = [
    { operation: "count", column: "id" },
    { operation: "sum", column: "cost" },
    { operation: "avg", column: "duration" },
    { operation: "sum", column: "duration" },
    { operation: "count", column: "cost" },
    { operation: "avg", column: "costBreakdown.llm" },
    { operation: "sum", column: "costBreakdown.llmPromptTokens" },
    { operation: "sum", column: "minutesUsed" },
    { operation: "history", column: "cost" },
    { operation: "history", column: "id", alias: "callsSoFar" },
  ];
  for (const [what, range] of ranges) {
    test(`${what}: every step, timezone and groupBy answers as the calls do`, async () => {
      let compared = 0;
      for (const [step, timezone] of steps) {
        for (const groupBy of groupBys) {
          const query = {
            timeRange: { ...range, ...(step ? { step } : {}), ...(timezone ? { timezone } : {}) },
            groupBy,
            operations,
          };
          const viaApi = await ask(query, own.key);
          const fromCalls = await askRaw(query);
          const label = JSON.stringify(query.timeRange) + JSON.stringify(groupBy);
          assert.deepEqual(r6(viaApi), r6(fromCalls), label);
          assert.ok(fromCalls.length > 0, label);
          compared++;
        }
      }
      assert.equal(compared, steps.length * groupBys.length);
    });
  }

  test("New York's 23-hour day from the rollup: local midnight to local midnight", async () => {
    const rows = await ask(
      {
        timeRange: {
          start: "2026-03-08T05:00:00Z",
          end: "2026-03-09T04:00:00Z",
          step: "day",
          timezone: "America/New_York",
        },
        operations: [{ operation: "count", column: "id" }],
      },
      own.key,
    );
    const calls = await t.db.callMetric.count({
      where: {
        orgId: own.orgId,
        createdAt: { gte: new Date("2026-03-08T05:00:00Z"), lt: new Date("2026-03-09T04:00:00Z") },
      },
    });
    assert.deepEqual(rows, [{ date: "2026-03-08T05:00:00.000Z", countId: calls }]);
  });
});

describe("POST /analytics: bad requests name the field", () => {
  const op = [{ operation: "count", column: "id" }];
  const cases: [string, object, RegExp][] = [
    ["no queries", { queries: [] }, /body\.queries/],
    [
      "more than 10 queries",
      { queries: Array.from({ length: 11 }, (_, i) => ({ name: `q${i}`, table: "call", operations: op })) },
      /body\.queries/,
    ],
    [
      "the subscription table",
      { queries: [{ name: "q", table: "subscription", operations: op }] },
      /body\.queries\[0\]\.table/,
    ],
    [
      "an unknown table",
      { queries: [{ name: "q", table: "calls", operations: op }] },
      /body\.queries\[0\]\.table/,
    ],
    [
      "an unknown column",
      { queries: [{ name: "q", table: "call", operations: [{ operation: "sum", column: "price" }] }] },
      /body\.queries\[0\]\.operations\[0\]\.column must be one of/,
    ],
    [
      "an unknown operation",
      { queries: [{ name: "q", table: "call", operations: [{ operation: "median", column: "cost" }] }] },
      /body\.queries\[0\]\.operations\[0\]\.operation must be one of/,
    ],
    [
      "no operations",
      { queries: [{ name: "q", table: "call", operations: [] }] },
      /body\.queries\[0\]\.operations/,
    ],
    [
      "an unknown groupBy",
      { queries: [{ name: "q", table: "call", groupBy: ["phoneNumberId"], operations: op }] },
      /body\.queries\[0\]\.groupBy\[0\] must be one of/,
    ],
    [
      "a name over 40 characters",
      { queries: [{ name: "n".repeat(41), table: "call", operations: op }] },
      /body\.queries\[0\]\.name/,
    ],
    [
      "an unknown timezone",
      { queries: [{ name: "q", table: "call", timeRange: { timezone: "Mars/Olympus" }, operations: op }] },
      /body\.queries\[0\]\.timeRange\.timezone "Mars\/Olympus" is not a known IANA timezone/,
    ],
    [
      "a start that is not a date-time",
      { queries: [{ name: "q", table: "call", timeRange: { start: "yesterday" }, operations: op }] },
      /body\.queries\[0\]\.timeRange\.start/,
    ],
    [
      "an end before the start",
      {
        queries: [
          {
            name: "q",
            table: "call",
            timeRange: { start: "2026-03-02T00:00:00Z", end: "2026-03-01T00:00:00Z" },
            operations: op,
          },
        ],
      },
      /body\.queries\[0\]\.timeRange\.end must be after body\.queries\[0\]\.timeRange\.start/,
    ],
    [
      "an unknown step",
      { queries: [{ name: "q", table: "call", timeRange: { step: "fortnight" }, operations: op }] },
      /body\.queries\[0\]\.timeRange\.step must be one of/,
    ],
    [
      "too many buckets",
      {
        queries: [
          {
            name: "q",
            table: "call",
            timeRange: { ...MARCH, step: "minute" },
            operations: op,
          },
        ],
      },
      /body\.queries\[0\]\.timeRange\.step "minute" cuts this range into up to 44,641 buckets; at most 2,000/,
    ],
    [
      "an alias used twice",
      {
        queries: [
          {
            name: "q",
            table: "call",
            operations: [
              { operation: "sum", column: "cost", alias: "total" },
              { operation: "avg", column: "cost", alias: "total" },
            ],
          },
        ],
      },
      /body\.queries\[0\]\.operations\[1\]\.alias "total" is already a key/,
    ],
    [
      "an alias that is a groupBy field",
      {
        queries: [
          {
            name: "q",
            table: "call",
            groupBy: ["status"],
            operations: [{ operation: "count", column: "id", alias: "status" }],
          },
        ],
      },
      /body\.queries\[0\]\.operations\[0\]\.alias "status"/,
    ],
    [
      "avg of id",
      { queries: [{ name: "q", table: "call", operations: [{ operation: "avg", column: "id" }] }] },
      /body\.queries\[0\]\.operations\[0\]\.operation "avg" does not apply to column "id"/,
    ],
    [
      "groupByVariableValue",
      {
        queries: [{ name: "q", table: "call", groupByVariableValue: [{ key: "plan" }], operations: op }],
      },
      /body\.queries\[0\]\.groupByVariableValue is not supported/,
    ],
    [
      "an unknown field",
      { queries: [{ name: "q", table: "call", operations: op, filter: {} }] },
      /body\.queries\[0\]\.filter is not a recognised field/,
    ],
  ];
  for (const [what, payload, message] of cases) {
    test(`${what}: 400`, async () => {
      const res = await analytics(payload);
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as { statusCode: number; error: string; message: string };
      assert.equal(body.error, "Bad Request");
      assert.match(body.message, message);
    });
  }

  test("without a key 401; with a public key 403", async () => {
    const payload = { queries: [{ name: "q", table: "call", operations: op }] };
    assert.equal((await t.request({ method: "POST", url: "/analytics", payload })).statusCode, 401);
    const pub = await t.request({
      method: "POST",
      url: "/token",
      key: org.key,
      payload: { name: "browser", tag: "public" },
    });
    assert.equal(pub.statusCode, 201, pub.body);
    const res = await analytics(payload, (pub.json() as { value: string }).value);
    assert.equal(res.statusCode, 403, res.body);
  });
});
