export * from "./bearer.ts";
export * from "./client-address.ts";
export * from "./errors.ts";
export * from "./health.ts";
export * from "./input-guard.ts";
export * from "./logging.ts";
export type * from "./route-config.ts";
export * from "./validation.ts";
