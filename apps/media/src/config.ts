import type { PriceCatalog } from "../../../libs/billing/prices.ts";
import { priceCatalogFromEnv } from "../../../libs/billing/prices.ts";
import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";
import type { StreamLimits } from "../../../libs/media/stream-guard.ts";

export interface MediaConfig extends CommonConfig {
  port: number;
  host: string;
  /** How long a stopping process lets active calls run before ending them with `worker-shutdown`. */
  drainMs: number;
  /** The media process's database pool size (MEDIA_DB_POOL_SIZE). */
  dbPoolSize: number;
  priceCatalog: PriceCatalog;
  /** Bounds on the media websockets: start deadline, total and per-address caps. */
  streams: StreamLimits;
}

export function mediaConfigFromEnv(env: Env): MediaConfig {
  return {
    ...commonConfig(env),
    port: env.MEDIA_PORT ?? 3001,
    host: env.HOST ?? "0.0.0.0",
    drainMs: env.MEDIA_DRAIN_MS ?? 30_000,
    dbPoolSize: env.MEDIA_DB_POOL_SIZE ?? 20,
    priceCatalog: priceCatalogFromEnv(env),
    streams: {
      startTimeoutMs: env.MEDIA_START_TIMEOUT_MS ?? 5000,
      maxConnections: env.MEDIA_MAX_CONNECTIONS ?? 2000,
      maxPendingPerAddress: env.MEDIA_MAX_PENDING_PER_ADDRESS ?? 200,
    },
  };
}

export function loadMediaConfig(raw: Record<string, string | undefined> = process.env): MediaConfig {
  return mediaConfigFromEnv(parseEnv(raw));
}
