import { ProviderError } from "../providers/types.ts";

// Vapi's endedReason strings for the ways the media plane ends a call.

export const ENDED = {
  customerEnded: "customer-ended-call",
  assistantEnded: "assistant-ended-call",
  assistantEndedAfterMessage: "assistant-ended-call-after-message-spoken",
  endCallPhrase: "assistant-said-end-call-phrase",
  forwarded: "assistant-forwarded-call",
  silence: "silence-timed-out",
  maxDuration: "exceeded-max-duration",
  manuallyCanceled: "manually-canceled",
  socketClosed: "phone-call-provider-closed-websocket",
  workerShutdown: "worker-shutdown",
  workerDied: "call.in-progress.error-vapifault-worker-died",
  transferFailed: "call.in-progress.error-transfer-failed",
  spendLimit: "call.in-progress.error-spend-limit-reached",
  noLlmModel: "call.in-progress.error-pipeline-no-available-llm-model",
  noCustomerAudio: "call.in-progress.error-assistant-did-not-receive-customer-audio",
} as const;

/** Vapi spells ElevenLabs "eleven-labs" in endedReasons. */
function reasonProvider(provider: string): string {
  return provider === "11labs" ? "eleven-labs" : provider;
}

const LLM_STATUS: Record<number, string> = {
  400: "400-bad-request-validation-failed",
  401: "401-unauthorized",
  403: "403-model-access-denied",
  429: "429-exceeded-quota",
  500: "500-server-error",
  503: "503-server-overloaded-error",
};

/** Transcribers whose refused key has its own endedReason in Vapi's list. */
const TRANSCRIBER_401 = new Set(["deepgram", "assembly-ai"]);

/** The specific endedReason for a provider failure mid-call. */
export function providerFailureReason(
  err: unknown,
  fallback: { provider: string; kind: ProviderError["kind"] },
): string {
  const e = err instanceof ProviderError ? err : undefined;
  const provider = reasonProvider(e?.provider ?? fallback.provider);
  const kind = e?.kind ?? fallback.kind;
  if (kind === "llm") {
    const status = e?.status !== undefined ? LLM_STATUS[e.status] : undefined;
    return status ? `pipeline-error-${provider}-${status}` : `pipeline-error-${provider}-llm-failed`;
  }
  if (kind === "transcriber") {
    // Vapi's names: a refused key where Vapi has one for the provider, else the provider's failure.
    if (e?.status === 401 && TRANSCRIBER_401.has(provider)) {
      return `pipeline-error-${provider}-returning-401-invalid-credentials`;
    }
    return `pipeline-error-${provider}-transcriber-failed`;
  }
  return `pipeline-error-${provider}-voice-failed`;
}
