// What OpenAI's speech endpoint (`POST /v1/audio/speech`) takes, from openai-node's
// `resources/audio/speech.ts` and OpenAI's text-to-speech guide (../shared/docs/PROVIDERS.md §2.4):
// - `instructions`: "Does not work with the models tts-1 or tts-1-hd."
// - `speed`: 0.25 to 4.0 (Vapi's OpenAIVoice has the same bounds, checked by the schema).
// - `response_format: "pcm"` is raw 24 kHz 16-bit signed little-endian mono; the endpoint has no
//   μ-law, so calls on the phone take PCM and the session converts it.
// - `input`: at most 4096 characters per request.
// - Voices: alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse, marin, cedar
//   (or a custom voice's id); Vapi says ash, ballad, coral, sage and verse "may only be used with
//   realtime models" and lists only the other eight as presets. OpenAI's guide: "The tts-1 and
//   tts-1-hd models support a smaller set of voices" (no marin, cedar, ballad, verse).
import { OPENAI_VOICE_PRESETS } from "../vapi/enums.ts";
import type { AudioFormat, OptionProblem } from "./types.ts";

/** The only raw format the endpoint produces. */
export const OPENAI_TTS_FORMAT: AudioFormat = { encoding: "linear16", sampleRate: 24_000 };

/** OpenAI's limit on `input` per request. */
export const OPENAI_TTS_MAX_INPUT = 4096;

/** Models that take `instructions`. */
export const OPENAI_INSTRUCTION_MODELS: readonly string[] = ["gpt-4o-mini-tts"];

/** Voices Vapi reserves for OpenAI's realtime models. */
export const OPENAI_REALTIME_ONLY_VOICES: readonly string[] = ["ash", "ballad", "coral", "sage", "verse"];

/** Preset voices tts-1 and tts-1-hd do not have. */
const NEWEST_VOICES: readonly string[] = ["marin", "cedar"];

/** Save-time check of an `openai` voice block (Vapi's OpenAIVoice). */
export function openAiVoiceProblems(v: {
  voiceId?: unknown;
  model?: unknown;
  instructions?: unknown;
}): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const explicit = typeof v.model === "string";
  const model = explicit ? (v.model as string) : "tts-1";
  const named = `${model}${explicit ? "" : " (the default model)"}`;
  if (v.instructions !== undefined && !OPENAI_INSTRUCTION_MODELS.includes(model)) {
    problems.push({
      path: "voice.instructions",
      message: `OpenAI takes instructions only with ${OPENAI_INSTRUCTION_MODELS.join(", ")}; "does not work with" ${named}: set voice.model to gpt-4o-mini-tts, or remove voice.instructions`,
    });
  }
  if (typeof v.voiceId === "string") {
    if (OPENAI_REALTIME_ONLY_VOICES.includes(v.voiceId)) {
      problems.push({
        path: "voice.voiceId",
        message: `"${v.voiceId}" is one of the voices Vapi reserves for OpenAI's realtime models; the speech models take ${OPENAI_VOICE_PRESETS.join(", ")}`,
      });
    } else if (NEWEST_VOICES.includes(v.voiceId) && !OPENAI_INSTRUCTION_MODELS.includes(model)) {
      problems.push({
        path: "voice.voiceId",
        message: `OpenAI documents "${v.voiceId}" for gpt-4o-mini-tts only; ${named} takes alloy, echo, fable, onyx, nova, shimmer`,
      });
    }
  }
  return problems;
}
