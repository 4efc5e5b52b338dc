import Fastify, { type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { createDb, type Db } from "../../../libs/db/index.ts";
import { installErrorHandler, registerHealthRoute } from "../../../libs/http/index.ts";
import type { WorkerConfig } from "./config.ts";

export interface BuildWorkerOptions {
  db?: Db;
  redis?: Redis;
  logger?: boolean | object;
}

/**
 * The jobs plane (webhook delivery, post-call reports, usage to Stripe). This build serves its
 * health route; the job processors arrive with the media-plane and billing issues.
 */
export async function buildWorker(
  config: WorkerConfig,
  options: BuildWorkerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? { level: config.logLevel } });
  installErrorHandler(app);
  const db = options.db ?? createDb(config.databaseUrl);
  const redis = options.redis ?? (config.redisUrl ? new Redis(config.redisUrl) : undefined);
  app.addHook("onClose", async () => {
    if (!options.redis) redis?.disconnect();
    if (!options.db) await db.$disconnect();
  });
  registerHealthRoute(app, () => ({ db, redis }));
  await app.ready();
  return app;
}
