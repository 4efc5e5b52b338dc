// Stripe's delivery patterns replayed against the real webhook route with signed payloads: the same
// event redelivered, an older event arriving after a newer one (Stripe retries for days and does
// not deliver in order), events created in the same second, an event we failed (5xx) and Stripe
// redelivered, and the same event delivered twice at once. What a user sees is asserted: the
// organisation's billing state (GET /billing/settings) and whether POST /call is admitted.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import type { StripeBilling } from "../../libs/billing/stripe.ts";
import { FakeStripe } from "../fakes/stripe.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, phoneNumberBody } from "../helpers/bodies.ts";
import { billingFor, seedCall, stripeEnv } from "./stripe-helpers.ts";

type Obj = Record<string, unknown>;

interface PayingOrg extends TestOrg {
  customerId: string;
  subscriptionId: string;
  phoneNumberId: string;
}

interface Ack {
  received: boolean;
  handled: boolean;
  type: string;
  outcome: "applied" | "duplicate" | "stale" | "ignored";
}

let fake: FakeStripe;
let t: TestApi;
let billing: StripeBilling;
let webhookUrl: string;
/** Unix seconds an hour ago: the events' `created` are set relative to it. */
const T = Math.floor(Date.now() / 1000) - 3600;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

before(async () => {
  fake = await FakeStripe.start();
  const port = await freePort();
  // Twilio's status callbacks reach this API, so an admitted test call ends (busy) and frees its slot.
  t = await startTestApi({ ...stripeEnv(fake), PUBLIC_URL: `http://127.0.0.1:${port}` });
  t.twilio.outboundOutcome = () => "busy";
  billing = billingFor(t.db, t.config.providers);
  await t.app.listen({ port, host: "127.0.0.1" });
  webhookUrl = `http://127.0.0.1:${port}/stripe/webhook`;
});
after(async () => {
  await t.close();
  await fake.close();
});

/** An organisation with a Stripe customer and subscription (from its first billed usage) and a number. */
async function payingOrg(name: string): Promise<PayingOrg> {
  const org = await t.createOrg(name);
  const { callId } = await seedCall(t.db, org.orgId);
  await billing.reportCallUsage(callId);
  const row = await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } });
  assert.ok(row.stripeCustomerId && row.stripeSubscriptionId);
  const number = await t.request({
    method: "POST",
    url: "/phone-number",
    key: org.key,
    payload: phoneNumberBody(),
  });
  assert.equal(number.statusCode, 201, number.body);
  return {
    ...org,
    customerId: row.stripeCustomerId,
    subscriptionId: row.stripeSubscriptionId,
    phoneNumberId: number.json().id,
  };
}

/** What the organisation sees: its billing state, and whether an outbound call is admitted. */
async function assertSees(
  org: PayingOrg,
  state: "active" | "past_due" | "canceled",
  why: string,
): Promise<void> {
  const settings = await t.request({ method: "GET", url: "/billing/settings", key: org.key });
  assert.equal(settings.statusCode, 200, settings.body);
  assert.equal(settings.json().billingState, state, why);
  const call = await t.request({
    method: "POST",
    url: "/call",
    key: org.key,
    payload: {
      phoneNumberId: org.phoneNumberId,
      customer: { number: "+14155550123" },
      assistant: assistantBody(),
    },
  });
  if (state === "active") {
    assert.equal(call.statusCode, 201, `${why}: ${call.body}`);
  } else {
    assert.equal(call.statusCode, 402, `${why}: ${call.body}`);
    assert.match(call.json().message, /Calls are paused/);
  }
}

/** A finalized invoice at (fake) Stripe, open and unpaid until `pay`. */
function openInvoice(org: PayingOrg): Obj {
  return fake.addInvoice(org.customerId, {
    status: "open",
    amount_due: 1500,
    amount_paid: 0,
    amount_remaining: 1500,
    subscription: org.subscriptionId,
    attempt_count: 1,
  });
}

function pay(invoice: Obj): Obj {
  Object.assign(invoice, { status: "paid", amount_paid: invoice.amount_due, amount_remaining: 0 });
  return invoice;
}

/** A Stripe event with the invoice's state at that moment (a snapshot, as Stripe sends). */
function invoiceEvent(type: "invoice.paid" | "invoice.payment_failed", invoice: Obj, created: number): Obj {
  return { ...fake.event(type, { ...invoice }), created };
}

async function deliver(event: Obj): Promise<Ack> {
  const res = await fake.sendWebhook(webhookUrl, event);
  assert.equal(res.status, 200, res.body);
  return JSON.parse(res.body) as Ack;
}

async function recorded(eventId: unknown): Promise<string[]> {
  const rows = await t.db.stripeEvent.findMany({ where: { id: String(eventId) } });
  return rows.map((r) => r.outcome);
}

function invoiceReads(invoice: Obj): number {
  return fake.requests.filter((r) => r.method === "GET" && r.path === `/v1/invoices/${invoice.id}`).length;
}

describe("Stripe webhooks: at most once, in order", () => {
  test("a redelivered event answers duplicate and changes nothing, even after the state moved on", async () => {
    const org = await payingOrg("Redelivered");
    const invoice = openInvoice(org);
    const failed = invoiceEvent("invoice.payment_failed", invoice, T);
    assert.deepEqual(await deliver(failed), {
      received: true,
      handled: true,
      type: "invoice.payment_failed",
      outcome: "applied",
    });
    await assertSees(org, "past_due", "the payment failed");

    assert.equal((await deliver(invoiceEvent("invoice.paid", pay(invoice), T + 3600))).outcome, "applied");
    await assertSees(org, "active", "the invoice was paid");

    // Stripe did not get our first answer in time and sends the failure again.
    assert.deepEqual(await deliver(failed), {
      received: true,
      handled: false,
      type: "invoice.payment_failed",
      outcome: "duplicate",
    });
    await assertSees(org, "active", "a redelivered failure does not freeze a paying organisation");
    assert.deepEqual(await recorded(failed.id), ["applied"]);
  });

  test("an older invoice.payment_failed delivered after invoice.paid is recorded stale and ignored", async () => {
    const org = await payingOrg("OutOfOrder");
    const invoice = openInvoice(org);
    // The first attempt failed at T; its delivery is retried while Stripe's retry of the charge
    // succeeds an hour later, and the paid event arrives first.
    const failed = invoiceEvent("invoice.payment_failed", invoice, T);
    const paid = invoiceEvent("invoice.paid", pay(invoice), T + 3600);
    assert.equal((await deliver(paid)).outcome, "applied");
    assert.deepEqual(await deliver(failed), {
      received: true,
      handled: false,
      type: "invoice.payment_failed",
      outcome: "stale",
    });
    await assertSees(org, "active", "the late failure is older than the payment");
    assert.deepEqual(await recorded(failed.id), ["stale"]);
    // Its redelivery stays a no-op.
    assert.equal((await deliver(failed)).outcome, "duplicate");
    await assertSees(org, "active", "the stale failure redelivered");
  });

  test("an older invoice.paid of last month does not lift a newer failure", async () => {
    const org = await payingOrg("OlderPaid");
    const lastMonth = pay(openInvoice(org));
    const thisMonth = openInvoice(org);
    assert.equal(
      (await deliver(invoiceEvent("invoice.payment_failed", thisMonth, T + 30 * 86_400))).outcome,
      "applied",
    );
    assert.equal((await deliver(invoiceEvent("invoice.paid", lastMonth, T))).outcome, "stale");
    await assertSees(org, "past_due", "this month's invoice is still unpaid");
    assert.equal(
      (await deliver(invoiceEvent("invoice.paid", pay(thisMonth), T + 31 * 86_400))).outcome,
      "applied",
    );
    await assertSees(org, "active", "this month's invoice was paid");
  });

  test("one invoice failed and paid in the same second: paid wins in either order, Stripe not asked", async () => {
    const a = await payingOrg("SameSecondA");
    const invoiceA = openInvoice(a);
    const failedA = invoiceEvent("invoice.payment_failed", invoiceA, T);
    const paidA = invoiceEvent("invoice.paid", pay(invoiceA), T);
    assert.equal((await deliver(paidA)).outcome, "applied");
    assert.equal((await deliver(failedA)).outcome, "stale");
    await assertSees(a, "active", "paid, then its failure of the same second");

    const b = await payingOrg("SameSecondB");
    const invoiceB = openInvoice(b);
    const failedB = invoiceEvent("invoice.payment_failed", invoiceB, T);
    const paidB = invoiceEvent("invoice.paid", pay(invoiceB), T);
    assert.equal((await deliver(failedB)).outcome, "applied");
    assert.equal((await deliver(paidB)).outcome, "applied");
    await assertSees(b, "active", "failed, then its payment of the same second");
    assert.equal(invoiceReads(invoiceA) + invoiceReads(invoiceB), 0);
  });

  test("two invoices in the same second: the failure stands while Stripe says its invoice is unpaid", async () => {
    // Paid A, then B's failure of the same second: B is still open at Stripe → past_due.
    const a = await payingOrg("TieUnpaid");
    const paidA = pay(openInvoice(a));
    const unpaidB = openInvoice(a);
    assert.equal((await deliver(invoiceEvent("invoice.paid", paidA, T))).outcome, "applied");
    assert.equal((await deliver(invoiceEvent("invoice.payment_failed", unpaidB, T))).outcome, "applied");
    await assertSees(a, "past_due", "B is unpaid");
    assert.equal(invoiceReads(unpaidB), 1);
    // The other order: A's payment of the same second does not lift B's failure.
    assert.equal((await deliver(invoiceEvent("invoice.paid", paidA, T))).outcome, "stale");
    await assertSees(a, "past_due", "B is still unpaid");

    // B was paid since (its paid event still on its way): its failure of the same second is stale.
    const c = await payingOrg("TiePaidSince");
    const paidC = pay(openInvoice(c));
    const laterPaid = openInvoice(c);
    assert.equal((await deliver(invoiceEvent("invoice.paid", paidC, T))).outcome, "applied");
    const failedLater = invoiceEvent("invoice.payment_failed", laterPaid, T);
    pay(laterPaid);
    assert.equal((await deliver(failedLater)).outcome, "stale");
    await assertSees(c, "active", "Stripe says the failed invoice is paid now");
  });

  test("an event we failed (Stripe did not answer us) is applied when Stripe redelivers it", async () => {
    const org = await payingOrg("Retried");
    const paidA = pay(openInvoice(org));
    const unpaidB = openInvoice(org);
    assert.equal((await deliver(invoiceEvent("invoice.paid", paidA, T))).outcome, "applied");

    const failedB = invoiceEvent("invoice.payment_failed", unpaidB, T);
    fake.failInvoiceReads(1, 500);
    const first = await fake.sendWebhook(webhookUrl, failedB);
    assert.equal(first.status, 502, first.body);
    assert.equal(JSON.parse(first.body).statusCode, 502);
    assert.deepEqual(await recorded(failedB.id), [], "nothing recorded: the retry gets a clean chance");
    await assertSees(org, "active", "nothing changed by the failed delivery");

    // Stripe retries the unacknowledged event.
    assert.equal((await deliver(failedB)).outcome, "applied");
    await assertSees(org, "past_due", "the redelivery applied");
    assert.deepEqual(await recorded(failedB.id), ["applied"]);
  });

  test("the same event delivered eight times at once is applied once", async () => {
    const org = await payingOrg("Concurrent");
    const invoice = openInvoice(org);
    const failed = invoiceEvent("invoice.payment_failed", invoice, T);
    const acks = await Promise.all(Array.from({ length: 8 }, () => deliver(failed)));
    const outcomes = acks.map((a) => a.outcome).sort();
    assert.deepEqual(outcomes, ["applied", ...Array<string>(7).fill("duplicate")]);
    assert.deepEqual(await recorded(failed.id), ["applied"]);
    await assertSees(org, "past_due", "applied once");

    // A newer payment and an older failure racing each other: the newer wins whichever goes first.
    const paid = invoiceEvent("invoice.paid", pay(invoice), T + 60);
    const olderFailure = invoiceEvent("invoice.payment_failed", { ...invoice, status: "open" }, T + 30);
    const [paidAck] = await Promise.all([deliver(paid), deliver(olderFailure), deliver(paid)]);
    assert.ok(paidAck);
    const row = await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } });
    assert.equal(row.billingEventId, paid.id);
    await assertSees(org, "active", "the newest event wins");
  });

  test("a subscription's deletion applies whatever its age; later invoice events are ignored", async () => {
    const org = await payingOrg("Deleted");
    const invoice = openInvoice(org);
    assert.equal((await deliver(invoiceEvent("invoice.paid", pay(invoice), T + 600))).outcome, "applied");
    const deleted = {
      ...fake.event("customer.subscription.deleted", {
        id: org.subscriptionId,
        object: "subscription",
        customer: org.customerId,
        status: "canceled",
      }),
      created: T,
    };
    assert.equal((await deliver(deleted)).outcome, "applied");
    await assertSees(org, "canceled", "the subscription ended");
    assert.equal((await deliver(deleted)).outcome, "duplicate");
    assert.equal((await deliver(invoiceEvent("invoice.paid", invoice, T + 900))).outcome, "ignored");
    await assertSees(org, "canceled", "a canceled organisation stays canceled");
  });
});
