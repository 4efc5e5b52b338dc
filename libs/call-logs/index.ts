// A call's log (artifactPlan.loggingEnabled): what happened inside the call, as timestamped
// entries without secrets, bounded per call, stored with the call and served through a signed URL.

export {
  CallLog,
  type CallLogChunk,
  type CallLogLimits,
  type CallLogOptions,
  DEFAULT_CALL_LOG_LIMITS,
} from "./call-log.ts";
export {
  type DeliveryLogOutcome,
  type DeliveryLogTarget,
  deliveryFailure,
  recordDelivery,
} from "./deliveries.ts";
export {
  CALL_LOG_CATEGORIES,
  CALL_LOG_LEVELS,
  type CallLogCategory,
  CallLogEntries,
  CallLogEntry,
  type CallLogLevel,
} from "./entry.ts";
export {
  type CallLogLinks,
  callLogRouteUrl,
  checkSignedCallLog,
  LOG_REDIRECT_TTL_MS,
  LOG_URL_TTL_MS,
  type SignedLogCheck,
  signedCallLogUrl,
  withSignedLogUrl,
} from "./links.ts";
export { isSecretKey, REDACTED, Redactor } from "./redact.ts";
export { appendCallLogChunk, hasCallLog, readCallLog } from "./store.ts";

/** artifactPlan.loggingEnabled of a stored assistant (Vapi's default: true). */
export function loggingEnabledOf(assistant: unknown): boolean {
  if (!assistant || typeof assistant !== "object") return true;
  const plan = (assistant as { artifactPlan?: unknown }).artifactPlan;
  if (!plan || typeof plan !== "object") return true;
  return (plan as { loggingEnabled?: unknown }).loggingEnabled !== false;
}

/** The `logUrl` a stored artifact names, if any (kept when a call is ended by someone else). */
export function storedLogUrl(artifact: unknown): { logUrl?: string } {
  if (!artifact || typeof artifact !== "object") return {};
  const url = (artifact as { logUrl?: unknown }).logUrl;
  return typeof url === "string" ? { logUrl: url } : {};
}
