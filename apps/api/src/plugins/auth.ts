import type { FastifyInstance, FastifyRequest } from "fastify";
import { type CacheBus, TtlCache } from "../../../../libs/cache/read-cache.ts";
import { hashApiKey, safeEqual } from "../../../../libs/crypto/index.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { ForbiddenError, UnauthorizedError } from "../../../../libs/errors/index.ts";
import type { AuthMode } from "../../../../libs/http/route-config.ts";

/** Who is calling: resolved from the Bearer key on every authenticated route. */
export interface AuthContext {
  orgId: string;
  keyId: string;
  keyType: "private" | "public";
}

declare module "fastify" {
  interface FastifyRequest {
    auth: AuthContext;
  }
}

/**
 * Looking a key up in Postgres on every request would cost more CPU than the rest of a request,
 * so resolved keys are cached for a short TTL. Revocation evicts the entry here at once and,
 * through the cache bus (Redis pub/sub), in every other API process.
 */
export class ApiKeyAuthenticator {
  private readonly cache: TtlCache<AuthContext | null>;
  private readonly lastTouched = new Map<string, number>();
  constructor(
    private readonly db: Db,
    ttlMs: number,
    private readonly bus: CacheBus,
  ) {
    this.cache = new TtlCache(ttlMs);
    bus.register("apiKey", (keyId) => this.cache.deleteWhere((ctx) => ctx?.keyId === keyId));
  }

  async resolve(token: string): Promise<AuthContext | null> {
    const hash = hashApiKey(token);
    const now = Date.now();
    const hit = this.cache.get(hash, now);
    if (hit !== undefined) return hit;
    const row = await this.db.apiKey.findUnique({
      where: { hash },
      select: { id: true, orgId: true, type: true, revokedAt: true },
    });
    const ctx =
      row && !row.revokedAt
        ? {
            orgId: row.orgId,
            keyId: row.id,
            keyType: row.type === "public" ? ("public" as const) : ("private" as const),
          }
        : null;
    // Unknown keys are not cached: a key created a moment ago must work at once.
    if (ctx) {
      this.cache.set(hash, ctx, now);
      this.touch(ctx.keyId, now);
    }
    return ctx;
  }

  /** lastUsedAt is informational: written at most once a minute per key, off the request path. */
  private touch(keyId: string, now: number): void {
    const last = this.lastTouched.get(keyId) ?? 0;
    if (now - last < 60_000) return;
    this.lastTouched.set(keyId, now);
    this.db.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: new Date(now) } }).catch(() => {});
  }

  revoke(keyId: string): Promise<void> {
    return this.bus.evict("apiKey", keyId);
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m?.[1]?.trim();
}

export interface AuthPluginOptions {
  authenticator: ApiKeyAuthenticator;
  adminToken: string;
}

export async function registerAuth(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const { authenticator, adminToken } = opts;
  app.decorateRequest("auth", undefined as unknown as AuthContext);

  app.decorate("revokeApiKeyEverywhere", (keyId: string) => authenticator.revoke(keyId));

  app.addHook("onRequest", async (request) => {
    // Unknown routes fall through to the 404 handler, whatever the credentials.
    if (!request.routeOptions.url) return;
    const mode: AuthMode = request.routeOptions.config.auth ?? "private";
    if (mode === "none") return;
    const token = bearer(request);
    if (!token) throw new UnauthorizedError();
    if (mode === "admin") {
      if (!safeEqual(token, adminToken)) throw new UnauthorizedError("Invalid admin token");
      return;
    }
    const ctx = await authenticator.resolve(token);
    if (!ctx) throw new UnauthorizedError("Invalid or revoked API key");
    if (mode === "private" && ctx.keyType !== "private") {
      throw new ForbiddenError("This is a public key: it can only start web calls. Use a private key.");
    }
    request.auth = ctx;
  });
}

declare module "fastify" {
  interface FastifyInstance {
    revokeApiKeyEverywhere(keyId: string): Promise<void>;
  }
}
