import { type Static, Type } from "@sinclair/typebox";
import { StringEnum } from "../vapi/common.ts";

// One entry of a call's log (artifactPlan.loggingEnabled). Vapi documents no shape for its call
// logs (`GET /call/:id/call-logs` is a download), so ours is plain: when (wall clock and seconds
// from the call's start, like Vapi's messages), how bad, which part of the call, a constant
// sentence, and the details as fields.

export const CALL_LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type CallLogLevel = (typeof CALL_LOG_LEVELS)[number];

/**
 * Which part of the call an entry is about: the call's lifecycle, the media transport, each
 * provider, the caller's turns, barge-in, tools, server messages, transfers, and the log itself.
 */
export const CALL_LOG_CATEGORIES = [
  "call",
  "transport",
  "transcriber",
  "model",
  "voice",
  "turn",
  "interruption",
  "tool",
  "server-message",
  "transfer",
  "log",
] as const;
export type CallLogCategory = (typeof CALL_LOG_CATEGORIES)[number];

export const CallLogEntry = Type.Object(
  {
    time: Type.String({ format: "date-time", description: "When it happened (ISO 8601, ms)" }),
    secondsFromStart: Type.Number({
      description: "Seconds since the call started (negative: before the stream was claimed)",
    }),
    level: StringEnum(CALL_LOG_LEVELS, {
      description: "warn: handled but unexpected; error: it cost the call something",
    }),
    category: StringEnum(CALL_LOG_CATEGORIES),
    message: Type.String({ description: "What happened, in a constant sentence" }),
    data: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The details (provider, model, durations, codes …); never secrets",
      }),
    ),
  },
  { title: "CallLogEntry" },
);
export type CallLogEntry = Static<typeof CallLogEntry>;

export const CallLogEntries = Type.Array(CallLogEntry, { title: "CallLogEntries" });
