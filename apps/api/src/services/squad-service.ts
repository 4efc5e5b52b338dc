import type { Db, Squad as SquadRow } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import {
  asObject,
  assertId,
  iso,
  type ListQuery,
  listArgs,
  mergeTopLevel,
  type ServiceContext,
} from "./common.ts";
import type { ConfigChecker } from "./config-checks.ts";
import { checkSquadProviderOptions } from "./provider-options.ts";

export type SquadBody = Record<string, unknown>;
export type SquadView = Record<string, unknown> & { id: string };

export function squadView(row: SquadRow): SquadView {
  return {
    ...asObject(row.config),
    id: row.id,
    orgId: row.orgId,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export class SquadService {
  constructor(
    private readonly db: Db,
    private readonly checks: ConfigChecker,
  ) {}

  async create(ctx: ServiceContext, body: SquadBody): Promise<SquadView> {
    await checkSquadProviderOptions(this.db, ctx, body, "body.");
    await this.checks.squad(ctx, body, "body.");
    const row = await this.db.squad.create({
      data: {
        orgId: ctx.orgId,
        name: typeof body.name === "string" ? body.name : null,
        config: body as object,
      },
    });
    return squadView(row);
  }

  async row(ctx: ServiceContext, id: string): Promise<SquadRow> {
    assertId("Squad", id);
    const row = await this.db.squad.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Squad", id);
    return row;
  }

  async get(ctx: ServiceContext, id: string): Promise<SquadView> {
    return squadView(await this.row(ctx, id));
  }

  async list(ctx: ServiceContext, q: ListQuery & { idAny?: string[] }): Promise<SquadView[]> {
    const args = listArgs(ctx, q);
    const where = q.idAny ? { ...args.where, id: { in: q.idAny } } : args.where;
    return (await this.db.squad.findMany({ ...args, where })).map(squadView);
  }

  async update(ctx: ServiceContext, id: string, patch: SquadBody): Promise<SquadView> {
    const current = await this.row(ctx, id);
    const config = mergeTopLevel(asObject(current.config), patch);
    await checkSquadProviderOptions(this.db, ctx, config, "body.");
    await this.checks.squad(ctx, config, "body.");
    const row = await this.db.squad.update({
      where: { id: current.id },
      data: { name: typeof config.name === "string" ? config.name : null, config: config as object },
    });
    return squadView(row);
  }

  async remove(ctx: ServiceContext, id: string): Promise<SquadView> {
    const current = await this.row(ctx, id);
    await this.db.squad.delete({ where: { id: current.id } });
    return squadView(current);
  }
}
