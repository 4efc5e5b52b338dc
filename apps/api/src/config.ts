import { type PriceCatalog, priceCatalogFromEnv } from "../../../libs/billing/prices.ts";
import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";

export interface ApiConfig extends CommonConfig {
  port: number;
  host: string;
  rateLimitPerMinute: number;
  /** Unauthenticated requests, missing or invalid keys and uncached key lookups, per client address. */
  rateLimitPerAddressPerMinute: number;
  /** Twilio and Stripe webhooks per client address (their signature is checked after). */
  webhookRateLimitPerMinute: number;
  /** Fastify's trustProxy: which peers' X-Forwarded-For names the client address. */
  trustProxy: TrustProxy;
  bodyLimitBytes: number;
  authCacheTtlMs: number;
  /** The deployment's price catalogue: calls that end without a media session are priced with it. */
  priceCatalog: PriceCatalog;
}

export function apiConfigFromEnv(env: Env): ApiConfig {
  return {
    ...commonConfig(env),
    port: env.API_PORT ?? 3000,
    host: env.HOST ?? "0.0.0.0",
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE ?? 1200,
    rateLimitPerAddressPerMinute: env.RATE_LIMIT_PER_ADDRESS_PER_MINUTE ?? 300,
    webhookRateLimitPerMinute: env.WEBHOOK_RATE_LIMIT_PER_MINUTE ?? 6000,
    trustProxy: trustProxy(env.TRUST_PROXY),
    bodyLimitBytes: env.BODY_LIMIT_BYTES ?? 1024 * 1024,
    authCacheTtlMs: env.AUTH_CACHE_TTL_MS ?? 30_000,
    priceCatalog: priceCatalogFromEnv(env),
  };
}

// Only proxies on private networks are believed by default: a client on the internet cannot pick
// its own address (and so a fresh per-address rate-limit bucket) with a forged X-Forwarded-For.
const DEFAULT_TRUST_PROXY = "loopback,linklocal,uniquelocal";

/** Fastify's `trustProxy`: all, none, addresses/CIDRs/names, or the nearest N hops. */
export type TrustProxy = boolean | string | ((address: string, hop: number) => boolean);

function trustProxy(raw: string | undefined): TrustProxy {
  const v = (raw ?? DEFAULT_TRUST_PROXY).trim();
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_address, hop) => hop < hops;
  }
  return v;
}

export function loadApiConfig(raw: Record<string, string | undefined> = process.env): ApiConfig {
  return apiConfigFromEnv(parseEnv(raw));
}
