import { type ApiKeyType, generateApiKey } from "../../../../libs/crypto/index.ts";
import type { ApiKey as ApiKeyRow, Db, Org as OrgRow } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { assertId, iso, type ListQuery, listArgs, type ServiceContext } from "./common.ts";

export interface OrgView {
  id: string;
  name: string;
  concurrencyLimit: number;
  createdAt: string;
  updatedAt: string;
}

export interface TokenView {
  id: string;
  orgId: string;
  tag: ApiKeyType;
  name?: string;
  prefix: string;
  value?: string;
  createdAt: string;
  updatedAt: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

export function orgView(row: OrgRow): OrgView {
  return {
    id: row.id,
    name: row.name,
    concurrencyLimit: row.concurrencyLimit,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export function tokenView(row: ApiKeyRow, value?: string): TokenView {
  return {
    id: row.id,
    orgId: row.orgId,
    tag: row.type === "public" ? "public" : "private",
    name: row.name ?? undefined,
    prefix: row.prefix,
    ...(value ? { value } : {}),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    revokedAt: row.revokedAt ? iso(row.revokedAt) : undefined,
    lastUsedAt: row.lastUsedAt ? iso(row.lastUsedAt) : undefined,
  };
}

export class OrgService {
  constructor(private readonly db: Db) {}

  /** Operator bootstrap: a new organisation and its first private key (shown once). */
  async createOrg(name: string): Promise<{ org: OrgView; apiKey: TokenView }> {
    const key = generateApiKey("private");
    return this.db.$transaction(async (tx) => {
      const org = await tx.org.create({ data: { name } });
      const row = await tx.apiKey.create({
        data: { orgId: org.id, name: "default", type: "private", prefix: key.prefix, hash: key.hash },
      });
      return { org: orgView(org), apiKey: tokenView(row, key.key) };
    });
  }

  async getOrg(ctx: ServiceContext): Promise<OrgView> {
    const org = await this.db.org.findUnique({ where: { id: ctx.orgId } });
    if (!org) throw new NotFoundError("Org", ctx.orgId);
    return orgView(org);
  }

  async createToken(ctx: ServiceContext, input: { tag?: ApiKeyType; name?: string }): Promise<TokenView> {
    const type = input.tag ?? "private";
    const key = generateApiKey(type);
    const row = await this.db.apiKey.create({
      data: { orgId: ctx.orgId, name: input.name ?? null, type, prefix: key.prefix, hash: key.hash },
    });
    return tokenView(row, key.key);
  }

  async listTokens(ctx: ServiceContext, q: ListQuery): Promise<TokenView[]> {
    return (await this.db.apiKey.findMany(listArgs(ctx, q))).map((r) => tokenView(r));
  }

  async getToken(ctx: ServiceContext, id: string): Promise<TokenView> {
    assertId("Token", id);
    const row = await this.db.apiKey.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Token", id);
    return tokenView(row);
  }

  async updateToken(ctx: ServiceContext, id: string, patch: { name?: string }): Promise<TokenView> {
    await this.getToken(ctx, id);
    const row = await this.db.apiKey.update({ where: { id }, data: { name: patch.name ?? null } });
    return tokenView(row);
  }

  /** Revocation keeps the row (for audit) and stops the key working at once. */
  async revokeToken(ctx: ServiceContext, id: string): Promise<TokenView> {
    await this.getToken(ctx, id);
    const row = await this.db.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
    return tokenView(row);
  }
}
