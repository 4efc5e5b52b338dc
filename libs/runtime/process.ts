import { ConfigError } from "../config/index.ts";

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
 * Runs `stop` once on SIGTERM/SIGINT, then exits. A second signal exits at once, so an operator
 * is never stuck behind a slow drain.
 */
export function onShutdown(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
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
