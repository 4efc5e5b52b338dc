// What each AssemblyAI streaming model takes on Universal-Streaming v3 (`/v3/ws`), from AssemblyAI's
// documentation (AssemblyAI/assemblyai-api-spec `usm-streaming.yml`, `usm-streaming-u3-pro.yml`,
// streaming "Model selection", "Optimizing accuracy and latency", "Context carryover"; PROVIDERS.md §2.2):
// - `speech_model` is required: `universal-streaming-english`, `universal-streaming-multilingual` or
//   `universal-3-5-pro` (the names Vapi lists; AssemblyAI also serves `u3-rt-pro` and `whisper-rt`).
// - `format_turns` exists on the Universal-Streaming models; the U3 Pro family always formats.
// - `end_of_turn_confidence_threshold` is "only supported for the Universal-streaming model"; the U3 Pro
//   family ends turns on punctuation after `min_turn_silence`, forced after `max_turn_silence`.
//   `min_turn_silence` replaces the deprecated `min_end_of_turn_silence_when_confident`.
// - `keyterms_prompt` (up to 100 terms of up to 50 characters) on every streaming model but Whisper;
//   `prompt`, `mode` (min_latency | balanced | max_accuracy) and `agent_context` on the U3 Pro family only.
// - Vapi's AssemblyAI fields with no Universal-Streaming v3 parameter (`wordBoost` and
//   `endUtteranceSilenceThreshold` are the v2 realtime API's, `wordFinalizationMaxWaitTime`, and
//   `languageCodes`, which AssemblyAI's streaming reference does not list) are refused when saved, as is
//   `realtimeUrl` (the platform connects to its configured AssemblyAI endpoint with its own or the
//   org's key, never to a URL from an assistant).
import type { OptionProblem } from "./types.ts";

export const ASSEMBLYAI_DEFAULT_MODEL = "universal-streaming-english";

export interface AssemblyAiModelRules {
  /** Universal-Streaming (English or multilingual): `format_turns` and `end_of_turn_confidence_threshold`. */
  universalStreaming: boolean;
  /** The U3 Pro family: `prompt`, `mode`, `agent_context`; formatting always on. */
  u3Pro: boolean;
  multilingual: boolean;
  keyterms: boolean;
}

export function assemblyAiModelRules(model: string): AssemblyAiModelRules {
  const universalStreaming = model.startsWith("universal-streaming");
  const u3Pro = model === "universal-3-5-pro" || model.startsWith("u3-");
  return {
    universalStreaming,
    u3Pro,
    multilingual: model !== "universal-streaming-english",
    keyterms: !model.startsWith("whisper"),
  };
}

/** The `transcriber` block fields this file reads (Vapi's AssemblyAITranscriber). */
export interface AssemblyAiTranscriberFields {
  speechModel?: unknown;
  language?: unknown;
  [field: string]: unknown;
}

/**
 * The speech model a transcriber block runs: its `speechModel`, else the multilingual model for
 * Vapi's `language: "multi"`, else Universal-Streaming English (Vapi's default).
 */
export function assemblyAiSpeechModel(t: AssemblyAiTranscriberFields): string {
  if (typeof t.speechModel === "string") return t.speechModel;
  return t.language === "multi" ? "universal-streaming-multilingual" : ASSEMBLYAI_DEFAULT_MODEL;
}

const NO_V3_PARAMETER: Record<string, string> = {
  wordBoost:
    "word boost is AssemblyAI's v2 realtime parameter; Universal-Streaming takes transcriber.keytermsPrompt instead",
  endUtteranceSilenceThreshold:
    "end_utterance_silence_threshold is AssemblyAI's v2 realtime parameter; Universal-Streaming ends turns after transcriber.minEndOfTurnSilenceWhenConfident / maxTurnSilence instead",
  wordFinalizationMaxWaitTime:
    "Universal-Streaming has no word finalization wait parameter; use transcriber.maxTurnSilence to bound a turn",
  languageCodes:
    "AssemblyAI's streaming reference lists no parameter for language codes; universal-3-5-pro code-switches on its own: remove it",
  realtimeUrl:
    "the platform connects to its configured AssemblyAI endpoint (ASSEMBLYAI_API_URL), not to a URL set on an assistant: remove it",
  vadAssistedEndpointingEnabled:
    "AssemblyAI's end of turn is taken as it comes on this platform (no VAD buffering of it): remove it",
};

/** Save-time check of an `assembly-ai` transcriber block. */
export function assemblyAiTranscriberProblems(t: AssemblyAiTranscriberFields): OptionProblem[] {
  const problems: OptionProblem[] = [];
  for (const [field, message] of Object.entries(NO_V3_PARAMETER)) {
    if (t[field] !== undefined) problems.push({ path: `transcriber.${field}`, message });
  }
  const model = assemblyAiSpeechModel(t);
  const rules = assemblyAiModelRules(model);
  if (t.language === "multi" && !rules.multilingual) {
    problems.push({
      path: "transcriber.language",
      message: `${model} transcribes English only; use speechModel universal-streaming-multilingual or universal-3-5-pro for "multi"`,
    });
  }
  if (t.endOfTurnConfidenceThreshold !== undefined && !rules.universalStreaming) {
    problems.push({
      path: "transcriber.endOfTurnConfidenceThreshold",
      message: `the end-of-turn confidence threshold is a Universal-Streaming setting; ${model} ends turns on punctuation after minEndOfTurnSilenceWhenConfident, forced after maxTurnSilence`,
    });
  }
  for (const field of ["prompt", "mode", "agentContext"] as const) {
    if (t[field] !== undefined && !rules.u3Pro) {
      problems.push({
        path: `transcriber.${field}`,
        message: `${field} applies to the universal-3-5-pro speech model only; ${model} has none`,
      });
    }
  }
  if (Array.isArray(t.keytermsPrompt)) {
    if (t.keytermsPrompt.length > 100) {
      problems.push({ path: "transcriber.keytermsPrompt", message: "AssemblyAI takes at most 100 keyterms" });
    }
    const long = t.keytermsPrompt.filter((k) => typeof k === "string" && k.length > 50);
    if (long.length > 0) {
      problems.push({
        path: "transcriber.keytermsPrompt",
        message: `a keyterm is at most 50 characters (${long.length} longer)`,
      });
    }
  }
  return problems;
}
