import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { SecretBox } from "../../libs/crypto/index.ts";
import { BullMqQueue } from "../../libs/queue/index.ts";
import { WebhookDispatcher } from "../../libs/webhooks/index.ts";
import { seedCall, stripeEnv } from "../billing/stripe-helpers.ts";
import { FakeStripe } from "../fakes/stripe.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { type AppProcess, type RedisServer, startApp, startRedisServer } from "../helpers/fault-processes.ts";
import { parsePrometheus, sampleValue } from "../helpers/prometheus.ts";
import { waitUntil } from "../media/harness.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";

// A worker process killed (SIGKILL) in the middle of a job: BullMQ's lock on the job stops being
// renewed, and once it has expired the next worker to run puts the job back and runs it again,
// with the same payload. Its effect happens once: the customer's server sees one idempotency key,
// Stripe one meter event per ledger line.

const LOCK_MS = 2000;

describe("a worker killed in the middle of a job", () => {
  let redis: RedisServer;
  let t: TestApi;
  let org: TestOrg;
  let customer: CustomerServer;
  let stripe: FakeStripe;
  let workerEnv: Record<string, string>;
  let producerRedis: Redis;
  let producer: BullMqQueue;
  const workers: AppProcess[] = [];

  before(async () => {
    redis = await startRedisServer();
    [customer, stripe] = await Promise.all([startCustomerServer(), FakeStripe.start()]);
    t = await startTestApi({ REDIS_URL: redis.url, ...stripeEnv(stripe) }, { redisUrl: redis.url });
    org = await t.createOrg("Worker faults");
    workerEnv = {
      DATABASE_URL: t.database.url,
      REDIS_URL: redis.url,
      SECRETS_KEY: t.config.secretsKey.toString("base64"),
      ADMIN_TOKEN: t.config.adminToken,
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      LOG_LEVEL: "warn",
      WORKER_JOB_LOCK_MS: String(LOCK_MS),
      ...stripeEnv(stripe),
    };
    producerRedis = new Redis(redis.url, { maxRetriesPerRequest: null });
    producer = new BullMqQueue(producerRedis);
  });

  after(async () => {
    for (const w of workers) await w.kill("SIGKILL");
    await producer.close();
    producerRedis.disconnect();
    await Promise.all([customer.close(), stripe.close()]);
    await t.close();
    await redis.close();
  });

  async function startWorker(): Promise<AppProcess> {
    const w = await startApp("worker", workerEnv);
    workers.push(w);
    return w;
  }

  async function jobState(queue: string, jobId: string): Promise<string | undefined> {
    const q = new Queue(queue, { connection: producerRedis, prefix: "switchboard" });
    try {
      return await (await q.getJob(jobId))?.getState();
    } finally {
      await q.close();
    }
  }

  it("a webhook delivery cut off by the kill is delivered again, with the same idempotency key, once a worker runs", async (tc) => {
    const first = await startWorker();
    // The customer's server is slow to answer the first delivery: the worker dies while waiting.
    customer.script([{ delayMs: 10_000, status: 200 }, { status: 200 }]);
    const dispatcher = new WebhookDispatcher(producer, { secrets: new SecretBox(t.config.secretsKey, []) });
    const deliveryId = await dispatcher.enqueue(
      org.orgId,
      randomUUID(),
      { url: customer.url, secret: "customer-hmac-secret" },
      { message: { type: "status-update", status: "ended" } },
    );
    await customer.waitFor(1);
    await first.kill("SIGKILL");

    const second = await startWorker();
    const backAt = Date.now();
    await waitUntil(
      async () => (await jobState("webhooks", `webhook.${deliveryId}`)) === "completed",
      6 * LOCK_MS,
      "the delivery to complete",
    );
    tc.diagnostic(`delivered again ${(customer.received[1]?.at ?? 0) - backAt} ms after a worker was back`);
    const keys = customer.received.map((r) => r.headers["x-vapi-idempotency-key"]);
    assert.deepEqual(keys, [deliveryId, deliveryId], "the cut delivery and its rerun, under one key");
    assert.deepEqual(customer.received[0]?.json, customer.received[1]?.json, "the same message");

    // The outcome is recorded once: by the worker that completed it.
    const metrics = parsePrometheus(await (await fetch(`${second.url}/metrics`)).text());
    assert.equal(sampleValue(metrics, "switchboard_webhook_deliveries_total", { outcome: "delivered" }), 1);
    await new Promise((r) => setTimeout(r, LOCK_MS));
    assert.equal(customer.received.length, 2, "not delivered a third time");
  });

  it("a Stripe usage job cut off after Stripe took a meter event runs again and reports every line once", async () => {
    const { callId, lineIds } = await seedCall(t.db, org.orgId);
    const running = workers.at(-1);
    assert.ok(running);
    // Stripe applies the first meter event at once but answers late: the worker dies meanwhile.
    stripe.answerMeterEventsLate(1, 10_000);
    await producer.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
    await waitUntil(() => stripe.meterEventAttempts.length >= 1, 10_000, "the first meter event");
    await running.kill("SIGKILL");
    const cut = stripe.meterEventAttempts[0]?.identifier ?? "";
    assert.equal(stripe.eventsFor(cut).length, 1, "Stripe has the event the worker never heard back about");

    await startWorker();
    await waitUntil(
      async () => (await jobState("billing", `usage.${callId}`)) === "completed",
      6 * LOCK_MS,
      "the usage job to complete",
    );
    const platformLines = ["transport", "llm", "platform"].map((c) => lineIds[c] ?? "");
    for (const id of platformLines) assert.equal(stripe.eventsFor(id).length, 1, `one meter event for ${id}`);
    assert.equal(stripe.meterEventAttempts.filter((a) => a.identifier === cut).length, 2, "sent again, once");
    const lines = await t.db.usageLine.findMany({ where: { callId, billedBy: "platform" } });
    assert.equal(lines.length, 3);
    for (const l of lines) assert.ok(l.reportedAt, `${l.category} recorded as reported`);
  });
});
