import type { MonitorLinks } from "../../../../libs/calls/monitor.ts";
import { type CallView, callView } from "../../../../libs/calls/view.ts";
import { type Db, Prisma } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { assertId, isUuid, type ListQuery, listArgs, type ServiceContext } from "./common.ts";

export interface CallListQuery extends ListQuery {
  id?: string;
  assistantId?: string;
  phoneNumberId?: string;
}

export { type CallView, callView } from "../../../../libs/calls/view.ts";

/** `GET /v2/call`: Vapi's paginated list filters (libs/vapi CallPaginatedQuery). */
export interface CallPageQuery extends CallListQuery {
  squadId?: string;
  endedReason?: string;
  successEvaluation?: string;
  cost?: number;
  costGe?: number;
  costLe?: number;
  page?: number;
  sortOrder?: "ASC" | "DESC";
}

export interface CallPage {
  results: CallView[];
  metadata: {
    itemsPerPage: number;
    totalItems: number;
    currentPage: number;
    totalPages: number;
    hasNextPage: boolean;
    sortOrder: "ASC" | "DESC";
  };
}

// The query's numbers as decimals from their shortest decimal form (0.1 stays 0.1, not its binary
// neighbour), compared with the exact cost column.
const usd = (n: number) => new Prisma.Decimal(n.toString());

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

  /** A page of calls, newest first unless `sortOrder` is ASC, with the number of calls matching. */
  async page(ctx: ServiceContext, q: CallPageQuery): Promise<CallPage> {
    const args = listArgs(ctx, q);
    const limit = args.take;
    const currentPage = q.page ?? 1;
    const sortOrder = q.sortOrder ?? "DESC";
    const ids = [q.id, q.assistantId, q.squadId, q.phoneNumberId];
    const where: Prisma.CallWhereInput = {
      ...args.where,
      ...(q.id ? { id: q.id } : {}),
      ...(q.assistantId ? { assistantId: q.assistantId } : {}),
      ...(q.squadId ? { squadId: q.squadId } : {}),
      ...(q.phoneNumberId ? { phoneNumberId: q.phoneNumberId } : {}),
      ...(q.endedReason ? { endedReason: q.endedReason } : {}),
      ...(q.successEvaluation
        ? { analysis: { path: ["successEvaluation"], equals: q.successEvaluation } }
        : {}),
      ...(q.cost !== undefined || q.costGe !== undefined || q.costLe !== undefined
        ? {
            cost: {
              ...(q.cost !== undefined ? { equals: usd(q.cost) } : {}),
              ...(q.costGe !== undefined ? { gte: usd(q.costGe) } : {}),
              ...(q.costLe !== undefined ? { lte: usd(q.costLe) } : {}),
            },
          }
        : {}),
    };
    const none = ids.some((f) => f !== undefined && !isUuid(f));
    const direction = sortOrder === "ASC" ? ("asc" as const) : ("desc" as const);
    const [totalItems, rows] = none
      ? [0, []]
      : await Promise.all([
          this.db.call.count({ where }),
          limit === 0
            ? []
            : this.db.call.findMany({
                where,
                orderBy: [{ createdAt: direction }, { id: direction }],
                skip: (currentPage - 1) * limit,
                take: limit,
              }),
        ]);
    const totalPages = limit === 0 ? 0 : Math.ceil(totalItems / limit);
    return {
      results: rows.map((row) => callView(row, this.links)),
      metadata: {
        itemsPerPage: limit,
        totalItems,
        currentPage,
        totalPages,
        hasNextPage: currentPage < totalPages,
        sortOrder,
      },
    };
  }

  async get(ctx: ServiceContext, id: string): Promise<CallView> {
    assertId("Call", id);
    const row = await this.db.call.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Call", id);
    return callView(row, this.links);
  }
}
