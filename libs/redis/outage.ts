import { Redis, type RedisOptions } from "ioredis";

// While Redis is unreachable, ioredis emits `error` on every failed reconnection attempt of every
// connection (several a second), and a connection with no `error` listener prints
// "[ioredis] Unhandled error event" and a stack on stderr each time. A process has several
// connections (its own, the pub/sub subscribers duplicated from it, BullMQ's workers): they all
// report to one outage log, which writes one warning when the outage starts and one line when
// Redis is back.

export interface OutageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Errors reported within this long after a connection came back belong to the outage that just
 * ended: connections reconnect one after another, and one whose attempt was already under way can
 * still fail once.
 */
const SETTLE_MS = 5000;

function describe(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { message: err.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { message: String(err) };
}

/** One process's view of whether Redis is reachable, logged once per outage. */
export class RedisOutageLog {
  readonly #log: OutageLogger;
  readonly #now: () => number;
  #since: number | undefined;
  #endedAt = Number.NEGATIVE_INFINITY;

  constructor(log: OutageLogger, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** True from the first connection error until a connection is ready again. */
  get down(): boolean {
    return this.#since !== undefined;
  }

  /** A connection failed: the first failure of an outage is logged at warn. */
  failed(connection: string, err: unknown): void {
    const now = this.#now();
    if (this.#since !== undefined || now - this.#endedAt < SETTLE_MS) return;
    this.#since = now;
    this.#log.warn(
      { connection, err: describe(err) },
      "Redis unreachable: reconnecting (calls keep talking; jobs and server messages wait for it)",
    );
  }

  /** A connection is ready: ends the outage, logged with its length. */
  recovered(connection: string): void {
    if (this.#since === undefined) return;
    const now = this.#now();
    this.#log.info({ connection, outageMs: now - this.#since }, "Redis reachable again");
    this.#since = undefined;
    this.#endedAt = now;
  }
}

const logs = new WeakMap<object, RedisOutageLog>();

/**
 * Reports `client`'s failures and reconnections to `outages`, and makes it the log of connections
 * later duplicated from it (`watchDuplicate`) and of BullMQ workers built on it (`outageLogOf`).
 */
export function watchRedis(client: Redis, name: string, outages: RedisOutageLog): void {
  logs.set(client, outages);
  client.on("error", (err: unknown) => outages.failed(name, err));
  client.on("ready", () => outages.recovered(name));
}

/**
 * A connection duplicated from `parent` (a pub/sub subscriber): reported to the parent's log when
 * it has one, else its errors are dropped (ioredis reconnects and re-subscribes on its own).
 */
export function watchDuplicate(parent: Redis, duplicate: Redis, name: string): void {
  const outages = logs.get(parent);
  if (outages) watchRedis(duplicate, name, outages);
  else duplicate.on("error", () => {});
}

/** The outage log `client` reports to, if it is watched. */
export function outageLogOf(client: Redis): RedisOutageLog | undefined {
  return logs.get(client);
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
const UNAVAILABLE_MESSAGES =
  /^(Connection is closed\.|Command timed out|Stream isn't writeable|Reached the max retries per request limit)/;

/**
 * Whether a Redis command failed because Redis could not be reached (the connection refused, cut,
 * timed out, or ioredis gave up waiting for a reconnection), as opposed to Redis refusing the
 * command itself: only the former is worth waiting out.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
  return (
    err.name === "MaxRetriesPerRequestError" ||
    err.name === "ConnectionClosedError" ||
    UNAVAILABLE_MESSAGES.test(err.message)
  );
}

/** A client for `url` whose failures go to a new outage log writing to `log` (one per app). */
export function connectRedis(
  url: string,
  name: string,
  log: OutageLogger,
  options: RedisOptions = {},
): Redis {
  const client = new Redis(url, options);
  watchRedis(client, name, new RedisOutageLog(log));
  return client;
}
