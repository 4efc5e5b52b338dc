import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import { buildApi } from "../../apps/api/src/app.ts";
import { apiConfigFromEnv } from "../../apps/api/src/config.ts";
import { buildMedia } from "../../apps/media/src/app.ts";
import { mediaConfigFromEnv } from "../../apps/media/src/config.ts";
import { buildWorker } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { createDb } from "../../libs/db/index.ts";
import { testEnv } from "../helpers/api.ts";
import { createTestDatabase } from "../helpers/db.ts";

test("every app answers /health: 200 with its database and Redis, 503 when one is unreachable", async () => {
  const database = await createTestDatabase();
  const env = testEnv({ DATABASE_URL: database.url });
  const db = createDb(database.url);
  const redis = new Redis(env.REDIS_URL ?? "");
  // Nothing listens on port 1: a Redis that cannot be reached.
  const deadRedis = new Redis("redis://127.0.0.1:1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  deadRedis.on("error", () => {});
  const deadDb = createDb("postgresql://postgres@127.0.0.1:1/postgres");
  try {
    const apps = [
      await buildApi(apiConfigFromEnv(env), { db, redis, logger: false }),
      await buildMedia(mediaConfigFromEnv(env), { db, redis, logger: false }),
      await buildWorker(workerConfigFromEnv(env), { db, redis, logger: false }),
    ];
    for (const app of apps) {
      const res = await app.inject({ method: "GET", url: "/health" });
      assert.equal(res.statusCode, 200);
      // The media app also counts its open streams (none here).
      const { connections, ...deps } = res.json();
      assert.deepEqual(deps, { status: "ok", database: "ok", redis: "ok" });
      if (app === apps[1]) assert.deepEqual(connections, { pending: 0, active: 0 });
      else assert.equal(connections, undefined);
      await app.close();
    }
    const noRedis = await buildApi(apiConfigFromEnv(env), { db, redis: deadRedis, logger: false });
    const r1 = await noRedis.inject({ method: "GET", url: "/health" });
    assert.equal(r1.statusCode, 503);
    assert.deepEqual(r1.json(), { status: "unavailable", database: "ok", redis: "unreachable" });
    await noRedis.close();

    const worker = await buildWorker(workerConfigFromEnv(env), { db: deadDb, redis, logger: false });
    const r2 = await worker.inject({ method: "GET", url: "/health" });
    assert.equal(r2.statusCode, 503);
    assert.equal(r2.json().database, "unreachable");
    await worker.close();
  } finally {
    await db.$disconnect();
    await deadDb.$disconnect().catch(() => {});
    redis.disconnect();
    deadRedis.disconnect();
    await database.drop();
  }
});
