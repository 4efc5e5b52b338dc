export * from "./api-key.ts";
export * from "./secret-box.ts";
