import { type Static, Type } from "@sinclair/typebox";
import {
  type AssistantClientMessage,
  AssistantOverrides,
  type AssistantServerMessage,
  CreateAssistantDTO,
} from "./assistant.ts";
import { FreeformObject, SharedRef, Uuid } from "./common.ts";
import { CreateSquadDTO } from "./squad.ts";
import { TransferDestinationNumber } from "./tool.ts";

/** Every `message.type` Vapi can POST to a server URL (the `ServerMessage.message` union). */
export const SERVER_MESSAGE_TYPES = [
  "assistant-request",
  "conversation-update",
  "end-of-call-report",
  "handoff-destination-request",
  "hang",
  "knowledge-base-request",
  "model-output",
  "phone-call-control",
  "speech-update",
  "status-update",
  "tool-calls",
  "transfer-destination-request",
  "transfer-update",
  "transcript",
  'transcript[transcriptType="final"]',
  "user-interrupted",
  "language-change-detected",
  "voice-input",
  "assistant.speechStarted",
  "voice-request",
  "call.endpointing.request",
  "chat.created",
  "chat.deleted",
  "session.created",
  "session.updated",
  "session.deleted",
  "call.deleted",
  "call.delete.failed",
  "call.artifact.upload",
  "campaign.predial",
] as const;
export type ServerMessageType = (typeof SERVER_MESSAGE_TYPES)[number];

/** Sent when `assistant.serverMessages` is not set. */
export const DEFAULT_SERVER_MESSAGES = [
  "conversation-update",
  "end-of-call-report",
  "function-call",
  "hang",
  "speech-update",
  "status-update",
  "tool-calls",
  "transfer-destination-request",
  "handoff-destination-request",
  "user-interrupted",
  "assistant.started",
] as const satisfies readonly AssistantServerMessage[];

/** Sent to client SDKs when `assistant.clientMessages` is not set. */
export const DEFAULT_CLIENT_MESSAGES = [
  "conversation-update",
  "function-call",
  "hang",
  "model-output",
  "speech-update",
  "status-update",
  "transfer-update",
  "transcript",
  "tool-calls",
  "user-interrupted",
  "voice-input",
  "workflow.node.started",
  "assistant.started",
] as const satisfies readonly AssistantClientMessage[];

/** The only messages whose HTTP response body Vapi reads; all others are fire-and-forget. */
export const SERVER_MESSAGES_WITH_RESPONSE = [
  "assistant-request",
  "tool-calls",
  "transfer-destination-request",
  "handoff-destination-request",
  "knowledge-base-request",
  "voice-request",
  "call.endpointing.request",
  "campaign.predial",
] as const satisfies readonly ServerMessageType[];

/**
 * Vapi gives the customer's server 7.5 s to answer `assistant-request`: Twilio drops an unanswered call
 * after 15 s and the rest is reserved for call setup. Not configurable.
 */
export const ASSISTANT_REQUEST_TIMEOUT_MS = 7_500;

// Responses come from customers' servers, so these schemas tolerate extra fields (Vapi ignores them).

export const ToolCallResult = Type.Object({
  toolCallId: Type.String(),
  name: Type.Optional(Type.String()),
  // Vapi requires strings here; objects are a common customer mistake and must be stringified.
  result: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
  message: Type.Optional(FreeformObject),
  metadata: Type.Optional(FreeformObject),
});
export type ToolCallResult = Static<typeof ToolCallResult>;

export const ToolCallsResponse = Type.Object({
  results: Type.Optional(Type.Array(ToolCallResult)),
  error: Type.Optional(Type.String()),
});
export type ToolCallsResponse = Static<typeof ToolCallsResponse>;

export const AssistantRequestResponse = Type.Object({
  assistantId: Type.Optional(Uuid),
  assistant: Type.Optional(SharedRef(CreateAssistantDTO)),
  assistantOverrides: Type.Optional(SharedRef(AssistantOverrides)),
  squadId: Type.Optional(Uuid),
  squad: Type.Optional(SharedRef(CreateSquadDTO)),
  // Transfer straight away without an assistant; `message: ""` makes it silent.
  destination: Type.Optional(TransferDestinationNumber),
  // Spoken to the caller, then the call ends.
  error: Type.Optional(Type.String()),
});
export type AssistantRequestResponse = Static<typeof AssistantRequestResponse>;

export const TransferDestinationRequestResponse = Type.Object({
  destination: Type.Optional(TransferDestinationNumber),
  message: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});
export type TransferDestinationRequestResponse = Static<typeof TransferDestinationRequestResponse>;
