import { type CacheBus, TtlCache } from "../../../../libs/cache/read-cache.ts";
import type { Assistant as AssistantRow, Db } from "../../../../libs/db/index.ts";
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
import { checkProviderOptions } from "./provider-options.ts";

export type AssistantBody = Record<string, unknown>;
export type AssistantView = Record<string, unknown> & { id: string; orgId: string };

export function assistantView(row: AssistantRow): AssistantView {
  return {
    ...asObject(row.config),
    id: row.id,
    orgId: row.orgId,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export class AssistantService {
  private readonly cache: TtlCache<AssistantView>;

  /** Reads of an assistant are cached (the media plane and customers read them often); writes evict everywhere. */
  constructor(
    private readonly db: Db,
    private readonly checks: ConfigChecker,
    private readonly bus: CacheBus,
    cacheTtlMs: number,
  ) {
    this.cache = new TtlCache(cacheTtlMs);
    bus.register("assistant", (key) => this.cache.delete(key));
  }

  async create(ctx: ServiceContext, body: AssistantBody): Promise<AssistantView> {
    checkProviderOptions([{ prefix: "body.", config: body }]);
    await this.checks.assistant(ctx, body, "body.");
    const row = await this.db.assistant.create({
      data: {
        orgId: ctx.orgId,
        name: typeof body.name === "string" ? body.name : null,
        config: body as object,
      },
    });
    return assistantView(row);
  }

  async get(ctx: ServiceContext, id: string): Promise<AssistantView> {
    const key = `${ctx.orgId}:${id}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const view = assistantView(await this.row(ctx, id));
    this.cache.set(key, view);
    return view;
  }

  async row(ctx: ServiceContext, id: string): Promise<AssistantRow> {
    assertId("Assistant", id);
    const row = await this.db.assistant.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Assistant", id);
    return row;
  }

  async list(ctx: ServiceContext, q: ListQuery): Promise<AssistantView[]> {
    return (await this.db.assistant.findMany(listArgs(ctx, q))).map(assistantView);
  }

  async update(ctx: ServiceContext, id: string, patch: AssistantBody): Promise<AssistantView> {
    const current = await this.row(ctx, id);
    const config = mergeTopLevel(asObject(current.config), patch);
    checkProviderOptions([{ prefix: "body.", config }]);
    await this.checks.assistant(ctx, config, "body.");
    const row = await this.db.assistant.update({
      where: { id: current.id },
      data: { name: typeof config.name === "string" ? config.name : null, config: config as object },
    });
    await this.bus.evict("assistant", `${ctx.orgId}:${id}`);
    return assistantView(row);
  }

  async remove(ctx: ServiceContext, id: string): Promise<AssistantView> {
    const current = await this.row(ctx, id);
    await this.db.assistant.delete({ where: { id: current.id } });
    await this.bus.evict("assistant", `${ctx.orgId}:${id}`);
    return assistantView(current);
  }
}
