import type { MonitorLinks } from "../../../../libs/calls/monitor.ts";
import { type CallView, callView } from "../../../../libs/calls/view.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { assertId, isUuid, type ListQuery, listArgs, type ServiceContext } from "./common.ts";

export interface CallListQuery extends ListQuery {
  id?: string;
  assistantId?: string;
  phoneNumberId?: string;
}

export { type CallView, callView } from "../../../../libs/calls/view.ts";

export class CallService {
  constructor(
    private readonly db: Db,
    private readonly links: MonitorLinks,
  ) {}

  async list(ctx: ServiceContext, q: CallListQuery): Promise<CallView[]> {
    const args = listArgs(ctx, q);
    // A filter on an id that cannot exist matches nothing (never a 400 that reveals more).
    for (const f of [q.id, q.assistantId, q.phoneNumberId]) if (f !== undefined && !isUuid(f)) return [];
    const where = {
      ...args.where,
      ...(q.id ? { id: q.id } : {}),
      ...(q.assistantId ? { assistantId: q.assistantId } : {}),
      ...(q.phoneNumberId ? { phoneNumberId: q.phoneNumberId } : {}),
    };
    return (await this.db.call.findMany({ ...args, where })).map((row) => callView(row, this.links));
  }

  async get(ctx: ServiceContext, id: string): Promise<CallView> {
    assertId("Call", id);
    const row = await this.db.call.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Call", id);
    return callView(row, this.links);
  }
}
