export * from "./cartesia.ts";
export * from "./deepgram.ts";
export * from "./deepgram-tts.ts";
export * from "./elevenlabs.ts";
export * from "./openai.ts";
export * from "./openai-tts.ts";
export * from "./twilio.ts";
export { SharedTicker } from "./util.ts";
