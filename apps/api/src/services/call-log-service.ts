import {
  type CallLogEntry,
  type CallLogLimits,
  type CallLogLinks,
  checkSignedCallLog,
  hasCallLog,
  LOG_REDIRECT_TTL_MS,
  readCallLog,
  signedCallLogUrl,
} from "../../../../libs/call-logs/index.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { ForbiddenError, NotFoundError } from "../../../../libs/errors/index.ts";
import { assertId, isUuid, type ServiceContext } from "./common.ts";

// A call's log over HTTP. Vapi's route (`GET /call/:id/call-logs`, an API key of the call's
// organisation) answers 302 to a short-lived signed URL, as Vapi does for a call's artifacts; the
// signed URL (`/call/:id/call-logs.json?expires=&signature=`, no key) serves the entries. Calls are
// looked up in the key's organisation: another's is a 404, like a call that keeps no log.

export class CallLogService {
  readonly #db: Db;
  readonly #links: CallLogLinks;
  readonly #limits: CallLogLimits;
  readonly #now: () => number;

  constructor(db: Db, links: CallLogLinks, limits: CallLogLimits, now: () => number = Date.now) {
    this.#db = db;
    this.#links = links;
    this.#limits = limits;
    this.#now = now;
  }

  /** Where the call's log is: a signed URL good for a few minutes. */
  async redirect(ctx: ServiceContext, callId: string): Promise<string> {
    assertId("Call", callId);
    const call = await this.#db.call.findFirst({
      where: { id: callId, orgId: ctx.orgId },
      select: { id: true },
    });
    if (!call) throw new NotFoundError("Call", callId);
    if (!(await hasCallLog(this.#db, call.id))) throw new NotFoundError("Call log");
    return signedCallLogUrl(this.#links, call.id, this.#now() + LOG_REDIRECT_TTL_MS);
  }

  /** The entries behind a signed URL, oldest first. */
  async download(callId: string, q: { expires?: string; signature?: string }): Promise<CallLogEntry[]> {
    const check = checkSignedCallLog(this.#links.secretsKey, callId, q.expires, q.signature, this.#now());
    if (check === "invalid") throw new ForbiddenError("Invalid signature: use the URL as given");
    if (check === "expired") {
      throw new ForbiddenError(
        `This link has expired: get a new one from GET /call/${callId} (artifact.logUrl) or GET /call/${callId}/call-logs`,
      );
    }
    if (!isUuid(callId)) throw new NotFoundError("Call log");
    const entries = await readCallLog(this.#db, callId, this.#limits);
    if (entries.length === 0) throw new NotFoundError("Call log");
    return entries;
  }
}
