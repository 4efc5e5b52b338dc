import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { Redis } from "ioredis";
import { webhookDeliverJob } from "../../apps/worker/src/jobs/webhook-deliver.ts";
import { SecretBox } from "../../libs/crypto/index.ts";
import { BullMqQueue, InProcessQueue, type JobQueue } from "../../libs/queue/index.ts";
import { WebhookDispatcher } from "../../libs/webhooks/dispatcher.ts";
import { statusUpdateMessage, transcriptMessage } from "../../libs/webhooks/messages.ts";
import { REDIS_URL } from "../helpers/api.ts";
import { type CustomerServer, messageOf, startCustomerServer, verifySignature } from "./customer-server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Harness {
  queue: JobQueue;
  close(): Promise<void>;
}

const backends: Record<string, () => Promise<Harness>> = {
  bullmq: async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    const prefix = `sbtest-${randomBytes(6).toString("hex")}`;
    const queue = new BullMqQueue(redis, { prefix });
    return {
      queue,
      async close() {
        await queue.close();
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
        redis.disconnect();
      },
    };
  },
  "in-process": async () => {
    const queue = new InProcessQueue();
    return { queue, close: () => queue.close() };
  },
};

for (const [name, start] of Object.entries(backends)) {
  describe(`queued webhook delivery (${name})`, () => {
    let harness: Harness;
    let dispatcher: WebhookDispatcher;
    let customer: CustomerServer;

    before(async () => {
      harness = await start();
      const secrets = new SecretBox(randomBytes(32));
      harness.queue.process({
        "webhook.deliver": webhookDeliverJob({ allowPrivate: true, secrets }),
      });
      dispatcher = new WebhookDispatcher(harness.queue, { secrets });
    });
    after(async () => {
      await harness.close();
    });
    beforeEach(async () => {
      customer = await startCustomerServer();
    });
    afterEach(async () => {
      await customer.close();
    });

    const server = () => ({ url: customer.url, secret: "whsec", headers: { "x-team": "blue" } });
    const ctx = (callId: string) => ({ call: { id: callId, orgId: "org", status: "in-progress" } });

    it("retries 500s with backoff and delivers once, with the same idempotency key on every attempt", async () => {
      customer.script([{ status: 500 }, { status: 500 }, { status: 200 }]);
      const callId = randomUUID();
      const deliveryId = await dispatcher.enqueue(
        "org",
        callId,
        server(),
        statusUpdateMessage(ctx(callId), { status: "in-progress" }),
      );
      assert.equal(deliveryId, `${callId}.status-update.in-progress`);
      const received = await customer.waitFor(3, 15_000);
      await sleep(1500);
      assert.equal(customer.received.length, 3, "no attempt after the successful one");
      assert.deepEqual(
        received.map((r) => r.headers["x-vapi-idempotency-key"]),
        [deliveryId, deliveryId, deliveryId],
      );
      for (const r of received) {
        assert.ok(verifySignature("whsec", r), "every attempt is signed");
        assert.equal(r.headers["x-vapi-secret"], "whsec");
        assert.equal(r.headers["x-team"], "blue");
        assert.equal(r.raw, received[0]?.raw, "same body on every attempt");
      }
      const m = messageOf(received[0]);
      assert.equal(m.type, "status-update");
      assert.equal(m.status, "in-progress");
      const [t0, t1, t2] = received.map((r) => r.at) as [number, number, number];
      assert.ok(t1 - t0 >= 400, `backoff before retry 1 (${t1 - t0} ms)`);
      assert.ok(t2 - t1 >= 900, `longer backoff before retry 2 (${t2 - t1} ms)`);
    });

    it("retries 429 and 408", async () => {
      customer.script([{ status: 429 }, { status: 408 }, { status: 204 }]);
      const callId = randomUUID();
      await dispatcher.enqueue(
        "org",
        callId,
        server(),
        transcriptMessage(ctx(callId), {
          role: "user",
          transcriptType: "final",
          transcript: "hello",
        }),
        { seq: 1 },
      );
      await customer.waitFor(3, 15_000);
    });

    it("gives up on a 400 without retrying", async () => {
      customer.script([{ status: 400, body: { error: "bad" } }, { status: 200 }]);
      const callId = randomUUID();
      await dispatcher.enqueue(
        "org",
        callId,
        server(),
        statusUpdateMessage(ctx(callId), { status: "ringing" }),
      );
      await customer.waitFor(1);
      await sleep(1500);
      assert.equal(customer.received.length, 1);
    });

    it("delivers a delivery enqueued twice once", async () => {
      const callId = randomUUID();
      const body = transcriptMessage(ctx(callId), {
        role: "assistant",
        transcriptType: "final",
        transcript: "Hi",
      });
      const a = await dispatcher.enqueue("org", callId, server(), body, { seq: 7 });
      const b = await dispatcher.enqueue("org", callId, server(), body, { seq: 7 });
      assert.equal(a, b);
      assert.equal(a, `${callId}.transcript.7`);
      await customer.waitFor(1);
      await sleep(500);
      assert.equal(customer.received.length, 1);
      assert.equal(customer.received[0]?.headers["x-vapi-idempotency-key"], a);
    });
  });
}
