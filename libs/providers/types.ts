// Small provider interfaces for the media plane. One adapter per provider implements each; adding
// a provider of a kind is one new file. Every adapter takes an AbortSignal (the call session's)
// that releases its sockets and timers, and throws ProviderError with `retryable` set.

import type { ResolvedVoice } from "../vapi/defaults.ts";

export class ProviderError extends Error {
  constructor(
    /** "deepgram" | "openai" | "11labs" … */
    readonly provider: string,
    readonly kind: "transcriber" | "llm" | "voice",
    message: string,
    readonly retryable: boolean,
    /** HTTP status or websocket close code, when there is one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = "ProviderError";
  }
}

/** 408, 429 and 5xx are worth retrying; any other 4xx is a mistake (key, model, body). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** What adapters throw when the caller's signal aborts: a DOMException named "AbortError". */
export function abortError(): DOMException {
  return new DOMException("The operation was aborted", "AbortError");
}

/** True for the AbortError adapters throw (and Node's own); an abort is not a provider failure. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/** An assistant option a provider model does not take, found when the assistant is saved. */
export interface OptionProblem {
  /** Field path inside the assistant, e.g. `model.temperature`. */
  path: string;
  /** What the model supports instead (no field name: the caller prefixes the path). */
  message: string;
}

// ---------- audio ----------

/** Audio on one leg of a call: G.711 μ-law or 16-bit little-endian PCM, mono, at a sample rate. */
export interface AudioFormat {
  encoding: "mulaw" | "linear16";
  sampleRate: number;
}

/** Twilio's format (and a phone line's): μ-law 8 kHz. */
export const MULAW_8K: AudioFormat = { encoding: "mulaw", sampleRate: 8000 };

/** True when both describe the same bytes. */
export function sameAudioFormat(a: AudioFormat, b: AudioFormat): boolean {
  return a.encoding === b.encoding && a.sampleRate === b.sampleRate;
}

// ---------- speech to text ----------

export interface SttOptions {
  apiKey: string;
  /** The format of the bytes given to `sendAudio` (one the provider `accepts`). */
  audio: AudioFormat;
  model: string;
  language: string;
  /** Deepgram `endpointing` in ms (silence that finalises speech). */
  endpointingMs: number;
  utteranceEndMs: number;
  /** Vapi's `keywords` (`word` or `word:intensifier`); sent as the model takes them (deepgram-rules.ts). */
  keywords?: string[];
  keyterms?: string[];
  smartFormat?: boolean;
  /** Digits instead of number words (Deepgram `numerals`). */
  numerals?: boolean;
  profanityFilter?: boolean;
  /** Opt out of Deepgram's Model Improvement Program (`mip_opt_out`). */
  mipOptOut?: boolean;
  /** Default true. */
  punctuate?: boolean;
  /** Partial transcripts; default true (Vapi's `disablePartialTranscripts` turns them off). */
  interimResults?: boolean;
  /** A final heard below this confidence is dropped (Vapi's `confidenceThreshold`); default none. */
  minConfidence?: number;
  /** Options only AssemblyAI takes (`model` is its `speech_model`; `keyterms` its `keyterms_prompt`). */
  assemblyAi?: AssemblyAiSttOptions;
  /** Websocket handshake budget; default set by the adapter (5 s). */
  connectTimeoutMs?: number;
  signal: AbortSignal;
}

/** AssemblyAI Universal-Streaming's own settings (assemblyai-rules.ts: which model takes which). */
export interface AssemblyAiSttOptions {
  /** `format_turns` (Universal-Streaming; the U3 Pro family always formats). */
  formatTurns?: boolean;
  /** `end_of_turn_confidence_threshold` (Universal-Streaming only). */
  endOfTurnConfidenceThreshold?: number;
  /** `min_turn_silence`: silence before an end of turn when confident. */
  minTurnSilenceMs?: number;
  /** `max_turn_silence`: silence that ends a turn whatever the model thinks. */
  maxTurnSilenceMs?: number;
  /** `prompt`, `mode`, `agent_context` (the U3 Pro family only). */
  prompt?: string;
  mode?: string;
  agentContext?: string;
}

export type SttEvent =
  | { type: "speech-started"; atMs: number }
  | {
      type: "transcript";
      text: string;
      isFinal: boolean;
      /** Provider says the speaker paused (Deepgram speech_final). */
      speechFinal: boolean;
      confidence: number;
      /**
       * Audio time (ms from stream start) of the end of the last word; the end of the result's
       * window (Deepgram start + duration) when it has no words.
       */
      endMs: number;
      /** This final answers a `finalize()` (Deepgram from_finalize). */
      fromFinalize?: boolean;
    }
  | { type: "utterance-end"; lastWordEndMs: number }
  | { type: "error"; error: ProviderError }
  | { type: "closed" };

export interface SttStream {
  /** Raw audio in `SttOptions.audio`, as received from the caller (no copies needed). */
  sendAudio(audio: Buffer): void;
  /** Ask the provider to flush what it heard so far (Deepgram `Finalize`). */
  finalize(): void;
  close(): Promise<void>;
  /** Wall time the connection took to open, in ms (for latency metrics). */
  readonly connectMs?: number;
}

export interface SpeechToText {
  readonly provider: string;
  /** True when the provider takes `format` natively; otherwise the session converts to MULAW_8K or linear16 16 kHz. */
  accepts(format: AudioFormat): boolean;
  connect(options: SttOptions, onEvent: (e: SttEvent) => void): Promise<SttStream>;
}

// ---------- language model ----------

export interface LlmMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string | null;
  toolCalls?: { id: string; name: string; arguments: string }[];
  toolCallId?: string;
  name?: string;
  /** On an assistant message: what its provider needs sent back with it (see LlmReplay). */
  replay?: LlmReplay;
}

/**
 * Provider content of an assistant turn that must go back to the same model with that turn, opaque
 * to the session: Anthropic's signed thinking blocks, which a model that thinks needs before the
 * tool_use blocks of the turn it continues after the tool results.
 */
export interface LlmReplay {
  provider: string;
  model: string;
  blocks: unknown[];
}

/** What a provider may be sent about the call (Vapi's custom-llm `metadataSendMode`). */
export interface LlmCallContext {
  call: Record<string, unknown>;
  phoneNumber?: Record<string, unknown>;
  customer?: Record<string, unknown>;
  /** The assistant's `metadata`. */
  metadata?: Record<string, unknown>;
}

export interface LlmTool {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

export interface LlmRequest {
  apiKey: string;
  model: string;
  messages: LlmMessage[];
  tools?: LlmTool[];
  /** Not sent to models that take only their default (openai-rules.ts). */
  temperature?: number;
  maxTokens?: number;
  /**
   * OpenAI's `response_format`: "json_object" asks for one JSON object (the prompt must mention
   * JSON). Unset: plain text, the default.
   */
  responseFormat?: "json_object";
  /**
   * The assistant's `model` block as configured, for options only one provider reads (custom-llm's
   * `url`, `headers`, `metadataSendMode`, `timeoutSeconds`; Anthropic's `thinking`). Each adapter
   * reads its own; the save-time rules (rules.ts) have checked them.
   */
  modelConfig?: Readonly<Record<string, unknown>>;
  /** The call as a provider may be told about it; built only by an adapter that sends it. */
  callContext?: () => LlmCallContext;
  signal: AbortSignal;
}

export type LlmEvent =
  | { type: "text"; delta: string }
  | { type: "tool-call"; id: string; name: string; arguments: string }
  | {
      type: "done";
      finishReason: string;
      /** `promptTokens` includes `cachedPromptTokens` (OpenAI's semantics, which billing prices). */
      usage: { promptTokens: number; completionTokens: number; cachedPromptTokens: number };
      /** To store on the assistant message of this turn (its tool calls), and send back with it. */
      replay?: LlmReplay;
    };

export interface LanguageModel {
  readonly provider: string;
  /**
   * True when a call can run without a key for this provider (a customer's own LLM server may take
   * none); otherwise a call needs the organisation's credential or the platform's key.
   */
  readonly keyOptional?: boolean;
  /** Streams text deltas as they arrive; tool calls are emitted whole once their arguments are complete. */
  stream(request: LlmRequest): AsyncIterable<LlmEvent>;
}

// ---------- text to speech ----------

export interface TtsOptions {
  apiKey: string;
  /**
   * The assistant's `voice` with its provider's defaults (Vapi's shape for that provider): each
   * adapter reads only its own provider's fields (`voiceOf`), and its rules file says which reach
   * the provider for which model.
   */
  voice: ResolvedVoice;
  /** The audio the provider sends: one `outputFor` returned (μ-law 8 kHz for Twilio). */
  outputFormat: AudioFormat;
  /** Websocket handshake budget; default set by the adapter (5 s). */
  connectTimeoutMs?: number;
  signal: AbortSignal;
}

/** The voice of one provider (`voiceOf(options, "cartesia")`). */
export type VoiceOf<P extends ResolvedVoice["provider"]> = Extract<ResolvedVoice, { provider: P }>;

/** The options' voice, when it is `provider`'s; another provider's voice is a wiring mistake. */
export function voiceOf<P extends ResolvedVoice["provider"]>(options: TtsOptions, provider: P): VoiceOf<P> {
  const { voice } = options;
  if (voice.provider !== provider) {
    throw new ProviderError(provider, "voice", `${provider} was given a ${voice.provider} voice`, false);
  }
  return voice as VoiceOf<P>;
}

export interface TtsStream {
  /** Text as soon as a clause is complete; `flush` forces generation of what was sent. */
  sendText(text: string, flush?: boolean): void;
  /** No more text for this utterance: audio ends after what was sent. */
  end(): void;
  /** Drop everything (barge-in): no more audio events after this resolves. */
  abort(): void;
  /** Wall time to get a ready socket, in ms (≈0 when a pre-opened one was used). */
  readonly connectMs?: number;
}

export type TtsEvent =
  | { type: "audio"; audio: Buffer }
  | { type: "done"; characters: number }
  | { type: "error"; error: ProviderError };

export interface TextToSpeech {
  readonly provider: string;
  /**
   * The native output format closest to `want` (`want` itself when the provider produces it); the
   * session converts the rest.
   */
  outputFor(want: AudioFormat): AudioFormat;
  /** One stream per assistant utterance (a reply), fed clause by clause. */
  open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream>;
  /**
   * Optional: get a connection ready for the next `open` with the same options (call start), so a
   * reply does not pay the handshake. It lives until `options.signal` aborts. Never throws.
   */
  prewarm?(options: TtsOptions): void;
}
