// Provider registry, keyed by Vapi's provider names (`transcriber.provider`, `model.provider`,
// `voice.provider`). A new provider is one adapter file plus one line here.
import type { ProviderConfig } from "../config/platform.ts";
import { ASSEMBLYAI_API_URL, AssemblyAiStt } from "./assemblyai.ts";
import { CartesiaTts } from "./cartesia.ts";
import { DeepgramStt } from "./deepgram.ts";
import { DeepgramTts } from "./deepgram-tts.ts";
import { ElevenLabsTts } from "./elevenlabs.ts";
import { OpenAiLlm } from "./openai.ts";
import { OpenAiStt, openAiRealtimeUrl } from "./openai-stt.ts";
import { OpenAiTts } from "./openai-tts.ts";
import type { LanguageModel, SpeechToText, TextToSpeech } from "./types.ts";

export interface Providers {
  stt: Record<string, SpeechToText>;
  llm: Record<string, LanguageModel>;
  tts: Record<string, TextToSpeech>;
}

export function createProviders(
  config: Pick<ProviderConfig, "deepgramApiUrl" | "openaiBaseUrl" | "elevenlabsApiUrl"> &
    Partial<
      Pick<
        ProviderConfig,
        "assemblyAiApiUrl" | "openaiRealtimeUrl" | "cartesiaApiUrl" | "deepgramTtsApiUrl" | "openaiTtsBaseUrl"
      >
    >,
): Providers {
  return {
    stt: {
      deepgram: new DeepgramStt({ baseUrl: config.deepgramApiUrl }),
      "assembly-ai": new AssemblyAiStt({ baseUrl: config.assemblyAiApiUrl ?? ASSEMBLYAI_API_URL }),
      openai: new OpenAiStt({
        realtimeUrl: config.openaiRealtimeUrl ?? openAiRealtimeUrl(config.openaiBaseUrl),
      }),
    },
    llm: {
      openai: new OpenAiLlm({ baseUrl: config.openaiBaseUrl }),
    },
    tts: {
      "11labs": new ElevenLabsTts({ baseUrl: config.elevenlabsApiUrl }),
      cartesia: new CartesiaTts({ baseUrl: config.cartesiaApiUrl ?? "https://api.cartesia.ai" }),
      deepgram: new DeepgramTts({ baseUrl: config.deepgramTtsApiUrl ?? config.deepgramApiUrl }),
      openai: new OpenAiTts({ baseUrl: config.openaiTtsBaseUrl ?? config.openaiBaseUrl }),
    },
  };
}

export * from "./assemblyai.ts";
export * from "./assemblyai-rules.ts";
export * from "./audio.ts";
export * from "./cartesia.ts";
export * from "./cartesia-rules.ts";
export * from "./chunker.ts";
export * from "./deepgram.ts";
export * from "./deepgram-rules.ts";
export * from "./deepgram-tts.ts";
export * from "./deepgram-tts-rules.ts";
export * from "./elevenlabs.ts";
export * from "./elevenlabs-rules.ts";
export * from "./openai.ts";
export * from "./openai-rules.ts";
export * from "./openai-stt.ts";
export * from "./openai-stt-rules.ts";
export * from "./openai-tts.ts";
export * from "./openai-tts-rules.ts";
export * from "./rules.ts";
export * from "./types.ts";
