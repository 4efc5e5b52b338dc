import { Value } from "@sinclair/typebox/value";
import { CallUsage, callTransportUsage } from "../billing/usage.ts";
import { storedLogUrl } from "../call-logs/index.ts";
import type { Call } from "../db/index.ts";
import { callEnded } from "../metrics/index.ts";
import { recordingSettingsOf } from "../recordings/index.ts";
import { ENDED } from "./ended-reasons.ts";
import { billAndRelease, type FinalizeDeps } from "./finalize.ts";

// A call whose media process died with it (SIGKILL, OOM, lost host). What the process left behind:
// the call's row `in-progress`, its heartbeat (which stops), and a checkpoint written at every
// completed turn (transcript, messages, usage so far). Two things notice the death:
// - Twilio: the stream's socket drops, Twilio hangs up and POSTs its `completed` status callback
//   with `CallDuration`. If the process holding the call is gone (its Redis subscription vanished
//   with it, or its heartbeat is stale), the API ends the call at once with that duration.
// - the sweeper, in every media and worker process: a call whose heartbeat is older than the stale
//   threshold (libs/media/lease.ts) is ended at its last sign of life.
// Either way the call is ended once (a conditional UPDATE: the first writer wins, however many
// processes race), with `call.in-progress.error-vapifault-worker-died`, the checkpoint's transcript,
// messages and provider usage, and its concurrency slot released.
//
// Billing happens once, for the real duration. Ledger lines are written once and reported to Stripe
// as they are, so a duration is never corrected after billing: a phone call the sweeper ended before
// Twilio's report came is left unbilled (cost pending) until the report arrives, which corrects its
// duration and bills it; without a report within the grace period it is billed at its last sign of
// life. Twilio's report is stored on the row whenever it arrives, so a sweeper that ends the call
// later still bills Twilio's duration.

/** Twilio's report of a call's end: the status callback's time and `CallDuration` (seconds). */
export interface ProviderEnd {
  endedAt: Date;
  durationSeconds: number;
}

/** How long a swept phone call waits for Twilio's report before it is billed without it. */
export const PROVIDER_REPORT_GRACE_MS = 120_000;

function checkpointOf(call: Call): CallUsage | undefined {
  return Value.Check(CallUsage, call.usage) ? (call.usage as CallUsage) : undefined;
}

/** The usage of an orphaned call lasting `seconds`: provider usage as of its last completed turn. */
export function orphanUsage(call: Call, seconds: number): CallUsage {
  const saved = checkpointOf(call);
  const assistant = (call.assistant ?? {}) as {
    model?: { model?: string };
    voice?: { model?: string };
    transcriber?: { model?: string };
  };
  return {
    durationSeconds: seconds,
    transport: { ...(saved?.transport ?? callTransportUsage(call.type)), seconds },
    // The transcriber listened for the whole call, up to the process's death.
    stt: {
      ...(saved?.stt ?? { provider: "deepgram", model: assistant.transcriber?.model ?? "", byo: false }),
      audioSeconds: Math.max(saved?.stt.audioSeconds ?? 0, seconds),
    },
    llm: saved?.llm ?? {
      provider: "openai",
      model: assistant.model?.model ?? "",
      promptTokens: 0,
      cachedPromptTokens: 0,
      completionTokens: 0,
      byo: false,
    },
    tts: saved?.tts ?? { provider: "11labs", model: assistant.voice?.model ?? "", characters: 0, byo: false },
  };
}

/** Stored report, if Twilio's came while the process was still thought alive. */
function storedEnd(call: Call): ProviderEnd | undefined {
  return call.providerEndedAt && call.providerDurationSeconds !== null
    ? { endedAt: call.providerEndedAt, durationSeconds: call.providerDurationSeconds }
    : undefined;
}

/** A phone call whose duration Twilio will report (its status callback is configured at import). */
function expectsProviderReport(call: Call): boolean {
  return call.type !== "webCall" && call.providerCallId !== null;
}

/**
 * Ends an orphaned call (one whose media process is gone) with worker-died; true when this call
 * wrote it, false when something else had ended it first.
 */
export async function endOrphanedCall(
  deps: FinalizeDeps,
  call: Call,
  reported?: ProviderEnd,
): Promise<boolean> {
  const end = reported ?? storedEnd(call);
  const startedAt = call.startedAt ?? call.createdAt;
  let endedAt: Date;
  let seconds: number;
  if (end) {
    endedAt = new Date(Math.max(end.endedAt.getTime(), startedAt.getTime()));
    seconds = end.durationSeconds;
  } else {
    // Its last sign of life: the later of the last heartbeat and the last checkpoint.
    const saved = checkpointOf(call);
    const lastSeen = Math.max(
      (call.heartbeatAt ?? call.updatedAt).getTime(),
      startedAt.getTime() + (saved?.durationSeconds ?? 0) * 1000,
    );
    endedAt = new Date(lastSeen);
    seconds = Math.max(0, (lastSeen - startedAt.getTime()) / 1000);
  }
  const transcript = call.transcript ?? "";
  const messages = Array.isArray(call.messages) ? call.messages : [];
  // Its log, stored up to the last checkpoint, stays linked.
  const artifact = {
    transcript,
    messages,
    performanceMetrics: { turnLatencies: [] },
    ...storedLogUrl(call.artifact),
  };
  const written = await deps.db.call.updateMany({
    where: { id: call.id, status: { not: "ended" } },
    data: {
      status: "ended",
      endedReason: ENDED.workerDied,
      startedAt,
      endedAt,
      transcript,
      messages,
      artifact,
      usage: orphanUsage(call, seconds),
      ...(reported
        ? { providerEndedAt: reported.endedAt, providerDurationSeconds: reported.durationSeconds }
        : {}),
    },
  });
  if (written.count !== 1) return false;
  callEnded(ENDED.workerDied);
  // The call is over: its concurrency slot is freed at once, not after its recording is stored.
  await release(deps, call);
  // Before the post-call jobs, so the end-of-call report names it.
  await storeOrphanRecording(deps, call, artifact);
  // Billed now only with its final duration and somewhere to queue the post-call jobs; otherwise the
  // bill waits (Twilio's report, or the sweeper's grace period).
  if (deps.queue && (end || !expectsProviderReport(call))) await billAndRelease(deps, call.id, call.orgId);
  return true;
}

/**
 * The recording of a call whose process died: its spool up to the last flushed chunk, stored when
 * this process shares the dead one's disk (one host, or a shared RECORDINGS_DIR); otherwise the
 * artifact says where it is, and a process that later finds it there (the dead one's container,
 * restarted on the same disk) stores it (leftover-spools.ts). Never fails the ending.
 */
async function storeOrphanRecording(deps: FinalizeDeps, call: Call, artifact: object): Promise<void> {
  if (!deps.recordings || !recordingSettingsOf(call.assistant).enabled || !call.streamConnectedAt) return;
  let fields: object;
  try {
    // A spool that cannot be stored now (a bucket down) stays for the next pass over leftover spools.
    fields = (await deps.recordings.recover(call, { retry: true })) ?? {
      recordingError:
        "the media process holding the call died and its recording was not on this host's disk: a media process restarted on that disk stores it and puts it on the call",
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    deps.logger?.warn({ err: message, callId: call.id }, "recording of an orphaned call not stored");
    fields = { recordingError: message };
  }
  try {
    await deps.db.call.updateMany({ where: { id: call.id }, data: { artifact: { ...artifact, ...fields } } });
  } catch (err) {
    deps.logger?.warn({ err, callId: call.id }, "recording of an orphaned call not written to its artifact");
  }
}

async function release(deps: FinalizeDeps, call: Call): Promise<void> {
  try {
    await deps.spend?.releaseCall(call.orgId, call.id);
  } catch (err) {
    deps.logger?.warn({ err, callId: call.id }, "releasing the concurrency lease failed");
  }
}

export type ProviderEndOutcome =
  /** The media process was gone: the call was ended now with Twilio's duration. */
  | "ended"
  /** The sweeper had ended it first: its duration was corrected, then it was billed. */
  | "corrected"
  /** The media process holding the call is alive and ends it; the report is kept for the sweeper. */
  | "held"
  /** Already ended and billed (the normal case), or not a call the media plane took. */
  | "ignored";

export interface ProviderEndOptions {
  /** A heartbeat older than this means the holder is gone (leaseTimings().staleAfterMs). */
  staleAfterMs: number;
  /** Whether a media process is still connected (ControlBus.isAlive); rejects when unknown. */
  holderAlive?: (processId: string) => Promise<boolean>;
  now?: number;
}

/**
 * Bills a call ended as worker-died and not billed yet, with Twilio's reported duration when the row
 * has one (correcting the record first). The guard on finalizedAt orders this against any other
 * biller (the cost is recorded under a row lock): whichever comes first decides, and it is billed
 * once. Without a queue for the post-call jobs the bill is left to the sweeper. False when there
 * was nothing to do.
 */
export async function settleOrphan(deps: FinalizeDeps, call: Call): Promise<boolean> {
  if (call.endedReason !== ENDED.workerDied || call.finalizedAt !== null) return false;
  const end = storedEnd(call);
  if (end && (call.usage as { durationSeconds?: unknown } | null)?.durationSeconds !== end.durationSeconds) {
    const startedAt = call.startedAt ?? call.createdAt;
    const corrected = await deps.db.call.updateMany({
      where: { id: call.id, status: "ended", finalizedAt: null },
      data: {
        endedAt: new Date(Math.max(end.endedAt.getTime(), startedAt.getTime())),
        usage: orphanUsage(call, end.durationSeconds),
      },
    });
    if (corrected.count !== 1) return false;
  }
  if (deps.queue) await billAndRelease(deps, call.id, call.orgId);
  return true;
}

/**
 * Twilio reported the end of a call the media plane took (`completed` with `CallDuration`). The
 * report is kept on the row; if the process holding the call is gone, the call is ended with it,
 * or, if a sweeper ended it first, its duration is corrected before it is billed.
 */
export async function applyProviderEnd(
  deps: FinalizeDeps,
  callId: string,
  end: ProviderEnd,
  opts: ProviderEndOptions,
): Promise<ProviderEndOutcome> {
  await deps.db.call.updateMany({
    where: { id: callId, providerEndedAt: null },
    data: { providerEndedAt: end.endedAt, providerDurationSeconds: end.durationSeconds },
  });
  // Twice at most: a sweeper may end the call between our read and our write.
  for (let attempt = 0; attempt < 2; attempt++) {
    const call = await deps.db.call.findUnique({ where: { id: callId } });
    if (!call?.streamConnectedAt) return "ignored";
    if (call.status === "ended") return (await settleOrphan(deps, call)) ? "corrected" : "ignored";
    if (call.status !== "in-progress") return "ignored";
    const now = opts.now ?? Date.now();
    let gone = (call.heartbeatAt ?? call.updatedAt).getTime() < now - opts.staleAfterMs;
    if (!gone && call.mediaProcessId && opts.holderAlive) {
      try {
        gone = !(await opts.holderAlive(call.mediaProcessId));
      } catch (err) {
        // Cannot tell (Redis unreachable): the sweeper decides by the heartbeat, with this report.
        deps.logger?.warn({ err, callId }, "could not tell whether the call's media process is alive");
      }
    }
    if (!gone) return "held";
    if (await endOrphanedCall(deps, call, end)) return "ended";
  }
  return "ignored";
}
