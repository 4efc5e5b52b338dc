import type { FastifyInstance } from "fastify";
import { safeEqual } from "../crypto/index.ts";
import { UnauthorizedError } from "../errors/index.ts";
import type { AppName } from "../http/logging.ts";
import { httpRequestDuration, registry } from "./index.ts";

export interface MetricsRouteOptions {
  /** The `app` label of this instance's HTTP requests. */
  app: AppName;
  /** METRICS_TOKEN: when set, a scrape must send `Authorization: Bearer <token>`. */
  token?: string;
}

/**
 * Times every request of `app` (by route pattern, never the raw URL: ids would make a series per
 * resource) and serves `GET /metrics`. Call it right after creating the instance, before any
 * plugin is registered, so the timing hook reaches every route.
 */
export function installMetrics(app: FastifyInstance, opts: MetricsRouteOptions): void {
  app.addHook("onResponse", (request, reply, done) => {
    httpRequestDuration.observe(
      {
        app: opts.app,
        method: request.method,
        route: request.routeOptions.url ?? "unmatched",
        status_code: reply.statusCode,
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
  // Not part of the public API (hidden from OpenAPI). Scrapes normally come from the cluster's
  // network; where the port is reachable from outside, METRICS_TOKEN keeps the figures private.
  app.get("/metrics", { config: { auth: "none" }, schema: { hide: true } }, async (request, reply) => {
    if (opts.token !== undefined) {
      const m = /^Bearer\s+(.+)$/is.exec(request.headers.authorization ?? "");
      if (!m?.[1] || !safeEqual(m[1].trim(), opts.token)) {
        throw new UnauthorizedError("Send the metrics token: `Authorization: Bearer <METRICS_TOKEN>`");
      }
    }
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
}
