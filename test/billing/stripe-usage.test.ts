import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import { billingJobHandlers } from "../../libs/billing/jobs.ts";
import { createStripeClient, type StripeBilling } from "../../libs/billing/stripe.ts";
import { BullMqQueue, type JobLogger } from "../../libs/queue/index.ts";
import { FakeStripe } from "../fakes/stripe.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { billingFor, STANDARD_LINES, seedCall, stripeEnv, waitFor } from "./stripe-helpers.ts";

let fake: FakeStripe;
let t: TestApi;
let billing: StripeBilling;

before(async () => {
  fake = await FakeStripe.start();
  t = await startTestApi(stripeEnv(fake));
  billing = billingFor(t.db, t.config.providers, { redis: t.redis });
});
after(async () => {
  await t.close();
  await fake.close();
});

async function platformLines(callId: string) {
  return t.db.usageLine.findMany({ where: { callId }, orderBy: { category: "asc" } });
}

describe("FakeStripe speaks Stripe to the official SDK", () => {
  test("a wrong key is refused with Stripe's 401 error", async () => {
    const wrong = createStripeClient(fake.baseUrl, "sk_test_wrong");
    await assert.rejects(wrong.customers.create({ name: "x" }), (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeAuthenticationError);
      assert.equal(err.statusCode, 401);
      return true;
    });
  });

  test("Idempotency-Key replays the first answer; reuse with other params is refused", async () => {
    const stripe = createStripeClient(fake.baseUrl, fake.secretKey);
    const key = `k-${randomBytes(4).toString("hex")}`;
    const a = await stripe.customers.create({ name: "Same" }, { idempotencyKey: key });
    const b = await stripe.customers.create({ name: "Same" }, { idempotencyKey: key });
    assert.equal(a.id, b.id);
    await assert.rejects(
      stripe.customers.create({ name: "Other" }, { idempotencyKey: key }),
      (err: unknown) => {
        assert.ok(err instanceof Stripe.errors.StripeError);
        assert.equal(err.type, "StripeIdempotencyError");
        return true;
      },
    );
    await assert.rejects(stripe.customers.retrieve("cus_missing"), (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeInvalidRequestError);
      assert.equal(err.statusCode, 404);
      assert.equal(err.code, "resource_missing");
      return true;
    });
  });

  test("meter events outside Stripe's timestamp window or without the payload keys are refused", async () => {
    const stripe = createStripeClient(fake.baseUrl, fake.secretKey);
    const meters = await billing.ensureMeters();
    const cus = await stripe.customers.create({ name: "Window" });
    const old = Math.floor(Date.now() / 1000) - 36 * 86_400;
    await assert.rejects(
      stripe.billing.meterEvents.create({
        event_name: meters.voiceMinutes.event_name,
        timestamp: old,
        payload: { stripe_customer_id: cus.id, value: "1" },
      }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && err.param === "timestamp",
    );
    await assert.rejects(
      stripe.billing.meterEvents.create({
        event_name: meters.voiceMinutes.event_name,
        payload: { value: "1" },
      }),
      (err: unknown) => err instanceof Stripe.errors.StripeInvalidRequestError && err.statusCode === 400,
    );
  });
});

describe("reporting usage to Stripe", () => {
  test("the customer and subscription are created once, even by two concurrent first reports", async () => {
    const org = await t.createOrg("Concurrent");
    const a = await seedCall(t.db, org.orgId);
    const b = await seedCall(t.db, org.orgId);
    // Two workers (separate service instances, separate caches) report at the same moment.
    const other = billingFor(t.db, t.config.providers);
    const [ra, rb] = await Promise.all([billing.reportCallUsage(a.callId), other.reportCallUsage(b.callId)]);
    assert.equal(ra.reported, 3);
    assert.equal(rb.reported, 3);

    const customers = [...fake.customers.values()].filter(
      (c) => (c.metadata as Record<string, string>).org_id === org.orgId,
    );
    assert.equal(customers.length, 1);
    const row = await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } });
    assert.equal(row.stripeCustomerId, customers[0]?.id);
    const subs = [...fake.subscriptions.values()].filter((s) => s.customer === row.stripeCustomerId);
    assert.equal(subs.length, 1);
    assert.equal(row.stripeSubscriptionId, subs[0]?.id);

    // The subscription's two metered prices are attached to the two meters, created once.
    const meterNames = [...fake.meters.values()].map((m) => m.event_name).sort();
    assert.deepEqual(meterNames, ["provider_usage", "voice_minutes"]);
    const sub = subs[0];
    assert.ok(sub);
    const items = (sub.items as { data: Array<{ price: Record<string, unknown> }> }).data;
    const byMeter = new Map(
      items.map((i) => [
        fake.meters.get((i.price.recurring as { meter: string }).meter)?.event_name,
        i.price.unit_amount_decimal,
      ]),
    );
    assert.equal(byMeter.get("voice_minutes"), "5"); // $0.05 per minute, in cents
    assert.equal(byMeter.get("provider_usage"), "0.0001"); // $0.000001 per micro-dollar, in cents
  });

  test("the minute price follows the platform fee the ledger charged the organisation", async () => {
    const org = await t.createOrg("Discounted");
    const lines = STANDARD_LINES.map((l) =>
      l.category === "platform" ? { ...l, unitPrice: "0.035", amountMicros: 87_500n } : l,
    );
    const { callId } = await seedCall(t.db, org.orgId, { lines });
    await billing.reportCallUsage(callId);
    const row = await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } });
    const sub = fake.subscriptions.get(row.stripeSubscriptionId as string);
    assert.ok(sub);
    const prices = (sub.items as { data: Array<{ price: Record<string, unknown> }> }).data.map(
      (i) => i.price.unit_amount_decimal,
    );
    assert.deepEqual(prices.sort(), ["0.0001", "3.5"]);
  });

  test("platform lines become meter events (identifier = line id); passthrough lines are never reported", async () => {
    const org = await t.createOrg("Metered");
    const startedAt = new Date(Date.now() - 3 * 3_600_000);
    const { callId, lineIds } = await seedCall(t.db, org.orgId, { startedAt });
    const result = await billing.reportCallUsage(callId);
    assert.deepEqual(result, { configured: true, reported: 3, skippedZero: 0, alreadyReported: 0 });
    const customer = (await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } })).stripeCustomerId;

    const platform = fake.eventsFor(lineIds.platform as string);
    assert.equal(platform.length, 1);
    assert.equal(platform[0]?.event_name, "voice_minutes");
    assert.deepEqual(platform[0]?.payload, { stripe_customer_id: customer, value: "2.5" });
    assert.equal(platform[0]?.timestamp, Math.floor(startedAt.getTime() / 1000));
    assert.deepEqual(fake.eventsFor(lineIds.transport as string)[0]?.payload, {
      stripe_customer_id: customer,
      value: "21250",
    });
    assert.equal(fake.eventsFor(lineIds.transport as string)[0]?.event_name, "provider_usage");
    assert.equal(fake.eventsFor(lineIds.llm as string)[0]?.payload.value, "1500");
    assert.equal(fake.attemptsFor(lineIds.stt as string).length, 0);
    assert.equal(fake.attemptsFor(lineIds.tts as string).length, 0);

    for (const line of await platformLines(callId)) {
      if (line.billedBy === "platform") assert.ok(line.reportedAt, `${line.category} marked reported`);
      else assert.equal(line.reportedAt, null, `${line.category} stays unreported`);
    }
  });

  test("running the report again sends nothing", async () => {
    const org = await t.createOrg("Twice");
    const { callId } = await seedCall(t.db, org.orgId);
    await billing.reportCallUsage(callId);
    const before = fake.meterEventAttempts.length;
    const again = await billing.reportCallUsage(callId);
    assert.deepEqual(again, { configured: true, reported: 0, skippedZero: 0, alreadyReported: 3 });
    assert.equal(fake.meterEventAttempts.length, before);
  });

  test("a line Stripe already holds (our mark was lost) is marked, not billed twice", async () => {
    const org = await t.createOrg("LostMark");
    const { callId, lineIds } = await seedCall(t.db, org.orgId);
    await billing.reportCallUsage(callId);
    await t.db.usageLine.update({ where: { id: lineIds.platform as string }, data: { reportedAt: null } });
    const again = await billing.reportCallUsage(callId);
    assert.equal(again.reported, 1);
    assert.equal(fake.eventsFor(lineIds.platform as string).length, 1);
    assert.equal(fake.attemptsFor(lineIds.platform as string).length, 2);
    const line = await t.db.usageLine.findUniqueOrThrow({ where: { id: lineIds.platform as string } });
    assert.ok(line.reportedAt);
  });

  test("usage older than Stripe's 35-day window is reported with a timestamp inside it", async () => {
    const org = await t.createOrg("Old");
    const { callId, lineIds } = await seedCall(t.db, org.orgId, {
      startedAt: new Date(Date.now() - 40 * 86_400_000),
    });
    await billing.reportCallUsage(callId);
    const ev = fake.eventsFor(lineIds.platform as string)[0];
    assert.ok(ev);
    assert.ok(ev.timestamp >= Math.floor(Date.now() / 1000) - 35 * 86_400);
  });

  test("without STRIPE_SECRET_KEY nothing is sent and nothing is marked", async () => {
    const org = await t.createOrg("NoStripe");
    const { callId } = await seedCall(t.db, org.orgId);
    const unconfigured = billingFor(t.db, { ...t.config.providers, stripeSecretKey: undefined });
    const before = fake.requests.length;
    const r = await unconfigured.reportCallUsage(callId);
    assert.deepEqual(r, { configured: false, reported: 0, skippedZero: 0, alreadyReported: 0 });
    assert.equal(fake.requests.length, before);
    for (const line of await platformLines(callId)) assert.equal(line.reportedAt, null);
    assert.equal((await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } })).stripeCustomerId, null);
  });
});

describe("the billing.report-usage job on BullMQ", () => {
  test("retried after a Stripe failure, it reports each line exactly once", async () => {
    const org = await t.createOrg("Retry");
    const { callId, lineIds } = await seedCall(t.db, org.orgId);
    const queue = new BullMqQueue(t.redis, { prefix: `sbtest-${randomBytes(4).toString("hex")}` });
    try {
      queue.process(billingJobHandlers({ billing }));
      await billing.ensureCustomer(org.orgId);
      // Lines go out in category order (llm, platform, transport): llm is accepted, then platform
      // fails with a 500 and the job throws; BullMQ retries it with backoff.
      fake.failNext(1, 500, 1);
      await queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
      await queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
      await waitFor("all platform lines reported", async () => {
        const lines = await t.db.usageLine.findMany({ where: { callId, billedBy: "platform" } });
        return lines.every((l) => l.reportedAt !== null);
      });
    } finally {
      await queue.close();
    }
    for (const category of ["transport", "llm", "platform"]) {
      assert.equal(fake.eventsFor(lineIds[category] as string).length, 1, `${category} accepted once`);
    }
    // The line accepted before the failure was not sent again; the failed one was retried once.
    assert.equal(fake.attemptsFor(lineIds.llm as string).length, 1);
    assert.deepEqual(
      fake.attemptsFor(lineIds.platform as string).map((a) => a.status),
      [500, 200],
    );
    assert.equal(fake.attemptsFor(lineIds.transport as string).length, 1);
  });
});

describe("reconciliation with Stripe's meter event summaries", () => {
  test("matching totals are ok; a difference on Stripe's side is flagged, logged and stored", async () => {
    const org = await t.createOrg("Reconcile");
    const { callId } = await seedCall(t.db, org.orgId, { startedAt: new Date(Date.now() - 3_600_000) });
    await seedCall(t.db, org.orgId, { startedAt: new Date(Date.now() - 1_800_000) });
    await billing.reportCallUsage(callId); // the second call stays pending: not a difference
    const periodStart = new Date(Date.now() - 86_400_000);
    const periodEnd = new Date(Date.now() + 60_000);

    const [clean] = await billing.reconcile({ orgId: org.orgId, periodStart, periodEnd });
    assert.ok(clean);
    assert.equal(clean.ok, true);
    assert.deepEqual(
      clean.meters.map((m) => [m.eventName, m.ours, m.stripe, m.match]),
      [
        ["voice_minutes", "2.5", "2.5", true],
        ["provider_usage", "22750", "22750", true],
      ],
    );
    assert.equal(clean.unreportedLines, 3);

    const customer = clean.customerId;
    fake.injectMeterEvent({ eventName: "voice_minutes", customer, value: 1.5 });
    const warnings: Array<{ obj: object; msg?: string }> = [];
    const logged = billingFor(t.db, t.config.providers, {
      redis: t.redis,
      logger: { info() {}, error() {}, warn: (obj, msg) => warnings.push({ obj, msg }) },
    });
    // The job writes through its own logger (the worker's, with the job's name, id and attempt).
    const jobLog: JobLogger = {
      debug() {},
      info() {},
      error() {},
      warn: (obj, msg) => warnings.push({ obj, msg }),
      child: () => jobLog,
    };
    await billingJobHandlers({ billing: logged })["billing.reconcile"](
      { orgId: org.orgId, periodStart: periodStart.toISOString(), periodEnd: periodEnd.toISOString() },
      { jobId: "reconcile.test", attempt: 1, maxAttempts: 3, log: jobLog },
    );
    const stored = await logged.lastReconciliation(org.orgId);
    assert.ok(stored);
    assert.equal(stored.ok, false);
    // The job first reported the pending call, so provider usage still matches.
    assert.deepEqual(
      stored.meters.map((m) => [m.eventName, m.ours, m.stripe, m.difference, m.match]),
      [
        ["voice_minutes", "5", "6.5", "1.5", false],
        ["provider_usage", "45500", "45500", "0", true],
      ],
    );
    assert.equal(stored.unreportedLines, 0);
    assert.ok(warnings.some((w) => /differ/.test(w.msg ?? "")));

    // The organisation sees the same comparison live.
    const res = await t.request({
      method: "GET",
      url: `/billing/reconciliation?start=${encodeURIComponent(periodStart.toISOString())}&end=${encodeURIComponent(periodEnd.toISOString())}`,
      key: org.key,
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.configured, true);
    assert.equal(body.result.ok, false);
    assert.equal(body.result.meters[0].difference, "1.5");
  });

  test("an organisation without a Stripe customer has nothing to reconcile", async () => {
    const org = await t.createOrg("Fresh");
    const res = await t.request({ method: "GET", url: "/billing/reconciliation", key: org.key });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { configured: true, result: null });
  });
});
