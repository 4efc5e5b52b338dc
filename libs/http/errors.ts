import type { FastifyError, FastifyInstance } from "fastify";
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import { AppError, statusText } from "../errors/index.ts";

/** One error envelope for every app: `{statusCode, error, message}`. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | Error, request, reply) => {
    if (err instanceof AppError) {
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return reply
        .status(err.statusCode)
        .send({ statusCode: err.statusCode, error: statusText(err.statusCode), message: err.message });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      return reply.status(400).send({ statusCode: 400, error: "Bad Request", message: fe.message });
    }
    const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
    if (status >= 400 && status < 500) {
      let message = fe.message;
      if (fe.code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError) {
        message = "Body is not valid JSON";
      } else if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
        message = "Request body is too large";
      }
      return reply.status(status).send({ statusCode: status, error: statusText(status), message });
    }
    if (isDatabaseUnavailable(err)) {
      // Its connection was cut (failover, restart, terminated backend): the pool hands the next
      // request a fresh one. Unexpected but handled, and the client may simply retry.
      request.log.warn({ err }, "database unavailable");
      return reply.status(503).header("retry-after", "1").send({
        statusCode: 503,
        error: "Service Unavailable",
        message: "The database is unavailable for a moment; retry the request",
      });
    }
    request.log.error({ err }, "unhandled error");
    return reply
      .status(500)
      .send({ statusCode: 500, error: "Internal Server Error", message: "An unexpected error occurred" });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      statusCode: 404,
      error: "Not Found",
      message: `Route ${request.method} ${request.url.split("?")[0]} not found`,
    });
  });
}
