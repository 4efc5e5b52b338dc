import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import path from "node:path";

// Real OS processes for fault tests: an app started as production starts it (node + its entry
// point) that a test kills with any signal, and a private, non-persistent redis-server that a test
// stops and starts again (or whose users it kills) without touching the shared one on 6379.

const ROOT = path.resolve(import.meta.dirname, "../..");

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AppProcess {
  url: string;
  port: number;
  /** stdout and stderr so far (for a failing test's message). */
  output(): string;
  exited: Promise<Exit>;
  /** Sends the signal; resolves when the process has exited. */
  kill(signal: NodeJS.Signals): Promise<Exit>;
}

/**
 * Starts `node --import tsx apps/<app>/src/main.ts` with exactly `env` (plus PATH) on a free port
 * (or the one `env` names) and resolves once its `/health` answers 200.
 */
export async function startApp(
  app: "api" | "media" | "worker",
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<AppProcess> {
  const portVariable = { api: "API_PORT", media: "MEDIA_PORT", worker: "WORKER_PORT" }[app];
  const port = env[portVariable] ? Number(env[portVariable]) : await freePort();
  const proc = spawn(process.execPath, ["--import", "tsx", `apps/${app}/src/main.ts`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", ...env, [portVariable]: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const collect = (d: Buffer): void => {
    out += d.toString("utf8");
  };
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) =>
    proc.once("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (exit) throw new Error(`${app} exited (${exit.code ?? exit.signal}) before it was healthy:\n${out}`);
    const healthy = await fetch(`${url}/health`).then(
      async (res) => {
        await res.body?.cancel();
        return res.status === 200;
      },
      () => false,
    );
    if (healthy) break;
    if (Date.now() > until) {
      proc.kill("SIGKILL");
      throw new Error(`${app} not healthy after ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    output: () => out,
    exited,
    async kill(signal) {
      if (!exit) proc.kill(signal);
      return exited;
    },
  };
}

export interface RedisServer {
  url: string;
  port: number;
  /** Kills it (as if the host vanished); `start` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.end();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const start = async (): Promise<void> => {
    const p = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    proc = p;
    exited = new Promise((r) => p.once("exit", r));
    const until = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (Date.now() > until) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    proc?.kill("SIGKILL");
    await exited;
    proc = undefined;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, stop, close: stop };
}

export interface TcpProxy {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The target becomes unreachable: open connections are cut, new ones refused. */
  cut(): Promise<void>;
  /** Reachable again (the target kept its data). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP proxy on loopback in front of `targetPort`: an outage of the service behind it (network
 * partition, failover) without the service losing its state.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const srv = createServer((client) => {
        const upstream = connect(targetPort, "127.0.0.1");
        sockets.add(client);
        sockets.add(upstream);
        const drop = (): void => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        for (const s of [client, upstream]) {
          s.on("error", drop);
          s.on("close", drop);
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      srv.once("error", reject);
      srv.listen(port, "127.0.0.1", () => resolve());
      server = srv;
    });
  const cut = async (): Promise<void> => {
    const srv = server;
    server = undefined;
    const closed = new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));
    for (const s of sockets) s.destroy();
    sockets.clear();
    await closed;
  };
  await listen();
  return { url: `redis://127.0.0.1:${port}`, port, cut, restore: listen, close: cut };
}
