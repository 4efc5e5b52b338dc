import { readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Prisma } from "../db/index.ts";
import { recordingLocationOf, recordingSettingsOf, spoolCallId } from "../recordings/index.ts";
import type { FinalizeDeps } from "./finalize.ts";
import { isObj } from "./session/context.ts";

// Spools left on this disk by a media process that died, whose call was ended elsewhere before
// anyone who could see the spool got to it. On Kubernetes each media pod spools to its own
// emptyDir: when its process is killed (OOM, a crash, a failed liveness probe) the container is
// restarted in the same pod with the same emptyDir, but the call is usually ended first by the API
// (Twilio's completed callback, about a second after the death) or by another pod's sweeper, which
// cannot read the spool and write `recordingError`. The restarted process finds the spool here,
// stores it with the audio up to its last flushed second, and puts the recording on the call
// (its `recordingError` removed). The same pass, on a directory shared by several processes, only
// touches spools that nobody has written for a while and whose call is ended; a spool is claimed
// by a rename before it is stored, so exactly one process stores it.

/** A spool claimed by a process that died while storing it is removed after this long. */
const ABANDONED_CLAIM_MS = 60 * 60_000;
/** A leftover spool that still cannot be stored this long after its call ended is given up. */
export const GIVE_UP_MS = 24 * 60 * 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AdoptOptions {
  /** A spool written within this long may belong to a live call (the recorder writes every second). */
  quietMs: number;
  /** This process's own live calls, never touched. */
  live?: (callId: string) => boolean;
  now?: number;
  /** Calls looked up per pass (default 100). */
  limit?: number;
  logger?: { info(obj: object, msg: string): void };
}

/**
 * One pass over the spool directory; the number of recordings put on their calls. Only a call that
 * its ender already marked with `recordingError` is taken: the process that ended the orphaned call
 * tries its own disk first (orphans.ts), and writes the error only once it found nothing there.
 */
export async function adoptLeftoverSpools(deps: FinalizeDeps, opts: AdoptOptions): Promise<number> {
  const recordings = deps.recordings;
  if (!recordings) return 0;
  const dir = recordings.stores.spoolDir;
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  const now = opts.now ?? Date.now();
  const quiet: string[] = [];
  for (const file of files) {
    const callId = spoolCallId(file);
    if (callId !== undefined && (!UUID.test(callId) || opts.live?.(callId))) continue;
    const mtime = await modified(path.join(dir, file));
    if (mtime === undefined) continue;
    if (callId === undefined) {
      // A claimed spool whose storing never finished (its time is the claim's).
      if (file.endsWith(".claimed") && now - mtime > ABANDONED_CLAIM_MS)
        await remove(deps, path.join(dir, file));
      continue;
    }
    if (now - mtime >= opts.quietMs) quiet.push(callId);
    if (quiet.length >= (opts.limit ?? 100)) break;
  }
  if (quiet.length === 0) return 0;
  const calls = await deps.db.call.findMany({
    where: { id: { in: quiet } },
    select: { id: true, orgId: true, status: true, endedAt: true, assistant: true, artifact: true },
  });
  const byId = new Map(calls.map((c) => [c.id, c]));
  let adopted = 0;
  for (const callId of quiet) {
    const call = byId.get(callId);
    const spool = recordings.spoolPath(callId);
    // Its call was deleted (and its recording with it).
    if (!call) {
      await remove(deps, spool);
      continue;
    }
    // Still in progress: the sweeper ends it first, and stores the spool itself when it runs here.
    if (call.status !== "ended") continue;
    if (!recordingSettingsOf(call.assistant).enabled || recordingLocationOf(call.artifact)) {
      await remove(deps, spool);
      continue;
    }
    // Not marked yet: whoever ended it is still trying its own disk.
    if (!isObj(call.artifact) || typeof call.artifact.recordingError !== "string") continue;
    if (call.endedAt && now - call.endedAt.getTime() > GIVE_UP_MS) {
      deps.logger?.warn({ callId }, "leftover recording spool given up: it could not be stored for a day");
      await remove(deps, spool);
      continue;
    }
    try {
      const fields = await recordings.recover(call, { retry: true });
      if (!fields) continue;
      const written = await deps.db.$executeRaw(Prisma.sql`
        UPDATE "Call" SET "artifact" = ("artifact" - 'recordingError') || ${JSON.stringify(fields)}::jsonb,
          "updatedAt" = now()
        WHERE "id" = ${call.id}::uuid AND "artifact" ? 'recordingError' AND NOT ("artifact" ? 'recordingStorage')`);
      if (written !== 1) continue;
      adopted++;
      opts.logger?.info(
        { callId, seconds: fields.recordingStorage.durationSeconds },
        "recording of a call whose media process died stored from the spool it left",
      );
    } catch (err) {
      // Put back (recover's retry): the next pass tries again.
      deps.logger?.warn({ err, callId }, "leftover recording spool not stored");
    }
  }
  return adopted;
}

async function modified(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    // Claimed or stored by another process meanwhile.
    return undefined;
  }
}

/** One file that cannot be removed does not stop the pass. */
async function remove(deps: FinalizeDeps, file: string): Promise<void> {
  try {
    await rm(file, { force: true });
  } catch (err) {
    deps.logger?.warn({ err, file }, "leftover recording spool not removed");
  }
}
