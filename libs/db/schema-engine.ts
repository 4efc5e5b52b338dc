import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";
import type {
  MigrationDirectory,
  MigrationList,
  SchemaEngine,
} from "@prisma/schema-engine-wasm/schema_engine_bg";
import pg from "pg";

// Prisma's CLI downloads a native schema engine, which cannot work offline. The same engine is
// published as WebAssembly; its package `exports` hide the glue module, so it is loaded by path
// and instantiated here by hand.

export const PRISMA_DIR = path.resolve(import.meta.dirname, "../../prisma");
export const MIGRATIONS_DIR = path.join(PRISMA_DIR, "migrations");
export const SCHEMA_PATH = path.join(PRISMA_DIR, "schema.prisma");

type EngineModule = typeof import("@prisma/schema-engine-wasm/schema_engine_bg");

let enginePromise: Promise<EngineModule> | undefined;

function loadEngineModule(): Promise<EngineModule> {
  enginePromise ??= (async () => {
    const glueUrl = import.meta.resolve("@prisma/schema-engine-wasm/schema_engine_bg");
    const pkgDir = path.dirname(fileURLToPath(glueUrl));
    const bg = (await import(glueUrl)) as EngineModule;
    const bytes = await readFile(path.join(pkgDir, "schema_engine_bg.wasm"));
    const module = new WebAssembly.Module(bytes);
    // Every import of the wasm module is exported by the glue file under the module name it asks for.
    const imports: WebAssembly.Imports = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      imports[imp.module] ??= bg as unknown as WebAssembly.ModuleImports;
    }
    const instance = new WebAssembly.Instance(module, imports);
    const exports = instance.exports as Record<string, unknown> & { __wbindgen_start?: () => void };
    (bg as unknown as { __wbg_set_wasm(w: unknown): void }).__wbg_set_wasm(exports);
    exports.__wbindgen_start?.();
    return bg;
  })();
  return enginePromise;
}

// Describing a database makes the engine read catalog columns of Postgres's internal `"char"`
// type (OID 18), which the pg driver adapter refuses as an unsupported column type. They are
// single characters; reporting them as text is exact.
function asText(res: pg.QueryResult | undefined): void {
  for (const f of res?.fields ?? []) if (f.dataTypeID === 18) f.dataTypeID = 25;
}

class CatalogSafeClient extends pg.Client {
  // pg's query() has a dozen overloads (promise or callback); this forwards all of them.
  override query(...args: unknown[]): never {
    const last = args[args.length - 1];
    if (typeof last === "function") {
      const cb = last as (err: Error | null, res?: pg.QueryResult) => void;
      args[args.length - 1] = (err: Error | null, res?: pg.QueryResult) => {
        asText(res);
        cb(err, res);
      };
    }
    const out = (super.query as (...a: unknown[]) => unknown)(...args);
    if (out && typeof (out as Promise<unknown>).then === "function") {
      return (out as Promise<pg.QueryResult>).then((res) => {
        asText(res);
        return res;
      }) as never;
    }
    return out as never;
  }
}

async function adminQuery(cfg: pg.PoolConfig, sql: string): Promise<void> {
  const c = new pg.Client({ ...cfg });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * Explicit fields rather than a connection string: the adapter opens its shadow database by
 * overriding `database`, which a connection string would silently win over.
 */
function enginePoolConfig(connectionString: string): pg.PoolConfig {
  const u = new URL(connectionString);
  return {
    host: decodeURIComponent(u.hostname),
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username || "postgres"),
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, "")) || "postgres",
    max: 1,
    Client: CatalogSafeClient,
  };
}

export async function withSchemaEngine<T>(
  connectionString: string,
  fn: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const bg = await loadEngineModule();
  const schema = await readFile(SCHEMA_PATH, "utf8");
  // Track the connections the engine opens so they are closed when it is done; a pool left open
  // keeps the embedded database's single-session socket busy.
  const factory = new PrismaPg(enginePoolConfig(connectionString));
  const opened: { dispose(): Promise<void> }[] = [];
  const tracking = Object.assign(Object.create(Object.getPrototypeOf(factory)), factory, {
    connect: async () => {
      const a = await factory.connect();
      opened.push(a);
      return a;
    },
    // The adapter's own shadow database is dropped while its pool is still connected, which
    // Postgres refuses; this one closes the pool first.
    connectToShadowDb: async () => {
      const cfg = enginePoolConfig(connectionString);
      const database = `prisma_migrate_shadow_db_${randomUUID()}`;
      await adminQuery(cfg, `CREATE DATABASE "${database}"`);
      const a = await new PrismaPg({ ...cfg, database }).connect();
      const dispose = a.dispose.bind(a);
      a.dispose = async () => {
        await dispose();
        await adminQuery(cfg, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      };
      opened.push(a);
      return a;
    },
  }) as PrismaPg;
  const adapter = bindMigrationAwareSqlAdapterFactory(tracking);
  const engine = await bg.SchemaEngine.new(
    { datamodels: [[SCHEMA_PATH, schema]] },
    (_log: string) => {},
    adapter,
  );
  try {
    return await fn(engine);
  } finally {
    engine.free();
    await Promise.allSettled(opened.map((a) => a.dispose()));
  }
}

export async function loadMigrationsList(): Promise<MigrationList> {
  let entries: string[] = [];
  try {
    entries = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    entries = [];
  }
  const migrationDirectories: MigrationDirectory[] = [];
  for (const name of entries) {
    const file = path.join(MIGRATIONS_DIR, name, "migration.sql");
    let content: MigrationDirectory["migrationFile"]["content"];
    try {
      content = { tag: "ok", value: await readFile(file, "utf8") };
    } catch (err) {
      content = { tag: "error", value: String(err) };
    }
    migrationDirectories.push({ path: name, migrationFile: { path: "migration.sql", content } });
  }
  let lockContent: string | null = null;
  try {
    lockContent = await readFile(path.join(MIGRATIONS_DIR, "migration_lock.toml"), "utf8");
  } catch {
    lockContent = null;
  }
  return {
    baseDir: MIGRATIONS_DIR,
    lockfile: { path: "migration_lock.toml", content: lockContent },
    shadowDbInitScript: "",
    migrationDirectories,
  };
}

const NO_FILTERS = { externalTables: [], externalEnums: [] };

/** Applies pending migrations (what `prisma migrate deploy` does); returns the names applied. */
export async function applyMigrations(connectionString: string): Promise<string[]> {
  const migrationsList = await loadMigrationsList();
  return withSchemaEngine(connectionString, async (engine) => {
    const out = await engine.applyMigrations({ migrationsList, filters: NO_FILTERS });
    return out.appliedMigrationNames;
  });
}

/** SQL that takes the committed migrations to the current schema; empty when nothing changed. */
export async function diffMigrationsToSchema(connectionString: string): Promise<string> {
  const migrationsList = await loadMigrationsList();
  const schema = await readFile(SCHEMA_PATH, "utf8");
  return withSchemaEngine(connectionString, async (engine) => {
    const from =
      migrationsList.migrationDirectories.length === 0
        ? ({ tag: "empty" } as const)
        : ({ tag: "migrations", ...migrationsList } as const);
    const result = await engine.diff({
      from,
      to: { tag: "schemaDatamodel", files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      exitCode: null,
      filters: NO_FILTERS,
    });
    const sql = result.stdout ?? "";
    return /^\s*(-- This is an empty migration\.)?\s*$/.test(sql) ? "" : sql;
  });
}
