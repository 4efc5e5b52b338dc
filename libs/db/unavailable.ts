// Whether an error means the database could not serve the request right now (its connection was
// cut, it is restarting or unreachable, no connection could be had in time), as opposed to a
// mistake in the request or a bug. Such a request is answered 503 with Retry-After: the next
// request gets a fresh connection from the pool, no restart needed.

/** SQLSTATE: connection exceptions (class 08), admin/crash shutdown, cannot connect now, too many connections. */
const SQLSTATE = /^(08\w{3}|57P0[123]|53300)$/;
/** Prisma: can't reach, timed out, server closed the connection, connection pool timeout. */
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** Prisma driver adapter error kinds of the same meaning. */
const ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);
/** node-postgres and the network, when nothing more specific was kept. */
const MESSAGES =
  /Connection terminated unexpectedly|Connection terminated due to connection timeout|ECONNREFUSED|ECONNRESET/;

type Loose = {
  code?: unknown;
  kind?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: { cause?: unknown } };
};

function adapterCause(cause: unknown): boolean {
  if (!cause || typeof cause !== "object") return false;
  const c = cause as Loose;
  if (typeof c.kind === "string" && ADAPTER_KINDS.has(c.kind)) return true;
  return c.kind === "postgres" && typeof c.code === "string" && SQLSTATE.test(c.code);
}

export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === "object"; depth++) {
    const l = e as Loose;
    if (typeof l.code === "string" && (PRISMA_CODES.has(l.code) || SQLSTATE.test(l.code))) return true;
    if (adapterCause(l.meta?.driverAdapterError?.cause) || adapterCause(l)) return true;
    if (typeof l.message === "string" && MESSAGES.test(l.message)) return true;
    e = l.cause;
  }
  return false;
}
