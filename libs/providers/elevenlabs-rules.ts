// What ElevenLabs' multi-context websocket (`/v1/text-to-speech/{voice_id}/multi-stream-input`) takes,
// from ElevenLabs' published AsyncAPI spec and docs (../shared/docs/PROVIDERS.md §1.4 names them):
// - Models: "WebSockets are not available for the eleven_v3 model" (the handshake is refused with 403).
// - Query parameters: model_id, language_code, enable_logging, enable_ssml_parsing, output_format,
//   inactivity_timeout, sync_alignment, auto_mode, apply_text_normalization, seed. `language_code` is
//   "for Turbo v2.5 and Flash v2.5 models only" (other models answer it with an error).
//   `optimize_streaming_latency` was dropped from the websockets (it stays on the HTTP /stream
//   endpoints), so Vapi's `optimizeStreamingLatency` is not sent: on the socket, latency is set by
//   the chunk schedule and per-clause flushes.
// - `voice_settings` (RealtimeVoiceSettings) requires `stability` and `similarity_boost` when sent.
// - Vapi's preset voice names (`burt`, `marissa`, …) are voices of Vapi's own library: ElevenLabs
//   documents no voice ids for them, and a name is no voice id.
import { ELEVENLABS_PRESET_VOICE_IDS } from "../vapi/enums.ts";
import type { OptionProblem } from "./types.ts";

/** Models ElevenLabs serves on its realtime websockets. */
export const ELEVENLABS_REALTIME_MODELS: readonly string[] = [
  "eleven_flash_v2_5",
  "eleven_flash_v2",
  "eleven_turbo_v2_5",
  "eleven_turbo_v2",
  "eleven_multilingual_v2",
  // Deprecated by ElevenLabs but still an id its API takes.
  "eleven_monolingual_v1",
];

/** Models that take `language_code`. */
export const ELEVENLABS_LANGUAGE_CODE_MODELS: readonly string[] = ["eleven_turbo_v2_5", "eleven_flash_v2_5"];

/** RealtimeVoiceSettings defaults, sent for the two required fields the assistant leaves unset. */
export const ELEVENLABS_VOICE_SETTING_DEFAULTS = { stability: 0.5, similarity_boost: 0.75 } as const;

/** Vapi's default 11labs model (libs/vapi/defaults.ts). */
const DEFAULT_MODEL = "eleven_turbo_v2";

const PRESETS: ReadonlySet<string> = new Set(ELEVENLABS_PRESET_VOICE_IDS);

export interface ElevenLabsVoiceSettings {
  stability?: number;
  similarityBoost?: number;
  style?: number;
  useSpeakerBoost?: boolean;
  speed?: number;
}

/**
 * A context's `voice_settings` in the form the socket takes them: absent when the assistant sets
 * none (the voice's own settings apply), else snake_case with the two required fields filled in.
 */
export function elevenLabsVoiceSettings(
  v: ElevenLabsVoiceSettings | undefined,
): Record<string, number | boolean> | undefined {
  if (!v) return undefined;
  const settings: Record<string, number | boolean> = {};
  if (v.stability !== undefined) settings.stability = v.stability;
  if (v.similarityBoost !== undefined) settings.similarity_boost = v.similarityBoost;
  if (v.style !== undefined) settings.style = v.style;
  if (v.useSpeakerBoost !== undefined) settings.use_speaker_boost = v.useSpeakerBoost;
  if (v.speed !== undefined) settings.speed = v.speed;
  if (Object.keys(settings).length === 0) return undefined;
  return { ...ELEVENLABS_VOICE_SETTING_DEFAULTS, ...settings };
}

/** The documented query parameters for the assistant's voice options, beyond model and format. */
export function elevenLabsQueryParams(options: {
  model: string;
  language?: string;
  enableSsmlParsing?: boolean;
  autoMode?: boolean;
}): Record<string, string> {
  const q: Record<string, string> = {};
  if (options.language && ELEVENLABS_LANGUAGE_CODE_MODELS.includes(options.model)) {
    q.language_code = options.language;
  }
  if (options.enableSsmlParsing) q.enable_ssml_parsing = "true";
  if (options.autoMode) q.auto_mode = "true";
  return q;
}

/** Save-time check of an 11labs `voice` block (Vapi's ElevenLabsVoice). */
export function elevenLabsVoiceProblems(v: {
  voiceId?: unknown;
  model?: unknown;
  language?: unknown;
}): OptionProblem[] {
  const problems: OptionProblem[] = [];
  if (typeof v.voiceId === "string" && PRESETS.has(v.voiceId)) {
    problems.push({
      path: "voice.voiceId",
      message: `"${v.voiceId}" is one of Vapi's preset voice names, which ElevenLabs documents no voice id for: use the voice_id of an ElevenLabs voice (GET https://api.elevenlabs.io/v1/voices lists those of your account and library)`,
    });
  }
  const model = typeof v.model === "string" ? v.model : DEFAULT_MODEL;
  if (!ELEVENLABS_REALTIME_MODELS.includes(model)) {
    problems.push({
      path: "voice.model",
      message: `ElevenLabs does not serve ${model} on its realtime websocket (multi-stream-input), which calls use; it serves ${ELEVENLABS_REALTIME_MODELS.join(", ")}`,
    });
  } else if (typeof v.language === "string" && !ELEVENLABS_LANGUAGE_CODE_MODELS.includes(model)) {
    problems.push({
      path: "voice.language",
      message: `ElevenLabs takes a language code only with ${ELEVENLABS_LANGUAGE_CODE_MODELS.join(" and ")}; ${model}${typeof v.model === "string" ? "" : " (the default model)"} answers it with an error: set voice.model to one of those, or remove voice.language`,
    });
  }
  return problems;
}
