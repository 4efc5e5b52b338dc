import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { recordCallCost } from "../../libs/billing/index.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, uniqueNumber } from "../helpers/bodies.ts";
import { callUsage, insertEndedCall } from "./fixtures.ts";

let t: TestApi;
let org: TestOrg;
let other: TestOrg;
let assistantId: string;
let phoneNumberId: string;
let callIds: string[];
const now = new Date();
const today = now.toISOString().slice(0, 10);

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Acme");
  other = await t.createOrg("Globex");
  const a = await t.request({ method: "POST", url: "/assistant", key: org.key, payload: assistantBody() });
  assert.equal(a.statusCode, 201, a.body);
  assistantId = a.json().id;
  const number = uniqueNumber();
  phoneNumberId = (
    await t.db.phoneNumber.create({
      data: {
        orgId: org.orgId,
        provider: "twilio",
        number,
        twilioAccountSid: "AC00000000000000000000000000000000",
        twilioAuthToken: "sealed",
        twilioAuthTokenKeyId: "k",
        config: {},
      },
    })
  ).id;
  // Three calls this month: two through the assistant and number, one BYO web-ish call.
  callIds = [
    await insertEndedCall(t.db, { orgId: org.orgId, assistantId, phoneNumberId }),
    await insertEndedCall(t.db, { orgId: org.orgId, assistantId, phoneNumberId }),
    await insertEndedCall(t.db, { orgId: org.orgId, usage: callUsage({ stt: true, llm: true, tts: true }) }),
  ];
  for (const id of callIds) await recordCallCost(t.db, id);
  // The other organisation has a call too; Acme must never see it.
  await recordCallCost(t.db, await insertEndedCall(t.db, { orgId: other.orgId }));
});
after(async () => {
  await t.close();
});

const get = (url: string, key = org.key) => t.request({ method: "GET", url, key });

describe("GET /billing/usage", () => {
  test("groupBy=day: every day of the month, with billed, passthrough, minutes and calls", async () => {
    const res = await get("/billing/usage?groupBy=day");
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.groupBy, "day");
    assert.equal(body.currency, "usd");
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    assert.equal(body.start, monthStart.toISOString());
    assert.equal(body.rows[0].key, monthStart.toISOString().slice(0, 10));
    const day = body.rows.find((r: { key: string }) => r.key === today);
    // 2 × 246378 + 122850 billed; 123528 passthrough (BYO call's stt+llm+tts).
    assert.deepEqual(day, {
      key: today,
      calls: 3,
      minutes: 6.3,
      billedMicros: 615_606,
      billedUsd: "0.615606",
      passthroughMicros: 123_528,
      passthroughUsd: "0.123528",
      totalMicros: 739_134,
      totalUsd: "0.739134",
    });
    const { key: _k, ...dayTotals } = day;
    assert.deepEqual(body.totals, dayTotals);
  });

  test("groupBy=assistant, phoneNumber and category", async () => {
    const byAssistant = (await get("/billing/usage?groupBy=assistant")).json();
    assert.deepEqual(
      byAssistant.rows.map((r: Record<string, unknown>) => [r.key, r.label, r.calls, r.billedMicros]),
      [
        [assistantId, "Front desk", 2, 492_756],
        ["none", "No saved assistant", 1, 122_850],
      ],
    );
    const byNumber = (await get("/billing/usage?groupBy=phoneNumber")).json();
    assert.equal(byNumber.rows[0].key, phoneNumberId);
    assert.match(byNumber.rows[0].label, /^\+\d+$/);
    const byCategory = (await get("/billing/usage?groupBy=category")).json();
    assert.deepEqual(
      byCategory.rows.map((r: Record<string, unknown>) => [r.key, r.billedMicros, r.passthroughMicros]),
      [
        ["transport", 3 * 17_850, 0],
        ["stt", 2 * 15_528, 15_528],
        ["llm", 2 * 33_000, 33_000],
        ["tts", 2 * 75_000, 75_000],
        ["platform", 3 * 105_000, 0],
        // No call here was analysed: the sixth category is present, at zero.
        ["analysis", 0, 0],
      ],
    );
    assert.equal(byCategory.totals.calls, 3);
    assert.equal(byCategory.totals.totalMicros, 739_134);
  });

  test("explicit ranges; a range with no calls is all zeros", async () => {
    const res = await get("/billing/usage?start=2024-01-01&end=2024-01-03T00:00:00Z");
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(
      body.rows.map((r: { key: string }) => r.key),
      ["2024-01-01", "2024-01-02"],
    );
    assert.equal(body.totals.totalUsd, "0.000000");
  });

  test("bad ranges and parameters answer 400 naming the field", async () => {
    const cases: [string, RegExp][] = [
      ["/billing/usage?start=2025-06-10&end=2025-06-01", /querystring\.end must be after querystring\.start/],
      ["/billing/usage?start=2024-01-01&end=2025-06-01", /querystring\.end must be at most 400 days/],
      ["/billing/usage?groupBy=week", /groupBy/],
      ["/billing/usage?start=yesterday", /querystring\.start/],
      // Valid ISO 8601, but before year 1 (in UTC): nothing can be stored or reported then.
      ["/billing/usage?start=0000-01-01&end=0000-06-01", /querystring\.start must be .*year 0001/],
      [
        `/billing/usage?start=${encodeURIComponent("0001-01-01T00:00:00+14:00")}&end=0001-02-01`,
        /querystring\.start must be .*year 0001/,
      ],
      [
        "/billing/reconciliation?start=0000-01-01T00:00:00Z&end=2020-01-01T00:00:00Z",
        /querystring\.start must be .*year 0001/,
      ],
      ["/billing/usage?currency=eur", /currency is not a recognised field/],
    ];
    for (const [url, message] of cases) {
      const res = await get(url);
      assert.equal(res.statusCode, 400, url);
      assert.match(res.json().message, message, url);
    }
  });

  test("requires a private key", async () => {
    assert.equal((await t.request({ method: "GET", url: "/billing/usage" })).statusCode, 401);
  });
});

describe("GET /billing/summary", () => {
  test("the current month: billed excludes BYO passthrough; limits and state", async () => {
    await t.request({
      method: "PATCH",
      url: "/billing/settings",
      key: org.key,
      payload: { monthlySpendLimitUsd: "1" },
    });
    const res = await get("/billing/summary");
    assert.equal(res.statusCode, 200, res.body);
    const s = res.json();
    assert.equal(s.billedMicros, 615_606);
    assert.equal(s.billedUsd, "0.615606");
    assert.equal(s.passthroughUsd, "0.123528");
    assert.equal(s.totalUsd, "0.739134");
    assert.deepEqual(s.byCategory.platform, {
      billedMicros: 315_000,
      billedUsd: "0.315000",
      passthroughMicros: 0,
      passthroughUsd: "0.000000",
      totalMicros: 315_000,
      totalUsd: "0.315000",
    });
    assert.equal(s.byCategory.llm.passthroughMicros, 33_000);
    assert.equal(s.minutes, 6.3);
    assert.equal(s.calls, 3);
    assert.equal(s.spendLimitUsd, "1.000000");
    assert.equal(s.remainingUsd, "0.384394");
    assert.equal(s.concurrencyLimit, 10);
    assert.equal(s.activeCalls, 0);
    assert.equal(s.billingState, "active");
    assert.equal(s.billingIncrement, "second");
  });
});

describe("/billing/settings", () => {
  test("get and patch; null removes the limit", async () => {
    const patched = await t.request({
      method: "PATCH",
      url: "/billing/settings",
      key: org.key,
      payload: { monthlySpendLimitUsd: "250.5", concurrencyLimit: 25, billingIncrement: "minute" },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json(), {
      monthlySpendLimitUsd: "250.500000",
      monthlySpendLimitMicros: 250_500_000,
      concurrencyLimit: 25,
      billingIncrement: "minute",
      billingState: "active",
    });
    assert.deepEqual((await get("/billing/settings")).json(), patched.json());
    const cleared = await t.request({
      method: "PATCH",
      url: "/billing/settings",
      key: org.key,
      payload: { monthlySpendLimitUsd: null, billingIncrement: "second" },
    });
    assert.equal(cleared.json().monthlySpendLimitUsd, null);
    assert.equal(cleared.json().concurrencyLimit, 25);
  });

  test("invalid settings answer 400 naming the field", async () => {
    const cases: [unknown, RegExp][] = [
      [{ concurrencyLimit: 0 }, /body\.concurrencyLimit/],
      [{ concurrencyLimit: 1001 }, /body\.concurrencyLimit/],
      [{ billingIncrement: "hour" }, /body\.billingIncrement/],
      [{ monthlySpendLimitUsd: 100 }, /body\.monthlySpendLimitUsd/],
      [{ monthlySpendLimitUsd: "1.1234567" }, /body\.monthlySpendLimitUsd/],
      [{ billingState: "active" }, /billingState is not a recognised field/],
    ];
    for (const [payload, message] of cases) {
      const res = await t.request({
        method: "PATCH",
        url: "/billing/settings",
        key: org.key,
        payload: payload as object,
      });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.match(res.json().message, message, JSON.stringify(payload));
    }
  });
});

describe("tenant isolation", () => {
  test("another organisation sees only its own usage and settings", async () => {
    const usage = (await get("/billing/usage?groupBy=assistant", other.key)).json();
    assert.deepEqual(
      usage.rows.map((r: Record<string, unknown>) => [r.key, r.calls, r.totalMicros]),
      [["none", 1, 246_378]],
    );
    const summary = (await get("/billing/summary", other.key)).json();
    assert.equal(summary.billedMicros, 246_378);
    assert.equal(summary.calls, 1);
    assert.equal((await get("/billing/settings", other.key)).json().concurrencyLimit, 10);
  });
});

describe("GET /call/:id after finalisation", () => {
  test("cost, costBreakdown and costs equal the sum of the call's lines", async () => {
    for (const id of callIds) {
      const res = await get(`/call/${id}`);
      assert.equal(res.statusCode, 200, res.body);
      const call = res.json();
      const lines = await t.db.usageLine.findMany({ where: { callId: id } });
      const sum = lines.reduce((a, l) => a + l.amountMicros, 0n);
      assert.equal(lines.length, 5);
      assert.equal(Math.round(call.cost * 1e6), Number(sum));
      assert.equal(call.costBreakdown.total, call.cost);
      const parts = ["transport", "stt", "llm", "tts", "vapi"].reduce((a, k) => a + call.costBreakdown[k], 0);
      assert.equal(Math.round(parts * 1e6), Number(sum));
      const costs = call.costs.reduce((a: number, c: { cost: number }) => a + c.cost, 0);
      assert.equal(Math.round(costs * 1e6), Number(sum));
      assert.deepEqual(
        call.costs.map((c: { type: string }) => c.type),
        ["transport", "transcriber", "model", "voice", "vapi"],
      );
      for (const c of call.costs) assert.ok(c.billedBy === "platform" || c.billedBy === "passthrough");
      assert.equal(call.costBreakdown.llmPromptTokens, 12_000);
      assert.equal(call.costBreakdown.ttsCharacters, 1_500);
    }
    const byo = (await get(`/call/${callIds[2]}`)).json();
    assert.equal(byo.cost, 0.246378);
    assert.deepEqual(
      byo.costs.map((c: { billedBy: string }) => c.billedBy),
      ["platform", "passthrough", "passthrough", "passthrough", "platform"],
    );
  });
});
