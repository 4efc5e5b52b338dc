import { defineConfig } from "prisma/config";

// Used by the ordinary Prisma CLI on machines that can download its engines. Offline, the
// scripts in scripts/ generate and migrate with the WebAssembly schema engine instead.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/switchboard" },
});
