// What each OpenAI transcription model takes in a Realtime transcription session, from the OpenAI
// API reference as the official SDK carries it (openai/openai-node @7b7d6ca `src/resources/realtime/
// realtime.ts`: `AudioTranscription`, `RealtimeTranscriptionSessionAudioInput`, `RealtimeAudioFormats`):
// - `audio.input.format`: `audio/pcm` at 24 kHz only, `audio/pcmu` (G.711 μ-law, 8 kHz) or `audio/pcma`.
// - `turn_detection` (server VAD) on every model but `gpt-realtime-whisper` ("turn detection must be set
//   to null; VAD is not supported").
// - `prompt` on whisper-1 and the gpt-4o transcribe models, not on `gpt-realtime-whisper` nor
//   `gpt-4o-transcribe-diarize`; `keywords`/`languages` on `gpt-transcribe` and `gpt-live-transcribe`
//   only; `delay` on `gpt-realtime-whisper` only.
// Vapi's OpenAI transcriber offers `gpt-4o-transcribe` and `gpt-4o-mini-transcribe` with a `language`:
// both take server VAD, which this platform uses as their end of turn.
import type { OptionProblem } from "./types.ts";

export interface OpenAiSttModelRules {
  serverVad: boolean;
  prompt: boolean;
  keywords: boolean;
  delay: boolean;
}

export function openAiSttModelRules(model: string): OpenAiSttModelRules {
  const realtimeWhisper = model.startsWith("gpt-realtime-whisper");
  return {
    serverVad: !realtimeWhisper,
    prompt: !realtimeWhisper && !model.includes("diarize"),
    keywords: model === "gpt-transcribe" || model === "gpt-live-transcribe",
    delay: realtimeWhisper,
  };
}

/**
 * Save-time check of an `openai` transcriber block. Every model Vapi's schema offers takes server VAD
 * and a language; a model without server VAD could not end the caller's turn here.
 */
export function openAiTranscriberProblems(t: { model?: unknown }): OptionProblem[] {
  if (typeof t.model !== "string") return [];
  if (!openAiSttModelRules(t.model).serverVad) {
    return [
      {
        path: "transcriber.model",
        message: `${t.model} takes no turn detection in a Realtime transcription session, which this platform ends the caller's turn on: use gpt-4o-transcribe or gpt-4o-mini-transcribe`,
      },
    ];
  }
  return [];
}
