import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { Db } from "../db/index.ts";

export const HealthResponse = Type.Object(
  {
    status: Type.Union([Type.Literal("ok"), Type.Literal("unavailable")]),
    database: Type.Union([Type.Literal("ok"), Type.Literal("unreachable")]),
    redis: Type.Union([Type.Literal("ok"), Type.Literal("unreachable"), Type.Literal("not-configured")]),
  },
  { title: "Health" },
);

/** The media app's health also counts its open websockets. */
export const MediaHealthResponse = Type.Object(
  {
    ...HealthResponse.properties,
    connections: Type.Object({
      pending: Type.Integer({ description: "open streams that have not (yet) sent a valid `start`" }),
      active: Type.Integer({ description: "open streams carrying an authenticated call" }),
    }),
  },
  { title: "MediaHealth" },
);

export interface ConnectionCounts {
  pending: number;
  active: number;
}

async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error("timeout")), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** 200 when the database and Redis answer, 503 otherwise. */
export async function checkHealth(db: Db, redis: Redis | undefined) {
  const database = await within(db.$queryRaw`SELECT 1`, 2000).then(
    () => "ok" as const,
    () => "unreachable" as const,
  );
  const r = !redis
    ? ("not-configured" as const)
    : await within(redis.ping(), 2000).then(
        () => "ok" as const,
        () => "unreachable" as const,
      );
  const ok = database === "ok" && r !== "unreachable";
  return { status: ok ? ("ok" as const) : ("unavailable" as const), database, redis: r };
}

/** `GET /health`, the same in all three apps; the media app adds its `connections`. */
export function registerHealthRoute(
  app: FastifyInstance,
  deps: () => { db: Db; redis?: Redis },
  connections?: () => ConnectionCounts,
): void {
  app.get(
    "/health",
    {
      config: { auth: "none" },
      schema: {
        operationId: "health",
        tags: ["Health"],
        summary: "Liveness and dependency check",
        security: [],
        response: connections
          ? { 200: MediaHealthResponse, 503: MediaHealthResponse }
          : { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_req, reply) => {
      const { db, redis } = deps();
      const h = await checkHealth(db, redis);
      const body = connections ? { ...h, connections: connections() } : h;
      return reply.status(h.status === "ok" ? 200 : 503).send(body);
    },
  );
}
