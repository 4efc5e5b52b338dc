import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { type Api, buildApi } from "../../apps/api/src/app.ts";
import { apiConfigFromEnv } from "../../apps/api/src/config.ts";
import { buildMedia } from "../../apps/media/src/app.ts";
import { mediaConfigFromEnv } from "../../apps/media/src/config.ts";
import { buildWorker } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { createDb, type Db } from "../../libs/db/index.ts";
import { BullMqQueue } from "../../libs/queue/index.ts";
import { REDIS_URL, testEnv } from "../helpers/api.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { parsePrometheus, sampleValue } from "../helpers/prometheus.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A pino destination that keeps every line, parsed. */
function logCapture(): { stream: Writable; lines: Array<Record<string, unknown>>; raw: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { stream, lines, raw };
}

async function scrape(app: { inject: Api["inject"] }, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: "GET", url: "/metrics", headers });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.body);
}

describe("API: /metrics, request ids and logs", () => {
  let database: TestDatabase;
  let db: Db;
  let redis: Redis;
  let api: Api;
  const logs = logCapture();
  let adminToken = "";

  before(async () => {
    database = await createTestDatabase();
    db = createDb(database.url);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    const config = apiConfigFromEnv(testEnv({ DATABASE_URL: database.url }));
    adminToken = config.adminToken;
    api = await buildApi(config, { db, redis, logger: { level: "info", stream: logs.stream } });
  });
  after(async () => {
    await api.close();
    await db.$disconnect();
    redis.disconnect();
    await database.drop();
  });

  it("times requests by route pattern and status, echoes or generates x-request-id, and logs app and reqId without the key", async () => {
    const created = await api.inject({
      method: "POST",
      url: "/org",
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { name: "Metrics" },
    });
    assert.equal(created.statusCode, 201);
    const key = created.json().apiKey.value as string;
    const before = await scrape(api);

    const list = await api.inject({
      method: "GET",
      url: "/assistant",
      headers: { authorization: `Bearer ${key}`, "x-request-id": "client-req.42" },
    });
    assert.equal(list.statusCode, 200);
    assert.equal(list.headers["x-request-id"], "client-req.42", "a sane incoming id is kept and returned");

    const missing = await api.inject({
      method: "GET",
      url: "/assistant/00000000-0000-4000-8000-000000000000",
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(missing.statusCode, 404);
    assert.match(String(missing.headers["x-request-id"]), UUID, "no incoming id: a UUID is generated");

    for (const bad of ["a".repeat(129), "two words", "<script>", '"quoted"', "a\tb"]) {
      const res = await api.inject({ method: "GET", url: "/health", headers: { "x-request-id": bad } });
      assert.match(String(res.headers["x-request-id"]), UUID, `${JSON.stringify(bad)} is replaced`);
    }
    const refused = await api.inject({
      method: "GET",
      url: "/assistant",
      headers: { "x-request-id": "no-key" },
    });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.headers["x-request-id"], "no-key", "error answers carry the id too");

    const after = await scrape(api);
    const delta = (labels: Record<string, string>) =>
      sampleValue(after, "switchboard_http_request_duration_seconds_count", labels) -
      sampleValue(before, "switchboard_http_request_duration_seconds_count", labels);
    assert.equal(delta({ app: "api", method: "GET", route: "/assistant", status_code: "200" }), 1);
    assert.equal(delta({ app: "api", method: "GET", route: "/assistant/:id", status_code: "404" }), 1);
    assert.equal(delta({ app: "api", method: "GET", route: "/assistant", status_code: "401" }), 1);
    assert.ok(
      !after.some((s) => (s.labels.route ?? "").includes("00000000-0000")),
      "the raw URL never becomes a label",
    );
    // Node's own metrics, event-loop delay among them.
    assert.ok(sampleValue(after, "process_cpu_user_seconds_total") > 0);
    assert.ok(after.some((s) => s.name === "nodejs_eventloop_lag_p99_seconds"));
    assert.ok(after.some((s) => s.name === "nodejs_heap_size_used_bytes"));

    // Every line names the app; the request's lines carry its id; the key never appears.
    assert.ok(logs.lines.length > 0);
    for (const line of logs.lines) assert.equal(line.app, "api", JSON.stringify(line));
    const ofRequest = logs.lines.filter((l) => l.reqId === "client-req.42");
    assert.deepEqual(
      ofRequest.map((l) => l.msg),
      ["incoming request", "request completed"],
    );
    for (const raw of logs.raw) {
      assert.ok(!raw.includes(key), "the API key is never logged");
      assert.ok(!raw.includes(adminToken), "the admin token is never logged");
    }
  });

  it("redacts credentials wherever a logged object carries them", () => {
    const at = logs.raw.length;
    api.log.warn(
      {
        req: { headers: { authorization: "Bearer sb_sk_secret-1", "x-vapi-secret": "secret-2" } },
        headers: { authorization: "Bearer secret-3", "x-vapi-secret": "secret-4", accept: "text/plain" },
        credential: { provider: "deepgram", apiKey: "secret-5" },
        phoneNumber: { twilioAuthToken: "secret-6", number: "+14155550100" },
        server: { url: "https://example.com", secret: "secret-7", headers: { authorization: "secret-8" } },
        token: "secret-9",
      },
      "redaction check",
    );
    const line = logs.raw.slice(at).join("\n");
    for (let i = 1; i <= 9; i++) assert.ok(!line.includes(`secret-${i}`), `secret-${i} in ${line}`);
    const parsed = JSON.parse(line) as {
      headers: Record<string, string>;
      credential: Record<string, string>;
      phoneNumber: Record<string, string>;
    };
    assert.equal(parsed.headers.authorization, "[redacted]");
    assert.equal(parsed.headers.accept, "text/plain", "other fields are kept");
    assert.equal(parsed.credential.apiKey, "[redacted]");
    assert.equal(parsed.credential.provider, "deepgram");
    assert.equal(parsed.phoneNumber.twilioAuthToken, "[redacted]");
  });

  it("/metrics is not part of the published API document", () => {
    const doc = api.swagger() as { paths: Record<string, unknown> };
    assert.ok(doc.paths["/assistant"]);
    assert.equal(doc.paths["/metrics"], undefined);
  });
});

describe("every app serves /metrics; METRICS_TOKEN guards it", () => {
  let database: TestDatabase;
  let db: Db;
  let redis: Redis;
  before(async () => {
    database = await createTestDatabase();
    db = createDb(database.url);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  });
  after(async () => {
    await db.$disconnect();
    redis.disconnect();
    await database.drop();
  });

  it("api, media and worker answer /metrics; with METRICS_TOKEN set, only a scrape with the token", async () => {
    const token = `metrics-${randomBytes(12).toString("hex")}`;
    for (const metricsToken of [undefined, token]) {
      const env = testEnv({
        DATABASE_URL: database.url,
        ...(metricsToken ? { METRICS_TOKEN: metricsToken } : {}),
      });
      const apps = [
        await buildApi(apiConfigFromEnv(env), { db, redis, logger: false }),
        await buildMedia(mediaConfigFromEnv(env), { db, redis, logger: false, sweepIntervalMs: 0 }),
        await buildWorker(workerConfigFromEnv(env), { db, redis, logger: false, schedule: false }),
      ];
      try {
        for (const app of apps) {
          if (!metricsToken) {
            const samples = await scrape(app);
            assert.ok(samples.some((s) => s.name === "switchboard_media_active_calls"));
            continue;
          }
          const without = await app.inject({ method: "GET", url: "/metrics" });
          assert.equal(without.statusCode, 401);
          assert.match(without.json().message, /METRICS_TOKEN/);
          const wrong = await app.inject({
            method: "GET",
            url: "/metrics",
            headers: { authorization: "Bearer not-the-metrics-token" },
          });
          assert.equal(wrong.statusCode, 401);
          await scrape(app, { authorization: `Bearer ${metricsToken}` });
        }
      } finally {
        for (const app of apps) await app.close();
      }
    }
  });
});

describe("worker: queue depth, job durations and failures", () => {
  let database: TestDatabase;
  let db: Db;
  let redis: Redis;
  const prefix = `test-metrics-${randomBytes(4).toString("hex")}`;
  before(async () => {
    database = await createTestDatabase();
    db = createDb(database.url);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await db.$disconnect();
    redis.disconnect();
    await database.drop();
  });

  it("waiting jobs per queue are read from BullMQ at scrape time; each attempt is timed and each failure counted", async () => {
    const queue = new BullMqQueue(redis, { prefix, concurrency: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: string[] = [];
    const worker = await buildWorker(workerConfigFromEnv(testEnv({ DATABASE_URL: database.url })), {
      db,
      redis,
      queue,
      logger: false,
      schedule: false,
      handlers: {
        "webhook.deliver": async (payload, ctx) => {
          seen.push(payload.deliveryId);
          await gate;
          if (payload.deliveryId === "d-fail" && ctx.attempt === 1) throw new Error("customer server down");
        },
      },
    });
    try {
      const before = await scrape(worker);
      const job = (deliveryId: string) => ({
        deliveryId,
        orgId: "org",
        url: "https://example.com/hook",
        headers: {},
        body: "{}",
        timeoutMs: 1000,
      });
      for (const id of ["d-1", "d-2", "d-fail"]) {
        await queue.enqueue("webhook.deliver", job(id), { jobId: `webhook.${id}` });
      }
      // Concurrency 1: one job runs (held at the gate), two wait.
      const deadline = Date.now() + 5000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const during = await scrape(worker);
      assert.equal(sampleValue(during, "switchboard_queue_waiting_jobs", { queue: "webhooks" }), 2);
      assert.equal(sampleValue(during, "switchboard_queue_jobs", { queue: "webhooks", state: "active" }), 1);
      assert.equal(sampleValue(during, "switchboard_queue_waiting_jobs", { queue: "calls" }), 0);

      release();
      // Three jobs, one of them failing once and retried after its backoff (0.5-1 s): four attempts.
      const labels = { queue: "webhooks", job: "webhook.deliver" };
      const attempts = (samples: ReturnType<typeof parsePrometheus>) =>
        sampleValue(samples, "switchboard_job_duration_seconds_count", labels) -
        sampleValue(before, "switchboard_job_duration_seconds_count", labels);
      let now = await scrape(worker);
      const done = Date.now() + 10_000;
      while (attempts(now) < 4 && Date.now() < done) {
        await new Promise((r) => setTimeout(r, 50));
        now = await scrape(worker);
      }
      assert.equal(attempts(now), 4);
      assert.equal(
        sampleValue(now, "switchboard_job_failures_total", labels) -
          sampleValue(before, "switchboard_job_failures_total", labels),
        1,
      );
      assert.equal(sampleValue(now, "switchboard_queue_waiting_jobs", { queue: "webhooks" }), 0);
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
