export * from "./bullmq.ts";
export * from "./catalogue.ts";
export * from "./in-process.ts";
