import { zeroUsageOf } from "../billing/usage.ts";
import { WEBSOCKET_CALL_TYPE } from "../calls/transport.ts";
import type { Call } from "../db/index.ts";
import { callEnded } from "../metrics/index.ts";
import { MEDIA_TOKEN_TTL_MS } from "../telephony/media-token.ts";
import { billAndRelease, type FinalizeDeps } from "./finalize.ts";

// A websocket call (`vapi.websocket`) whose client never opened `websocketCallUrl`. A phone call
// that never connects is ended by Twilio's status callback; nothing reports on a websocket call, so
// once its single-use token has expired (it was issued when the call was created, for
// MEDIA_TOKEN_TTL_MS) no client can ever connect and the sweeper ends it: zero usage (nothing is
// billed), its concurrency slot released, its end-of-call report queued.

export const TRANSPORT_NEVER_CONNECTED = "call.in-progress.error-providerfault-transport-never-connected";

/**
 * Ends one never-connected websocket call; true when this call wrote the end. Conditional on the
 * token not having been claimed (`streamConnectedAt` null, set by the same kind of single UPDATE),
 * so a client connecting in the last instant and the sweeper cannot both win.
 */
export async function endNeverConnectedCall(deps: FinalizeDeps, call: Call, now: number): Promise<boolean> {
  const written = await deps.db.call.updateMany({
    where: { id: call.id, status: { not: "ended" }, streamConnectedAt: null },
    data: {
      status: "ended",
      endedReason: TRANSPORT_NEVER_CONNECTED,
      endedAt: new Date(now),
      usage: zeroUsageOf(call.type),
    },
  });
  if (written.count !== 1) return false;
  callEnded(TRANSPORT_NEVER_CONNECTED);
  deps.logger?.warn({ callId: call.id, orgId: call.orgId }, "websocket call never connected");
  await billAndRelease(deps, call.id, call.orgId);
  return true;
}

/** Ends every websocket call whose token expired before its client connected; how many it ended. */
export async function endNeverConnectedCalls(
  deps: FinalizeDeps,
  opts: { now: number; tokenTtlMs?: number; limit?: number },
): Promise<number> {
  const expiredBefore = new Date(opts.now - (opts.tokenTtlMs ?? MEDIA_TOKEN_TTL_MS));
  const calls = await deps.db.call.findMany({
    where: {
      type: WEBSOCKET_CALL_TYPE,
      status: { in: ["queued", "ringing"] },
      streamConnectedAt: null,
      createdAt: { lt: expiredBefore },
    },
    take: opts.limit ?? 100,
    orderBy: { createdAt: "asc" },
  });
  let ended = 0;
  for (const call of calls) if (await endNeverConnectedCall(deps, call, opts.now)) ended++;
  return ended;
}
