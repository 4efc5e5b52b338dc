import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { applyMigrations } from "../../libs/db/index.ts";
import { MIGRATIONS_DIR } from "../../libs/db/schema-engine.ts";

// Each test file gets its own database, cloned from a template that has every migration applied
// (CREATE DATABASE … TEMPLATE is a file copy: milliseconds). The template's name carries a hash of
// the migrations, so a changed migration builds a fresh template.

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function migrationsHash(): Promise<string> {
  const h = createHash("sha256");
  for (const dir of (await readdir(MIGRATIONS_DIR)).sort()) {
    if (dir.endsWith(".toml")) continue;
    h.update(dir);
    h.update(await readFile(path.join(MIGRATIONS_DIR, dir, "migration.sql")));
  }
  return h.digest("hex").slice(0, 12);
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function ensureTemplate(): Promise<string> {
  const name = `sb_template_${await migrationsHash()}`;
  await admin(async (c) => {
    // Serialise template creation across concurrently starting test files.
    await c.query("SELECT pg_advisory_lock(724001)");
    try {
      const exists = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
      if (exists.rowCount === 0) {
        const building = `${name}_building`;
        await c.query(`DROP DATABASE IF EXISTS "${building}"`);
        await c.query(`CREATE DATABASE "${building}"`);
        await applyMigrations(withDatabase(ADMIN_URL, building));
        await c.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
      }
    } finally {
      await c.query("SELECT pg_advisory_unlock(724001)");
    }
  });
  return name;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const template = await ensureTemplate();
  const name = `sb_test_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    url: withDatabase(ADMIN_URL, name),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}
