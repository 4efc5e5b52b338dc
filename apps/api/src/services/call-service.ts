import type { Call as CallRow, Db } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { assertId, iso, isUuid, type ListQuery, listArgs, type ServiceContext } from "./common.ts";

export interface CallListQuery extends ListQuery {
  id?: string;
  assistantId?: string;
  phoneNumberId?: string;
}

export type CallView = Record<string, unknown> & { id: string; status: string };

function opt<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

export function callView(row: CallRow): CallView {
  return {
    id: row.id,
    orgId: row.orgId,
    type: row.type,
    status: row.status,
    endedReason: opt(row.endedReason),
    assistantId: opt(row.assistantId),
    squadId: opt(row.squadId),
    phoneNumberId: opt(row.phoneNumberId),
    customer: opt(row.customer),
    assistant: opt(row.assistant),
    assistantOverrides: opt(row.assistantOverrides),
    name: opt(row.name),
    metadata: opt(row.metadata),
    phoneCallProvider: row.type === "webCall" ? undefined : "twilio",
    phoneCallProviderId: opt(row.providerCallId),
    startedAt: row.startedAt ? iso(row.startedAt) : undefined,
    endedAt: row.endedAt ? iso(row.endedAt) : undefined,
    transcript: opt(row.transcript),
    messages: opt(row.messages),
    artifact: opt(row.artifact),
    analysis: opt(row.analysis),
    // Money is exact in the database (decimal); JSON carries it as a number, as Vapi's API does.
    cost: row.cost === null ? undefined : Number(row.cost.toString()),
    costBreakdown: opt(row.costBreakdown),
    costs: opt(row.costs),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export class CallService {
  constructor(private readonly db: Db) {}

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
    return (await this.db.call.findMany({ ...args, where })).map(callView);
  }

  async get(ctx: ServiceContext, id: string): Promise<CallView> {
    assertId("Call", id);
    const row = await this.db.call.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Call", id);
    return callView(row);
  }
}
