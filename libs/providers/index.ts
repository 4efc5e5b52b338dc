// Provider registry, keyed by Vapi's provider names (`transcriber.provider`, `model.provider`,
// `voice.provider`). A new provider is one adapter file plus one line here.
import type { ProviderConfig } from "../config/platform.ts";
import { DeepgramStt } from "./deepgram.ts";
import { ElevenLabsTts } from "./elevenlabs.ts";
import { OpenAiLlm } from "./openai.ts";
import type { LanguageModel, SpeechToText, TextToSpeech } from "./types.ts";

export interface Providers {
  stt: Record<string, SpeechToText>;
  llm: Record<string, LanguageModel>;
  tts: Record<string, TextToSpeech>;
}

export function createProviders(
  config: Pick<ProviderConfig, "deepgramApiUrl" | "openaiBaseUrl" | "elevenlabsApiUrl">,
): Providers {
  return {
    stt: {
      deepgram: new DeepgramStt({ baseUrl: config.deepgramApiUrl }),
    },
    llm: {
      openai: new OpenAiLlm({ baseUrl: config.openaiBaseUrl }),
    },
    tts: {
      "11labs": new ElevenLabsTts({ baseUrl: config.elevenlabsApiUrl }),
    },
  };
}

export * from "./audio.ts";
export * from "./chunker.ts";
export * from "./deepgram.ts";
export * from "./deepgram-rules.ts";
export * from "./elevenlabs.ts";
export * from "./elevenlabs-rules.ts";
export * from "./openai.ts";
export * from "./openai-rules.ts";
export * from "./rules.ts";
export * from "./types.ts";
