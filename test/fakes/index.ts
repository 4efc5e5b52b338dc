export * from "./deepgram.ts";
export * from "./elevenlabs.ts";
export * from "./openai.ts";
export * from "./twilio.ts";
export { SharedTicker } from "./util.ts";
