// What each Claude model takes on the Messages API (`POST /v1/messages`), from Anthropic's published
// material (../shared/docs/PROVIDERS.md §2.3 and the pages named here):
// - API version. The adapter sends `anthropic-version: 2023-06-01`. Version 2026-10-21 (the default
//   of SDK majors from TypeScript 1.0.0) removed `temperature`, `top_p` and `top_k` for every model
//   (a 400 even at their defaults; platform.claude.com/docs/en/api/migration-2026-10-21), so an
//   assistant's `temperature` could reach no model at all. On 2023-06-01 the models below that take
//   a temperature still do.
// - Retired models answer every request with an error (platform.claude.com/docs/en/about-claude/
//   model-deprecations). Vapi's `AnthropicModel.model` enum still lists the Claude 3.x, Sonnet 4,
//   Opus 4 and Sonnet 4.5 ids; none is in the model list of @anthropic-ai/sdk 1.17.0 (2026-12-03),
//   whose changelog removes them as retired. `claude-mythos-preview` reached its end of life on
//   2026-06-30 (the SDK's own deprecation table).
// - `temperature` ranges from 0 to 1 (Messages API reference); Vapi's schema allows up to 2.
// - Sampling. Claude Opus 4.7 and later and the Claude 5 generation (Sonnet 5 and 5.5, Opus 5 and
//   5.5, Haiku 5.5, Fable, Mythos) answer 400 to a `temperature` other than the default (1): the
//   Opus 4.7 migration guide and the Sonnet 5 model page ("setting sampling parameters to
//   non-default values returns a 400 error"). The adapter sends them none.
// - Thinking. Vapi's `model.thinking` ({type: "enabled", budgetTokens}) is Anthropic's manual
//   extended thinking: taken by Haiku 4.5, Opus 4.5, Opus 4.6 and Sonnet 4.6 (deprecated on the last
//   two in favour of adaptive thinking, still served); a 400 on Opus 4.7 and later and the Claude 5
//   generation, which think adaptively (on by default, except where `disabled` is refused).
//   `budget_tokens` must be at least 1024 and below `max_tokens`; thinking is not compatible with a
//   modified `temperature` (extended-thinking guide). Thinking tokens count toward `max_tokens`: on a
//   model that thinks by default, Vapi's default `maxTokens` (250) leaves little for the reply.
// - A model that thought before a tool call needs its thinking blocks back, unmodified, in front
//   of the tool_use blocks of that assistant turn (the adapter replays them, see anthropic.ts).
import type { OptionProblem } from "./types.ts";

export const ANTHROPIC_API_VERSION = "2023-06-01";

/** Claude's default temperature: the only one the fixed-sampling models accept. */
export const ANTHROPIC_DEFAULT_TEMPERATURE = 1;

/** Vapi's default `maxTokens`: Anthropic requires `max_tokens` on every request. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 250;

/** Models that take a temperature, for messages. */
export const ANTHROPIC_TEMPERATURE_EXAMPLES = "claude-sonnet-4-6, claude-haiku-4-5 or claude-opus-4-6";

/** Models that take manual extended thinking, for messages. */
const MANUAL_THINKING_EXAMPLES = "claude-sonnet-4-6, claude-haiku-4-5, claude-opus-4-6 or claude-opus-4-5";

const RETIRED: Record<string, string> = {
  "claude-3-opus-20240229": "claude-opus-4-6",
  "claude-3-sonnet-20240229": "claude-sonnet-4-6",
  "claude-3-haiku-20240307": "claude-haiku-4-5",
  "claude-3-5-sonnet-20240620": "claude-sonnet-4-6",
  "claude-3-5-sonnet-20241022": "claude-sonnet-4-6",
  "claude-3-5-haiku-20241022": "claude-haiku-4-5",
  "claude-3-7-sonnet-20250219": "claude-sonnet-4-6",
  "claude-opus-4-20250514": "claude-opus-4-6",
  "claude-opus-4-1-20250805": "claude-opus-4-6",
  "claude-sonnet-4-20250514": "claude-sonnet-4-6",
  "claude-sonnet-4-5-20250929": "claude-sonnet-4-6",
  "claude-mythos-preview": "claude-mythos-5",
};

export interface AnthropicModelRules {
  /** Why the model cannot run a call, when it cannot. */
  unsupported?: string;
  /** Only the default temperature (1) is accepted: the adapter sends none. */
  fixedSampling: boolean;
  /** Takes `thinking: {type: "enabled", budget_tokens}`. */
  manualThinking: boolean;
}

/** `claude-<family>-<major>[-<minor>][-<date>]` (the naming since Claude 4). */
function generation(model: string): { family: string; major: number; minor: number } | undefined {
  const m = /^claude-([a-z]+)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?$/.exec(model);
  if (!m) return undefined;
  return { family: m[1] as string, major: Number(m[2]), minor: m[3] === undefined ? 0 : Number(m[3]) };
}

export function anthropicModelRules(model: string): AnthropicModelRules {
  const replacement =
    RETIRED[model] ?? (/^claude-(?:\d|instant|2)/.test(model) ? "claude-sonnet-4-6" : undefined);
  if (replacement) {
    return {
      unsupported: `${model} has been retired by Anthropic (every request to it fails): use ${replacement} or a newer model`,
      fixedSampling: false,
      manualThinking: false,
    };
  }
  const g = generation(model);
  // Claude 5 and later, Opus 4.7 and later, and the Fable and Mythos families sample at fixed
  // settings and think adaptively; an id this file does not know is taken to be a newer model.
  const modern =
    !g ||
    g.major >= 5 ||
    g.family === "fable" ||
    g.family === "mythos" ||
    (g.family === "opus" && g.major === 4 && g.minor >= 7);
  return { fixedSampling: modern, manualThinking: !modern };
}

/** The sampling and thinking fields of a request body, in the form the model takes them. */
export function anthropicSamplingParams(
  model: string,
  options: { temperature?: number; maxTokens?: number; thinkingBudgetTokens?: number },
): { max_tokens: number; temperature?: number; thinking?: { type: "enabled"; budget_tokens: number } } {
  const rules = anthropicModelRules(model);
  const out: {
    max_tokens: number;
    temperature?: number;
    thinking?: { type: "enabled"; budget_tokens: number };
  } = { max_tokens: options.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS };
  const thinking = options.thinkingBudgetTokens !== undefined && rules.manualThinking;
  if (thinking) out.thinking = { type: "enabled", budget_tokens: options.thinkingBudgetTokens as number };
  // Thinking runs at the default temperature; so do the fixed-sampling models.
  if (options.temperature !== undefined && !rules.fixedSampling && !thinking)
    out.temperature = options.temperature;
  return out;
}

/** Vapi's `model.thinking` budget, when thinking is asked for. */
export function thinkingBudget(model: { thinking?: unknown }): number | undefined {
  const t = model.thinking;
  if (typeof t !== "object" || t === null) return undefined;
  const { type, budgetTokens } = t as { type?: unknown; budgetTokens?: unknown };
  return type === "enabled" && typeof budgetTokens === "number" ? budgetTokens : undefined;
}

/** Save-time check of an Anthropic `model` block (Vapi's AnthropicModel). */
export function anthropicModelProblems(model: {
  model?: unknown;
  temperature?: unknown;
  maxTokens?: unknown;
  thinking?: unknown;
}): OptionProblem[] {
  if (typeof model.model !== "string") return [];
  const id = model.model;
  const rules = anthropicModelRules(id);
  if (rules.unsupported) return [{ path: "model.model", message: rules.unsupported }];
  const problems: OptionProblem[] = [];
  const budget = thinkingBudget(model);
  const temperature = typeof model.temperature === "number" ? model.temperature : undefined;
  if (temperature !== undefined && temperature > 1) {
    problems.push({
      path: "model.temperature",
      message: `Anthropic takes a temperature from 0 to 1 (it answers 400 to ${temperature})`,
    });
  } else if (
    rules.fixedSampling &&
    temperature !== undefined &&
    temperature !== ANTHROPIC_DEFAULT_TEMPERATURE
  ) {
    problems.push({
      path: "model.temperature",
      message: `${id} takes only the default temperature (1): Anthropic answers 400 to ${temperature}. Remove temperature, or use a model that takes one (${ANTHROPIC_TEMPERATURE_EXAMPLES})`,
    });
  }
  if (budget !== undefined) {
    if (!rules.manualThinking) {
      problems.push({
        path: "model.thinking",
        message: `${id} thinks adaptively and answers 400 to manual extended thinking (thinking.type "enabled" with a budget): remove thinking, or use a model that takes it (${MANUAL_THINKING_EXAMPLES})`,
      });
    } else {
      const maxTokens = typeof model.maxTokens === "number" ? model.maxTokens : ANTHROPIC_DEFAULT_MAX_TOKENS;
      if (maxTokens <= budget) {
        problems.push({
          path: "model.maxTokens",
          message: `must be greater than thinking.budgetTokens (${budget}): Anthropic counts thinking tokens within max_tokens and answers 400 otherwise (maxTokens is ${maxTokens}${typeof model.maxTokens === "number" ? "" : ", Vapi's default"})`,
        });
      }
      if (temperature !== undefined && temperature !== ANTHROPIC_DEFAULT_TEMPERATURE) {
        problems.push({
          path: "model.temperature",
          message: `extended thinking is not compatible with a modified temperature (Anthropic answers 400 to ${temperature} with thinking on): remove temperature or thinking`,
        });
      }
    }
  }
  return problems;
}
