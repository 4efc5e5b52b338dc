// The save-time check of an assistant's provider options: each option the platform accepts either
// reaches the provider in the form its API takes for that model (the adapters encode it with the
// same rules), or the assistant is refused here, naming the field and what the model supports.
// Every place that accepts an assistant (POST/PATCH /assistant, squads, POST /call with an inline
// assistant, overrides or squad, assistant-request answers) calls this one function.
import { anthropicModelProblems } from "./anthropic-rules.ts";
import { assemblyAiTranscriberProblems } from "./assemblyai-rules.ts";
import { cartesiaVoiceProblems } from "./cartesia-rules.ts";
import { customLlmModelProblems } from "./custom-llm.ts";
import { deepgramTranscriberProblems } from "./deepgram-rules.ts";
import { deepgramVoiceProblems } from "./deepgram-tts-rules.ts";
import { elevenLabsVoiceProblems } from "./elevenlabs-rules.ts";
import { openAiModelProblems } from "./openai-rules.ts";
import { openAiTranscriberProblems } from "./openai-stt-rules.ts";
import { openAiVoiceProblems } from "./openai-tts-rules.ts";
import type { OptionProblem } from "./types.ts";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The provider options of an assistant config (overrides already applied) that no provider takes. */
export function assistantProviderProblems(assistant: Record<string, unknown>): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const { model, voice, transcriber } = assistant;
  if (isObject(model) && model.provider === "openai") problems.push(...openAiModelProblems(model));
  if (isObject(model) && model.provider === "anthropic") problems.push(...anthropicModelProblems(model));
  if (isObject(model) && model.provider === "custom-llm") problems.push(...customLlmModelProblems(model));
  if (isObject(voice) && voice.provider === "11labs") problems.push(...elevenLabsVoiceProblems(voice));
  if (isObject(voice) && voice.provider === "cartesia") problems.push(...cartesiaVoiceProblems(voice));
  if (isObject(voice) && voice.provider === "deepgram") problems.push(...deepgramVoiceProblems(voice));
  if (isObject(voice) && voice.provider === "openai") problems.push(...openAiVoiceProblems(voice));
  if (isObject(transcriber) && transcriber.provider === "deepgram") {
    problems.push(...deepgramTranscriberProblems(transcriber));
  }
  if (isObject(transcriber) && transcriber.provider === "assembly-ai") {
    problems.push(...assemblyAiTranscriberProblems(transcriber));
  }
  if (isObject(transcriber) && transcriber.provider === "openai") {
    problems.push(...openAiTranscriberProblems(transcriber));
  }
  problems.push(...fallbackProblems(assistant));
  return problems;
}

/** Moves problems found at `from` (e.g. `voice.`) to `to` (a fallback entry's path). */
function moved(problems: OptionProblem[], from: string, to: string): OptionProblem[] {
  return problems.map((p) => ({
    ...p,
    path: p.path.startsWith(from) ? to + p.path.slice(from.length) : p.path,
  }));
}

/**
 * Each entry of the fallback plans is held to its provider's rules like the primary: a voice of
 * `voice.fallbackPlan.voices`, a transcriber of `transcriber.fallbackPlan.transcribers`, and each of
 * `model.fallbackModels` with the model's other options (a reasoning model refuses a temperature).
 */
function fallbackProblems(assistant: Record<string, unknown>): OptionProblem[] {
  const problems: OptionProblem[] = [];
  const { model, voice, transcriber } = assistant;
  const voices = isObject(voice) && isObject(voice.fallbackPlan) ? voice.fallbackPlan.voices : undefined;
  if (Array.isArray(voices)) {
    voices.forEach((v, i) => {
      if (!isObject(v)) return;
      const found = assistantProviderProblems({ voice: v });
      problems.push(...moved(found, "voice.", `voice.fallbackPlan.voices[${i}].`));
    });
  }
  const transcribers =
    isObject(transcriber) && isObject(transcriber.fallbackPlan)
      ? transcriber.fallbackPlan.transcribers
      : undefined;
  if (Array.isArray(transcribers)) {
    transcribers.forEach((t, i) => {
      if (!isObject(t)) return;
      const found = assistantProviderProblems({ transcriber: t });
      problems.push(...moved(found, "transcriber.", `transcriber.fallbackPlan.transcribers[${i}].`));
    });
  }
  const models = isObject(model) ? model.fallbackModels : undefined;
  if (isObject(model) && Array.isArray(models)) {
    models.forEach((m, i) => {
      if (typeof m !== "string") return;
      const { fallbackModels: _, ...rest } = model;
      for (const p of assistantProviderProblems({ model: { ...rest, model: m } })) {
        problems.push({ path: `model.fallbackModels[${i}]`, message: p.message });
      }
    });
  }
  return problems;
}
