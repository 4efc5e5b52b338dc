import { renderTemplate } from "../assistants/index.ts";
import type { AnalysisStep, AnalysisStepUsage } from "../billing/usage.ts";
import { isAbortError, type LanguageModel, type LlmMessage } from "../providers/types.ts";
import type { ResolvedAssistantConfig } from "../vapi/defaults.ts";

// Vapi's post-call analysis (`assistant.analysisPlan`): after the call, up to three LLM requests
// (summary, structured data, success evaluation) over the call's transcript, each bounded by its
// plan's `timeoutSeconds`. The steps run at the same time; one that fails or times out is left out
// of `call.analysis` (as Vapi: "When request times out, `call.analysis.summary` will be empty") and
// the others are still recorded. The tokens of every step that answered are returned for billing,
// also when its answer could not be used (unparseable structured data).
//
// Default prompts: the `@default` messages of SummaryPlan, StructuredDataPlan and
// SuccessEvaluationPlan in @vapi-ai/server-sdk (Vapi's API reference). Their template variables
// ({{transcript}}, {{systemPrompt}}, {{messages}}, {{endedReason}}, {{schema}}, {{rubric}}) are
// substituted in the plan's own `messages` the same way. (The SDK text writes "Rubric:\\n" and
// "Json Schema:\\n", a doubly escaped newline; a real newline is sent here.)

export type AnalysisPlanConfig = ResolvedAssistantConfig["analysisPlan"];
export type SuccessEvaluationRubric = NonNullable<AnalysisPlanConfig["successEvaluationPlan"]["rubric"]>;

interface PromptMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

const REPORT_USER =
  "Here is the transcript:\n\n{{transcript}}\n\n. Here is the ended reason of the call:\n\n{{endedReason}}\n\n";

export const DEFAULT_SUMMARY_MESSAGES: readonly PromptMessage[] = [
  {
    role: "system",
    content:
      "You are an expert note-taker. You will be given a transcript of a call. Summarize the call in 2-3 sentences. DO NOT return anything except the summary.",
  },
  { role: "user", content: REPORT_USER },
];

export const DEFAULT_STRUCTURED_DATA_MESSAGES: readonly PromptMessage[] = [
  {
    role: "system",
    content:
      "You are an expert data extractor. You will be given a transcript of a call. Extract structured data per the JSON Schema. DO NOT return anything except the structured data.\n\nJson Schema:\n{{schema}}\n\nOnly respond with the JSON.",
  },
  { role: "user", content: REPORT_USER },
];

export const DEFAULT_SUCCESS_EVALUATION_MESSAGES: readonly PromptMessage[] = [
  {
    role: "system",
    content:
      "You are an expert call evaluator. You will be given a transcript of a call and the system prompt of the AI participant. Determine if the call was successful based on the objectives inferred from the system prompt. DO NOT return anything except the result.\n\nRubric:\n{{rubric}}\n\nOnly respond with the result.",
  },
  { role: "user", content: "Here is the transcript:\n\n{{transcript}}\n\n" },
  {
    role: "user",
    content:
      "Here was the system prompt of the call:\n\n{{systemPrompt}}\n\n. Here is the ended reason of the call:\n\n{{endedReason}}\n\n",
  },
];

/** `{{rubric}}`: the rubric's name and Vapi's description of it (SuccessEvaluationPlan.rubric). */
export const RUBRIC_DESCRIPTIONS: Record<SuccessEvaluationRubric, string> = {
  NumericScale: "A scale of 1 to 10.",
  DescriptiveScale: "A scale of Excellent, Good, Fair, Poor.",
  Checklist: "A checklist of criteria and their status.",
  Matrix: "A grid that evaluates multiple criteria across different performance levels.",
  PercentageScale: "A scale of 0% to 100%.",
  LikertScale: "A scale of Strongly Agree, Agree, Neutral, Disagree, Strongly Disagree.",
  AutomaticRubric: "Automatically break down evaluation into several criteria, each with its own score.",
  PassFail: "A simple 'true' if call passed, 'false' if not.",
};

export interface CallAnalysisResult {
  summary?: string;
  structuredData?: Record<string, unknown>;
  successEvaluation?: string;
}

export interface AnalysisOutcome {
  analysis: CallAnalysisResult;
  /** Tokens of each step that answered (billed even when its answer was unusable). */
  usage: Partial<Record<AnalysisStep, AnalysisStepUsage>>;
  /** Steps that were due (enabled and configured): the ones asked of the LLM. */
  attempted: AnalysisStep[];
}

export interface AnalysisInput {
  plan: AnalysisPlanConfig;
  /** `call.artifact.transcript` ("AI: …\nUser: …"). */
  transcript: string;
  /** The call's system prompt as it ran (variables substituted). */
  systemPrompt: string;
  /** `assistant.model.messages` ({{messages}}). */
  modelMessages: readonly unknown[];
  endedReason: string;
}

export interface AnalysisDeps {
  llm: LanguageModel;
  apiKey: string;
  model: string;
  logger?: { warn(obj: object, msg?: string): void };
}

/** Messages Vapi counts towards `minMessagesThreshold`: what the caller and the assistant said. */
export function conversationMessageCount(messages: readonly unknown[]): number {
  return messages.filter((m) => {
    const role = m && typeof m === "object" ? (m as { role?: unknown }).role : undefined;
    return role === "user" || role === "bot" || role === "assistant";
  }).length;
}

/** The steps the plan asks for: enabled, and for structured data, with a schema. */
export function dueSteps(plan: AnalysisPlanConfig): AnalysisStep[] {
  const steps: AnalysisStep[] = [];
  if (plan.summaryPlan.enabled) steps.push("summary");
  if (plan.structuredDataPlan.enabled && plan.structuredDataPlan.schema) steps.push("structuredData");
  if (plan.successEvaluationPlan.enabled) steps.push("successEvaluation");
  return steps;
}

function promptMessages(
  custom: readonly Record<string, unknown>[] | undefined,
  defaults: readonly PromptMessage[],
  vars: Record<string, unknown>,
): LlmMessage[] {
  const source: PromptMessage[] =
    custom && custom.length > 0
      ? custom.flatMap((m) =>
          (m.role === "system" || m.role === "user" || m.role === "assistant") &&
          typeof m.content === "string"
            ? [{ role: m.role, content: m.content }]
            : [],
        )
      : [...defaults];
  return source.map((m) => ({ role: m.role, content: renderTemplate(m.content, vars) }));
}

/** A JSON object from the model's answer (a ```json fence around it is tolerated); else undefined. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const fenced = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/i.exec(text);
  try {
    const v: unknown = JSON.parse(fenced?.[1] ?? text);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** PassFail answers as Vapi stores them: "true" or "false" (anything else is kept as said). */
export function normaliseEvaluation(text: string, rubric: SuccessEvaluationRubric): string {
  const trimmed = text.trim();
  if (rubric !== "PassFail") return trimmed;
  const word = trimmed
    .toLowerCase()
    .replace(/^["'`*\s]+|["'`*.!\s]+$/g, "")
    .trim();
  if (["true", "pass", "passed", "yes", "success", "successful"].includes(word)) return "true";
  if (["false", "fail", "failed", "no", "unsuccessful"].includes(word)) return "false";
  return trimmed;
}

class StepFailed extends Error {}

/** One step: stream the answer to its end within `timeoutSeconds`; the text and its usage. */
async function ask(
  deps: AnalysisDeps,
  messages: LlmMessage[],
  timeoutSeconds: number,
  responseFormat?: "json_object",
): Promise<{ text: string; usage: AnalysisStepUsage }> {
  const signal = AbortSignal.timeout(Math.max(1, timeoutSeconds) * 1000);
  let text = "";
  let usage: AnalysisStepUsage | undefined;
  try {
    for await (const e of deps.llm.stream({
      apiKey: deps.apiKey,
      model: deps.model,
      messages,
      signal,
      ...(responseFormat ? { responseFormat } : {}),
    })) {
      if (e.type === "text") text += e.delta;
      else if (e.type === "done") usage = { ...e.usage };
    }
  } catch (err) {
    if (isAbortError(err) || signal.aborted) throw new StepFailed(`timed out after ${timeoutSeconds} s`);
    throw new StepFailed(err instanceof Error ? err.message : String(err));
  }
  return { text, usage: usage ?? { promptTokens: 0, cachedPromptTokens: 0, completionTokens: 0 } };
}

/** Runs the due steps of the plan at the same time; never throws (failed steps are logged). */
export async function runCallAnalysis(deps: AnalysisDeps, input: AnalysisInput): Promise<AnalysisOutcome> {
  const { plan } = input;
  const rubric = plan.successEvaluationPlan.rubric;
  const vars: Record<string, unknown> = {
    transcript: input.transcript,
    systemPrompt: input.systemPrompt,
    messages: input.modelMessages,
    endedReason: input.endedReason,
    schema: plan.structuredDataPlan.schema ?? {},
    rubric: `${rubric}: ${RUBRIC_DESCRIPTIONS[rubric]}`,
  };
  const outcome: AnalysisOutcome = { analysis: {}, usage: {}, attempted: dueSteps(plan) };

  const run = async (step: AnalysisStep): Promise<void> => {
    try {
      switch (step) {
        case "summary": {
          const messages = promptMessages(plan.summaryPlan.messages, DEFAULT_SUMMARY_MESSAGES, vars);
          const { text, usage } = await ask(deps, messages, plan.summaryPlan.timeoutSeconds);
          outcome.usage.summary = usage;
          const summary = text.trim();
          if (!summary) throw new StepFailed("empty answer");
          outcome.analysis.summary = summary;
          return;
        }
        case "structuredData": {
          const p = plan.structuredDataPlan;
          const messages = promptMessages(p.messages, DEFAULT_STRUCTURED_DATA_MESSAGES, vars);
          // OpenAI refuses json_object unless a message mentions JSON (a custom prompt may not).
          const json = messages.some((m) => /json/i.test(m.content ?? "")) ? "json_object" : undefined;
          const { text, usage } = await ask(deps, messages, p.timeoutSeconds, json);
          outcome.usage.structuredData = usage;
          const data = parseJsonObject(text);
          if (!data) throw new StepFailed(`answer is not a JSON object: ${text.slice(0, 200)}`);
          outcome.analysis.structuredData = data;
          return;
        }
        case "successEvaluation": {
          const p = plan.successEvaluationPlan;
          const messages = promptMessages(p.messages, DEFAULT_SUCCESS_EVALUATION_MESSAGES, vars);
          const { text, usage } = await ask(deps, messages, p.timeoutSeconds);
          outcome.usage.successEvaluation = usage;
          const evaluation = normaliseEvaluation(text, p.rubric);
          if (!evaluation) throw new StepFailed("empty answer");
          outcome.analysis.successEvaluation = evaluation;
          return;
        }
      }
    } catch (err) {
      deps.logger?.warn(
        { step, model: deps.model, err: err instanceof Error ? err.message : String(err) },
        `call analysis: ${step} skipped`,
      );
    }
  };
  await Promise.all(outcome.attempted.map(run));
  return outcome;
}
