import { ConfigError } from "../config/index.ts";

/** A start-up failure whose message alone tells the operator what to fix: printed without a stack. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Loads configuration or stops the process with a message that names the bad variable. */
export function loadOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`switchboard: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Runs a process's start-up (database check, migrations, build, listen). A failure with a known
 * cause prints one line, `<name>: <cause>`, and exits 1; anything else is a bug and keeps its stack.
 */
export async function startOrExit<T>(name: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof StartupError || err instanceof ConfigError) console.error(`${name}: ${err.message}`);
    else console.error(`${name}: failed to start:`, err);
    process.exit(1);
  }
}

interface Listener {
  listen(options: { port: number; host: string }): Promise<unknown>;
}

/** Listens, or fails with a StartupError naming the port and the variable that sets it. */
export async function listenOrFail(
  app: Listener,
  options: { port: number; host: string; portVariable: string },
): Promise<void> {
  const { port, host, portVariable } = options;
  try {
    await app.listen({ port, host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new StartupError(`port ${port} is already in use (${portVariable})`);
    if (code === "EACCES") throw new StartupError(`not allowed to listen on port ${port} (${portVariable})`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND")
      throw new StartupError(`cannot listen on ${host}: no such address on this machine (HOST)`);
    throw err;
  }
}

/**
 * How long the api and the worker give in-flight requests and running jobs when stopping, before
 * they exit 1 anyway: inside Kubernetes' default 30 s grace (their pods allow more).
 */
export const STOP_DEADLINE_MS = 25_000;

export interface ShutdownOptions {
  /**
   * What a second signal does instead of waiting for the drain: the media app ends its remaining
   * calls (`worker-shutdown`) and exits 0. Without it a second signal exits 1 at once.
   */
  hurry?: () => void;
  /** Exit 1 when stopping takes longer than this: a stuck close must not keep the process forever. */
  deadlineMs?: number;
}

/**
 * Runs `stop` once on SIGTERM/SIGINT, then exits 0. A second signal hurries the drain (or exits
 * at once), a third always exits at once, so an operator is never stuck behind a slow drain.
 */
export function onShutdown(stop: (signal: string) => Promise<void>, options: ShutdownOptions = {}): void {
  let signals = 0;
  const handler = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      if (signals === 2 && options.hurry) {
        console.error(`switchboard: ${signal} again, ending what is still draining`);
        options.hurry();
        return;
      }
      console.error(`switchboard: ${signal} again, exiting without waiting`);
      process.exit(1);
    }
    if (options.deadlineMs !== undefined) {
      const deadline = options.deadlineMs;
      setTimeout(() => {
        console.error(`switchboard: still stopping after ${deadline} ms, exiting`);
        process.exit(1);
      }, deadline).unref();
    }
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error("switchboard: error during shutdown", err);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
