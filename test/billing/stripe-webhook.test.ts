import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import type { StripeBilling } from "../../libs/billing/stripe.ts";
import { FakeStripe } from "../fakes/stripe.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { billingFor, seedCall, stripeEnv } from "./stripe-helpers.ts";

let fake: FakeStripe;
let t: TestApi;
let billing: StripeBilling;
let webhookUrl: string;

before(async () => {
  fake = await FakeStripe.start();
  t = await startTestApi(stripeEnv(fake));
  billing = billingFor(t.db, t.config.providers);
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  webhookUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/stripe/webhook`;
});
after(async () => {
  await t.close();
  await fake.close();
});

/** An org with a Stripe customer and subscription (created through its first usage report). */
async function billedOrg(name: string): Promise<TestOrg & { customerId: string; subscriptionId: string }> {
  const org = await t.createOrg(name);
  const { callId } = await seedCall(t.db, org.orgId);
  await billing.reportCallUsage(callId);
  const row = await t.db.org.findUniqueOrThrow({ where: { id: org.orgId } });
  assert.ok(row.stripeCustomerId && row.stripeSubscriptionId);
  return { ...org, customerId: row.stripeCustomerId, subscriptionId: row.stripeSubscriptionId };
}

async function state(orgId: string): Promise<string> {
  return (await t.db.org.findUniqueOrThrow({ where: { id: orgId } })).billingState;
}

function invoiceEvent(type: string, customer: string) {
  return fake.event(type, { id: "in_evt", object: "invoice", customer, status: "open", amount_due: 1234 });
}

describe("POST /stripe/webhook", () => {
  test("the fake's signature is the one stripe.webhooks.constructEvent accepts", () => {
    const body = JSON.stringify(fake.event("ping", { id: "x" }));
    const event = Stripe.webhooks.constructEvent(body, fake.signWebhook(body), fake.webhookSecret);
    assert.equal(event.type, "ping");
  });

  test("forged, unsigned, stale or tampered webhooks answer 403 and change nothing", async () => {
    const org = await billedOrg("Forged");
    const event = invoiceEvent("invoice.payment_failed", org.customerId);
    const body = JSON.stringify(event, null, 2);
    const cases: Array<[string, { secret?: string; timestamp?: number; signature?: string | null }]> = [
      ["wrong secret", { secret: "whsec_not_the_right_one" }],
      ["missing header", { signature: null }],
      ["stale timestamp", { timestamp: Math.floor(Date.now() / 1000) - 600 }],
      ["signature of another body", { signature: fake.signWebhook(`${body} `) }],
      ["garbage header", { signature: "t=abc,v1=zz" }],
    ];
    for (const [what, opts] of cases) {
      const res = await fake.sendWebhook(webhookUrl, event, opts);
      assert.equal(res.status, 403, `${what}: ${res.body}`);
      assert.equal(JSON.parse(res.body).statusCode, 403);
      assert.equal(await state(org.orgId), "active", what);
    }
  });

  test("each handled event moves the billing state; repeats leave the same state", async () => {
    const org = await billedOrg("States");
    const send = async (event: Record<string, unknown>) => {
      const res = await fake.sendWebhook(webhookUrl, event);
      assert.equal(res.status, 200, res.body);
      return JSON.parse(res.body) as { received: boolean; handled: boolean; type: string; outcome: string };
    };

    const failed = invoiceEvent("invoice.payment_failed", org.customerId);
    assert.deepEqual(await send(failed), {
      received: true,
      handled: true,
      type: "invoice.payment_failed",
      outcome: "applied",
    });
    assert.equal(await state(org.orgId), "past_due");
    assert.equal((await send(failed)).outcome, "duplicate"); // Stripe redelivers
    assert.equal(await state(org.orgId), "past_due");

    await send(invoiceEvent("invoice.paid", org.customerId));
    assert.equal(await state(org.orgId), "active");

    // Another subscription of the customer ending does not cancel the organisation.
    await send(
      fake.event("customer.subscription.deleted", {
        id: "sub_other",
        object: "subscription",
        customer: org.customerId,
      }),
    );
    assert.equal(await state(org.orgId), "active");

    const deleted = fake.event("customer.subscription.deleted", {
      id: org.subscriptionId,
      object: "subscription",
      customer: org.customerId,
      status: "canceled",
    });
    await send(deleted);
    assert.equal(await state(org.orgId), "canceled");
    await send(deleted);
    assert.equal(await state(org.orgId), "canceled");
    // A late invoice event does not revive a canceled organisation.
    await send(invoiceEvent("invoice.paid", org.customerId));
    assert.equal(await state(org.orgId), "canceled");
  });

  test("other events and unknown customers are acknowledged and ignored", async () => {
    const org = await billedOrg("Ignored");
    const other = await fake.sendWebhook(
      webhookUrl,
      fake.event("invoice.created", { id: "in_1", customer: org.customerId }),
    );
    assert.equal(other.status, 200);
    assert.equal(JSON.parse(other.body).handled, false);
    const stranger = await fake.sendWebhook(webhookUrl, invoiceEvent("invoice.payment_failed", "cus_nobody"));
    assert.equal(stranger.status, 200);
    assert.equal(JSON.parse(stranger.body).handled, false);
    assert.equal(await state(org.orgId), "active");
  });
});

describe("GET /billing/invoices", () => {
  test("lists the organisation's Stripe invoices and the upcoming one, and nobody else's", async () => {
    const a = await billedOrg("InvoicesA");
    const b = await billedOrg("InvoicesB");
    const now = Math.floor(Date.now() / 1000);
    fake.addInvoice(a.customerId, {
      amount_due: 4200,
      amount_paid: 4200,
      status: "paid",
      created: now - 86_400 * 40,
    });
    fake.addInvoice(a.customerId, {
      amount_due: 1300,
      amount_paid: 0,
      status: "open",
      created: now - 86_400 * 10,
    });
    fake.addInvoice(b.customerId, { amount_due: 999, status: "paid" });

    const res = await t.request({ method: "GET", url: "/billing/invoices", key: a.key });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(
      body.data.map((i: { amount_due: number; status: string }) => [i.amount_due, i.status]),
      [
        [1300, "open"],
        [4200, "paid"],
      ],
    );
    assert.match(body.data[0].hosted_invoice_url, /^https:\/\//);
    assert.equal(body.data[0].currency, "usd");
    // Upcoming: 2.5 voice minutes × 5¢ = 12.5¢ → 13¢, and 22,750 micro-dollars × 0.0001¢ = 2.275¢ → 2¢.
    assert.equal(body.upcoming.amount_due, 15);
    assert.equal(body.upcoming.status, "draft");

    const resB = await t.request({ method: "GET", url: "/billing/invoices", key: b.key });
    assert.deepEqual(
      resB.json().data.map((i: { amount_due: number }) => i.amount_due),
      [999],
    );
  });

  test("an organisation without a Stripe customer gets an empty list; a key is required", async () => {
    const org = await t.createOrg("NoCustomer");
    const res = await t.request({ method: "GET", url: "/billing/invoices", key: org.key });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { data: [], upcoming: null });
    const anon = await t.request({ method: "GET", url: "/billing/invoices" });
    assert.equal(anon.statusCode, 401);
  });
});
