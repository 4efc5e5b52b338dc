import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { Redis } from "ioredis";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { createDb, type Db, Prisma } from "../../libs/db/index.ts";
import { BullMqQueue, InProcessQueue, type JobQueue } from "../../libs/queue/index.ts";
import { REDIS_URL, testEnv } from "../helpers/api.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { type CustomerServer, messageOf, startCustomerServer, verifySignature } from "./customer-server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const STARTED = new Date("2026-03-01T10:00:00.000Z");
const ENDED = new Date("2026-03-01T10:01:30.500Z");
const MESSAGES = [
  { role: "system", message: "You are Ava.", time: STARTED.getTime(), secondsFromStart: 0 },
  {
    role: "bot",
    message: "Hi, this is Ava.",
    time: STARTED.getTime() + 500,
    endTime: STARTED.getTime() + 2000,
    secondsFromStart: 0.5,
    duration: 1500,
  },
  {
    role: "user",
    message: "What's the weather?",
    time: STARTED.getTime() + 4000,
    endTime: STARTED.getTime() + 5500,
    secondsFromStart: 4,
    duration: 1500,
  },
  {
    role: "tool_calls",
    time: STARTED.getTime() + 6000,
    secondsFromStart: 6,
    toolCalls: [
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
    ],
  },
  {
    role: "tool_call_result",
    time: STARTED.getTime() + 6400,
    secondsFromStart: 6.4,
    toolCallId: "call_1",
    name: "get_weather",
    result: "Sunny",
  },
  {
    role: "bot",
    message: "It's sunny in Paris.",
    time: STARTED.getTime() + 7000,
    endTime: STARTED.getTime() + 9000,
    secondsFromStart: 7,
    duration: 2000,
  },
];
const TRANSCRIPT = "AI: Hi, this is Ava.\nUser: What's the weather?\nAI: It's sunny in Paris.";
const PERFORMANCE = {
  turnLatencies: [
    {
      modelLatency: 310,
      voiceLatency: 180,
      transcriberLatency: 90,
      endpointingLatency: 400,
      turnLatency: 980,
    },
  ],
  modelLatencyAverage: 310,
  voiceLatencyAverage: 180,
  transcriberLatencyAverage: 90,
  endpointingLatencyAverage: 400,
  turnLatencyAverage: 980,
};
const COST_BREAKDOWN = {
  transport: 0.0127,
  stt: 0.0065,
  llm: 0.0021,
  tts: 0.018,
  vapi: 0.0754,
  total: 0.1147,
  llmPromptTokens: 812,
  llmCompletionTokens: 41,
  ttsCharacters: 60,
};
const COSTS = [
  {
    type: "transcriber",
    transcriber: { provider: "deepgram", model: "nova-3" },
    minutes: 1.508,
    cost: 0.0065,
  },
  { type: "vapi", subType: "normal", minutes: 1.508, cost: 0.0754 },
];

interface Backend {
  queue: JobQueue;
  idle(): Promise<void>;
  close(): Promise<void>;
}

const backends: Record<string, () => Backend> = {
  "in-process": () => {
    const queue = new InProcessQueue();
    return { queue, idle: () => queue.idle(), close: () => queue.close() };
  },
  bullmq: () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    const prefix = `sbtest-${randomBytes(6).toString("hex")}`;
    const queue = new BullMqQueue(redis, { prefix });
    return {
      queue,
      idle: () => sleep(300).then(() => undefined),
      async close() {
        await queue.close();
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
        redis.disconnect();
      },
    };
  },
};

for (const [backendName, makeBackend] of Object.entries(backends)) {
  describe(`end-of-call report job (${backendName})`, () => {
    let database: TestDatabase;
    let db: Db;
    let backend: Backend;
    let worker: WorkerApp;
    let customer: CustomerServer;
    let orgId: string;

    before(async () => {
      database = await createTestDatabase();
      db = createDb(database.url);
      backend = makeBackend();
      const config = workerConfigFromEnv(testEnv({ DATABASE_URL: database.url }));
      worker = await buildWorker(config, { db, queue: backend.queue, logger: false });
      orgId = (await db.org.create({ data: { name: "Acme" } })).id;
    });
    after(async () => {
      await worker.close();
      await backend.close();
      await db.$disconnect();
      await database.drop();
    });
    beforeEach(async () => {
      customer = await startCustomerServer();
    });
    afterEach(async () => {
      await customer.close();
    });

    async function insertCall(
      assistant: Record<string, unknown>,
      overrides: Partial<Prisma.CallUncheckedCreateInput> = {},
    ) {
      return db.call.create({
        data: {
          orgId,
          type: "inboundPhoneCall",
          status: "ended",
          endedReason: "customer-ended-call",
          providerCallId: `CA${randomBytes(16).toString("hex")}`,
          customer: { number: "+14155550100" },
          assistant: assistant as Prisma.InputJsonObject,
          startedAt: STARTED,
          endedAt: ENDED,
          transcript: TRANSCRIPT,
          messages: MESSAGES,
          artifact: { performanceMetrics: PERFORMANCE },
          analysis: { summary: "The caller asked about the weather in Paris." },
          cost: new Prisma.Decimal("0.1147"),
          costBreakdown: COST_BREAKDOWN,
          costs: COSTS,
          finalizedAt: new Date(),
          ...overrides,
        },
      });
    }

    it("delivers the report built from the stored call to the assistant's server", async () => {
      const assistant = {
        name: "Ava",
        server: { url: customer.url, secret: "whsec_eoc", timeoutSeconds: 5 },
      };
      const call = await insertCall(assistant);
      await worker.queue.enqueue("call.post-process", { callId: call.id }, { jobId: `post.${call.id}` });
      const [req] = await customer.waitFor(1);
      assert.ok(req);
      assert.ok(verifySignature("whsec_eoc", req));
      assert.equal(req.headers["x-vapi-secret"], "whsec_eoc");
      assert.equal(req.headers["x-vapi-idempotency-key"], `${call.id}.end-of-call-report`);
      const m = messageOf(req);
      assert.equal(m.type, "end-of-call-report");
      assert.equal(m.endedReason, "customer-ended-call");
      assert.equal(m.startedAt, STARTED.toISOString());
      assert.equal(m.endedAt, ENDED.toISOString());
      assert.equal(m.durationSeconds, 90.5);
      assert.equal(m.durationMs, 90_500);
      assert.equal(m.cost, 0.1147);
      assert.deepEqual(m.costBreakdown, COST_BREAKDOWN);
      assert.deepEqual(m.costs, COSTS);
      assert.deepEqual(m.analysis, { summary: "The caller asked about the weather in Paris." });
      assert.equal(m.summary, "The caller asked about the weather in Paris.");
      assert.equal(m.transcript, TRANSCRIPT);
      assert.deepEqual(m.customer, { number: "+14155550100" });
      assert.deepEqual(m.assistant, assistant);
      assert.equal(typeof m.timestamp, "number");

      const artifact = m.artifact as Record<string, unknown>;
      assert.equal(artifact.transcript, TRANSCRIPT);
      assert.deepEqual(artifact.messages, MESSAGES);
      assert.deepEqual(artifact.performanceMetrics, PERFORMANCE);
      assert.deepEqual(artifact.messagesOpenAIFormatted, [
        { role: "system", content: "You are Ava." },
        { role: "assistant", content: "Hi, this is Ava." },
        { role: "user", content: "What's the weather?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: "tool", content: "Sunny", tool_call_id: "call_1" },
        { role: "assistant", content: "It's sunny in Paris." },
      ]);

      const c = m.call as Record<string, unknown>;
      assert.equal(c.id, call.id);
      assert.equal(c.orgId, orgId);
      assert.equal(c.status, "ended");
      assert.equal(c.type, "inboundPhoneCall");
      assert.equal(c.phoneCallProviderId, call.providerCallId);

      // Post-processing the same call again is the same delivery: whatever arrives carries the same
      // idempotency key, so the customer sees one report.
      await worker.queue.enqueue(
        "call.post-process",
        { callId: call.id },
        { jobId: `post.${call.id}.again` },
      );
      await backend.idle();
      await sleep(300);
      const keys = new Set(customer.received.map((r) => r.headers["x-vapi-idempotency-key"]));
      assert.deepEqual([...keys], [`${call.id}.end-of-call-report`]);
    });

    it("falls back to the organisation's server", async () => {
      await db.org.update({ where: { id: orgId }, data: { server: { url: customer.url } } });
      try {
        const call = await insertCall({ name: "No server" });
        await worker.queue.enqueue("call.post-process", { callId: call.id });
        const [req] = await customer.waitFor(1);
        assert.equal(messageOf(req).type, "end-of-call-report");
        assert.equal(req?.headers["x-signature"], undefined);
      } finally {
        await db.org.update({ where: { id: orgId }, data: { server: Prisma.DbNull } });
      }
    });

    it("sends nothing when the assistant does not subscribe to end-of-call-report", async () => {
      const call = await insertCall({
        server: { url: customer.url },
        serverMessages: ["status-update", "tool-calls"],
      });
      await worker.queue.enqueue("call.post-process", { callId: call.id });
      await backend.idle();
      await sleep(500);
      assert.equal(customer.received.length, 0);
    });

    it("waits for the call to be finalised", async () => {
      const call = await insertCall(
        { server: { url: customer.url } },
        { status: "in-progress", endedReason: null, endedAt: null, finalizedAt: null },
      );
      await worker.queue.enqueue("call.post-process", { callId: call.id });
      await sleep(400);
      assert.equal(customer.received.length, 0);
      await db.call.update({
        where: { id: call.id },
        data: {
          status: "ended",
          endedReason: "assistant-ended-call",
          endedAt: ENDED,
          finalizedAt: new Date(),
        },
      });
      const [req] = await customer.waitFor(1, 15_000);
      assert.equal(messageOf(req).endedReason, "assistant-ended-call");
    });
  });
}
