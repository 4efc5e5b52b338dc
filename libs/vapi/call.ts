import { type Static, Type } from "@sinclair/typebox";
import { SAMPLE_RATE_BOUNDS, WEBSOCKET_AUDIO_FORMATS } from "../calls/transport.ts";
import { AssistantOverrides, CreateAssistantDTO } from "./assistant.ts";
import {
  DateTime,
  E164Number,
  FreeformObject,
  listQueryProperties,
  resourceFields,
  SharedRef,
  STRICT,
  StringEnum,
  Uuid,
} from "./common.ts";
import { CreateSquadDTO } from "./squad.ts";

export const CALL_TYPES = ["inboundPhoneCall", "outboundPhoneCall", "webCall", "vapi.websocketCall"] as const;
export type CallType = (typeof CALL_TYPES)[number];

export const CALL_STATUSES = [
  "scheduled",
  "queued",
  "ringing",
  "in-progress",
  "forwarding",
  "ended",
] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

export const CreateCustomerDTO = Type.Object(
  {
    number: Type.Optional(E164Number),
    name: Type.Optional(Type.String({ maxLength: 40 })),
    extension: Type.Optional(Type.String({ maxLength: 10 })),
  },
  { ...STRICT, title: "CreateCustomerDTO" },
);
export type CreateCustomerDTO = Static<typeof CreateCustomerDTO>;

/** Vapi's `AudioFormat` of a `vapi.websocket` call; defaults: pcm_s16le, raw, 16 kHz (8 kHz for mulaw). */
export const AudioFormatDTO = Type.Object(
  {
    format: Type.Optional(StringEnum(WEBSOCKET_AUDIO_FORMATS, { default: "pcm_s16le" })),
    container: Type.Optional(StringEnum(["raw"] as const, { default: "raw" })),
    sampleRate: Type.Optional(
      Type.Integer({
        ...SAMPLE_RATE_BOUNDS,
        description: "Hz; default 16000 for pcm_s16le, 8000 for mulaw. Other rates are converted.",
      }),
    ),
  },
  { ...STRICT, title: "AudioFormat" },
);

/**
 * Vapi's `VapiWebsocketTransport` on `POST /call`: the call's audio goes over a websocket the client
 * opens at the answer's `transport.websocketCallUrl`. The only transport offered (no Daily rooms).
 */
export const CreateCallTransportDTO = Type.Object(
  {
    provider: StringEnum(["vapi.websocket"] as const),
    conversationType: Type.Optional(StringEnum(["voice"] as const)),
    audioFormat: Type.Optional(AudioFormatDTO),
  },
  { ...STRICT, title: "VapiWebsocketTransport" },
);
export type CreateCallTransportDTO = Static<typeof CreateCallTransportDTO>;

/**
 * POST /call (outbound). Exactly one of assistantId | assistant | squadId | squad is expected; that rule
 * is checked by the service so the error can say which fields clash.
 */
export const CreateCallDTO = Type.Object(
  {
    assistantId: Type.Optional(Uuid),
    assistant: Type.Optional(SharedRef(CreateAssistantDTO)),
    assistantOverrides: Type.Optional(SharedRef(AssistantOverrides)),
    squadId: Type.Optional(Uuid),
    squad: Type.Optional(SharedRef(CreateSquadDTO)),
    phoneNumberId: Type.Optional(Uuid),
    customer: Type.Optional(CreateCustomerDTO),
    name: Type.Optional(Type.String({ maxLength: 40 })),
    metadata: Type.Optional(FreeformObject),
    transport: Type.Optional(CreateCallTransportDTO),
  },
  { ...STRICT, title: "CreateCallDTO" },
);
export type CreateCallDTO = Static<typeof CreateCallDTO>;

/** Vapi's `AnalysisCostBreakdown`: cost and tokens of each post-call analysis step. */
export const AnalysisCostBreakdown = Type.Object(
  {
    summary: Type.Optional(Type.Number()),
    summaryPromptTokens: Type.Optional(Type.Number()),
    summaryCompletionTokens: Type.Optional(Type.Number()),
    summaryCachedPromptTokens: Type.Optional(Type.Number()),
    structuredData: Type.Optional(Type.Number()),
    structuredDataPromptTokens: Type.Optional(Type.Number()),
    structuredDataCompletionTokens: Type.Optional(Type.Number()),
    structuredDataCachedPromptTokens: Type.Optional(Type.Number()),
    successEvaluation: Type.Optional(Type.Number()),
    successEvaluationPromptTokens: Type.Optional(Type.Number()),
    successEvaluationCompletionTokens: Type.Optional(Type.Number()),
    successEvaluationCachedPromptTokens: Type.Optional(Type.Number()),
  },
  { title: "AnalysisCostBreakdown" },
);
export type AnalysisCostBreakdown = Static<typeof AnalysisCostBreakdown>;

export const CostBreakdown = Type.Object(
  {
    transport: Type.Optional(Type.Number()),
    stt: Type.Optional(Type.Number()),
    llm: Type.Optional(Type.Number()),
    tts: Type.Optional(Type.Number()),
    vapi: Type.Optional(Type.Number()),
    total: Type.Optional(Type.Number()),
    llmPromptTokens: Type.Optional(Type.Number()),
    llmCompletionTokens: Type.Optional(Type.Number()),
    llmCachedPromptTokens: Type.Optional(Type.Number()),
    ttsCharacters: Type.Optional(Type.Number()),
    analysisCostBreakdown: Type.Optional(AnalysisCostBreakdown),
  },
  { title: "CostBreakdown" },
);
export type CostBreakdown = Static<typeof CostBreakdown>;

export const CallAnalysis = Type.Object(
  {
    summary: Type.Optional(Type.String()),
    structuredData: Type.Optional(FreeformObject),
    successEvaluation: Type.Optional(Type.String()),
  },
  { title: "Analysis" },
);
export type CallAnalysis = Static<typeof CallAnalysis>;

export const CallMonitor = Type.Object(
  {
    listenUrl: Type.Optional(Type.String()),
    controlUrl: Type.Optional(Type.String()),
  },
  { title: "Monitor" },
);
export type CallMonitor = Static<typeof CallMonitor>;

export const CallCustomer = Type.Object(
  {
    number: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
    extension: Type.Optional(Type.String()),
  },
  { title: "Customer" },
);

/**
 * A call's transport: `vapi.websocket` calls only. `websocketCallUrl` (with its single-use token) is
 * in the answer of `POST /call` alone.
 */
export const CallTransport = Type.Object(
  {
    provider: Type.String(),
    conversationType: Type.Optional(Type.String()),
    audioFormat: Type.Optional(
      Type.Object(
        { format: Type.String(), container: Type.String(), sampleRate: Type.Integer() },
        { title: "CallAudioFormat" },
      ),
    ),
    websocketCallUrl: Type.Optional(Type.String()),
  },
  { title: "CallTransport" },
);

/** Response shape of a call. The inline configs it echoes are returned as stored (free-form). */
export const Call = Type.Object(
  {
    ...resourceFields,
    type: Type.Optional(StringEnum(CALL_TYPES)),
    status: Type.Optional(StringEnum(CALL_STATUSES)),
    // Vapi's endedReason is a 627-value enum that grows every release; we publish it as a string.
    endedReason: Type.Optional(Type.String()),
    assistantId: Type.Optional(Uuid),
    assistant: Type.Optional(FreeformObject),
    assistantOverrides: Type.Optional(FreeformObject),
    squadId: Type.Optional(Uuid),
    squad: Type.Optional(FreeformObject),
    phoneNumberId: Type.Optional(Uuid),
    customer: Type.Optional(CallCustomer),
    name: Type.Optional(Type.String()),
    metadata: Type.Optional(FreeformObject),
    startedAt: Type.Optional(DateTime),
    endedAt: Type.Optional(DateTime),
    transcript: Type.Optional(Type.String()),
    messages: Type.Optional(Type.Array(Type.Unknown())),
    artifact: Type.Optional(FreeformObject),
    analysis: Type.Optional(CallAnalysis),
    cost: Type.Optional(Type.Number()),
    costBreakdown: Type.Optional(CostBreakdown),
    costs: Type.Optional(Type.Array(Type.Unknown())),
    phoneCallProvider: Type.Optional(Type.Literal("twilio")),
    phoneCallProviderId: Type.Optional(Type.String()),
    transport: Type.Optional(CallTransport),
    monitor: Type.Optional(CallMonitor),
  },
  { title: "Call" },
);
export type Call = Static<typeof Call>;

export const CallListQuery = Type.Object(
  {
    id: Type.Optional(Uuid),
    assistantId: Type.Optional(Uuid),
    phoneNumberId: Type.Optional(Uuid),
    ...listQueryProperties,
  },
  { ...STRICT, title: "CallListQuery" },
);
export type CallListQuery = Static<typeof CallListQuery>;

/**
 * Vapi's `GET /v2/call` (CallControllerFindAllPaginated): the filters of `GET /call` and Vapi's
 * paginated ones (endedReason, cost range, successEvaluation), paged by number with totals.
 */
export const CallPaginatedQuery = Type.Object(
  {
    id: Type.Optional(Uuid),
    assistantId: Type.Optional(Uuid),
    squadId: Type.Optional(Uuid),
    phoneNumberId: Type.Optional(Uuid),
    endedReason: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, pattern: "^[A-Za-z0-9._-]+$", description: "Exact match" }),
    ),
    successEvaluation: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: "Exact match of analysis.successEvaluation" }),
    ),
    cost: Type.Optional(Type.Number({ minimum: 0, description: "USD, exact" })),
    costGe: Type.Optional(Type.Number({ minimum: 0, description: "USD" })),
    costLe: Type.Optional(Type.Number({ minimum: 0, description: "USD" })),
    page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1 })),
    sortOrder: Type.Optional(
      StringEnum(["ASC", "DESC"] as const, { default: "DESC", description: "By createdAt" }),
    ),
    ...listQueryProperties,
  },
  { ...STRICT, title: "CallPaginatedQuery" },
);
export type CallPaginatedQuery = Static<typeof CallPaginatedQuery>;

export const PaginationMeta = Type.Object(
  {
    itemsPerPage: Type.Integer(),
    totalItems: Type.Integer(),
    currentPage: Type.Integer(),
    totalPages: Type.Integer(),
    hasNextPage: Type.Boolean(),
    sortOrder: StringEnum(["ASC", "DESC"] as const),
  },
  { title: "PaginationMeta" },
);

export const CallPaginatedResponse = Type.Object(
  { results: Type.Array(Call), metadata: PaginationMeta },
  { title: "CallPaginatedResponse" },
);
export type CallPaginatedResponse = Static<typeof CallPaginatedResponse>;
