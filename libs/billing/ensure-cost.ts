import type { Db } from "../db/index.ts";
import { recordCallCost } from "./finalize.ts";
import type { PriceCatalog } from "./prices.ts";

/**
 * The media plane records a call's cost right after writing the ended call, but that step can fail
 * (a database timeout when many calls end at once, a crash in between). Every post-call job calls
 * this first, so a cost that was not recorded is recorded on the job's next attempt; it does
 * nothing for a call that is already priced (recordCallCost is idempotent).
 */
export async function ensureCallCost(db: Db, callId: string, catalog?: PriceCatalog): Promise<void> {
  const call = await db.call.findUnique({
    where: { id: callId },
    select: { status: true, finalizedAt: true },
  });
  if (call?.status === "ended" && !call.finalizedAt) {
    await recordCallCost(db, callId, catalog ? { catalog } : {});
  }
}
