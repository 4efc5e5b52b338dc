// What Deepgram's Aura streaming TTS (`wss://api.deepgram.com/v1/speak`) takes, from Deepgram's
// published docs and SDK (../shared/docs/PROVIDERS.md §1.3):
// - The model IS the voice: `[modelname]-[voicename]-[language]`, e.g. `aura-2-thalia-en`
//   (docs, Voices and Languages). Vapi names the family (`voice.model`: aura | aura-2, "Defaults to
//   'aura-2'") and the voice (`voice.voiceId`: thalia…) separately.
// - Aura (first generation) has English voices only: asteria, luna, stella, athena, hera, orion,
//   arcas, perseus, angus, orpheus, helios, zeus. Aura-2 has its own English voices (stella,
//   perseus, angus and helios are not among them), Spanish ones (celeste, estrella, nestor, sirio,
//   carina, alvaro, diana, aquila, selena, javier) and German ones (viktoria, kara, fabian, julius,
//   lara, elara, aurelia); the other Aura-2 languages (fr, nl, it, ja) have no name in Vapi's list.
//   A voice name that does not exist in a family is a model Deepgram refuses at the handshake.
// - Socket query: model, encoding (linear16 | mulaw | alaw), sample_rate (8000, 16000, 24000,
//   32000, 48000; default 24000), speed, mip_opt_out. `container` only `none` on the socket.
// - Flush: "at most 20 times every 60 seconds"; beyond that a Warning and the flush is ignored.
import type { AudioFormat, OptionProblem } from "./types.ts";

export const AURA_1_VOICES: readonly string[] = [
  "asteria",
  "luna",
  "stella",
  "athena",
  "hera",
  "orion",
  "arcas",
  "perseus",
  "angus",
  "orpheus",
  "helios",
  "zeus",
];

const AURA_2_SPANISH = [
  "celeste",
  "estrella",
  "nestor",
  "sirio",
  "carina",
  "alvaro",
  "diana",
  "aquila",
  "selena",
  "javier",
];
const AURA_2_GERMAN = ["viktoria", "kara", "fabian", "julius", "lara", "elara", "aurelia"];
const AURA_2_ENGLISH = [
  "amalthea",
  "andromeda",
  "apollo",
  "arcas",
  "aries",
  "asteria",
  "athena",
  "atlas",
  "aurora",
  "callista",
  "cora",
  "cordelia",
  "delia",
  "draco",
  "electra",
  "harmonia",
  "helena",
  "hera",
  "hermes",
  "hyperion",
  "iris",
  "janus",
  "juno",
  "jupiter",
  "luna",
  "mars",
  "minerva",
  "neptune",
  "odysseus",
  "ophelia",
  "orion",
  "orpheus",
  "pandora",
  "phoebe",
  "pluto",
  "saturn",
  "selene",
  "thalia",
  "theia",
  "vesta",
  "zeus",
];

/** Aura-2 voice name → its language. */
const AURA_2_LANGUAGE = new Map<string, string>([
  ...AURA_2_ENGLISH.map((v): [string, string] => [v, "en"]),
  ...AURA_2_SPANISH.map((v): [string, string] => [v, "es"]),
  ...AURA_2_GERMAN.map((v): [string, string] => [v, "de"]),
]);

export const AURA_2_VOICES: readonly string[] = [...AURA_2_LANGUAGE.keys()];

/** The encodings and rates the socket produces (container none). */
export const DEEPGRAM_TTS_SAMPLE_RATES: readonly number[] = [8000, 16000, 24000, 32000, 48000];

/** Deepgram's cap on Flush messages per socket, and its window. */
export const DEEPGRAM_TTS_FLUSH_LIMIT = { count: 20, windowMs: 60_000 } as const;

/** `aura-2-thalia-en`: the Deepgram model for Vapi's family and voice name. */
export function deepgramSpeakModel(model: string, voiceId: string): string {
  const language = model === "aura" ? "en" : (AURA_2_LANGUAGE.get(voiceId) ?? "en");
  return `${model}-${voiceId}-${language}`;
}

/** The socket's query for an output format (`encoding`, `sample_rate`). */
export function deepgramSpeakFormat(format: AudioFormat): { encoding: string; sample_rate: string } {
  if (!DEEPGRAM_TTS_SAMPLE_RATES.includes(format.sampleRate)) {
    throw new Error(`deepgram has no ${format.encoding} output at ${format.sampleRate} Hz`);
  }
  return { encoding: format.encoding, sample_rate: String(format.sampleRate) };
}

/** Save-time check of a `deepgram` voice block (Vapi's DeepgramVoice). */
export function deepgramVoiceProblems(v: { voiceId?: unknown; model?: unknown }): OptionProblem[] {
  if (typeof v.voiceId !== "string") return [];
  const explicit = typeof v.model === "string";
  const model = explicit ? (v.model as string) : "aura-2";
  const voices = model === "aura" ? AURA_1_VOICES : AURA_2_VOICES;
  if (voices.includes(v.voiceId)) return [];
  const other = model === "aura" ? "aura-2" : "aura";
  const inOther = (model === "aura" ? AURA_2_VOICES : AURA_1_VOICES).includes(v.voiceId);
  return [
    {
      path: "voice.voiceId",
      message: `Deepgram has no ${model} voice "${v.voiceId}" (${model}-${v.voiceId}-… is no model it serves)${inOther ? `; it is a ${other} voice: set voice.model to "${other}"` : ""}${explicit ? "" : ` (voice.model defaults to "${model}")`}`,
    },
  ];
}
