// Applies pending migrations from prisma/migrations (what `prisma migrate deploy` does), with the
// WebAssembly schema engine so it works without downloading Prisma's native engine.
import { parseEnv, requireVar } from "../libs/config/index.ts";
import { applyMigrations } from "../libs/db/index.ts";
import { loadOrExit } from "../libs/runtime/process.ts";

const url = loadOrExit(() => requireVar(parseEnv(process.env), "DATABASE_URL", "the database to migrate"));
const applied = await applyMigrations(url);
console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
