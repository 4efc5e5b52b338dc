import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { MIGRATIONS_DIR } from "../../libs/db/schema-engine.ts";
import { LOCK_FILE, lockDataDir, StartupError } from "../../libs/runtime/index.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import {
  flushSpawnedRedis,
  freePort,
  SPAWNED_REDIS_URL,
  type Spawned,
  spawnApp,
  spawnProcess,
  waitForOutput,
} from "../helpers/processes.ts";

// A process that cannot start says why in one line (`<app>: <cause>`), no stack, and exits
// non-zero: what an operator reads in `kubectl logs` or `docker compose logs`.

const secrets = {
  SECRETS_KEY: randomBytes(32).toString("base64"),
  ADMIN_TOKEN: randomBytes(24).toString("hex"),
};

async function failsWith(p: Spawned, line: RegExp): Promise<void> {
  const { code } = await p.exit(60_000);
  assert.equal(code, 1, p.output);
  const lines = p.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${p.stderr}`);
  assert.match(lines[0] ?? "", line);
  assert.doesNotMatch(p.output, /^\s+at /m, "no stack trace");
}

describe("start-up failures", () => {
  let database: TestDatabase;
  let occupied: Server;
  let occupiedPort: number;
  let closedPort: number;
  before(async () => {
    database = await createTestDatabase();
    occupied = createServer();
    await new Promise<void>((r) => occupied.listen(0, "127.0.0.1", r));
    const a = occupied.address();
    occupiedPort = typeof a === "object" && a ? a.port : 0;
    closedPort = await freePort();
  });
  after(async () => {
    await new Promise((r) => occupied.close(r));
    await database.drop();
    await flushSpawnedRedis();
  });

  const apps = [
    { app: "api", portVariable: "API_PORT" },
    { app: "media", portVariable: "MEDIA_PORT" },
    { app: "worker", portVariable: "WORKER_PORT" },
  ];
  for (const { app, portVariable } of apps) {
    it(`${app}: a port in use names the port and ${portVariable}`, async () => {
      const p = spawnApp(`apps/${app}/src/main.ts`, {
        ...secrets,
        DATABASE_URL: database.url,
        REDIS_URL: SPAWNED_REDIS_URL,
        MIGRATE_ON_START: "false",
        HOST: "127.0.0.1",
        [portVariable]: String(occupiedPort),
        LOG_LEVEL: "warn",
      });
      await failsWith(
        p,
        new RegExp(`^${app}: port ${occupiedPort} is already in use \\(${portVariable}\\)$`),
      );
    });
  }

  it("api and migrate: an unreachable database is named with the cause, never its password", async () => {
    const url = `postgresql://switchboard:hunter2-secret@127.0.0.1:${closedPort}/switchboard`;
    const expected = new RegExp(
      `: cannot use the database 127\\.0\\.0\\.1:${closedPort}/switchboard \\(DATABASE_URL\\): connection refused`,
    );
    const api = spawnApp("apps/api/src/main.ts", { ...secrets, DATABASE_URL: url, LOG_LEVEL: "warn" });
    await failsWith(api, new RegExp(`^api${expected.source}`));
    const migrate = spawnApp("scripts/db-migrate.ts", { DATABASE_URL: url });
    await failsWith(migrate, new RegExp(`^migrate${expected.source}`));
    assert.doesNotMatch(api.output + migrate.output, /hunter2/);
  });

  it("migrate: a migration the database refuses is named with the database's error; the next run names the failed one", async () => {
    // The database already has what the first migration creates, but no record of it: applying it
    // again fails the way a broken migration does.
    const first = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()[0];
    assert.ok(first);
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    await c.query(`DELETE FROM _prisma_migrations WHERE migration_name = $1`, [first]);
    await c.end();

    const migrate = spawnApp("scripts/db-migrate.ts", { DATABASE_URL: database.url });
    await failsWith(migrate, new RegExp(`^migrate: migration ${first} failed: .*already exists$`));
    const again = spawnApp("scripts/db-migrate.ts", { DATABASE_URL: database.url });
    await failsWith(
      again,
      new RegExp(`^migrate: migration ${first} failed earlier \\(started at .*\\); resolve it`),
    );
  });
});

describe("npm start: one process per data directory", () => {
  let dataDir: string;
  const spawned: Spawned[] = [];
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "switchboard-lock-"));
  });
  after(async () => {
    for (const p of spawned) await p.kill();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function npmStart(): Promise<Spawned> {
    const [api, media, worker] = [await freePort(), await freePort(), await freePort()];
    const p = spawnProcess(
      "npm",
      ["start"],
      {
        DATA_DIR: dataDir,
        API_PORT: String(api),
        MEDIA_PORT: String(media),
        WORKER_PORT: String(worker),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
      },
      { detached: true },
    );
    spawned.push(p);
    return p;
  }

  it("a second npm start on the same DATA_DIR refuses at once naming the first; after the first is killed (-9) the stale lock is taken over", async () => {
    const first = await npmStart();
    await waitForOutput(first, "Switchboard is running");
    const owner = JSON.parse(await readFile(path.join(dataDir, LOCK_FILE), "utf8")) as {
      pid: number;
      startedAt: string;
    };

    const second = await npmStart();
    const { code } = await second.exit(60_000);
    assert.notEqual(code, 0);
    assert.ok(
      second.stderr.includes(
        `switchboard: DATA_DIR ${dataDir} is in use by another switchboard (pid ${owner.pid}, started ${owner.startedAt}); stop it or set DATA_DIR to another directory`,
      ),
      second.output,
    );
    assert.doesNotMatch(second.output, /Switchboard is running/);
    assert.equal(first.child.exitCode, null, "the first keeps running");

    // Killed without a chance to clean up: its lock names a process that is gone.
    await first.kill();
    const third = await npmStart();
    await waitForOutput(third, "Switchboard is running");
    const now = JSON.parse(await readFile(path.join(dataDir, LOCK_FILE), "utf8")) as { pid: number };
    assert.notEqual(now.pid, owner.pid);
  });
});

describe("lockDataDir", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "switchboard-lockdir-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a lock held on another machine (its process cannot be checked from here), naming the host and the file", async () => {
    const file = path.join(dir, LOCK_FILE);
    await writeFile(
      file,
      JSON.stringify({ pid: 4242, startedAt: "2026-01-01T00:00:00.000Z", hostname: "other" }),
    );
    assert.throws(
      () => lockDataDir(dir),
      (err: unknown) =>
        err instanceof StartupError &&
        err.message ===
          `DATA_DIR ${dir} is in use by switchboard pid 4242 on other (started 2026-01-01T00:00:00.000Z); if it is gone, delete ${file}`,
    );
    await rm(file);
  });

  it("takes over an unreadable lock (a crash while writing it) and removes it on release", async () => {
    const file = path.join(dir, LOCK_FILE);
    await writeFile(file, "{");
    const lock = lockDataDir(dir);
    const owner = JSON.parse(await readFile(file, "utf8")) as { pid: number; hostname: string };
    assert.deepEqual([owner.pid, owner.hostname], [process.pid, hostname()]);
    lock.release();
    await assert.rejects(readFile(file), { code: "ENOENT" });
  });
});
