export * from "./data-dir-lock.ts";
export * from "./process.ts";
