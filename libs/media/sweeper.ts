import type { CallUsage } from "../billing/usage.ts";
import { Prisma } from "../db/index.ts";
import { ENDED } from "./ended-reasons.ts";
import { billAndRelease, type FinalizeDeps, finalizeEndedCall } from "./finalize.ts";

// Ends calls whose media process vanished (crash, OOM, lost host): a call `in-progress` whose
// heartbeat is older than `staleMs` is written as ended at its last heartbeat with
// `call.in-progress.error-vapifault-worker-died`, billed for the time it was known alive, and its
// concurrency lease released. Ended calls that never got their cost recorded are finished too.

export const STALE_AFTER_MS = 60_000;
export const SWEEP_INTERVAL_MS = 30_000;

export async function sweepStaleCalls(
  deps: FinalizeDeps,
  opts: { now?: number; staleMs?: number; limit?: number } = {},
): Promise<number> {
  const now = opts.now ?? Date.now();
  const cutoff = new Date(now - (opts.staleMs ?? STALE_AFTER_MS));
  const stale = await deps.db.call.findMany({
    where: {
      status: "in-progress",
      OR: [{ heartbeatAt: { lt: cutoff } }, { heartbeatAt: null, updatedAt: { lt: cutoff } }],
    },
    take: opts.limit ?? 100,
    orderBy: { heartbeatAt: "asc" },
  });
  let ended = 0;
  for (const call of stale) {
    const startedAt = call.startedAt ?? call.createdAt;
    const endedAt = call.heartbeatAt ?? call.updatedAt;
    const seconds = Math.max(0, (endedAt.getTime() - startedAt.getTime()) / 1000);
    const assistant = (call.assistant ?? {}) as {
      model?: { model?: string };
      voice?: { model?: string };
      transcriber?: { model?: string };
    };
    const usage: CallUsage = {
      durationSeconds: seconds,
      transport: {
        provider: "twilio",
        direction: call.type === "outboundPhoneCall" ? "outbound" : "inbound",
        seconds,
        byo: true,
      },
      // The per-provider counters died with the process; the transcriber ran for the whole call.
      stt: {
        provider: "deepgram",
        model: assistant.transcriber?.model ?? "",
        audioSeconds: seconds,
        byo: false,
      },
      llm: {
        provider: "openai",
        model: assistant.model?.model ?? "",
        promptTokens: 0,
        cachedPromptTokens: 0,
        completionTokens: 0,
        byo: false,
      },
      tts: { provider: "11labs", model: assistant.voice?.model ?? "", characters: 0, byo: false },
    };
    const written = await finalizeEndedCall(deps, {
      callId: call.id,
      orgId: call.orgId,
      endedReason: ENDED.workerDied,
      startedAt,
      endedAt,
      transcript: call.transcript ?? "",
      messages: Array.isArray(call.messages) ? call.messages : [],
      artifact: {
        transcript: call.transcript ?? "",
        messages: Array.isArray(call.messages) ? call.messages : [],
        performanceMetrics: { turnLatencies: [] },
      },
      usage,
    });
    if (written) ended++;
  }
  // Calls written as ended whose billing step did not complete (the process died in between).
  const unbilled = await deps.db.call.findMany({
    where: { status: "ended", finalizedAt: null, usage: { not: Prisma.DbNull }, endedAt: { lt: cutoff } },
    select: { id: true, orgId: true },
    take: opts.limit ?? 100,
  });
  for (const c of unbilled) await billAndRelease(deps, c.id, c.orgId);
  return ended;
}

/** Runs the sweeper every `intervalMs` until the returned stop function is called. */
export function startSweeper(deps: FinalizeDeps, intervalMs = SWEEP_INTERVAL_MS): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweepStaleCalls(deps)
      .catch((err: unknown) => deps.logger?.error({ err }, "call sweeper failed"))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
