import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { Redis } from "ioredis";
import { webhookDeliverJob } from "../../apps/worker/src/jobs/webhook-deliver.ts";
import { SecretBox } from "../../libs/crypto/index.ts";
import { BullMqQueue, safeJobId } from "../../libs/queue/index.ts";
import { WebhookDispatcher } from "../../libs/webhooks/dispatcher.ts";
import { statusUpdateMessage } from "../../libs/webhooks/messages.ts";
import { REDIS_URL } from "../helpers/api.ts";
import { type CustomerServer, messageOf, startCustomerServer, verifySignature } from "./customer-server.ts";

// Queued webhook deliveries keep the customer's HMAC secret and custom headers (bearer tokens)
// sealed at rest: what sits in Redis is ciphertext, and the worker opens it just before sending.

const SECRET = `whsec-${randomBytes(8).toString("hex")}`;
const BEARER = `Bearer tok-${randomBytes(12).toString("hex")}`;

describe("sealed webhook deliveries (BullMQ)", () => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const prefixes: string[] = [];
  const queues: BullMqQueue[] = [];
  let customer: CustomerServer;

  function newQueue(): { queue: BullMqQueue; prefix: string } {
    const prefix = `sbtest-${randomBytes(6).toString("hex")}`;
    const queue = new BullMqQueue(redis, { prefix });
    prefixes.push(prefix);
    queues.push(queue);
    return { queue, prefix };
  }

  /** Everything BullMQ stored for the job, as one string. */
  async function rawJob(prefix: string, jobId: string): Promise<string> {
    const hash = await redis.hgetall(`${prefix}:webhooks:${safeJobId(jobId)}`);
    assert.ok(hash.data, "the job is stored in Redis");
    return JSON.stringify(hash);
  }

  beforeEach(async () => {
    customer = await startCustomerServer();
  });
  afterEach(async () => {
    await customer.close();
  });
  after(async () => {
    for (const q of queues) await q.close();
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    }
    redis.disconnect();
  });

  const ctx = (callId: string) => ({ call: { id: callId, orgId: "org", status: "in-progress" } });

  it("stores neither the secret nor the custom headers in clear, and delivers them signed", async () => {
    const { queue, prefix } = newQueue();
    const secrets = new SecretBox(randomBytes(32));
    const dispatcher = new WebhookDispatcher(queue, { secrets });
    const callId = randomUUID();
    const deliveryId = await dispatcher.enqueue(
      "org",
      callId,
      { url: customer.url, secret: SECRET, headers: { Authorization: BEARER } },
      statusUpdateMessage(ctx(callId), { status: "in-progress" }),
    );

    const stored = await rawJob(prefix, `webhook.${deliveryId}`);
    assert.ok(stored.includes(callId), "the job is the one just queued");
    assert.ok(!stored.includes(SECRET), "the secret is not in Redis in clear");
    assert.ok(!stored.includes(BEARER), "the authorization header value is not in Redis in clear");
    assert.ok(!stored.includes(BEARER.slice("Bearer ".length)), "nor the bare token");

    queue.process({ "webhook.deliver": webhookDeliverJob({ allowPrivate: true, secrets }) });
    const [req] = await customer.waitFor(1, 10_000);
    assert.ok(req);
    assert.equal(req.headers.authorization, BEARER);
    assert.equal(req.headers["x-vapi-secret"], SECRET);
    assert.equal(req.headers["x-vapi-idempotency-key"], deliveryId);
    assert.ok(verifySignature(SECRET, req), "x-signature is HMAC-SHA256(secret, timestamp.body)");
    assert.equal(messageOf(req).type, "status-update");
  });

  it("delivers a job sealed under a previous key after SECRETS_KEY is rotated", async () => {
    const { queue } = newQueue();
    const oldKey = randomBytes(32);
    const dispatcher = new WebhookDispatcher(queue, { secrets: new SecretBox(oldKey) });
    const callId = randomUUID();
    await dispatcher.enqueue(
      "org",
      callId,
      { url: customer.url, secret: SECRET, headers: { authorization: BEARER } },
      statusUpdateMessage(ctx(callId), { status: "ringing" }),
    );
    const rotated = new SecretBox(randomBytes(32), [oldKey]);
    queue.process({
      "webhook.deliver": webhookDeliverJob({ allowPrivate: true, secrets: rotated }),
    });
    const [req] = await customer.waitFor(1, 10_000);
    assert.ok(req);
    assert.equal(req.headers.authorization, BEARER);
    assert.ok(verifySignature(SECRET, req));
  });

  it("still delivers a job queued in the old clear shape (headers and secret, no sealed field)", async () => {
    const { queue } = newQueue();
    const callId = randomUUID();
    const deliveryId = `${callId}.status-update.ended`;
    await queue.enqueue(
      "webhook.deliver",
      {
        deliveryId,
        orgId: "org",
        callId,
        url: customer.url,
        headers: { authorization: BEARER, "content-type": "application/json" },
        body: JSON.stringify(statusUpdateMessage(ctx(callId), { status: "ended" })),
        timeoutMs: 5000,
        secret: SECRET,
        messageType: "status-update",
      },
      { jobId: `webhook.${deliveryId}` },
    );
    queue.process({
      "webhook.deliver": webhookDeliverJob({
        allowPrivate: true,
        secrets: new SecretBox(randomBytes(32)),
      }),
    });
    const [req] = await customer.waitFor(1, 10_000);
    assert.ok(req);
    assert.equal(req.headers.authorization, BEARER);
    assert.equal(req.headers["x-vapi-idempotency-key"], deliveryId);
    assert.ok(verifySignature(SECRET, req));
  });
});
