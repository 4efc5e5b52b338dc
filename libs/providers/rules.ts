// The save-time check of an assistant's provider options: each option the platform accepts either
// reaches the provider in the form its API takes for that model (the adapters encode it with the
// same rules), or the assistant is refused here, naming the field and what the model supports.
// Every place that accepts an assistant (POST/PATCH /assistant, squads, POST /call with an inline
// assistant, overrides or squad, assistant-request answers) calls this one function.

import { assemblyAiTranscriberProblems } from "./assemblyai-rules.ts";
import { cartesiaVoiceProblems } from "./cartesia-rules.ts";
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
  return problems;
}
