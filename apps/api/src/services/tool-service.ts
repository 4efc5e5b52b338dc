import type { Db, Tool as ToolRow } from "../../../../libs/db/index.ts";
import { NotFoundError, ValidationError } from "../../../../libs/errors/index.ts";
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

export type ToolBody = Record<string, unknown> & { type: string };
export type ToolView = Record<string, unknown> & { id: string; type: string };

export function toolView(row: ToolRow): ToolView {
  return {
    ...asObject(row.config),
    type: row.type,
    id: row.id,
    orgId: row.orgId,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export class ToolService {
  constructor(
    private readonly db: Db,
    private readonly checks: ConfigChecker,
  ) {}

  async create(ctx: ServiceContext, body: ToolBody): Promise<ToolView> {
    await this.checks.tool(ctx, body, "body.");
    const { type, ...config } = body;
    const row = await this.db.tool.create({ data: { orgId: ctx.orgId, type, config: config as object } });
    return toolView(row);
  }

  async row(ctx: ServiceContext, id: string): Promise<ToolRow> {
    assertId("Tool", id);
    const row = await this.db.tool.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Tool", id);
    return row;
  }

  async get(ctx: ServiceContext, id: string): Promise<ToolView> {
    return toolView(await this.row(ctx, id));
  }

  async list(ctx: ServiceContext, q: ListQuery): Promise<ToolView[]> {
    return (await this.db.tool.findMany(listArgs(ctx, q))).map(toolView);
  }

  /** The validator for the patch depends on the stored tool's type, so routes ask for it first. */
  async typeOf(ctx: ServiceContext, id: string): Promise<string> {
    return (await this.row(ctx, id)).type;
  }

  async update(ctx: ServiceContext, id: string, patch: Record<string, unknown>): Promise<ToolView> {
    const current = await this.row(ctx, id);
    if (patch.type !== undefined && patch.type !== current.type) {
      throw new ValidationError(`body.type cannot be changed (this tool is of type ${current.type})`);
    }
    const { type: _ignored, ...rest } = patch;
    const config = mergeTopLevel(asObject(current.config), rest);
    await this.checks.tool(ctx, config, "body.");
    const row = await this.db.tool.update({ where: { id: current.id }, data: { config: config as object } });
    return toolView(row);
  }

  async remove(ctx: ServiceContext, id: string): Promise<ToolView> {
    const current = await this.row(ctx, id);
    await this.db.tool.delete({ where: { id: current.id } });
    return toolView(current);
  }
}
