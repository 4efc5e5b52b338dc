export * from "./errors.ts";
export * from "./health.ts";
export type * from "./route-config.ts";
export * from "./validation.ts";
