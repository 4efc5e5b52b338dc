import { type CallUsage, zeroUsageOf } from "../../billing/usage.ts";
import type { Call as CallRow } from "../../db/index.ts";
import { type ConversationMessage, statusUpdateMessage } from "../../webhooks/index.ts";
import { checkpointWriterFor } from "../checkpoint-writer.ts";
import { Conversation } from "../conversation.ts";
import { finalizeEndedCall } from "../finalize.ts";
import { logUrlOf } from "./call-log.ts";
import type { CallContext, SessionDeps } from "./context.ts";
import type { CallState } from "./state.ts";

// The call's record: checkpointed at every completed turn (so a call whose process dies is ended
// with what it had), and at its end written with transcript, messages, artifact and usage in one
// transaction (and billed) by `finalizeEndedCall`, then the `ended` status update.

/** What the call has used up to `at`: priced at its end, persisted at every completed turn. */
function usageAt(c: CallContext, at: number): CallUsage {
  const duration = Math.max(0, (at - c.state.startedAt) / 1000);
  return c.meter.usage(c.state, c.transport.provider, duration);
}

function transcriptNames(state: CallState): { assistantName: string; userName: string } {
  return state.assistant?.config.artifactPlan.transcriptPlan ?? { assistantName: "AI", userName: "User" };
}

export class CallCheckpoints {
  readonly #c: CallContext;

  constructor(c: CallContext) {
    this.#c = c;
  }

  /**
   * Persists the conversation and the usage of the turns completed so far (never on the frame
   * path): if this process dies, the call is ended with them (libs/media/orphans.ts). Written with
   * every other call's due checkpoint in one statement, within CHECKPOINT_BATCH_MS
   * (libs/media/checkpoint-writer.ts), with the call's state as of that write. The status guard
   * keeps a late checkpoint from overwriting the ended record.
   */
  write(): void {
    const c = this.#c;
    const { state } = c;
    if (state.phase !== "live" || !state.callId) return;
    // The call's log goes with each checkpoint (its own row; never holds the checkpoint up).
    void c.callLog.flush();
    checkpointWriterFor(c.deps.db).submit(
      state.callId,
      () =>
        state.phase === "live"
          ? {
              transcript: state.conversation.transcript(transcriptNames(state)),
              messages: state.conversation.messages,
              usage: usageAt(c, c.now()),
            }
          : undefined,
      (err) => state.log.warn({ err }, "call checkpoint not written"),
    );
  }
}

/** Writes a call that ran. */
export async function writeEndedCall(c: CallContext, reason: string, endedAt: number): Promise<void> {
  const { state } = c;
  const conv = state.conversation;
  const transcript = conv.transcript(transcriptNames(state));
  const messages = conv.messages as unknown as ConversationMessage[];
  // Stored before the call is written, so its artifact (and the end-of-call report) names it.
  const recording = await c.recording.finish(endedAt);
  // The whole log is stored before the call is written, so the artifact (and the report) link it.
  await c.callLog.close();
  await finalizeEndedCall(c.deps, {
    callId: state.callId,
    orgId: state.orgId,
    endedReason: reason,
    startedAt: new Date(state.startedAt),
    endedAt: new Date(endedAt),
    transcript,
    messages,
    artifact: {
      transcript,
      messages,
      performanceMetrics: { ...conv.performanceMetrics(), ...c.recovery.metrics() },
      variableValues: state.variables,
      ...recording,
      ...logUrlOf(c),
    },
    usage: usageAt(c, endedAt),
    ...(state.orgPricing && state.row
      ? {
          billing: {
            org: state.orgPricing,
            assistantId: state.row.assistantId,
            phoneNumberId: state.row.phoneNumberId,
          },
        }
      : {}),
  });
  state.log.info({ endedReason: reason }, "call ended");
  if (state.row) {
    state.row = { ...state.row, status: "ended", endedReason: reason, endedAt: new Date(endedAt) };
    c.messages.emit("status-update", () =>
      statusUpdateMessage(c.messages.context(), { status: "ended", endedReason: reason }),
    );
  }
}

/** Writes a call whose stream was claimed but that never got going (nothing billable was used). */
export async function writeUnpreparedCall(
  deps: SessionDeps,
  state: CallState,
  call: CallRow,
  reason: string,
  now: number,
  /** More of the artifact (the log's URL). */
  more: Record<string, unknown> = {},
): Promise<void> {
  const conv = state.conversation ?? new Conversation(now);
  try {
    await finalizeEndedCall(deps, {
      callId: call.id,
      orgId: call.orgId,
      endedReason: reason,
      startedAt: new Date(state.startedAt || now),
      endedAt: new Date(now),
      transcript: "",
      messages: [],
      artifact: { transcript: "", messages: [], performanceMetrics: conv.performanceMetrics(), ...more },
      usage: zeroUsageOf(call.type),
    });
  } catch (err) {
    state.log.error({ err }, "ending the call failed");
  }
}
