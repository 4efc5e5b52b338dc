import type { PriceCatalog } from "../../../libs/billing/prices.ts";
import { priceCatalogFromEnv } from "../../../libs/billing/prices.ts";
import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";

export interface MediaConfig extends CommonConfig {
  port: number;
  host: string;
  /** How long a stopping process lets active calls run before ending them with `worker-shutdown`. */
  drainMs: number;
  /** The media process's database pool size (MEDIA_DB_POOL_SIZE). */
  dbPoolSize: number;
  priceCatalog: PriceCatalog;
}

export function mediaConfigFromEnv(env: Env): MediaConfig {
  return {
    ...commonConfig(env),
    port: env.MEDIA_PORT ?? 3001,
    host: env.HOST ?? "0.0.0.0",
    drainMs: env.MEDIA_DRAIN_MS ?? 30_000,
    dbPoolSize: env.MEDIA_DB_POOL_SIZE ?? 20,
    priceCatalog: priceCatalogFromEnv(env),
  };
}

export function loadMediaConfig(raw: Record<string, string | undefined> = process.env): MediaConfig {
  return mediaConfigFromEnv(parseEnv(raw));
}
