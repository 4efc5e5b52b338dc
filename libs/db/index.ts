export * from "./client.ts";
export { applyMigrations } from "./schema-engine.ts";
export {
  describeDatabase,
  migrateForStart,
  pendingMigrations,
  probeDatabase,
  waitForMigrations,
} from "./startup.ts";
export { isDatabaseUnavailable } from "./unavailable.ts";
