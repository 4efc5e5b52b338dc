import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import Stripe from "stripe";
import twilio from "twilio";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { SecretBox } from "../../libs/crypto/index.ts";
import { createDb, type Db } from "../../libs/db/index.ts";
import { BullMqQueue } from "../../libs/queue/index.ts";
import { WebhookDispatcher } from "../../libs/webhooks/dispatcher.ts";
import { statusUpdateMessage } from "../../libs/webhooks/messages.ts";
import { REDIS_URL, startTestApi, type TestApi, type TestOrg, testEnv } from "../helpers/api.ts";
import { assistantBody, TWILIO_SID, uniqueNumber } from "../helpers/bodies.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";

// What an operator greps for: every line a request writes carries its id (`reqId`), including the
// lines the services write while handling it; every line a job writes carries the job's name, id and
// attempt, and the call and organisation it is about.

type Line = Record<string, unknown>;

/** A pino destination that keeps every line, parsed. */
function logCapture(): { stream: Writable; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { stream, lines };
}

async function until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A loopback address nothing listens on (a customer's server that is down). */
async function closedUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}/vapi`;
}

const AUTH_TOKEN = "twilio-auth-token-for-log-tests";
const STRIPE_WEBHOOK_SECRET = `whsec_${randomBytes(12).toString("hex")}`;

describe("API: what services log while handling a request carries the request's id", () => {
  let t: TestApi;
  let org: TestOrg;
  const logs = logCapture();

  before(async () => {
    t = await startTestApi({ STRIPE_WEBHOOK_SECRET }, { logger: { level: "info", stream: logs.stream } });
    org = await t.createOrg("Logs");
  });
  after(async () => {
    await t.close();
  });

  async function importNumber(body: Record<string, unknown>): Promise<string> {
    const number = uniqueNumber();
    const res = await t.request({
      method: "POST",
      url: "/phone-number",
      key: org.key,
      payload: {
        provider: "twilio",
        number,
        twilioAccountSid: TWILIO_SID,
        twilioAuthToken: AUTH_TOKEN,
        ...body,
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    return number;
  }

  /** Twilio's voice webhook for a new call to `to`, signed, with the caller's request id. */
  function inbound(to: string, requestId: string) {
    const params = {
      CallSid: `CA${randomBytes(16).toString("hex")}`,
      AccountSid: TWILIO_SID,
      From: "+14155550100",
      To: to,
      CallStatus: "ringing",
    };
    const url = `${t.config.publicUrl}/twilio/inbound`;
    return t.request({
      method: "POST",
      url: "/twilio/inbound",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params),
        "x-request-id": requestId,
      },
      payload: new URLSearchParams(params).toString(),
    });
  }

  const ofRequest = (id: string) => logs.lines.filter((l) => l.reqId === id);

  it("a Twilio webhook: the assistant-request that failed is logged with the webhook's reqId", async () => {
    const number = await importNumber({ server: { url: await closedUrl() } });
    const res = await inbound(number, "abc");
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers["x-request-id"], "abc");
    const warning = ofRequest("abc").find((l) => l.msg === "assistant-request failed");
    assert.ok(
      warning,
      `no warning with reqId abc among:\n${logs.lines.map((l) => JSON.stringify(l)).join("\n")}`,
    );
    assert.equal(warning.level, 40);
    assert.equal(warning.app, "api");
    assert.deepEqual(
      ofRequest("abc").map((l) => l.msg),
      ["incoming request", "assistant-request failed", "request completed"],
    );
  });

  it("an API-key request: a service's warning (hanging up a call Twilio no longer knows) carries its reqId", async () => {
    const assistant = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      payload: assistantBody(),
    });
    assert.equal(assistant.statusCode, 201, assistant.body);
    const number = await importNumber({ assistantId: assistant.json().id });
    assert.equal((await inbound(number, "ring-1")).statusCode, 200);
    const call = await t.db.call.findFirstOrThrow({ where: { orgId: org.orgId, status: "ringing" } });

    const res = await t.request({
      method: "DELETE",
      url: `/call/${call.id}`,
      key: org.key,
      headers: { "x-request-id": "def" },
    });
    assert.equal(res.statusCode, 200, res.body);
    const warning = ofRequest("def").find((l) => l.msg === "hanging up before delete failed");
    assert.ok(
      warning,
      `no warning with reqId def among:\n${logs.lines.map((l) => JSON.stringify(l)).join("\n")}`,
    );
    assert.equal(warning.callId, call.id);
    assert.equal(warning.level, 40);
  });

  it("the Stripe webhook: the event's outcome is logged with the webhook's reqId", async () => {
    const body = JSON.stringify({
      id: `evt_${randomBytes(8).toString("hex")}`,
      object: "event",
      type: "invoice.paid",
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: "in_log_test", object: "invoice", customer: "cus_nobody" } },
    });
    const res = await t.request({
      method: "POST",
      url: "/stripe/webhook",
      headers: {
        "content-type": "application/json",
        "stripe-signature": Stripe.webhooks.generateTestHeaderString({
          payload: body,
          secret: STRIPE_WEBHOOK_SECRET,
        }),
        "x-request-id": "stripe-1",
      },
      payload: body,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().outcome, "ignored");
    const line = ofRequest("stripe-1").find((l) => l.msg === "Stripe webhook not applied");
    assert.ok(
      line,
      `no outcome line with reqId stripe-1 among:\n${logs.lines.map((l) => JSON.stringify(l)).join("\n")}`,
    );
    assert.equal(line.outcome, "ignored");
  });
});

describe("worker: every line a job writes names the job, its attempt, the call and the organisation", () => {
  let database: TestDatabase;
  let db: Db;
  let redis: Redis;
  let queue: BullMqQueue;
  let worker: WorkerApp;
  let customer: CustomerServer;
  let dispatcher: WebhookDispatcher;
  const prefix = `sbtest-${randomBytes(6).toString("hex")}`;
  const logs = logCapture();

  before(async () => {
    database = await createTestDatabase();
    db = createDb(database.url);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    queue = new BullMqQueue(redis, { prefix });
    const config = workerConfigFromEnv(testEnv({ DATABASE_URL: database.url }));
    worker = await buildWorker(config, {
      db,
      redis,
      queue,
      logger: { level: "info", stream: logs.stream },
      schedule: false,
      sweepIntervalMs: 0,
    });
    customer = await startCustomerServer();
    dispatcher = new WebhookDispatcher(queue, { secrets: new SecretBox(config.secretsKey) });
  });
  after(async () => {
    await worker.close();
    await queue.close();
    await customer.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await db.$disconnect();
    await database.drop();
  });

  it("a webhook delivery that fails once, then is delivered: both attempts' lines carry job, jobId, attempt, callId, orgId", async () => {
    customer.script([{ status: 500 }, { status: 200 }]);
    const callId = randomUUID();
    const orgId = randomUUID();
    const deliveryId = await dispatcher.enqueue(
      orgId,
      callId,
      { url: customer.url },
      statusUpdateMessage({ call: { id: callId, orgId, status: "in-progress" } }, { status: "in-progress" }),
    );
    const jobId = `webhook.${deliveryId}`;
    const delivered = await until(
      () => logs.lines.find((l) => l.msg === "webhook delivered" && l.jobId === jobId),
      15_000,
      "the delivery",
    );
    const failed = logs.lines.find((l) => l.msg === "job attempt failed" && l.jobId === jobId);
    assert.ok(failed, "the failed first attempt is logged");
    assert.deepEqual(
      {
        job: failed.job,
        attempt: failed.attempt,
        callId: failed.callId,
        orgId: failed.orgId,
        willRetry: failed.willRetry,
      },
      { job: "webhook.deliver", attempt: 1, callId, orgId, willRetry: true },
    );
    assert.equal(failed.level, 40);
    assert.deepEqual(
      { job: delivered.job, attempt: delivered.attempt, callId: delivered.callId, orgId: delivered.orgId },
      { job: "webhook.deliver", attempt: 2, callId, orgId },
    );
    assert.equal(delivered.app, "worker");
    assert.deepEqual(
      logs.lines.filter((l) => l.jobId === jobId).map((l) => [l.attempt, l.msg]),
      [
        [1, "job attempt failed"],
        [2, "webhook delivered"],
      ],
    );
    // Nothing about this delivery was written without the job's context.
    for (const l of logs.lines.filter((l) => l.deliveryId === deliveryId)) {
      assert.equal(l.jobId, jobId, JSON.stringify(l));
    }
  });

  it("a Stripe usage job: what billing writes on the job's behalf carries the job's context", async () => {
    const callId = randomUUID();
    await queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
    // Without STRIPE_SECRET_KEY, billing says once that usage is not reported.
    const line = await until(
      () =>
        logs.lines.find(
          (l) => l.callId === callId && typeof l.msg === "string" && l.msg.includes("STRIPE_SECRET_KEY"),
        ),
      15_000,
      "the billing line",
    );
    assert.deepEqual(
      { job: line.job, jobId: line.jobId, attempt: line.attempt, level: line.level },
      { job: "billing.report-usage", jobId: `usage.${callId}`, attempt: 1, level: 40 },
    );
  });
});
