export * from "./dispatcher.ts";
export * from "./http.ts";
export * from "./messages.ts";
export * from "./server.ts";
export * from "./server-config.ts";
export * from "./ssrf.ts";
