import pg from "pg";
import { StartupError } from "../runtime/process.ts";
import { applyMigrations, loadMigrationsList } from "./schema-engine.ts";

// Start-up checks of the database that fail with one line naming the cause. Prisma's migration
// engine (WebAssembly) reports the same causes as a wasm stack trace, so a process checks the
// connection first with a plain client, and migration failures are reworded from the engine's text.

/** `host:port/database` of a connection string: never its credentials. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/** Connects once and runs `SELECT 1`; throws a StartupError naming why the database cannot be used. */
export async function probeDatabase(url: string, timeoutMs = 5000): Promise<void> {
  const where = describeDatabase(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A server that drops the connection later emits 'error' on the client; it must not crash start-up.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (err) {
    throw new StartupError(
      `cannot use the database ${where} (DATABASE_URL): ${databaseCause(err, timeoutMs)}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

function databaseCause(err: unknown, timeoutMs: number): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case "ECONNREFUSED":
      return "connection refused (is Postgres running there?)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case "28P01":
    case "28000":
      return "the server refused the credentials";
    case "3D000":
      return "no such database";
    case "57P03":
      return "the server is starting up or shutting down";
  }
  if (/timeout/i.test(e.message ?? "")) return `no answer within ${timeoutMs} ms`;
  return (e.message ?? String(err)).split("\n")[0] ?? "unknown error";
}

/**
 * The migration engine's error as one line: which migration failed and the database's own message,
 * or which earlier failure blocks migrating (Prisma's P3009), or the first line of anything else.
 */
export function describeMigrationError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const migration = /migration_name="([^"]+)"/.exec(message)?.[1];
  const dbError = /ERROR: ([^\n]+)/.exec(message)?.[1];
  if (migration && dbError) return `migration ${migration} failed: ${dbError}`;
  const earlier = /The `([^`]+)` migration started at ([^\n]+?) failed/.exec(message);
  if (earlier)
    return `migration ${earlier[1]} failed earlier (started at ${earlier[2]}); resolve it before migrating (https://pris.ly/d/migrate-resolve)`;
  if ((err as { code?: string }).code === "P3005")
    return "the database already has tables but no migration history; baseline it first (https://pris.ly/d/migrate-baseline)";
  return `migration failed: ${message.split("\n").find((l) => l.trim() !== "") ?? "unknown error"}`;
}

/** Checks the connection, then applies pending migrations; a failure is a StartupError of one line. */
export async function migrateForStart(url: string): Promise<string[]> {
  await probeDatabase(url);
  try {
    return await applyMigrations(url);
  } catch (err) {
    throw new StartupError(describeMigrationError(err));
  }
}

/** The migrations this build ships (prisma/migrations) that the database has not applied. */
export async function pendingMigrations(url: string): Promise<string[]> {
  const shipped = (await loadMigrationsList()).migrationDirectories.map((d) => d.path);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on("error", () => {});
  let applied: Set<string>;
  try {
    await client.connect();
    const res = await client.query<{ migration_name: string }>(
      `SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    applied = new Set(res.rows.map((r) => r.migration_name));
  } catch (err) {
    // No history table yet: nothing applied.
    if ((err as { code?: string }).code !== "42P01") {
      throw new StartupError(
        `cannot use the database ${describeDatabase(url)} (DATABASE_URL): ${databaseCause(err, 5000)}`,
      );
    }
    applied = new Set();
  } finally {
    await client.end().catch(() => {});
  }
  return shipped.filter((name) => !applied.has(name));
}

/**
 * Waits until every migration this build ships is applied (by someone else: the migrate Job), so a
 * new version never runs on an old schema. Applies nothing itself.
 */
export async function waitForMigrations(
  url: string,
  options: { timeoutMs?: number; intervalMs?: number; onWaiting?: (pending: string[]) => void } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    const pending = await pendingMigrations(url);
    if (pending.length === 0) return;
    if (!announced) options.onWaiting?.(pending);
    announced = true;
    if (Date.now() > deadline) {
      throw new StartupError(
        `migrations not applied after ${timeoutMs / 1000} s: ${pending.join(", ")} (is the migrate job running?)`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 2000));
  }
}
