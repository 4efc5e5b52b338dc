// Vapi's `endedReason` strings in plain English: what happened, and what to do about it. Exact
// reasons first; the families Vapi spells per provider or stage (`pipeline-error-<provider>-…`,
// `call.in-progress.error-…`) are explained from their parts. A plain ES module, no build step.

/** tone: "good" (the call ended as calls do), "warn" (worth a look), "bad" (something failed). */
const EXACT = {
  "customer-ended-call": {
    tone: "good",
    title: "The caller hung up",
    detail: "The caller ended the call.",
  },
  "assistant-ended-call": {
    tone: "good",
    title: "The assistant ended the call",
    detail: "The assistant used its endCall tool to hang up.",
  },
  "assistant-ended-call-after-message-spoken": {
    tone: "good",
    title: "The assistant ended the call after its last message",
    detail: "The assistant spoke its end-call message and then hung up.",
  },
  "assistant-ended-call-with-hangup-task": {
    tone: "good",
    title: "The assistant ended the call",
    detail: "A hang-up task of the assistant ended the call.",
  },
  "assistant-said-end-call-phrase": {
    tone: "good",
    title: "The assistant said an end-call phrase",
    detail: "The assistant said one of its endCallPhrases, so the call was ended.",
    next: "If calls end too early, check the assistant's endCallPhrases.",
  },
  "assistant-forwarded-call": {
    tone: "good",
    title: "The call was transferred",
    detail: "The assistant transferred the caller to another number or assistant.",
  },
  "customer-busy": {
    tone: "warn",
    title: "The line was busy",
    detail: "The number called was busy.",
    next: "Try the call again later.",
  },
  "customer-did-not-answer": {
    tone: "warn",
    title: "Nobody answered",
    detail: "The number called rang out without an answer.",
    next: "Try the call again later, or at another time of day.",
  },
  "customer-did-not-give-microphone-permission": {
    tone: "warn",
    title: "No microphone",
    detail: "The caller's browser did not allow the microphone, so nothing could be heard.",
    next: "Ask the caller to allow the microphone for the page and call again.",
  },
  "customer-ended-call-during-transfer": {
    tone: "warn",
    title: "The caller hung up during a transfer",
    detail: "The caller hung up while the call was being transferred.",
  },
  voicemail: {
    tone: "warn",
    title: "Voicemail",
    detail: "The call reached a voicemail box.",
  },
  "silence-timed-out": {
    tone: "warn",
    title: "Nobody spoke for too long",
    detail: "The call ended after the silence timeout passed with nobody speaking.",
    next: "If callers need more time, raise the assistant's silenceTimeoutSeconds.",
  },
  "exceeded-max-duration": {
    tone: "warn",
    title: "The call reached its time limit",
    detail: "The call lasted as long as the assistant's maxDurationSeconds allows, and was ended.",
    next: "Raise maxDurationSeconds if calls need longer.",
  },
  "manually-canceled": {
    tone: "warn",
    title: "Ended through the API",
    detail:
      "The call was ended by a request (a control message or a call deletion), not by the caller or the assistant.",
  },
  "call-deleted": {
    tone: "warn",
    title: "The call was deleted",
    detail: "The call was deleted before it ended.",
  },
  "phone-call-provider-closed-websocket": {
    tone: "warn",
    title: "The call's audio connection closed",
    detail: "The phone provider (or the web client) closed the call's audio stream without hanging up first.",
    next: "If it happens often, check the caller's network or the web client.",
  },
  "twilio-failed-to-connect-call": {
    tone: "bad",
    title: "Twilio could not connect the call",
    detail: "Twilio failed to place or connect the call.",
    next: "Check the number, your Twilio account's balance and geographic permissions.",
  },
  "twilio-reported-customer-misdialed": {
    tone: "bad",
    title: "The number was misdialled",
    detail: "Twilio reported that the number dialled is not valid.",
    next: "Check the customer's number (E.164, with the country code).",
  },
  "worker-shutdown": {
    tone: "bad",
    title: "The call was cut by a restart",
    detail: "The media process serving the call shut down while the call was live.",
    next: "Deploys drain calls for MEDIA_DRAIN_MS; raise it if calls are cut during deploys.",
  },
  "assistant-not-found": {
    tone: "bad",
    title: "No assistant",
    detail: "The assistant the call asked for does not exist (it may have been deleted).",
    next: "Point the phone number or the request at an existing assistant.",
  },
  "assistant-not-valid": {
    tone: "bad",
    title: "The assistant is not valid",
    detail: "The assistant's configuration could not be used for a call.",
    next: "Open the assistant and save it again: the API says what is wrong.",
  },
  "assistant-request-failed": {
    tone: "bad",
    title: "Your server did not answer with an assistant",
    detail: "The assistant-request to your server failed (no answer, a timeout or an error status).",
    next: "Check that your server URL answers assistant-request messages quickly with a 2xx.",
  },
  "assistant-request-returned-error": {
    tone: "bad",
    title: "Your server refused the call",
    detail: "Your server answered the assistant-request with an error.",
  },
  "assistant-request-returned-unspeakable-error": {
    tone: "bad",
    title: "Your server refused the call",
    detail: "Your server answered the assistant-request with an error that is not to be spoken.",
  },
  "assistant-request-returned-invalid-assistant": {
    tone: "bad",
    title: "Your server sent an invalid assistant",
    detail: "The assistant your server answered with is not valid.",
    next: "Validate the assistant your server returns against POST /assistant.",
  },
  "assistant-request-returned-no-assistant": {
    tone: "bad",
    title: "Your server sent no assistant",
    detail: "Your server answered the assistant-request without an assistant, assistantId or squad.",
  },
  "assistant-request-returned-forwarding-phone-number": {
    tone: "good",
    title: "Your server forwarded the call",
    detail: "Your server answered the assistant-request with a number to forward the call to.",
  },
  "call-start-error-neither-assistant-nor-server-set": {
    tone: "bad",
    title: "Nothing to answer the call",
    detail: "The phone number has no assistant, squad or server URL, so nobody could take the call.",
    next: "Give the phone number an assistant (PATCH /phone-number/:id).",
  },
  "call.in-progress.error-vapifault-worker-died": {
    tone: "bad",
    title: "The platform lost the call",
    detail:
      "The media process serving the call stopped unexpectedly; the call was ended when that was noticed.",
    next: "Check the media processes' logs around the call's end.",
  },
  "call.in-progress.error-transfer-failed": {
    tone: "bad",
    title: "The transfer failed",
    detail: "The assistant tried to transfer the call, and the transfer could not be made.",
    next: "Check the transfer destination's number and the call log.",
  },
  "call.in-progress.error-spend-limit-reached": {
    tone: "bad",
    title: "The spend limit was reached",
    detail: "Your organisation's monthly spend limit was reached during the call, so it was ended.",
    next: "Raise the limit on the billing page (PATCH /billing/settings).",
  },
  "call.in-progress.error-pipeline-no-available-llm-model": {
    tone: "bad",
    title: "No language model was available",
    detail: "The call could not reach a working language model (none configured, or every attempt failed).",
    next: "Check the assistant's model, its fallbacks and your provider keys.",
  },
  "call.in-progress.error-assistant-did-not-receive-customer-audio": {
    tone: "bad",
    title: "No audio from the caller",
    detail: "No audio arrived from the caller, so the call was ended.",
    next: "For web calls, check the microphone and that the client sends audio in the declared format.",
  },
  "call.in-progress.error-providerfault-transport-never-connected": {
    tone: "bad",
    title: "The web call never connected",
    detail: "The client never opened the call's websocket before its link expired.",
    next: "Open transport.websocketCallUrl within 60 seconds of creating the call.",
  },
};

const PROVIDER_NAMES = {
  openai: "OpenAI",
  anthropic: "Anthropic",
  "custom-llm": "your custom LLM",
  deepgram: "Deepgram",
  "assembly-ai": "AssemblyAI",
  "eleven-labs": "ElevenLabs",
  "11labs": "ElevenLabs",
  cartesia: "Cartesia",
  azure: "Azure",
  google: "Google",
  groq: "Groq",
  vapi: "the platform",
};

const LLM_FAILURES = {
  "400-bad-request-validation-failed": "refused the request as invalid (400)",
  "401-unauthorized": "refused the API key (401)",
  "401-incorrect-api-key": "refused the API key (401)",
  "403-model-access-denied": "denied access to the model (403)",
  "429-exceeded-quota": "refused for rate limits or quota (429)",
  "429-rate-limit-reached": "refused for rate limits (429)",
  "500-server-error": "failed with a server error (500)",
  "503-server-overloaded-error": "was overloaded (503)",
  "llm-failed": "failed",
};

function providerName(id) {
  return PROVIDER_NAMES[id] ?? id;
}

/** `pipeline-error-<provider>-<what>`: a provider failed during the call. */
function pipelineError(rest) {
  const stage = /-(transcriber-failed|voice-failed|returning-401-invalid-credentials)$/.exec(rest);
  if (stage) {
    const provider = providerName(rest.slice(0, stage.index));
    if (stage[1] === "returning-401-invalid-credentials") {
      return {
        tone: "bad",
        title: `${provider} refused the API key`,
        detail: `${provider} answered 401 to the transcriber's key, so the call could not hear the caller.`,
        next: `Check the ${provider} credential (POST /credential) or the platform key.`,
      };
    }
    const what = stage[1] === "voice-failed" ? "voice (text-to-speech)" : "transcriber (speech-to-text)";
    return {
      tone: "bad",
      title: `The ${what} failed`,
      detail: `${provider}, the call's ${what}, failed and the call could not go on.`,
      next: `Check ${provider}'s status and your key; a fallback provider keeps calls going.`,
    };
  }
  for (const [suffix, words] of Object.entries(LLM_FAILURES)) {
    if (rest.endsWith(`-${suffix}`)) {
      const provider = providerName(rest.slice(0, -suffix.length - 1));
      return {
        tone: "bad",
        title: `The language model ${words.replace(/ \(\d+\)$/, "")}`,
        detail: `${provider}, the call's language model, ${words}.`,
        next: suffix.startsWith("401")
          ? `Check the ${provider} credential (POST /credential) or the platform key.`
          : suffix.startsWith("429")
            ? `Raise ${provider}'s rate limits or quota, or add a fallback model.`
            : "Check the assistant's model settings and the provider's status; fallback models keep calls going.",
      };
    }
  }
  return null;
}

/**
 * { tone, title, detail, next? } for an endedReason; a reason this table does not know is shown as
 * it is, never hidden.
 */
export function explainEndedReason(reason) {
  if (!reason) {
    return { tone: "neutral", title: "Not ended yet", detail: "The call has not ended." };
  }
  const exact = EXACT[reason];
  if (exact) return exact;
  if (reason.startsWith("pipeline-error-")) {
    const e = pipelineError(reason.slice("pipeline-error-".length));
    if (e) return e;
  }
  const fault = /^call\.([a-z-]+)\.error-(vapifault|providerfault)-(.+)$/.exec(reason);
  if (fault) {
    const ours = fault[2] === "vapifault";
    return {
      tone: "bad",
      title: ours ? "The platform failed" : "A provider failed",
      detail: `${ours ? "Switchboard" : "A provider"} failed while the call was ${fault[1].replace(/-/g, " ")}: ${fault[3].replace(/-/g, " ")}.`,
      next: "The call log shows what happened just before.",
    };
  }
  if (reason.startsWith("call.start.error") || reason.startsWith("call.start.")) {
    return {
      tone: "bad",
      title: "The call could not start",
      detail: `The call failed while starting (${reason}).`,
      next: "Check the assistant's configuration and provider keys.",
    };
  }
  return {
    tone: "neutral",
    title: reason,
    detail: "The call ended with this reason.",
  };
}

/** A short label for lists and charts: the title of the explanation. */
export function endedReasonLabel(reason) {
  return explainEndedReason(reason).title;
}

/** The endedReasons a call list can be filtered by: the known ones, most common first. */
export const COMMON_ENDED_REASONS = [
  "customer-ended-call",
  "assistant-ended-call",
  "assistant-said-end-call-phrase",
  "assistant-forwarded-call",
  "silence-timed-out",
  "exceeded-max-duration",
  "customer-did-not-answer",
  "customer-busy",
  "voicemail",
  "manually-canceled",
  "phone-call-provider-closed-websocket",
  "twilio-failed-to-connect-call",
  "worker-shutdown",
  "call.in-progress.error-vapifault-worker-died",
  "call.in-progress.error-pipeline-no-available-llm-model",
  "call.in-progress.error-spend-limit-reached",
  "call.in-progress.error-transfer-failed",
  "call.in-progress.error-providerfault-transport-never-connected",
];
