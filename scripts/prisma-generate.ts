// Generates the Prisma client into libs/db/generated when the schema changed since the last run.
// Generation itself is WebAssembly; the CLI only checks that a schema engine binary exists, which
// cannot be downloaded offline, so any executable is named in its place.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const schema = readFileSync(path.join(root, "prisma/schema.prisma"));
const pkg = readFileSync(path.join(root, "node_modules/@prisma/client/package.json"));
const hash = createHash("sha256").update(schema).update(pkg).digest("hex");
const stamp = path.join(root, "libs/db/generated/.schema-hash");
if (!process.argv.includes("--force") && existsSync(stamp) && readFileSync(stamp, "utf8") === hash)
  process.exit(0);
execFileSync(path.join(root, "node_modules/.bin/prisma"), ["generate"], {
  cwd: root,
  stdio: ["ignore", "ignore", "inherit"],
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
  },
});
writeFileSync(stamp, hash);
