// What Cartesia's TTS websocket (`/tts/websocket`) takes, per model, from Cartesia's published
// material (../shared/docs/PROVIDERS.md §2.1 names the sources):
// - Models: since 2026-06-01 `sonic`, `sonic-english`, `sonic-multilingual` and the 2025-03-07
//   snapshots are sunsetted (the API answers `model_not_found`/`model_sunsetted`); `sonic-preview`
//   is in none of Cartesia's model lists. Served: the sonic-3 family (sonic-3, sonic-3.5 and their
//   dated snapshots; 42 languages) and sonic-2 (2025-04-16 and later snapshots; since 2026-06-01
//   only en, de, es, fr, ja, ko, pt, zh) ("API Changes", "Older TTS Models").
// - `generation_config` (speed 0.6–1.5, volume 0.5–2.0, emotion) is "only for sonic-3 and has no
//   effect on earlier models" (cartesia-js GenerationConfig); speed and volume are "temporarily
//   disabled on sonic-3.5" (docs, Volume, Speed, and Emotion). Cartesia's request schema has no
//   accent-localization field, so Vapi's `generationConfig.experimental` has nothing to reach.
// - `pronunciation_dict_id`: "supported by sonic-3 models and newer".
// - `__experimental_controls` (Vapi's `experimentalControls`): "For versions after
//   sonic-2-2025-03-07, _experimental_controls is not supported", and that snapshot is sunsetted:
//   no model Cartesia serves takes them.
// - Output on the websocket: `{"container":"raw","encoding":"pcm_mulaw"|"pcm_s16le"|…,
//   "sample_rate":8000|16000|22050|24000|44100|48000}`.
import { CARTESIA_LANGUAGES } from "../vapi/enums.ts";
import type { AudioFormat, OptionProblem } from "./types.ts";

/** Vapi's Cartesia models that Cartesia serves today. */
export const CARTESIA_SERVED_MODELS: readonly string[] = [
  "sonic-3.5",
  "sonic-3.5-2026-05-04",
  "sonic-3",
  "sonic-3-2026-01-12",
  "sonic-3-2025-10-27",
  "sonic-2",
  "sonic-2-2025-06-11",
];

/** The languages sonic-2 still serves after 2026-06-01. */
export const SONIC_2_LANGUAGES: readonly string[] = ["en", "de", "es", "fr", "ja", "ko", "pt", "zh"];

/** Raw sample rates of the websocket's `output_format`. */
export const CARTESIA_SAMPLE_RATES: readonly number[] = [8000, 16000, 22050, 24000, 44100, 48000];

/** Cartesia's default model when the assistant sets none (libs/vapi/defaults.ts). */
const DEFAULT_MODEL = "sonic-3";

function isSonic3(model: string): boolean {
  return model.startsWith("sonic-3");
}

function isSonic35(model: string): boolean {
  return model.startsWith("sonic-3.5");
}

/** The languages a served model speaks. */
export function cartesiaLanguages(model: string): readonly string[] {
  return isSonic3(model) ? CARTESIA_LANGUAGES : SONIC_2_LANGUAGES;
}

export interface CartesiaRawFormat {
  container: "raw";
  encoding: "pcm_mulaw" | "pcm_s16le";
  sample_rate: number;
}

/** The websocket's `output_format` for an audio format it produces raw. */
export function cartesiaOutputFormat(format: AudioFormat): CartesiaRawFormat {
  if (!CARTESIA_SAMPLE_RATES.includes(format.sampleRate)) {
    throw new Error(`cartesia has no raw output at ${format.sampleRate} Hz`);
  }
  return {
    container: "raw",
    encoding: format.encoding === "mulaw" ? "pcm_mulaw" : "pcm_s16le",
    sample_rate: format.sampleRate,
  };
}

/** Cartesia's `generation_config` for the assistant's `generationConfig` (sonic-3 only). */
export function cartesiaGenerationConfig(
  model: string,
  config: { speed?: number; volume?: number } | undefined,
): { speed?: number; volume?: number } | undefined {
  if (!config || !isSonic3(model) || isSonic35(model)) return undefined;
  const out: { speed?: number; volume?: number } = {};
  if (config.speed !== undefined) out.speed = config.speed;
  if (config.volume !== undefined) out.volume = config.volume;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Save-time check of a `cartesia` voice block (Vapi's CartesiaVoice). */
export function cartesiaVoiceProblems(v: {
  model?: unknown;
  language?: unknown;
  experimentalControls?: unknown;
  generationConfig?: unknown;
  pronunciationDictId?: unknown;
}): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const explicit = typeof v.model === "string";
  const model = explicit ? (v.model as string) : DEFAULT_MODEL;
  const named = `${model}${explicit ? "" : " (the default model)"}`;
  if (!CARTESIA_SERVED_MODELS.includes(model)) {
    problems.push({
      path: "voice.model",
      message: `Cartesia no longer serves ${model} (sonic, sonic-english, sonic-multilingual and the 2025-03-07 snapshots were discontinued on 2026-06-01; sonic-preview is not a current model); it serves ${CARTESIA_SERVED_MODELS.join(", ")}`,
    });
    return problems;
  }
  if (typeof v.language === "string" && !cartesiaLanguages(model).includes(v.language)) {
    problems.push({
      path: "voice.language",
      message: `Cartesia's ${named} does not speak "${v.language}" (it speaks ${cartesiaLanguages(model).join(", ")}); the sonic-3 models speak 42 languages`,
    });
  }
  if (v.experimentalControls !== undefined) {
    problems.push({
      path: "voice.experimentalControls",
      message:
        "no model Cartesia serves takes experimental controls (sonic-2-2025-03-07 was the last, discontinued on 2026-06-01): use voice.generationConfig (speed, volume) with a sonic-3 model",
    });
  }
  const gc = v.generationConfig;
  if (gc !== undefined && gc !== null && typeof gc === "object") {
    const config = gc as { speed?: unknown; volume?: unknown; experimental?: unknown };
    if (!isSonic3(model)) {
      problems.push({
        path: "voice.generationConfig",
        message: `Cartesia takes generation_config only on the sonic-3 models; ${named} ignores it: set voice.model to sonic-3`,
      });
    } else {
      if (isSonic35(model)) {
        for (const field of ["speed", "volume"] as const) {
          if (config[field] !== undefined) {
            problems.push({
              path: `voice.generationConfig.${field}`,
              message: `Cartesia has disabled ${field} control on ${model} for now: pin voice.model to sonic-3 (or a sonic-3 snapshot) to use it`,
            });
          }
        }
      }
      if (config.experimental !== undefined) {
        problems.push({
          path: "voice.generationConfig.experimental",
          message:
            "Cartesia's published TTS request has no accent-localization control, so this cannot reach it: remove voice.generationConfig.experimental",
        });
      }
    }
  }
  if (v.pronunciationDictId !== undefined && !isSonic3(model)) {
    problems.push({
      path: "voice.pronunciationDictId",
      message: `Cartesia supports pronunciation dictionaries on the sonic-3 models and newer; ${named} does not: set voice.model to sonic-3`,
    });
  }
  return problems;
}
