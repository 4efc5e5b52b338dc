export * from "./env.ts";
export * from "./platform.ts";
