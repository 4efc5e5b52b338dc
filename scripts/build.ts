// `npm run build`: the production layout, as the image holds it, in dist/ (or the directory given):
// the entry points compiled to JavaScript at their source paths, plus the files the code reads at
// run time next to itself (Prisma schema and migrations, the dashboard's static files) and
// package.json ("type": "module"). With node_modules beside it, `node apps/api/src/main.js` runs.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const out = path.resolve(root, process.argv[2] ?? "dist");
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", out],
  { cwd: root, stdio: "inherit" },
);
mkdirSync(path.join(out, "prisma"), { recursive: true });
cpSync(path.join(root, "prisma/schema.prisma"), path.join(out, "prisma/schema.prisma"));
cpSync(path.join(root, "prisma/migrations"), path.join(out, "prisma/migrations"), { recursive: true });
cpSync(path.join(root, "apps/api/dashboard"), path.join(out, "apps/api/dashboard"), { recursive: true });
cpSync(path.join(root, "package.json"), path.join(out, "package.json"));
