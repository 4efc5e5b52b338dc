import { type CallUsage, callTransportUsage } from "../../billing/usage.ts";
import { transcriberModel } from "../../vapi/defaults.ts";
import type { CallState } from "./state.ts";

// What the call used, counted as it happens: audio sent to the transcriber, the model's tokens, the
// characters voiced. Turned into the call's usage (priced at the end) by `usage()`. When a fallback
// plan switches a provider mid-call, or a squad hand-off brings another member's model and voice,
// what the call used of the previous one is kept (`switch…`) and priced as its own line: a call
// that switched voices has two voice cost lines (one, when both were the same voice and key).

type Usage = CallUsage;

export class UsageMeter {
  /** Caller audio bytes that went to the transcriber, in the caller's format (hot path: one add per frame). */
  sttBytes = 0;
  /** Bytes per second of the caller's audio format (μ-law 8 kHz: 8000). */
  sttBytesPerSecond = 8000;
  promptTokens = 0;
  completionTokens = 0;
  cachedPromptTokens = 0;
  ttsCharacters = 0;
  /** `sttBytes` when the current transcriber took over (0: the call-start one). */
  #sttFrom = 0;
  /** The usage of the providers the call switched away from, oldest first. */
  readonly #earlier: { stt: Usage["stt"][]; llm: Usage["llm"][]; tts: Usage["tts"][] } = {
    stt: [],
    llm: [],
    tts: [],
  };

  addLlm(usage: { promptTokens: number; completionTokens: number; cachedPromptTokens: number }): void {
    this.promptTokens += usage.promptTokens;
    this.completionTokens += usage.completionTokens;
    this.cachedPromptTokens += usage.cachedPromptTokens;
  }

  /** The transcriber is about to change: what the current one transcribed is kept as its usage. */
  switchStt(state: CallState): void {
    this.#earlier.stt.push(this.#stt(state));
    this.#sttFrom = this.sttBytes;
  }

  /** The model is about to change (a fallback model, a hand-off): its tokens so far are kept as its usage. */
  switchLlm(state: CallState): void {
    this.#earlier.llm.push(this.#llm(state));
    this.promptTokens = 0;
    this.completionTokens = 0;
    this.cachedPromptTokens = 0;
  }

  /** The voice is about to change: the characters it voiced so far are kept as its usage. */
  switchTts(state: CallState): void {
    this.#earlier.tts.push(this.#tts(state));
    this.ttsCharacters = 0;
  }

  #stt(state: CallState): Usage["stt"] {
    const t = state.transcriber;
    const config = t?.config ?? state.assistant?.config.transcriber;
    return {
      provider: t?.provider.provider ?? "deepgram",
      model: config ? transcriberModel(config) : "",
      audioSeconds: (this.sttBytes - this.#sttFrom) / this.sttBytesPerSecond,
      byo: t?.key.byo ?? false,
    };
  }

  #llm(state: CallState): Usage["llm"] {
    const assistant = state.assistant;
    return {
      provider: assistant?.llm.provider.provider ?? "openai",
      model: assistant?.config.model?.model ?? "",
      promptTokens: this.promptTokens,
      cachedPromptTokens: this.cachedPromptTokens,
      completionTokens: this.completionTokens,
      byo: assistant?.llm.key.byo ?? false,
    };
  }

  #tts(state: CallState): Usage["tts"] {
    const assistant = state.assistant;
    return {
      provider: assistant?.tts.provider.provider ?? "11labs",
      model: assistant?.ttsOptions.voice.model ?? assistant?.config.voice?.model ?? "",
      characters: this.ttsCharacters,
      byo: assistant?.tts.key.byo ?? false,
    };
  }

  /** The call's usage for `durationSeconds` of call on `transport`, by the providers it ran with. */
  usage(state: CallState, transport: string, durationSeconds: number): CallUsage {
    const earlier = this.#earlier;
    const switched = earlier.stt.length + earlier.llm.length + earlier.tts.length > 0;
    return {
      durationSeconds,
      // A phone call's transport is the customer's own Twilio account (Twilio bills it directly);
      // a websocket call's is the platform's, priced from the table.
      transport: {
        ...callTransportUsage(state.row?.type ?? ""),
        provider: transport,
        seconds: durationSeconds,
      },
      stt: this.#stt(state),
      llm: this.#llm(state),
      tts: this.#tts(state),
      ...(switched
        ? {
            earlier: {
              ...(earlier.stt.length > 0 ? { stt: [...earlier.stt] } : {}),
              ...(earlier.llm.length > 0 ? { llm: [...earlier.llm] } : {}),
              ...(earlier.tts.length > 0 ? { tts: [...earlier.tts] } : {}),
            },
          }
        : {}),
    };
  }
}
