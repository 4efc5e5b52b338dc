import { isMonitorToken, isOrgApiKey, monitorPlanOf } from "../../calls/monitor.ts";
import type { Db } from "../../db/index.ts";

// Who may open a call's `monitor.listenUrl`: the call's listen token (checked first, without any
// I/O, so a wrong one costs nothing and tells nothing), the call's monitorPlan (listening on, and an
// API key of the call's organisation when it asks for one), and a call that is in progress.

export type ListenAccess =
  | { ok: true; orgId: string; holder: string }
  | { ok: false; code: number; reason: string };

export async function checkListenAccess(
  db: Db,
  secretsKey: Buffer,
  callId: string,
  token: string | undefined,
  authorization: string | undefined,
): Promise<ListenAccess> {
  if (!isMonitorToken(secretsKey, "listen", callId, token)) {
    return {
      ok: false,
      code: 1008,
      reason: "invalid listen token: use the call's monitor.listenUrl as given",
    };
  }
  const row = await db.call.findUnique({
    where: { id: callId },
    select: { id: true, orgId: true, status: true, assistant: true, mediaProcessId: true },
  });
  if (!row) return { ok: false, code: 1008, reason: "call not found" };
  const plan = monitorPlanOf(row);
  if (plan.listenAuthenticationEnabled && !(await isOrgApiKey(db, authorization, row.orgId))) {
    return {
      ok: false,
      code: 1008,
      reason: "this listenUrl needs Authorization: Bearer <API key of the call's organisation>",
    };
  }
  if (!plan.listenEnabled) {
    return { ok: false, code: 1008, reason: "listening is off for this call (monitorPlan.listenEnabled)" };
  }
  if (row.status === "ended") return { ok: false, code: 1000, reason: "call ended" };
  if (!row.mediaProcessId) {
    return { ok: false, code: 1013, reason: "call not in progress yet: try again once it is answered" };
  }
  return { ok: true, orgId: row.orgId, holder: row.mediaProcessId };
}
