// What each OpenAI chat model takes on Chat Completions (`POST /v1/chat/completions`), from OpenAI's
// published material (../shared/docs/PROVIDERS.md §1.1 names every source):
// - The reasoning models (o1, o3, o3-mini, o4-mini; gpt-5 and its successors, but not the
//   `*-chat-latest` chat models) take only the default `temperature` (1): any other value is a 400
//   `unsupported_value` ("Only the default (1) value is supported"). The platform sends no
//   `reasoning_effort`, so the models run at their default effort, where this holds for each of them.
// - `max_tokens` is deprecated and "not compatible with o-series models" (a 400
//   `unsupported_parameter`, "Use 'max_completion_tokens' instead"); `max_completion_tokens` is taken
//   by every chat model, so it is the one the adapter sends. On a reasoning model it also bounds the
//   hidden reasoning tokens.
// - Realtime models speak the Realtime API (a websocket of audio events), not Chat Completions.
// - `model:region` ids (`gpt-4o:australiaeast`) are Vapi's Azure OpenAI deployments; api.openai.com
//   has no model by that name.
// - o1-mini takes neither system messages nor tools (OpenAI's reasoning guide, beta limitations), and
//   every call sends a system prompt.
import type { OptionProblem } from "./types.ts";

export interface OpenAiModelRules {
  /** Only the default temperature (1) is accepted: the adapter sends none. */
  fixedTemperature: boolean;
  /** Why the model cannot run a call over Chat Completions, when it cannot. */
  unsupported?: string;
}

/** Models on Chat Completions that still take any temperature (gpt-4o and older, gpt-4.1). */
export const OPENAI_TEMPERATURE_EXAMPLES = "gpt-4.1, gpt-4o or a *-chat-latest model";

export function isOpenAiReasoningModel(model: string): boolean {
  if (/^o\d/.test(model)) return true;
  return /^gpt-5/.test(model) && !model.includes("-chat");
}

export function openAiModelRules(model: string): OpenAiModelRules {
  if (model.includes(":")) {
    return {
      fixedTemperature: false,
      unsupported: `${model} is an Azure OpenAI regional deployment (the ":region" suffix); this platform calls OpenAI's own API, which has no model by that name: use ${model.split(":")[0]}`,
    };
  }
  if (model.includes("realtime")) {
    return {
      fixedTemperature: false,
      unsupported: `${model} is a Realtime API model (speech over a websocket); the assistant's model runs on Chat Completions: use a chat model such as gpt-4.1 or gpt-4o`,
    };
  }
  if (model.startsWith("o1-mini")) {
    return {
      fixedTemperature: true,
      unsupported: `${model} takes neither a system prompt nor tools on Chat Completions: use o4-mini, o3 or a gpt model`,
    };
  }
  return { fixedTemperature: isOpenAiReasoningModel(model) };
}

/** The sampling options of a request body, in the form the model takes them. */
export function openAiSamplingParams(
  model: string,
  options: { temperature?: number; maxTokens?: number },
): { temperature?: number; max_completion_tokens?: number } {
  const out: { temperature?: number; max_completion_tokens?: number } = {};
  if (options.temperature !== undefined && !openAiModelRules(model).fixedTemperature) {
    out.temperature = options.temperature;
  }
  if (options.maxTokens !== undefined) out.max_completion_tokens = options.maxTokens;
  return out;
}

/** Save-time check of an OpenAI `model` block (Vapi's OpenAIModel). */
export function openAiModelProblems(model: { model?: unknown; temperature?: unknown }): OptionProblem[] {
  if (typeof model.model !== "string") return [];
  const rules = openAiModelRules(model.model);
  if (rules.unsupported) return [{ path: "model.model", message: rules.unsupported }];
  if (rules.fixedTemperature && typeof model.temperature === "number" && model.temperature !== 1) {
    return [
      {
        path: "model.temperature",
        message: `${model.model} is a reasoning model that takes only the default temperature (1): OpenAI answers 400 to ${model.temperature}. Remove temperature, or use a model that takes one (${OPENAI_TEMPERATURE_EXAMPLES})`,
      },
    ];
  }
  return [];
}
