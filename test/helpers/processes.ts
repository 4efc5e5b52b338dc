import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { REDIS_URL } from "./api.ts";

// The apps as real OS processes, started the way production starts them (`node --import tsx
// apps/<app>/src/main.ts`), for tests of signals, exit codes, start-up failures and faults.

export const ROOT = path.resolve(import.meta.dirname, "../..");

/**
 * A Redis database of its own for spawned apps that share the suite's Redis: their BullMQ queues
 * (default prefix) must not meet the workers other test files run in database 0. Emptied by
 * `flushSpawnedRedis`.
 */
export const SPAWNED_REDIS_URL = (() => {
  const u = new URL(REDIS_URL);
  u.pathname = "/11";
  return u.toString();
})();

export async function flushSpawnedRedis(): Promise<void> {
  const redis = new Redis(SPAWNED_REDIS_URL);
  try {
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr as they arrived. */
  readonly output: string;
  readonly stderr: string;
  readonly exited: Promise<Exit>;
  /** Sends a signal without waiting; returns when it was sent (Date.now()). */
  signal(sig: NodeJS.Signals): number;
  /** Waits for the exit, failing after `ms`; `afterMs` counts from `since` (default: now). */
  exit(ms: number, since?: number): Promise<Exit & { afterMs: number }>;
  /** SIGKILL (the whole group when detached) unless it has exited; waits for the exit. */
  kill(): Promise<Exit>;
}

/**
 * Spawns `command args` in the checkout with only the given environment (plus PATH and HOME), so
 * nothing of the test process's own environment reaches the app's configuration. `detached` puts it
 * in a process group of its own (for `npm …`, whose node runs as a grandchild): `kill` then
 * signals the whole group.
 */
export function spawnProcess(
  command: string,
  args: string[],
  env: Record<string, string>,
  options: { detached?: boolean } = {},
): Spawned {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
  let output = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
    stderr += d.toString();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const send = (sig: NodeJS.Signals) => {
    if (options.detached && child.pid) process.kill(-child.pid, sig);
    else child.kill(sig);
  };
  return {
    child,
    pid: child.pid ?? 0,
    get output() {
      return output;
    },
    get stderr() {
      return stderr;
    },
    exited,
    signal(sig) {
      send(sig);
      return Date.now();
    },
    async exit(ms, since = Date.now()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; output:\n${output}`)), ms);
      });
      try {
        const e = await Promise.race([exited, timeout]);
        return { ...e, afterMs: Date.now() - since };
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (running()) send("SIGKILL");
      return exited;
    },
  };
}

/** `node --import tsx <entry>` (e.g. `apps/api/src/main.ts`): an app's production command from a checkout. */
export function spawnApp(entry: string, env: Record<string, string>): Spawned {
  return spawnProcess(process.execPath, ["--import", "tsx", entry], env);
}

/** Polls `GET /health` until it answers 200 and returns how long that took; fails when the process exits. */
export async function waitForHealth(p: Spawned, port: number, timeoutMs = 90_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode}:\n${p.output}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.body?.cancel();
      if (res.status === 200) return Date.now() - started;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`not healthy after ${timeoutMs} ms:\n${p.output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the output contains `text`; fails when the process exits first. */
export async function waitForOutput(p: Spawned, text: string, timeoutMs = 120_000): Promise<void> {
  const started = Date.now();
  while (!p.output.includes(text)) {
    if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode}:\n${p.output}`);
    if (Date.now() - started > timeoutMs) throw new Error(`no "${text}" after ${timeoutMs} ms:\n${p.output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
