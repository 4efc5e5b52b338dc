export * from "./outage.ts";
