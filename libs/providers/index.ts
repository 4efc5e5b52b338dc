// Provider registry, keyed by Vapi's provider names (`transcriber.provider`, `model.provider`,
// `voice.provider`). A new provider is one adapter file plus one line here.
import type { ProviderConfig } from "../config/platform.ts";
import { ANTHROPIC_API_URL, AnthropicLlm } from "./anthropic.ts";
import { ASSEMBLYAI_API_URL, AssemblyAiStt } from "./assemblyai.ts";
import { CartesiaTts } from "./cartesia.ts";
import { CustomLlm } from "./custom-llm.ts";
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
        | "assemblyAiApiUrl"
        | "openaiRealtimeUrl"
        | "anthropicBaseUrl"
        | "cartesiaApiUrl"
        | "deepgramTtsApiUrl"
        | "openaiTtsBaseUrl"
      >
    >,
  /** ALLOW_PRIVATE_WEBHOOK_URLS: a custom LLM's `model.url` may be private or loopback. */
  options: { allowPrivateUrls?: boolean } = {},
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
      anthropic: new AnthropicLlm({ baseUrl: config.anthropicBaseUrl ?? ANTHROPIC_API_URL }),
      "custom-llm": new CustomLlm({ allowPrivate: options.allowPrivateUrls ?? false }),
    },
    tts: {
      "11labs": new ElevenLabsTts({ baseUrl: config.elevenlabsApiUrl }),
      cartesia: new CartesiaTts({ baseUrl: config.cartesiaApiUrl ?? "https://api.cartesia.ai" }),
      deepgram: new DeepgramTts({ baseUrl: config.deepgramTtsApiUrl ?? config.deepgramApiUrl }),
      openai: new OpenAiTts({ baseUrl: config.openaiTtsBaseUrl ?? config.openaiBaseUrl }),
    },
  };
}

export * from "./anthropic.ts";
export * from "./anthropic-rules.ts";
export * from "./assemblyai.ts";
export * from "./assemblyai-rules.ts";
export * from "./audio.ts";
export * from "./cartesia.ts";
export * from "./cartesia-rules.ts";
export * from "./chunker.ts";
export * from "./custom-llm.ts";
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
