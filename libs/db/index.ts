export * from "./client.ts";
export { applyMigrations } from "./schema-engine.ts";
export { describeDatabase, migrateForStart, probeDatabase } from "./startup.ts";
