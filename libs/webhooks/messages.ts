import { callView } from "../calls/view.ts";
import type { Call as CallRow } from "../db/index.ts";
import { presignedRecordingFields, type RecordingLinks } from "../recordings/index.ts";
import { DEFAULT_SERVER_MESSAGES } from "../vapi/server-message.ts";

// Builders for Vapi's server message payloads, field names as in @vapi-ai/server-sdk
// (ServerMessageStatusUpdate, ServerMessageTranscript, … ServerMessageEndOfCallReport). Every body
// is `{ message: { type, timestamp, call, assistant?, customer?, phoneNumber?, artifact?, … } }`.

type Json = Record<string, unknown>;

/** The per-call part every message carries. `call` is the Call as the API returns it (`callPayload`). */
export interface MessageContext {
  call: Json;
  assistant?: Json;
  customer?: Json;
  phoneNumber?: Json;
  /** The live `call.artifact` so far (messages, transcript…). */
  artifact?: Json;
  /** Unix ms; defaults to now. */
  timestamp?: number;
}

export interface ServerMessageBody<M extends { type: string }> {
  message: M & { timestamp: number; call: Json };
}

/** One entry of a call's `messages` (Vapi's UserMessage / BotMessage / SystemMessage / ToolCall… shapes). */
export interface ConversationMessage {
  role: "user" | "bot" | "assistant" | "system" | "tool_calls" | "tool_call_result" | string;
  message?: string;
  /** Unix ms the message started. */
  time?: number;
  endTime?: number;
  secondsFromStart?: number;
  duration?: number;
  toolCalls?: { id: string; type?: string; function: { name: string; arguments: string } }[];
  toolCallId?: string;
  name?: string;
  result?: string;
  [key: string]: unknown;
}

export interface OpenAIFormattedMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string | null;
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: Json | string };
}

function envelope<M extends { type: string }>(ctx: MessageContext, fields: M): ServerMessageBody<M> {
  const message = {
    ...fields,
    timestamp: ctx.timestamp ?? Date.now(),
    call: ctx.call,
    ...(ctx.assistant ? { assistant: ctx.assistant } : {}),
    ...(ctx.customer ? { customer: ctx.customer } : {}),
    ...(ctx.phoneNumber ? { phoneNumber: ctx.phoneNumber } : {}),
    ...(ctx.artifact ? { artifact: ctx.artifact } : {}),
  };
  return { message };
}

function defined<T extends Json>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function iso(d: Date | null): string | undefined {
  return d ? d.toISOString() : undefined;
}

/** The Call object as the API serves it (GET /call/:id), for `message.call`. */
export function callPayload(row: CallRow): Json {
  // The conversation, the resolved assistant and the cost lines travel in their own message fields.
  const {
    assistant: _assistant,
    transcript: _transcript,
    messages: _messages,
    artifact: _artifact,
    analysis: _analysis,
    costs: _costs,
    ...call
  } = callView(row);
  return defined(call as Json);
}

/** Vapi's `messagesOpenAIFormatted`: the conversation as OpenAI chat messages. */
export function toOpenAIFormatted(messages: readonly ConversationMessage[]): OpenAIFormattedMessage[] {
  const out: OpenAIFormattedMessage[] = [];
  for (const m of messages) {
    switch (m.role) {
      case "system":
        out.push({ role: "system", content: m.message ?? "" });
        break;
      case "user":
        out.push({ role: "user", content: m.message ?? "" });
        break;
      case "bot":
      case "assistant":
        out.push({ role: "assistant", content: m.message ?? "" });
        break;
      case "tool_calls":
        out.push({
          role: "assistant",
          content: null,
          tool_calls: (m.toolCalls ?? []).map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.function.name, arguments: c.function.arguments },
          })),
        });
        break;
      case "tool_call_result":
        out.push({ role: "tool", content: m.result ?? m.message ?? "", tool_call_id: m.toolCallId ?? "" });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Vapi's plain-text transcript: `AI: …\nUser: …` (artifactPlan.transcriptPlan names). */
export function transcriptText(
  messages: readonly ConversationMessage[],
  names: { assistantName?: string; userName?: string } = {},
): string {
  return messages
    .filter((m) => (m.role === "user" || m.role === "bot" || m.role === "assistant") && m.message)
    .map(
      (m) =>
        `${m.role === "user" ? (names.userName ?? "User") : (names.assistantName ?? "AI")}: ${m.message}`,
    )
    .join("\n");
}

// ---------- fire-and-forget ----------

export function statusUpdateMessage(
  ctx: MessageContext,
  fields: { status: string; endedReason?: string; destination?: Json; transcript?: string; summary?: string },
) {
  return envelope(ctx, defined({ type: "status-update" as const, ...fields }));
}

export function transcriptMessage(
  ctx: MessageContext,
  fields: { role: "user" | "assistant"; transcriptType: "partial" | "final"; transcript: string },
) {
  return envelope(ctx, { type: "transcript" as const, ...fields });
}

export function conversationUpdateMessage(
  ctx: MessageContext,
  fields: { messages: ConversationMessage[]; messagesOpenAIFormatted?: OpenAIFormattedMessage[] },
) {
  return envelope(ctx, {
    type: "conversation-update" as const,
    messages: fields.messages,
    messagesOpenAIFormatted: fields.messagesOpenAIFormatted ?? toOpenAIFormatted(fields.messages),
  });
}

export function speechUpdateMessage(
  ctx: MessageContext,
  fields: { status: "started" | "stopped"; role: "assistant" | "user"; turn?: number },
) {
  return envelope(ctx, defined({ type: "speech-update" as const, ...fields }));
}

export function userInterruptedMessage(ctx: MessageContext, fields: { turnId?: string } = {}) {
  return envelope(ctx, defined({ type: "user-interrupted" as const, ...fields }));
}

/** Model output as it streams: a token of text (or a tool call), for clients (`clientMessages`). */
export function modelOutputMessage(ctx: MessageContext, fields: { output: unknown; turnId?: string }) {
  return envelope(ctx, defined({ type: "model-output" as const, ...fields }));
}

/** The assistant is stuck (slow model, voice or tool). */
export function hangMessage(ctx: MessageContext) {
  return envelope(ctx, { type: "hang" as const });
}

export interface EndOfCallReportFields {
  endedReason: string;
  artifact: Json;
  analysis: Json;
  cost?: number;
  costs?: unknown[];
  costBreakdown?: Json;
  startedAt?: string;
  endedAt?: string;
  destination?: Json;
}

export function endOfCallReportMessage(ctx: MessageContext, fields: EndOfCallReportFields) {
  const startedMs = fields.startedAt ? Date.parse(fields.startedAt) : undefined;
  const endedMs = fields.endedAt ? Date.parse(fields.endedAt) : undefined;
  const durationMs =
    startedMs !== undefined && endedMs !== undefined ? Math.max(0, endedMs - startedMs) : undefined;
  const analysis = fields.analysis;
  return envelope(
    { ...ctx, artifact: undefined },
    defined({
      type: "end-of-call-report" as const,
      endedReason: fields.endedReason,
      artifact: fields.artifact,
      analysis,
      cost: fields.cost,
      costs: fields.costs,
      costBreakdown: fields.costBreakdown,
      startedAt: fields.startedAt,
      endedAt: fields.endedAt,
      destination: fields.destination,
      durationMs,
      durationSeconds: durationMs === undefined ? undefined : durationMs / 1000,
      durationMinutes: durationMs === undefined ? undefined : durationMs / 60_000,
      // Top-level copies Vapi still sends for older integrations.
      transcript: fields.artifact.transcript,
      messages: fields.artifact.messages,
      recordingUrl: fields.artifact.recordingUrl,
      stereoRecordingUrl: fields.artifact.stereoRecordingUrl,
      summary: analysis.summary,
    }),
  );
}

function asJson(v: unknown): Json | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

/**
 * The end-of-call report for a finalised call row. With `recordingLinks`, a recorded call's artifact
 * carries Vapi's presigned URLs (valid an hour from now), as in API answers; where the recording is
 * stored is never sent.
 */
export function endOfCallReportFromCall(
  row: CallRow,
  extra: { phoneNumber?: Json; analysis?: Json; timestamp?: number; recordingLinks?: RecordingLinks } = {},
) {
  const { recordingStorage, ...stored } = asJson(row.artifact) ?? {};
  const presigned =
    recordingStorage !== undefined && extra.recordingLinks
      ? presignedRecordingFields(extra.recordingLinks, row.id, Date.now())
      : {};
  const messages = Array.isArray(row.messages)
    ? (row.messages as ConversationMessage[])
    : Array.isArray(stored.messages)
      ? (stored.messages as ConversationMessage[])
      : [];
  const artifact: Json = defined({
    ...stored,
    messages,
    messagesOpenAIFormatted: stored.messagesOpenAIFormatted ?? toOpenAIFormatted(messages),
    transcript: row.transcript ?? stored.transcript ?? transcriptText(messages),
    ...presigned,
  });
  return endOfCallReportMessage(
    {
      call: callPayload(row),
      assistant: asJson(row.assistant),
      customer: asJson(row.customer),
      phoneNumber: extra.phoneNumber,
      timestamp: extra.timestamp,
    },
    {
      endedReason: row.endedReason ?? "unknown-error",
      artifact,
      analysis: extra.analysis ?? asJson(row.analysis) ?? {},
      cost: row.cost === null ? undefined : Number(row.cost.toString()),
      costs: Array.isArray(row.costs) ? row.costs : undefined,
      costBreakdown: asJson(row.costBreakdown),
      startedAt: iso(row.startedAt),
      endedAt: iso(row.endedAt),
    },
  );
}

// ---------- messages that need an answer (sent directly with sendServerMessage) ----------

/** A tool call as Vapi sends it; `arguments` is parsed into an object when it is JSON (as Vapi does). */
export function toolCall(id: string, name: string, args: string): ToolCall {
  let parsed: Json | string = args;
  try {
    const v: unknown = JSON.parse(args || "{}");
    if (asJson(v)) parsed = v as Json;
  } catch {
    // keep the raw string
  }
  return { id, type: "function", function: { name, arguments: parsed } };
}

/** `toolWithToolCallList` entry: the tool definition with its call (`toolCall.function.parameters`). */
export function toolWithToolCall(tool: Json, call: ToolCall): Json {
  return {
    ...tool,
    type: typeof tool.type === "string" ? tool.type : "function",
    toolCall: {
      id: call.id,
      type: "function",
      function: { name: call.function.name, parameters: call.function.arguments },
    },
  };
}

export function toolCallsMessage(
  ctx: MessageContext,
  fields: { toolCallList: ToolCall[]; toolWithToolCallList: Json[] },
) {
  return envelope(ctx, { type: "tool-calls" as const, ...fields });
}

export function assistantRequestMessage(ctx: MessageContext) {
  return envelope(ctx, { type: "assistant-request" as const });
}

export function transferDestinationRequestMessage(ctx: MessageContext) {
  return envelope(ctx, { type: "transfer-destination-request" as const });
}

// ---------- filtering ----------

/**
 * Whether `assistant.serverMessages` (default list when unset) subscribes to this message.
 * `transcript[transcriptType="final"]` subscribes to final transcripts only.
 */
export function shouldSend(
  message: string | { type: string; transcriptType?: string },
  serverMessages: readonly string[] | null | undefined,
): boolean {
  const list: readonly string[] = serverMessages ?? DEFAULT_SERVER_MESSAGES;
  const type = typeof message === "string" ? message : message.type;
  if (list.includes(type)) return true;
  if (type === "transcript") {
    const transcriptType = typeof message === "string" ? undefined : message.transcriptType;
    return transcriptType === "final" && list.includes('transcript[transcriptType="final"]');
  }
  return false;
}
