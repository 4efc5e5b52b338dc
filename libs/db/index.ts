export * from "./client.ts";
export { applyMigrations } from "./schema-engine.ts";
