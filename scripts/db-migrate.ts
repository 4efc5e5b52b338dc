// Applies pending migrations from prisma/migrations (what `prisma migrate deploy` does), with the
// WebAssembly schema engine so it works without downloading Prisma's native engine. The image's
// `migrate` command: `node scripts/db-migrate.js` (a one-shot job before the apps roll out).
import { parseEnv, requireVar } from "../libs/config/index.ts";
import { migrateForStart, waitForMigrations } from "../libs/db/index.ts";
import { loadOrExit, startOrExit } from "../libs/runtime/index.ts";

const url = loadOrExit(() => requireVar(parseEnv(process.env), "DATABASE_URL", "the database to migrate"));
// `--wait`: apply nothing, wait until this build's migrations are applied (by the migrate Job);
// the app pods' initContainer in Kubernetes, so new code never starts on an old schema.
if (process.argv.includes("--wait")) {
  await startOrExit("migrate", () =>
    waitForMigrations(url, {
      onWaiting: (pending) =>
        console.log(`migrate: waiting for ${pending.join(", ")} (applied by the migrate job)`),
    }),
  );
  console.log("migrate: database is up to date");
  process.exit(0);
}
const applied = await startOrExit("migrate", () => migrateForStart(url));
console.log(applied.length ? `migrate: applied ${applied.join(", ")}` : "migrate: database is up to date");
// The engine's connection pool would keep the process alive for its idle timeout (10 s).
process.exit(0);
