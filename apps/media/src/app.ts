import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { createDb, type Db } from "../../../libs/db/index.ts";
import { installErrorHandler, registerHealthRoute } from "../../../libs/http/index.ts";
import type { MediaConfig } from "./config.ts";

export interface BuildMediaOptions {
  db?: Db;
  redis?: Redis;
  logger?: boolean | object;
}

/**
 * The media plane: one call session per Twilio Media Streams websocket. This build serves its
 * health route and the websocket plugin; call sessions arrive with the media-plane issue.
 */
export async function buildMedia(
  config: MediaConfig,
  options: BuildMediaOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? { level: config.logLevel } });
  installErrorHandler(app);
  const db = options.db ?? createDb(config.databaseUrl);
  const redis = options.redis ?? (config.redisUrl ? new Redis(config.redisUrl) : undefined);
  app.addHook("onClose", async () => {
    if (!options.redis) redis?.disconnect();
    if (!options.db) await db.$disconnect();
  });
  await app.register(websocket);
  registerHealthRoute(app, () => ({ db, redis }));
  await app.ready();
  return app;
}
