import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

// The README's first command, as written (`npm start`), on a machine with nothing configured:
// embedded Postgres, in-process jobs, generated development secrets and key.

const root = path.resolve(import.meta.dirname, "../..");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

test("npm start runs the whole platform with no configuration and prints a working dev key", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "switchboard-start-"));
  const [api, media, worker] = [await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? tmpdir(),
    DATA_DIR: dataDir,
    API_PORT: String(api),
    MEDIA_PORT: String(media),
    WORKER_PORT: String(worker),
    HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
  };
  const child = spawn("npm", ["start"], {
    cwd: root,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    const started = Date.now();
    while (!out.includes("Switchboard is running")) {
      if (Date.now() - started > 120_000) assert.fail(`did not start in time:\n${out}`);
      if (child.exitCode !== null) assert.fail(`exited early (${child.exitCode}):\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(out, /embedded Postgres, in-process jobs/);
    const key = /Dev API key\s+(\S+)/.exec(out)?.[1];
    assert.ok(key, out);
    const base = `http://127.0.0.1:${api}`;
    assert.match(out, new RegExp(`API\\s+${base}`));
    assert.match(out, new RegExp(`Dashboard\\s+${base}/dashboard/`));
    assert.equal((await fetch(`${base}/dashboard/`)).status, 200);
    assert.match(out, new RegExp(`Talk\\s+${base}/dashboard/talk\\.html`));
    const talk = await fetch(`${base}/dashboard/talk.html`);
    assert.equal(talk.status, 200);
    // The talk page may open its calls' websockets to the media process, and nowhere else.
    assert.match(
      talk.headers.get("content-security-policy") ?? "",
      new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${media};`),
    );

    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok", database: "ok", redis: "not-configured" });
    for (const port of [media, worker]) {
      assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    }
    const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const created = await fetch(`${base}/assistant`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "Quickstart", firstMessage: "Hello!" }),
    });
    assert.equal(created.status, 201);
    const list = await fetch(`${base}/assistant`, { headers: auth });
    assert.equal(((await list.json()) as { name: string }[])[0]?.name, "Quickstart");
  } finally {
    if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGTERM");
    const code = await exited;
    // npm exits before the platform under it has finished stopping (the embedded Postgres still
    // writing its files): wait for the whole process group, then remove the data directory.
    if (child.pid) await groupGone(child.pid, 15_000);
    await rm(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    assert.ok(code === 0 || code === null, `exit code ${code}\n${out}`);
  }
});

/** Resolves once no process of the group is left (or after `ms`). */
async function groupGone(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
