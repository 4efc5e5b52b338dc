import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import Fastify from "fastify";
import pg from "pg";
import { createDb } from "../../libs/db/index.ts";
import { installErrorHandler } from "../../libs/http/index.ts";
import { assistantBody } from "../helpers/bodies.ts";
import { ADMIN_URL, createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { type AppProcess, type RedisServer, startApp, startRedisServer } from "../helpers/fault-processes.ts";
import { waitUntil } from "../media/harness.ts";

// Every Postgres connection of the apps terminated by the server in the middle of traffic (a
// failover, an operator's pg_terminate_backend, a proxy restart). The apps run as real processes.

interface Outcome {
  status: number;
  startedAt: number;
  endedAt: number;
}

describe("Postgres connections terminated mid-traffic", () => {
  let database: TestDatabase;
  let redis: RedisServer;
  let api: AppProcess;
  let media: AppProcess;
  let worker: AppProcess;
  let key: string;

  before(async () => {
    [database, redis] = await Promise.all([createTestDatabase(), startRedisServer()]);
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      SECRETS_KEY: randomBytes(32).toString("base64"),
      ADMIN_TOKEN: `admin-${randomBytes(16).toString("hex")}`,
      MIGRATE_ON_START: "false",
      LOG_LEVEL: "warn",
      // The assistants' server URLs are not resolved (no DNS lookup per request in this test).
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      RATE_LIMIT_PER_MINUTE: "1000000",
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "1000000",
    };
    [api, media, worker] = await Promise.all([
      startApp("api", env),
      startApp("media", env),
      startApp("worker", env),
    ]);
    const res = await fetch(`${api.url}/org`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Postgres faults" }),
    });
    assert.equal(res.status, 201);
    key = ((await res.json()) as { apiKey: { value: string } }).apiKey.value;
  });

  after(async () => {
    await Promise.all([api.kill("SIGKILL"), media.kill("SIGKILL"), worker.kill("SIGKILL")]);
    await database.drop();
    await redis.close();
  });

  async function terminateBackends(only?: string): Promise<number> {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      const name = new URL(database.url).pathname.slice(1);
      const r = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()${
          only ? " AND query LIKE $2" : ""
        }`,
        only ? [name, only] : [name],
      );
      return r.rowCount ?? 0;
    } finally {
      await admin.end();
    }
  }

  /** One user's requests: create an assistant, read it back, list assistants. */
  async function oneRound(outcomes: Outcome[]): Promise<void> {
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const startedAt = Date.now();
    const created = await fetch(`${api.url}/assistant`, {
      method: "POST",
      headers,
      body: JSON.stringify(assistantBody()),
    });
    const body = (await created.json()) as { id?: string };
    outcomes.push({ status: created.status, startedAt, endedAt: Date.now() });
    if (created.status !== 201 || !body.id) return;
    for (const url of [`${api.url}/assistant/${body.id}`, `${api.url}/assistant?limit=5`]) {
      const at = Date.now();
      const res = await fetch(url, { headers });
      await res.body?.cancel();
      outcomes.push({ status: res.status, startedAt: at, endedAt: Date.now() });
    }
  }

  it("requests recover without a restart; every app stays up and healthy", async (tc) => {
    const outcomes: Outcome[] = [];
    let running = true;
    const users = Array.from({ length: 6 }, async () => {
      while (running) await oneRound(outcomes);
    });
    await new Promise((r) => setTimeout(r, 1000));
    const terminatedAt = Date.now();
    const terminated = await terminateBackends();
    assert.ok(terminated >= 3, `the apps' connections were terminated (${terminated})`);
    await new Promise((r) => setTimeout(r, 2000));
    running = false;
    await Promise.all(users);

    // A request still in flight when the connections are cut belongs to "afterwards" (it may get
    // the 503); "before" is what was answered before the cut.
    const before = outcomes.filter((o) => o.endedAt < terminatedAt);
    const afterwards = outcomes.filter((o) => o.endedAt >= terminatedAt);
    const failed = afterwards.filter((o) => o.status >= 400);
    tc.diagnostic(
      `${before.length} requests before, ${afterwards.length} after the termination; failed after: ${failed
        .map((o) => `${o.status} at +${o.startedAt - terminatedAt} ms`)
        .join(", ")}`,
    );
    assert.ok(
      before.every((o) => o.status < 400),
      "traffic was healthy before",
    );
    // A request whose query was on a connection at the moment it was cut may fail, once, and says
    // so with a 503 that invites a retry; every later one succeeds.
    for (const o of failed) assert.equal(o.status, 503);
    const lateFailures = failed.filter((o) => o.startedAt > terminatedAt + 500);
    assert.deepEqual(lateFailures, [], "requests started after the cut succeed");
    assert.ok(afterwards.filter((o) => o.status < 400).length > 20, "traffic went on");

    // No process died or needs a restart: each answers /health 200 from its database.
    for (const app of [api, media, worker]) {
      await waitUntil(
        async () => (await fetch(`${app.url}/health`)).status === 200,
        5000,
        `${app.url} healthy`,
      );
    }
  });

  it("a request whose query is cut answers 503 with Retry-After, not 500, and the next one is served", async () => {
    // The apps' error handler with a query that is surely running when its connection is cut.
    const db = createDb(database.url);
    const app = Fastify({ logger: false });
    installErrorHandler(app);
    app.get("/slow", async () => {
      await db.$queryRaw`SELECT pg_sleep(30)`;
      return { ok: true };
    });
    app.get("/quick", async () => ({
      one: Number((await db.$queryRaw<{ one: number }[]>`SELECT 1 AS one`)[0]?.one),
    }));
    try {
      const slow = app.inject({ method: "GET", url: "/slow" });
      const name = new URL(database.url).pathname.slice(1);
      await waitUntil(
        async () => {
          const admin = new pg.Client({ connectionString: ADMIN_URL });
          await admin.connect();
          try {
            const r = await admin.query(
              "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep%'",
              [name],
            );
            return (r.rowCount ?? 0) > 0;
          } finally {
            await admin.end();
          }
        },
        5000,
        "the slow query to run",
      );
      assert.equal(await terminateBackends("SELECT pg_sleep%"), 1);
      const res = await slow;
      assert.equal(res.statusCode, 503);
      assert.equal(res.headers["retry-after"], "1");
      assert.deepEqual(res.json(), {
        statusCode: 503,
        error: "Service Unavailable",
        message: "The database is unavailable for a moment; retry the request",
      });
      const next = await app.inject({ method: "GET", url: "/quick" });
      assert.equal(next.statusCode, 200);
      assert.deepEqual(next.json(), { one: 1 });
    } finally {
      await app.close();
      await db.$disconnect();
    }
  });
});
