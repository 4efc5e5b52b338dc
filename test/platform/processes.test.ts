import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { WebSocket } from "ws";
import { ADMIN_URL, createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import {
  flushSpawnedRedis,
  freePort,
  ROOT,
  SPAWNED_REDIS_URL,
  type Spawned,
  spawnApp,
  spawnProcess,
  waitForHealth,
  waitForOutput,
} from "../helpers/processes.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
} from "../media/harness.ts";

// The apps as production runs them: node itself is the process (no npm or shell in front of it),
// so SIGTERM reaches the app: intake stops, work drains, the process exits 0. Bounds are generous
// (a shared 2-core machine); they catch a process that ignores the signal, not a slow one.

const STOP_BOUND_MS = 15_000;

function secrets(): Record<string, string> {
  return { SECRETS_KEY: randomBytes(32).toString("base64"), ADMIN_TOKEN: randomBytes(24).toString("hex") };
}

describe("api, worker and media: SIGTERM stops the process with exit code 0", () => {
  let database: TestDatabase;
  const spawned: Spawned[] = [];
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    for (const p of spawned) await p.kill();
    await database.drop();
    await flushSpawnedRedis();
  });

  const apps = [
    { entry: "apps/api/src/main.ts", portVariable: "API_PORT" },
    { entry: "apps/worker/src/main.ts", portVariable: "WORKER_PORT" },
    { entry: "apps/media/src/main.ts", portVariable: "MEDIA_PORT" },
  ];
  for (const { entry, portVariable } of apps) {
    it(`node --import tsx ${entry}`, async (t) => {
      const port = await freePort();
      const app = spawnApp(entry, {
        ...secrets(),
        DATABASE_URL: database.url,
        REDIS_URL: SPAWNED_REDIS_URL,
        HOST: "127.0.0.1",
        [portVariable]: String(port),
        LOG_LEVEL: "warn",
      });
      spawned.push(app);
      const readyMs = await waitForHealth(app, port);
      t.diagnostic(`${entry}: process start to healthy ${readyMs} ms`);
      const sent = app.signal("SIGTERM");
      const { code, signal, afterMs } = await app.exit(STOP_BOUND_MS, sent);
      t.diagnostic(`${entry}: SIGTERM to exit ${afterMs} ms`);
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, app.output);
      // A clean stop reports nothing (no shutdown error, no deadline passed).
      assert.doesNotMatch(app.stderr, /switchboard: /);
    });
  }
});

describe("a media process stopped during a call", () => {
  let env: MediaEnv;
  let mediaPort: number;
  const spawned: Spawned[] = [];
  before(async () => {
    mediaPort = await freePort();
    // The API (here) answers Twilio with a stream to the media process spawned below.
    env = await startMediaEnv({ env: { MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}` } });
  });
  after(async () => {
    for (const p of spawned) await p.kill();
    await env.close();
    await flushSpawnedRedis();
  });

  async function startMedia(drainMs: number): Promise<Spawned> {
    const media = spawnApp("apps/media/src/main.ts", {
      DATABASE_URL: env.t.database.url,
      REDIS_URL: SPAWNED_REDIS_URL,
      SECRETS_KEY: env.t.config.secretsKey.toString("base64"),
      ADMIN_TOKEN: env.t.config.adminToken,
      PUBLIC_URL: env.t.config.publicUrl,
      MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}`,
      MEDIA_PORT: String(mediaPort),
      HOST: "127.0.0.1",
      MEDIA_DRAIN_MS: String(drainMs),
      DEEPGRAM_API_URL: env.deepgram.url,
      OPENAI_BASE_URL: env.openai.baseUrl,
      ELEVENLABS_API_URL: env.elevenlabs.url,
      TWILIO_API_URL: env.twilio.baseUrl,
      OPENAI_API_KEY: "sk-platform-openai",
      DEEPGRAM_API_KEY: "platform-deepgram",
      ELEVENLABS_API_KEY: "platform-elevenlabs",
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      LOG_LEVEL: "warn",
    });
    spawned.push(media);
    await waitForHealth(media, mediaPort);
    return media;
  }

  async function callStatus(callSid: string): Promise<string | undefined> {
    return (await env.t.db.call.findUnique({ where: { providerCallId: callSid } }))?.status;
  }

  function newStreamCloseCode(url: string): Promise<number> {
    const ws = new WebSocket(url);
    return new Promise<number>((resolve) => {
      ws.once("close", (code) => resolve(code));
      ws.once("error", () => resolve(-1));
    });
  }

  it("SIGTERM: new streams are refused (1013), the call keeps running, the drain deadline ends it with worker-shutdown, exit 0", async () => {
    const media = await startMedia(3000);
    const { sim } = await callAssistant(env);
    await waitForSpoken(sim, 1, 20_000);

    const sent = media.signal("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await newStreamCloseCode(sim.streamUrl ?? ""), 1013);
    assert.equal(media.child.exitCode, null, "still draining");
    assert.equal(await callStatus(sim.callSid), "in-progress", "the call is not cut at the signal");

    const { code, signal } = await media.exit(3000 + STOP_BOUND_MS, sent);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, media.output);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "worker-shutdown");
    assert.ok(call.transcript, "the call's record is complete");
  });

  it("a second SIGTERM during the drain ends the call at once with worker-shutdown, exit 0", async () => {
    // A drain far longer than the test: only the second signal can end it in time.
    const media = await startMedia(600_000);
    const { sim } = await callAssistant(env);
    await waitForSpoken(sim, 1, 20_000);

    media.signal("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(media.child.exitCode, null, "still draining");
    assert.equal(await callStatus(sim.callSid), "in-progress");

    const second = media.signal("SIGTERM");
    const { code, signal } = await media.exit(STOP_BOUND_MS, second);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, media.output);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "worker-shutdown");
  });
});

describe("the image's layout (npm run build): compiled JavaScript run by node", () => {
  let out: string;
  let dbName: string;
  const spawned: Spawned[] = [];
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  before(async () => {
    out = await mkdtemp(path.join(tmpdir(), "switchboard-build-"));
    dbName = `sb_test_build_${randomBytes(6).toString("hex")}`;
    await admin(`CREATE DATABASE "${dbName}"`);
  });
  after(async () => {
    for (const p of spawned) await p.kill();
    await rm(out, { recursive: true, force: true });
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await flushSpawnedRedis();
  });

  it("waits for migrations (the pods' initContainer), migrates an empty database, serves the API, answers the HEALTHCHECK, stops on SIGTERM", async (t) => {
    const build = spawnProcess(process.execPath, ["--import", "tsx", "scripts/build.ts", out], {});
    spawned.push(build);
    assert.equal((await build.exit(180_000)).code, 0, build.output);
    // The image has node_modules next to the compiled code; here the checkout's serve.
    await symlink(path.join(ROOT, "node_modules"), path.join(out, "node_modules"), "dir");

    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    const run = (file: string, env: Record<string, string>, args: string[] = []) =>
      spawnProcess(process.execPath, [path.join(out, file), ...args], env);

    // The pods' initContainer: waits, applying nothing, until the migrate Job has run.
    const waiting = run("scripts/db-migrate.js", { DATABASE_URL: url.toString() }, ["--wait"]);
    spawned.push(waiting);
    await waitForOutput(waiting, "migrate: waiting for ", 60_000);
    assert.match(waiting.output, /waiting for \d{14}_init, /);

    const migrate = run("scripts/db-migrate.js", { DATABASE_URL: url.toString() });
    spawned.push(migrate);
    assert.equal((await migrate.exit(120_000)).code, 0, migrate.output);
    assert.match(migrate.output, /^migrate: applied \d{14}_init, /m);
    assert.equal((await waiting.exit(30_000)).code, 0, waiting.output);
    assert.match(waiting.output, /^migrate: database is up to date$/m);

    const port = await freePort();
    const api = run("apps/api/src/main.js", {
      ...secrets(),
      DATABASE_URL: url.toString(),
      REDIS_URL: SPAWNED_REDIS_URL,
      MIGRATE_ON_START: "false",
      API_PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
    });
    spawned.push(api);
    const readyMs = await waitForHealth(api, port);
    t.diagnostic(`compiled api: process start to healthy ${readyMs} ms`);

    const healthcheck = () => run("scripts/healthcheck.js", {}, [String(port)]).exit(20_000);
    assert.equal((await healthcheck()).code, 0, "HEALTHCHECK passes while the API is healthy");

    const sent = api.signal("SIGTERM");
    assert.deepEqual(await api.exit(STOP_BOUND_MS, sent).then(({ code, signal }) => ({ code, signal })), {
      code: 0,
      signal: null,
    });
    assert.equal((await healthcheck()).code, 1, "HEALTHCHECK fails once nothing answers");
  });
});
