import type { FastifyInstance, FastifyRequest } from "fastify";
import { type CacheBus, TtlCache } from "../../../../libs/cache/read-cache.ts";
import { hashApiKey, isWellFormedApiKey, safeEqual } from "../../../../libs/crypto/index.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { ForbiddenError, RateLimitedError, UnauthorizedError } from "../../../../libs/errors/index.ts";
import { bearerToken } from "../../../../libs/http/bearer.ts";
import type { AuthMode } from "../../../../libs/http/route-config.ts";
import type { ServiceLogger } from "../services/common.ts";
import { keyRestrictions, type TokenRestrictions } from "../services/key-restrictions.ts";

/** Who is calling, as resolved from a Bearer key (and cached). */
export interface ResolvedKey {
  orgId: string;
  keyId: string;
  keyType: "private" | "public";
  /** The key's restrictions (Vapi's TokenRestrictions); what they allow is the route's to check. */
  restrictions?: TokenRestrictions;
}

/**
 * Who is calling, on every authenticated route, with the request's logger: it is the services'
 * context, so what a service logs carries the request's id.
 */
export interface AuthContext extends ResolvedKey {
  log: ServiceLogger;
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
  private readonly cache: TtlCache<ResolvedKey | null>;
  private readonly lastTouched = new Map<string, number>();
  constructor(
    private readonly db: Db,
    ttlMs: number,
    private readonly bus: CacheBus,
  ) {
    this.cache = new TtlCache(ttlMs);
    bus.register("apiKey", (keyId) => this.cache.deleteWhere((ctx) => ctx?.keyId === keyId));
  }

  /** The cached answer for a key, without any lookup (undefined: not cached). */
  cached(token: string): ResolvedKey | null | undefined {
    const now = Date.now();
    const hit = this.cache.get(hashApiKey(token), now);
    if (hit) this.touch(hit.keyId, now);
    return hit ?? undefined;
  }

  async resolve(token: string): Promise<ResolvedKey | null> {
    const hash = hashApiKey(token);
    const now = Date.now();
    const hit = this.cache.get(hash, now);
    if (hit !== undefined) return hit;
    const row = await this.db.apiKey.findUnique({
      where: { hash },
      select: { id: true, orgId: true, type: true, revokedAt: true, restrictions: true },
    });
    const restrictions = keyRestrictions(row?.restrictions);
    // A key turned off (`restrictions.enabled: false`) answers like a revoked one.
    const ctx: ResolvedKey | null =
      row && !row.revokedAt && restrictions?.enabled !== false
        ? {
            orgId: row.orgId,
            keyId: row.id,
            keyType: row.type === "public" ? ("public" as const) : ("private" as const),
            ...(restrictions ? { restrictions } : {}),
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

/** One budget: `take` counts a request against `key` and answers how many remain. */
export type Limiter = (req: FastifyRequest) => Promise<LimitResult>;
interface LimitResult {
  isAllowed: boolean;
  isExceeded?: boolean;
  max?: number;
  remaining?: number;
  ttlInSeconds?: number;
}

export interface AuthLimiters {
  /** Per authenticated key id. */
  perKey: Limiter;
  /** Per client address: unauthenticated routes, missing or invalid keys, uncached key lookups. */
  perAddress: Limiter;
  /** Per client address, on the signed webhooks. */
  webhook: Limiter;
}

export interface AuthPluginOptions {
  authenticator: ApiKeyAuthenticator;
  adminToken: string;
  limiters: AuthLimiters;
}

function rateLimited(scope: string, r: LimitResult): RateLimitedError {
  const retryAfter = Math.max(1, r.ttlInSeconds ?? 60);
  return new RateLimitedError(
    `Rate limit of ${r.max} requests per minute ${scope} exceeded; retry in ${retryAfter} s`,
    retryAfter,
  );
}

async function draw(limiter: Limiter, request: FastifyRequest, scope: string): Promise<LimitResult> {
  const r = await limiter(request);
  if (r.isExceeded) throw rateLimited(scope, r);
  return r;
}

/**
 * Authentication and rate limits in one hook, in this order, so that nothing an unauthenticated
 * client sends costs a database lookup once its address is over budget:
 * 1. routes without a key (health, docs, dashboard assets, signed webhooks) draw on a per-address
 *    budget (webhooks on their own, larger one);
 * 2. a missing, malformed or wrong key draws on the per-address budget and is refused before any
 *    lookup when it is not even shaped like a key;
 * 3. a key not in the cache draws on the per-address budget before it is looked up (a real client
 *    looks its key up once per cache TTL; someone guessing keys is stopped after a few hundred);
 * 4. a valid key draws on its own budget, keyed by the key's id (not the header's bytes, so no
 *    spelling of the same key gets a fresh budget).
 */
export async function registerAuth(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const { authenticator, adminToken, limiters } = opts;
  app.decorateRequest("auth", undefined as unknown as AuthContext);

  app.decorate("revokeApiKeyEverywhere", (keyId: string) => authenticator.revoke(keyId));
  // The same eviction when a key's restrictions change: the next request looks it up again.
  app.decorate("evictApiKeyEverywhere", (keyId: string) => authenticator.revoke(keyId));

  app.addHook("onRequest", async (request, reply) => {
    const config = request.routeOptions.config;
    // Unknown routes fall through to the 404 handler, whatever the credentials.
    const mode: AuthMode = request.routeOptions.url ? (config.auth ?? "private") : "none";
    if (mode === "none") {
      if (config.addressLimit === "webhook") await draw(limiters.webhook, request, "per address");
      else await draw(limiters.perAddress, request, "per address");
      return;
    }
    const token = bearerToken(request.headers.authorization);
    if (mode === "admin") {
      await draw(limiters.perAddress, request, "per address");
      if (!token) throw new UnauthorizedError();
      if (!safeEqual(token, adminToken)) throw new UnauthorizedError("Invalid admin token");
      return;
    }
    if (!token || !isWellFormedApiKey(token)) {
      await draw(limiters.perAddress, request, "per address");
      throw token ? new UnauthorizedError("Invalid or revoked API key") : new UnauthorizedError();
    }
    let ctx = authenticator.cached(token);
    if (ctx === undefined) {
      await draw(limiters.perAddress, request, "per address");
      ctx = await authenticator.resolve(token);
    }
    if (!ctx) throw new UnauthorizedError("Invalid or revoked API key");
    request.auth = { ...ctx, log: request.log };
    const budget = await draw(limiters.perKey, request, "for this API key");
    reply.header("x-ratelimit-limit", String(budget.max));
    reply.header("x-ratelimit-remaining", String(budget.remaining));
    if (mode === "private" && ctx.keyType !== "private") {
      throw new ForbiddenError(
        'This is a public key: it can only start web calls (POST /call with transport {"provider":"vapi.websocket"}). Use a private key.',
      );
    }
  });
}

declare module "fastify" {
  interface FastifyInstance {
    revokeApiKeyEverywhere(keyId: string): Promise<void>;
    evictApiKeyEverywhere(keyId: string): Promise<void>;
  }
}
