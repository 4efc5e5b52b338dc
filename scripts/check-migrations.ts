// Fails when prisma/schema.prisma has changes that no committed migration carries.
// Diffs the migrations (replayed on a scratch database) against the schema.
import pg from "pg";
import { diffMigrationsToSchema } from "../libs/db/schema-engine.ts";

const adminUrl = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const name = `sb_shadow_${process.pid}`;
const c = new pg.Client({ connectionString: adminUrl });
await c.connect();
await c.query(`CREATE DATABASE "${name}"`);
try {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const sql = await diffMigrationsToSchema(u.toString());
  if (sql) {
    console.error(
      `prisma/schema.prisma has changes without a migration; run npm run db:migration -- <name>:\n${sql}`,
    );
    process.exitCode = 1;
  } else {
    console.log("migrations: up to date with prisma/schema.prisma");
  }
} finally {
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await c.end();
}
