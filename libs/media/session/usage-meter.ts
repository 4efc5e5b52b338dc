import { type CallUsage, callTransportUsage } from "../../billing/usage.ts";
import { transcriberModel } from "../../vapi/defaults.ts";
import type { CallState } from "./state.ts";

// What the call used, counted as it happens: audio sent to the transcriber, the model's tokens, the
// characters voiced. Turned into the call's usage (priced at the end) by `usage()`.

export class UsageMeter {
  /** Caller audio bytes that went to the transcriber, in the caller's format (hot path: one add per frame). */
  sttBytes = 0;
  /** Bytes per second of the caller's audio format (μ-law 8 kHz: 8000). */
  sttBytesPerSecond = 8000;
  promptTokens = 0;
  completionTokens = 0;
  cachedPromptTokens = 0;
  ttsCharacters = 0;

  addLlm(usage: { promptTokens: number; completionTokens: number; cachedPromptTokens: number }): void {
    this.promptTokens += usage.promptTokens;
    this.completionTokens += usage.completionTokens;
    this.cachedPromptTokens += usage.cachedPromptTokens;
  }

  /** The call's usage for `durationSeconds` of call on `transport`, by the providers it ran with. */
  usage(state: CallState, transport: string, durationSeconds: number): CallUsage {
    const assistant = state.assistant;
    const config = assistant?.config;
    return {
      durationSeconds,
      // A phone call's transport is the customer's own Twilio account (Twilio bills it directly);
      // a websocket call's is the platform's, priced from the table.
      transport: {
        ...callTransportUsage(state.row?.type ?? ""),
        provider: transport,
        seconds: durationSeconds,
      },
      stt: {
        provider: state.transcriber?.provider.provider ?? "deepgram",
        model: config?.transcriber ? transcriberModel(config.transcriber) : "",
        audioSeconds: this.sttBytes / this.sttBytesPerSecond,
        byo: state.transcriber?.key.byo ?? false,
      },
      llm: {
        provider: assistant?.llm.provider.provider ?? "openai",
        model: config?.model?.model ?? "",
        promptTokens: this.promptTokens,
        cachedPromptTokens: this.cachedPromptTokens,
        completionTokens: this.completionTokens,
        byo: assistant?.llm.key.byo ?? false,
      },
      tts: {
        provider: assistant?.tts.provider.provider ?? "11labs",
        model: config?.voice?.model ?? "",
        characters: this.ttsCharacters,
        byo: assistant?.tts.key.byo ?? false,
      },
    };
  }
}
