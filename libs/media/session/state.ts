import {
  type CredentialKeyRow,
  callVariables,
  type ProviderKey,
  type SquadPlan,
  type Variables,
} from "../../assistants/index.ts";
import type { OrgPricingInput } from "../../billing/pricing.ts";
import type { Call as CallRow, PhoneNumber as PhoneNumberRow } from "../../db/index.ts";
import type { SpeechToText } from "../../providers/types.ts";
import type { ResolvedTranscriber } from "../../vapi/defaults.ts";
import type { Conversation } from "../conversation.ts";
import type { ActiveAssistant } from "./assistant.ts";
import { isObj, type Json, type MediaLogger, type Phase } from "./context.ts";

// The call as loaded at its start, and what every part reads: its ids and row, its number, its
// organisation's settings, the assistant running it now and the conversation so far. Written by the
// orchestrator (start, hand-off); read by the parts.

export class CallState {
  phase: Phase = "connecting";
  callId = "";
  orgId = "";
  /** The carrier's id of the call (Twilio's CallSid). */
  providerCallId = "";
  /** Every later line of this call carries its ids (a child logger once the call is known). */
  log: MediaLogger;
  row: CallRow | undefined;
  phoneNumber: PhoneNumberRow | null = null;
  /** The organisation's provider credentials as loaded at call start (sealed). */
  credentials: CredentialKeyRow[] = [];
  orgServer: Json | undefined;
  /** The organisation's pricing as loaded at call start (prices the call at its end). */
  orgPricing: OrgPricingInput | undefined;
  variables: Variables = {};
  /** The call's squad (no members when it runs a single assistant). */
  squad: SquadPlan = { members: [], membersOverrides: undefined };
  /** Set by the call's setup before anything reads it. */
  conversation!: Conversation;
  /** The assistant running the call now; set by the call's setup before anything reads it. */
  assistant!: ActiveAssistant;
  /**
   * The transcriber is the call-start assistant's for the whole call (a hand-off keeps it), or the
   * fallback plan's entry it switched to (`config`, then).
   */
  transcriber: { provider: SpeechToText; key: ProviderKey; config?: ResolvedTranscriber } | undefined;
  startedAt = 0;
  /** A provider failed: the apology is playing and the call is about to end. */
  failing = false;

  constructor(log: MediaLogger) {
    this.log = log;
  }
}

/** The call's template variables: the built-ins, then its overrides' and its assistant's `variableValues`. */
export function variablesOf(
  call: CallRow,
  phoneNumber: PhoneNumberRow | null,
  providerCallId: string,
  now: number,
): Variables {
  const raw = isObj(call.assistant) ? call.assistant : {};
  const overrides = isObj(call.assistantOverrides) ? call.assistantOverrides : {};
  return callVariables({
    now: new Date(now),
    customer: isObj(call.customer) ? call.customer : null,
    phoneNumber: phoneNumber ? { number: phoneNumber.number, name: phoneNumber.name } : null,
    call: { id: call.id, type: call.type },
    callSid: providerCallId,
    variableValues: {
      ...(isObj(overrides.variableValues) ? overrides.variableValues : {}),
      ...(isObj(raw.variableValues) ? raw.variableValues : {}),
    },
  });
}
