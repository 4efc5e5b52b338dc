export * from "./analysis.ts";
export * from "./finalize.ts";
export * from "./ledger.ts";
export * from "./money.ts";
export * from "./prices.ts";
export * from "./pricing.ts";
export * from "./spend-controls.ts";
export * from "./usage.ts";
