import { type Static, Type } from "@sinclair/typebox";

// The raw usage quantities the media plane records on Call.usage when a call ends; billing prices
// them into UsageLines. `byo` is true when the organisation's own credential paid that provider
// (its line is then `passthrough`: shown at cost, not charged by the platform).
// `analysis` is added later by the post-call analysis (worker job `call.post-process`): the tokens
// of each analysis step that answered, priced into the analysis line (category "analysis").

export const ANALYSIS_STEPS = ["summary", "structuredData", "successEvaluation"] as const;
export type AnalysisStep = (typeof ANALYSIS_STEPS)[number];

export const AnalysisStepUsage = Type.Object({
  /** Includes `cachedPromptTokens` (OpenAI's usage semantics). */
  promptTokens: Type.Integer({ minimum: 0 }),
  cachedPromptTokens: Type.Integer({ minimum: 0 }),
  completionTokens: Type.Integer({ minimum: 0 }),
});
export type AnalysisStepUsage = Static<typeof AnalysisStepUsage>;

export const AnalysisUsage = Type.Object({
  provider: Type.String(),
  model: Type.String(),
  byo: Type.Boolean(),
  summary: Type.Optional(AnalysisStepUsage),
  structuredData: Type.Optional(AnalysisStepUsage),
  successEvaluation: Type.Optional(AnalysisStepUsage),
});
export type AnalysisUsage = Static<typeof AnalysisUsage>;

export const SttUsage = Type.Object({
  provider: Type.String(),
  model: Type.String(),
  audioSeconds: Type.Number({ minimum: 0 }),
  byo: Type.Boolean(),
});
export const LlmUsage = Type.Object({
  provider: Type.String(),
  model: Type.String(),
  promptTokens: Type.Integer({ minimum: 0 }),
  cachedPromptTokens: Type.Integer({ minimum: 0 }),
  completionTokens: Type.Integer({ minimum: 0 }),
  byo: Type.Boolean(),
});
export const TtsUsage = Type.Object({
  provider: Type.String(),
  model: Type.String(),
  characters: Type.Integer({ minimum: 0 }),
  byo: Type.Boolean(),
});

export const CallUsage = Type.Object({
  /** Billable call duration (startedAt → endedAt), seconds with millisecond precision. */
  durationSeconds: Type.Number({ minimum: 0 }),
  transport: Type.Object({
    provider: Type.String(),
    direction: Type.Union([Type.Literal("inbound"), Type.Literal("outbound")]),
    seconds: Type.Number({ minimum: 0 }),
    byo: Type.Boolean(),
  }),
  /** The transcriber, model and voice the call ended with (since their last switch). */
  stt: SttUsage,
  llm: LlmUsage,
  tts: TtsUsage,
  /**
   * What the call used before a fallback plan or a squad hand-off switched it to the ones above,
   * oldest first. Each provider, model and key ownership used is its own priced line (and item of
   * `costs[]`); uses of the same one are added together.
   */
  earlier: Type.Optional(
    Type.Object({
      stt: Type.Optional(Type.Array(SttUsage)),
      llm: Type.Optional(Type.Array(LlmUsage)),
      tts: Type.Optional(Type.Array(TtsUsage)),
    }),
  ),
  analysis: Type.Optional(AnalysisUsage),
});
export type CallUsage = Static<typeof CallUsage>;

/**
 * The transport a call's usage is recorded under. A phone call's is the customer's own Twilio
 * account (`byo`); a websocket call's (`vapi.websocket`) is the platform's, priced from the table.
 */
export function callTransportUsage(callType: string): Omit<CallUsage["transport"], "seconds"> {
  if (callType === "vapi.websocketCall")
    return { provider: "vapi.websocket", direction: "inbound", byo: false };
  return {
    provider: "twilio",
    direction: callType === "outboundPhoneCall" ? "outbound" : "inbound",
    byo: true,
  };
}

/** The usage of a call of this type that ended without being connected: nothing was used. */
export function zeroUsageOf(callType: string): CallUsage {
  const transport = callTransportUsage(callType);
  return { ...zeroCallUsage(transport.direction), transport: { ...transport, seconds: 0 } };
}

/**
 * The usage of a call that ended without a media session (busy, no answer, failed, refused at
 * admission): nothing was used. Transport is the customer's own Twilio account (`byo`), as on
 * calls the media plane records, so a zero-usage call prices to five zero lines.
 */
export function zeroCallUsage(direction: "inbound" | "outbound"): CallUsage {
  return {
    durationSeconds: 0,
    transport: { provider: "twilio", direction, seconds: 0, byo: true },
    stt: { provider: "deepgram", model: "", audioSeconds: 0, byo: false },
    llm: {
      provider: "openai",
      model: "",
      promptTokens: 0,
      cachedPromptTokens: 0,
      completionTokens: 0,
      byo: false,
    },
    tts: { provider: "11labs", model: "", characters: 0, byo: false },
  };
}
