import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CATEGORIES,
  DEFAULT_PRICE_CATALOG,
  effectivePricing,
  insertUsageLines,
  priceCall,
  recordCallCost,
  SpendControls,
} from "../../libs/billing/index.ts";
import type { UsageLine } from "../../libs/db/generated/client.ts";
import { Prisma } from "../../libs/db/index.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { uniqueNumber } from "../helpers/bodies.ts";
import { callUsage, insertEndedCall } from "./fixtures.ts";

// The daily rollup (UsageDaily) behind GET /billing/usage and /billing/summary: it is kept in step
// with the ledger exactly (repeated and concurrent finalisations add nothing), and every report read
// through it equals the same report computed from the ledger's lines alone, for ranges aligned to
// UTC midnight and not.

let t: TestApi;
let org: TestOrg;
let other: TestOrg;
const assistants: string[] = [];
const numbers: string[] = [];
const now = new Date();
const thisMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));

async function phoneNumber(orgId: string): Promise<string> {
  const row = await t.db.phoneNumber.create({
    data: {
      orgId,
      provider: "twilio",
      number: uniqueNumber(),
      twilioAccountSid: "AC00000000000000000000000000000000",
      twilioAuthToken: "sealed",
      twilioAuthTokenKeyId: "k",
      config: {},
    },
  });
  return row.id;
}

/** A call of `seconds`, BYO on every provider when `byo`, started at `at`. */
async function call(
  at: string | Date,
  seconds: number,
  who: { assistant?: number; number?: number; byo?: boolean; orgId?: string } = {},
): Promise<string> {
  const usage = callUsage(who.byo ? { stt: true, llm: true, tts: true } : {});
  usage.durationSeconds = seconds;
  usage.transport.seconds = seconds;
  usage.stt.audioSeconds = Math.max(0, seconds - 3.3);
  usage.llm.promptTokens = Math.round(seconds * 97);
  usage.llm.cachedPromptTokens = Math.round(seconds * 31);
  usage.llm.completionTokens = Math.round(seconds * 7);
  usage.tts.characters = Math.round(seconds * 13);
  return insertEndedCall(t.db, {
    orgId: who.orgId ?? org.orgId,
    startedAt: new Date(at),
    usage,
    assistantId: who.assistant === undefined ? null : (assistants[who.assistant] ?? null),
    phoneNumberId: who.number === undefined ? null : (numbers[who.number] ?? null),
  });
}

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Rollup");
  other = await t.createOrg("Elsewhere");
  for (const name of ["Ada", "Grace", "Linus"]) {
    assistants.push((await t.db.assistant.create({ data: { orgId: org.orgId, name, config: {} } })).id);
  }
  numbers.push(await phoneNumber(org.orgId), await phoneNumber(org.orgId));

  const ids = [
    // March 2026, across several days, at and around midnight UTC.
    await call("2026-03-01T00:00:00.000Z", 61.2, { assistant: 0, number: 0 }),
    await call("2026-03-01T23:59:59.999Z", 125.4, { assistant: 1 }),
    await call("2026-03-02T05:59:59.999Z", 30.05, { assistant: 0, number: 1, byo: true }),
    await call("2026-03-02T06:00:00.000Z", 300, { number: 0 }),
    await call("2026-03-02T17:45:10.250Z", 12.5, { assistant: 2, number: 0, byo: true }),
    await call("2026-03-03T01:00:00.000Z", 45.45, { assistant: 1, number: 1 }),
    await call("2026-03-03T12:59:59.000Z", 600.001),
    await call("2026-03-03T20:30:00.000Z", 8, { assistant: 0, byo: true }),
    await call("2026-03-04T03:59:00.000Z", 77.7, { assistant: 2, number: 1 }),
    await call("2026-03-04T18:30:00.000Z", 1.2, { assistant: 0, number: 0 }),
    await call("2026-03-05T18:29:59.999Z", 240, { assistant: 1, number: 0, byo: true }),
    await call("2026-03-05T18:30:00.000Z", 33, { assistant: 1 }),
    await call("2026-03-31T23:00:00.000Z", 90, { assistant: 2 }),
    await call("2026-04-01T00:00:00.000Z", 15, { assistant: 2, number: 1 }),
    // This month, for the summary and the spend figure.
    await call(thisMonth, 42, { assistant: 0, number: 0 }),
    await call(new Date(thisMonth.getTime() + 3_600_000), 100, { assistant: 1, byo: true }),
    await call(now, 5, {}),
  ];
  for (const id of ids) await recordCallCost(t.db, id);
  // A repeated finalisation and concurrent ones (retry, sweeper, second process).
  await recordCallCost(t.db, ids[1] as string);
  await recordCallCost(t.db, ids[14] as string);
  const racing = await call("2026-03-03T20:30:00.000Z", 19.9, { assistant: 0, number: 1 });
  await Promise.all([1, 2, 3, 4].map(() => recordCallCost(t.db, racing)));
  // A call that never connected (no usage: zero lines) and another organisation's call.
  await recordCallCost(t.db, await insertEndedCall(t.db, { orgId: org.orgId, usage: null }));
  await recordCallCost(t.db, await call("2026-03-02T10:00:00.000Z", 50, { orgId: other.orgId }));
});
after(async () => {
  await t.close();
});

// ------------------------------------------------------------------ the ledger-only reference

interface Split {
  billedMicros: number;
  billedUsd: string;
  passthroughMicros: number;
  passthroughUsd: string;
  totalMicros: number;
  totalUsd: string;
}

function usd(micros: bigint): string {
  return `${micros / 1_000_000n}.${(micros % 1_000_000n).toString().padStart(6, "0")}`;
}

function money(lines: UsageLine[]): Split {
  let billed = 0n;
  let passthrough = 0n;
  for (const l of lines) {
    if (l.billedBy === "platform") billed += l.amountMicros;
    else passthrough += l.amountMicros;
  }
  return {
    billedMicros: Number(billed),
    billedUsd: usd(billed),
    passthroughMicros: Number(passthrough),
    passthroughUsd: usd(passthrough),
    totalMicros: Number(billed + passthrough),
    totalUsd: usd(billed + passthrough),
  };
}

function minutes(lines: UsageLine[]): number {
  const sum = lines.reduce((acc, l) => acc.plus(l.quantity), new Prisma.Decimal(0));
  return Number(sum.toDecimalPlaces(6).toFixed());
}

type GroupBy = "day" | "assistant" | "category" | "phoneNumber";

/** GET /billing/usage computed from the org's UsageLine rows alone (labels aside). */
async function fromLines(start: Date, end: Date, groupBy: GroupBy, splitByCategory: boolean) {
  const lines = await t.db.usageLine.findMany({
    where: { orgId: org.orgId, occurredAt: { gte: start, lt: end } },
  });
  const keyOf = (l: UsageLine): string => {
    if (groupBy === "day") return l.occurredAt.toISOString().slice(0, 10);
    if (groupBy === "assistant") return l.assistantId ?? "none";
    if (groupBy === "phoneNumber") return l.phoneNumberId ?? "none";
    return l.category;
  };
  const groups = new Map<string, UsageLine[]>();
  for (const l of lines) groups.set(keyOf(l), [...(groups.get(keyOf(l)) ?? []), l]);
  const row = (key: string, ls: UsageLine[]) => {
    const counted = groupBy === "category" ? ls : ls.filter((l) => l.category === "platform");
    const timed = groupBy === "category" ? ls.filter((l) => l.unit === "minute") : counted;
    return {
      key,
      calls: counted.length,
      minutes: minutes(timed),
      ...money(ls),
      ...(splitByCategory
        ? {
            byCategory: Object.fromEntries(
              CATEGORIES.map((c) => [c, money(ls.filter((l) => l.category === c))]),
            ),
          }
        : {}),
    };
  };
  let keys: string[];
  if (groupBy === "day") {
    keys = [];
    const first = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
    for (let d = first; d < end.getTime(); d += 86_400_000) keys.push(new Date(d).toISOString().slice(0, 10));
  } else if (groupBy === "category") {
    keys = [...CATEGORIES];
  } else {
    keys = [...groups.keys()];
  }
  const rows = keys.map((k) => row(k, groups.get(k) ?? []));
  if (groupBy === "assistant" || groupBy === "phoneNumber") {
    rows.sort((a, b) => b.totalMicros - a.totalMicros || a.key.localeCompare(b.key));
  }
  const platform = lines.filter((l) => l.category === "platform");
  return { rows, totals: { calls: platform.length, minutes: minutes(platform), ...money(lines) } };
}

async function fromApi(query: string) {
  const res = await t.request({ method: "GET", url: `/billing/usage?${query}`, key: org.key });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { start: string; end: string; rows: { label?: string }[]; totals: object };
  const rows = body.rows.map(({ label: _label, ...rest }) => rest);
  return { start: new Date(body.start), end: new Date(body.end), rows, totals: body.totals };
}

// ------------------------------------------------------------------ tests

describe("UsageDaily rollup", () => {
  test("holds exactly the ledger's lines per (org, UTC day, assistant, number, category, billedBy)", async () => {
    const expected = await t.db.$queryRaw<Record<string, unknown>[]>`
      SELECT "orgId"::text AS org, to_char(("occurredAt" AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day,
        COALESCE("assistantId"::text, '') AS assistant, COALESCE("phoneNumberId"::text, '') AS number,
        "category", "billedBy", SUM("amountMicros")::bigint AS micros, SUM("quantity")::numeric(24, 6)::text AS quantity,
        COUNT(*)::int AS lines
      FROM "UsageLine" GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`;
    const actual = await t.db.$queryRaw<Record<string, unknown>[]>`
      SELECT "orgId"::text AS org, to_char("day", 'YYYY-MM-DD') AS day, "assistantKey" AS assistant,
        "phoneNumberKey" AS number, "category", "billedBy", "amountMicros" AS micros, "quantity"::text AS quantity,
        "lines"
      FROM "UsageDaily" ORDER BY 1, 2, 3, 4, 5, 6`;
    assert.ok(expected.length > 20);
    assert.deepEqual(actual, expected);
  });

  test("a batch written twice (the bench's batched path) is rolled up once", async () => {
    const usage = callUsage();
    const priced = priceCall(usage, effectivePricing(DEFAULT_PRICE_CATALOG.tableAt(new Date("2026-02-10"))));
    const callId = await insertEndedCall(t.db, {
      orgId: other.orgId,
      startedAt: new Date("2026-02-10T08:00:00Z"),
    });
    const lines = priced.lines.map((l) => ({
      ...l,
      orgId: other.orgId,
      callId,
      assistantId: null,
      phoneNumberId: null,
      occurredAt: new Date("2026-02-10T08:00:00Z"),
    }));
    assert.equal(await insertUsageLines(t.db, lines), 5);
    assert.equal(await insertUsageLines(t.db, lines), 0);
    const rolled = await t.db.usageDaily.findMany({
      where: { orgId: other.orgId, day: new Date("2026-02-10T00:00:00Z") },
    });
    assert.equal(rolled.length, 5);
    assert.deepEqual(
      rolled.map((r) => r.lines),
      [1, 1, 1, 1, 1],
    );
    assert.equal(
      rolled.reduce((a, r) => a + r.amountMicros, 0n),
      priced.totalMicros,
    );
  });
});

describe("GET /billing/usage through the rollup equals the ledger's lines", () => {
  const ranges: [string, string, string][] = [
    ["aligned month", "2026-03-01", "2026-04-01"],
    ["aligned, several months", "2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z"],
    ["unaligned both ends", "2026-03-02T06:00:00Z", "2026-03-05T18:30:00Z"],
    ["unaligned start only", "2026-03-01T23:59:59.999Z", "2026-03-04"],
    ["unaligned end only", "2026-03-02", "2026-03-04T03:59:00.001Z"],
    ["within one day", "2026-03-03T01:00:00Z", "2026-03-03T13:00:00Z"],
    ["across one midnight, no whole day", "2026-03-03T20:00:00Z", "2026-03-04T04:00:00Z"],
    ["offset time zone", "2026-03-02T08:00:00+02:00", "2026-03-06T00:30:00-05:00"],
  ];
  for (const [name, start, end] of ranges) {
    test(`${name}: ${start} → ${end}`, async () => {
      const range = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
      for (const groupBy of ["day", "assistant", "category", "phoneNumber"] as const) {
        const actual = await fromApi(`${range}&groupBy=${groupBy}`);
        const expected = await fromLines(actual.start, actual.end, groupBy, false);
        assert.deepEqual(actual.rows, expected.rows, `${groupBy} rows`);
        assert.deepEqual(actual.totals, expected.totals, `${groupBy} totals`);
        if (groupBy !== "category") {
          const split = await fromApi(`${range}&groupBy=${groupBy}&split=category`);
          const splitExpected = await fromLines(actual.start, actual.end, groupBy, true);
          assert.deepEqual(split.rows, splitExpected.rows, `${groupBy} split=category rows`);
          assert.deepEqual(split.totals, splitExpected.totals, `${groupBy} split=category totals`);
        }
      }
    });
  }

  test("the ranges above are not empty: the comparison bites", async () => {
    const r = await fromApi("start=2026-03-02T06:00:00Z&end=2026-03-05T18:30:00Z&groupBy=day");
    assert.equal((r.totals as { calls: number }).calls, 9);
    const month = await fromApi("start=2026-03-01&end=2026-04-01&groupBy=assistant");
    assert.equal((month.totals as { calls: number }).calls, 14);
    assert.ok(month.rows.length >= 4);
  });
});

describe("GET /billing/summary and the spend figure through the rollup", () => {
  test("equal the current month's lines", async () => {
    const res = await t.request({ method: "GET", url: "/billing/summary", key: org.key });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const lines = await t.db.usageLine.findMany({
      where: { orgId: org.orgId, occurredAt: { gte: thisMonth, lt: end } },
    });
    const platform = lines.filter((l) => l.category === "platform");
    const pick = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, body[k]]));
    const moneyKeys = Object.keys(money([]));
    assert.deepEqual(pick([...moneyKeys, "minutes", "calls"]), {
      ...money(lines),
      minutes: minutes(platform),
      calls: platform.length,
    });
    assert.deepEqual(
      body.byCategory,
      Object.fromEntries(CATEGORIES.map((c) => [c, money(lines.filter((l) => l.category === c))])),
    );
    const spent = await new SpendControls(t.db, undefined).monthToDateBilledMicros(org.orgId);
    assert.equal(Number(spent), body.billedMicros);
    // 3 calls started this month, plus the zero-usage call (created now).
    assert.equal(body.calls, 4);
    assert.ok(body.totalMicros > 0);
  });
});
