import { type ApiKeyType, generateApiKey } from "../../../../libs/crypto/index.ts";
import type { ApiKey as ApiKeyRow, Db, Org as OrgRow } from "../../../../libs/db/index.ts";
import { Prisma } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { asObject, assertId, iso, type ListQuery, listArgs, type ServiceContext } from "./common.ts";
import { ConfigChecker } from "./config-checks.ts";
import { keyRestrictions, storedRestrictions, type TokenRestrictions } from "./key-restrictions.ts";
import { ReferenceChecker, refsOf } from "./references.ts";

export interface OrgView {
  id: string;
  name: string;
  concurrencyLimit: number;
  /** The organisation's webhook server: the lowest-precedence fallback after tool, assistant and number. */
  server?: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** `PATCH /org`: `server: null` removes the organisation's server. */
export interface OrgPatch {
  name?: string;
  server?: Record<string, unknown> | null;
}

export interface TokenView {
  id: string;
  orgId: string;
  tag: ApiKeyType;
  name?: string;
  prefix: string;
  value?: string;
  restrictions?: TokenRestrictions;
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
    ...(row.server ? { server: asObject(row.server) } : {}),
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
    restrictions: keyRestrictions(row.restrictions),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    revokedAt: row.revokedAt ? iso(row.revokedAt) : undefined,
    lastUsedAt: row.lastUsedAt ? iso(row.lastUsedAt) : undefined,
  };
}

export class OrgService {
  /** Without a checker (operator scripts) the strictest URL rule applies: no private targets. */
  constructor(
    private readonly db: Db,
    private readonly checks: ConfigChecker = new ConfigChecker(new ReferenceChecker(db), {
      allowPrivate: false,
    }),
  ) {}

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

  async updateOrg(ctx: ServiceContext, patch: OrgPatch): Promise<OrgView> {
    await this.checks.server(ctx, patch.server, "body.server");
    const data: Prisma.OrgUpdateInput = {};
    if (patch.name !== undefined) data.name = patch.name;
    if (patch.server !== undefined) {
      data.server = patch.server === null ? Prisma.DbNull : (patch.server as Prisma.InputJsonValue);
    }
    return orgView(await this.db.org.update({ where: { id: ctx.orgId }, data }));
  }

  async createToken(
    ctx: ServiceContext,
    input: { tag?: ApiKeyType; name?: string; restrictions?: TokenRestrictions },
  ): Promise<TokenView> {
    const type = input.tag ?? "private";
    const restrictions = await this.#restrictions(ctx, input.restrictions);
    const key = generateApiKey(type);
    const row = await this.db.apiKey.create({
      data: {
        orgId: ctx.orgId,
        name: input.name ?? null,
        type,
        prefix: key.prefix,
        hash: key.hash,
        ...(restrictions ? { restrictions: restrictions as Prisma.InputJsonValue } : {}),
      },
    });
    return tokenView(row, key.key);
  }

  /** Restrictions as stored: origins normalised, assistants the organisation's own (400 otherwise). */
  async #restrictions(
    ctx: ServiceContext,
    given: TokenRestrictions | undefined,
  ): Promise<TokenRestrictions | undefined> {
    if (!given) return undefined;
    await new ReferenceChecker(this.db).check(
      ctx,
      "assistant",
      refsOf("body.restrictions.allowedAssistantIds", given.allowedAssistantIds),
    );
    return storedRestrictions(given, "body.restrictions");
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

  /** A new `restrictions` replaces the key's whole set (as Vapi's UpdateTokenDTO). */
  async updateToken(
    ctx: ServiceContext,
    id: string,
    patch: { name?: string; restrictions?: TokenRestrictions },
  ): Promise<TokenView> {
    await this.getToken(ctx, id);
    const restrictions = await this.#restrictions(ctx, patch.restrictions);
    const row = await this.db.apiKey.update({
      where: { id },
      data: {
        ...(patch.name !== undefined || !restrictions ? { name: patch.name ?? null } : {}),
        ...(restrictions ? { restrictions: restrictions as Prisma.InputJsonValue } : {}),
      },
    });
    return tokenView(row);
  }

  /** Revocation keeps the row (for audit) and stops the key working at once. */
  async revokeToken(ctx: ServiceContext, id: string): Promise<TokenView> {
    await this.getToken(ctx, id);
    const row = await this.db.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
    return tokenView(row);
  }
}
