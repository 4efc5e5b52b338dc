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
    bodyLimitBytes: env.BODY_LIMIT_BYTES ?? 1024 * 1024,
    authCacheTtlMs: env.AUTH_CACHE_TTL_MS ?? 30_000,
    priceCatalog: priceCatalogFromEnv(env),
  };
}

export function loadApiConfig(raw: Record<string, string | undefined> = process.env): ApiConfig {
  return apiConfigFromEnv(parseEnv(raw));
}
