import { MissingProviderKeyError, resolveProviderKeys } from "../../../../libs/assistants/index.ts";
import { recordCallAnalysis } from "../../../../libs/billing/analysis.ts";
import { ensureCallCost } from "../../../../libs/billing/ensure-cost.ts";
import type { PriceCatalog } from "../../../../libs/billing/prices.ts";
import type { AnalysisUsage } from "../../../../libs/billing/usage.ts";
import { conversationMessageCount, dueSteps, runCallAnalysis } from "../../../../libs/calls/analysis.ts";
import type { SecretBox } from "../../../../libs/crypto/index.ts";
import type { Call as CallRow, Db } from "../../../../libs/db/index.ts";
import type { LanguageModel } from "../../../../libs/providers/types.ts";
import type { JobHandler, JobLogger, JobQueue } from "../../../../libs/queue/index.ts";
import type { RecordingLinks } from "../../../../libs/recordings/index.ts";
import type { CreateAssistantDTO } from "../../../../libs/vapi/assistant.ts";
import type { Server } from "../../../../libs/vapi/common.ts";
import { resolveAssistantDefaults } from "../../../../libs/vapi/defaults.ts";
import {
  type ConversationMessage,
  endOfCallReportFromCall,
  resolveServer,
  shouldSend,
  transcriptText,
  type WebhookDispatcher,
} from "../../../../libs/webhooks/index.ts";

type Json = Record<string, unknown>;

function asJson(v: unknown): Json | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function asServer(v: unknown): Server | undefined {
  const s = asJson(v);
  return s && typeof s.url === "string" ? (s as Server) : undefined;
}

export class CallNotFinalizedError extends Error {
  constructor(callId: string) {
    super(`call ${callId} is not finalised yet`);
    this.name = "CallNotFinalizedError";
  }
}

/**
 * The model analysis runs on when the assistant names none: Vapi does not document which model it
 * uses for analysis, so this is Switchboard's choice (listed in the built-in price table).
 */
export const DEFAULT_ANALYSIS_MODEL = "gpt-4o";

export interface AnalysisDeps {
  /** The OpenAI adapter (OPENAI_BASE_URL) the analysis steps run on. */
  llm: LanguageModel;
  /** OPENAI_API_KEY: used when the organisation has no OpenAI credential of its own. */
  platformKey?: string;
  /** Opens the organisation's sealed credential. */
  secrets: SecretBox;
}

export interface CallPostProcessDeps {
  db: Db;
  dispatcher: WebhookDispatcher;
  catalog?: PriceCatalog;
  /** Post-call analysis (`assistant.analysisPlan`); without it `call.analysis` is left as stored. */
  analysis?: AnalysisDeps;
  /** Queues the Stripe report of the analysis line (see `reportAnalysisLine`). */
  queue?: JobQueue;
  /** Signs the presigned recording URLs of the report (PUBLIC_URL, SECRETS_KEY). */
  recordingLinks?: RecordingLinks;
}

/**
 * Runs the assistant's `analysisPlan` on an ended, finalised call whose analysis is not recorded yet
 * and that has at least `minMessagesThreshold` messages (what the caller and the assistant said),
 * and records the result with its tokens (one conditional write: a second run records nothing, and
 * finds the analysis set before asking the LLM anything). The key is the organisation's OpenAI
 * credential (its `credentialIds` first), else the platform's; without either nothing runs.
 * Returns the call as it is afterwards.
 */
async function analyseCall(deps: CallPostProcessDeps, call: CallRow, log: JobLogger): Promise<CallRow> {
  const a = deps.analysis;
  if (!a || call.analysis !== null || !call.finalizedAt) return call;
  const assistant = resolveAssistantDefaults((asJson(call.assistant) ?? {}) as CreateAssistantDTO);
  const plan = assistant.analysisPlan;
  const messages = (Array.isArray(call.messages) ? call.messages : []) as ConversationMessage[];
  if (conversationMessageCount(messages) < plan.minMessagesThreshold) return call;
  if (dueSteps(plan).length === 0) return call;

  let key: { apiKey: string; byo: boolean };
  try {
    const [resolved] = await resolveProviderKeys(
      deps.db,
      a.secrets,
      call.orgId,
      [{ provider: "openai", platformKey: a.platformKey }],
      assistant.credentialIds ?? [],
    );
    if (!resolved) return call;
    key = resolved;
  } catch (err) {
    if (!(err instanceof MissingProviderKeyError)) throw err;
    log.warn({}, "call analysis skipped: no OpenAI credential and no platform key");
    return call;
  }

  const usage = asJson(call.usage);
  const callModel = asJson(usage?.llm)?.model;
  const model =
    assistant.model?.model ??
    (typeof callModel === "string" && callModel ? callModel : DEFAULT_ANALYSIS_MODEL);
  const artifact = asJson(call.artifact);
  const storedSystem = messages.find((m) => m.role === "system")?.message;
  const modelMessages = assistant.model?.messages ?? [];
  const systemPrompt = storedSystem ?? modelMessages.find((m) => m.role === "system")?.content ?? "";
  const transcript =
    call.transcript ??
    (typeof artifact?.transcript === "string" ? artifact.transcript : transcriptText(messages));

  const outcome = await runCallAnalysis(
    { llm: a.llm, apiKey: key.apiKey, model, logger: log },
    {
      plan,
      transcript,
      systemPrompt,
      modelMessages,
      endedReason: call.endedReason ?? "unknown-error",
    },
  );
  const analysisUsage: AnalysisUsage | undefined =
    Object.keys(outcome.usage).length > 0
      ? { provider: "openai", model, byo: key.byo, ...outcome.usage }
      : undefined;
  const result = await recordCallAnalysis(
    deps.db,
    { callId: call.id, analysis: { ...outcome.analysis }, usage: analysisUsage },
    { catalog: deps.catalog, logger: log },
  );
  if (result.recorded) {
    log.info(
      {
        steps: outcome.attempted,
        recorded: Object.keys(outcome.analysis),
        lineMicros: result.line?.amountMicros.toString(),
      },
      "call analysis recorded",
    );
  }
  return result.call;
}

/**
 * The analysis line is written after the media plane queued the call's `billing.report-usage`
 * (`usage.<callId>`), which may already have run and reported the other lines. A platform-billed
 * analysis line not yet reported gets its own report job, `usage-analysis.<callId>` (a deterministic
 * id: however often this runs, one job). Reporting sends only unreported lines, with the line id as
 * Stripe's identifier, so nothing is counted twice. If even this enqueue fails, the daily
 * reconciliation reports every pending line.
 */
async function reportAnalysisLine(deps: CallPostProcessDeps, callId: string, log: JobLogger): Promise<void> {
  if (!deps.queue) return;
  const line = await deps.db.usageLine.findFirst({
    where: { callId, category: "analysis" },
    select: { billedBy: true, reportedAt: true },
  });
  if (line?.billedBy !== "platform" || line.reportedAt) return;
  try {
    await deps.queue.enqueue("billing.report-usage", { callId }, { jobId: `usage-analysis.${callId}` });
  } catch (err) {
    log.warn(
      { err: err instanceof Error ? err.message : String(err) },
      "analysis usage report not queued; the daily reconciliation will report it",
    );
  }
}

/**
 * `call.post-process`: after the media plane finalised a call, run the post-call analysis (see
 * `analyseCall`), then send the `end-of-call-report` built from the stored call to the assistant's
 * server (else the phone number's, else the org's) when the assistant subscribes to it. A call not
 * yet finalised is retried (the job's backoff); on the last attempt an ended call is reported
 * anyway (without analysis). An analysis that cannot be recorded (a database error) fails the
 * attempt so a retry records it, except on the last attempt, where the report goes without it.
 */
export function callPostProcessJob(deps: CallPostProcessDeps): JobHandler<"call.post-process"> {
  return async ({ callId }, ctx) => {
    // A cost the media plane failed to record is recorded here (retried with the job).
    await ensureCallCost(deps.db, callId, deps.catalog);
    let call = await deps.db.call.findUnique({ where: { id: callId } });
    if (!call) {
      ctx.log.warn({}, "post-process: call not found");
      return;
    }
    const lastAttempt = ctx.attempt >= ctx.maxAttempts;
    if (call.status !== "ended" || (!call.finalizedAt && !lastAttempt))
      throw new CallNotFinalizedError(callId);

    try {
      call = await analyseCall(deps, call, ctx.log);
    } catch (err) {
      if (!lastAttempt) throw err;
      ctx.log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "call analysis could not be recorded; sending the report without it",
      );
    }
    if (call.analysis !== null) await reportAnalysisLine(deps, callId, ctx.log);

    const assistant = asJson(call.assistant);
    const serverMessages = Array.isArray(assistant?.serverMessages)
      ? (assistant.serverMessages as unknown[]).filter((m): m is string => typeof m === "string")
      : undefined;
    if (!shouldSend("end-of-call-report", serverMessages)) return;

    const [phoneNumber, org] = await Promise.all([
      call.phoneNumberId ? deps.db.phoneNumber.findUnique({ where: { id: call.phoneNumberId } }) : null,
      deps.db.org.findUnique({ where: { id: call.orgId }, select: { server: true } }),
    ]);
    const phoneConfig = asJson(phoneNumber?.config);
    const server = resolveServer({
      assistant: { server: asServer(assistant?.server) },
      phoneNumber: { server: asServer(phoneConfig?.server) },
      org: { server: asServer(org?.server) },
    });
    if (!server) return;

    const report = endOfCallReportFromCall(call, {
      recordingLinks: deps.recordingLinks,
      phoneNumber: phoneNumber
        ? {
            id: phoneNumber.id,
            orgId: phoneNumber.orgId,
            provider: phoneNumber.provider,
            number: phoneNumber.number,
            ...(phoneNumber.name ? { name: phoneNumber.name } : {}),
            ...(phoneNumber.assistantId ? { assistantId: phoneNumber.assistantId } : {}),
            ...(phoneNumber.squadId ? { squadId: phoneNumber.squadId } : {}),
          }
        : undefined,
    });
    await deps.dispatcher.enqueue(call.orgId, call.id, server, report, { logger: ctx.log });
  };
}
