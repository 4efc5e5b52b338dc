import { type PriceCatalog, priceCatalogFromEnv } from "../../../libs/billing/prices.ts";
import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";

/**
 * The worker's configuration. Post-call analysis uses `providers.openaiBaseUrl` (OPENAI_BASE_URL) and,
 * for organisations without an OpenAI credential of their own, `providers.openaiApiKey`
 * (OPENAI_API_KEY), the same variables the media plane reads.
 */
export interface WorkerConfig extends CommonConfig {
  port: number;
  host: string;
  /** Prices calls whose cost the media plane could not record (see ensureCallCost). */
  priceCatalog: PriceCatalog;
  /** WORKER_JOB_LOCK_MS: a job whose worker died runs again within about 1.5 × this. */
  jobLockMs: number;
}

export function workerConfigFromEnv(env: Env): WorkerConfig {
  return {
    ...commonConfig(env),
    port: env.WORKER_PORT ?? 3002,
    host: env.HOST ?? "0.0.0.0",
    priceCatalog: priceCatalogFromEnv(env),
    jobLockMs: env.WORKER_JOB_LOCK_MS ?? 30_000,
  };
}

export function loadWorkerConfig(raw: Record<string, string | undefined> = process.env): WorkerConfig {
  return workerConfigFromEnv(parseEnv(raw));
}
