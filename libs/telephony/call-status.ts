// How Twilio's CallStatus values move a Call, and Vapi's endedReason for each way a phone call ends
// before the media plane has it.

export type TwilioCallStatus =
  | "queued"
  | "initiated"
  | "ringing"
  | "in-progress"
  | "completed"
  | "busy"
  | "failed"
  | "no-answer"
  | "canceled";

const RANK: Record<string, number> = {
  scheduled: 0,
  queued: 1,
  ringing: 2,
  "in-progress": 3,
  forwarding: 4,
  ended: 5,
};

/** Statuses a call may move to from `current` (never backwards; `ended` is final). */
export function statusesBefore(target: string): string[] {
  const r = RANK[target] ?? 0;
  return Object.keys(RANK).filter((s) => (RANK[s] ?? 0) < r);
}

export type StatusTransition =
  | { kind: "progress"; status: "queued" | "ringing" | "in-progress" }
  | { kind: "end"; endedReason: string }
  | { kind: "ignore" };

/**
 * What a status callback means for the call. `completed` only ends the call here when the media stream
 * never connected (otherwise the media session owns the ending).
 */
export function transitionFor(callStatus: string): StatusTransition {
  switch (callStatus) {
    case "queued":
    case "initiated":
      return { kind: "progress", status: "queued" };
    case "ringing":
      return { kind: "progress", status: "ringing" };
    case "in-progress":
    case "answered":
      return { kind: "progress", status: "in-progress" };
    case "busy":
      return { kind: "end", endedReason: "customer-busy" };
    case "no-answer":
      return { kind: "end", endedReason: "customer-did-not-answer" };
    case "failed":
      return { kind: "end", endedReason: "twilio-failed-to-connect-call" };
    case "canceled":
      return { kind: "end", endedReason: "manually-canceled" };
    case "completed":
      return { kind: "end", endedReason: "customer-ended-call" };
    default:
      return { kind: "ignore" };
  }
}

/**
 * Twilio's report of when a call ended and how long it lasted: a terminal status callback's
 * `CallDuration` (whole seconds) and `Timestamp` (RFC 2822; the receipt time when absent, unreadable,
 * or implausibly far from it). Undefined without a usable `CallDuration`.
 */
export function reportedEnd(
  params: Record<string, string | undefined>,
  now: number = Date.now(),
): { endedAt: Date; durationSeconds: number } | undefined {
  const raw = params.CallDuration;
  if (raw === undefined || !/^\d{1,7}$/.test(raw)) return undefined;
  const stamped = params.Timestamp ? Date.parse(params.Timestamp) : Number.NaN;
  const plausible = Number.isFinite(stamped) && Math.abs(stamped - now) < 24 * 3600_000;
  return { endedAt: new Date(plausible ? stamped : now), durationSeconds: Number(raw) };
}

/** Vapi endedReasons the telephony layer sets. */
export const ENDED_REASONS = {
  neitherAssistantNorServer: "call-start-error-neither-assistant-nor-server-set",
  assistantRequestFailed: "assistant-request-failed",
  assistantRequestReturnedError: "assistant-request-returned-error",
  assistantRequestReturnedUnspeakableError: "assistant-request-returned-unspeakable-error",
  assistantRequestReturnedInvalidAssistant: "assistant-request-returned-invalid-assistant",
  assistantRequestReturnedNoAssistant: "assistant-request-returned-no-assistant",
  assistantRequestReturnedForwarding: "assistant-request-returned-forwarding-phone-number",
  assistantNotFound: "assistant-not-found",
  twilioFailedToConnect: "twilio-failed-to-connect-call",
  callDeleted: "call-deleted",
} as const;
