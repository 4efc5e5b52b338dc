import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from "fastify";

// Every app logs pino JSON lines carrying the app's name, and every line of a request carries its
// id (`reqId`): the caller's `x-request-id` when it is a sane token (a proxy or the client
// correlating its own logs), else a fresh UUID; it is returned in the `x-request-id` header.
// Credentials are censored wherever they appear in a logged object.

export type AppName = "api" | "media" | "worker";

export const REQUEST_ID_HEADER = "x-request-id";

/** Printable ASCII that cannot break a log line or a header: UUIDs, hex, base64(url), dotted ids. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** The caller's request id when it is sane, else a new one. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === "string" && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

// Header names are lower case in Node; other objects are matched on the usual spellings, at the
// top level and one or two levels down (pino's redaction does not recurse).
const HEADERS = ["authorization", "cookie", "x-vapi-secret", "x-twilio-signature", "stripe-signature"];
const FIELDS = [
  "apiKey",
  "authToken",
  "twilioAuthToken",
  "token",
  "secret",
  "password",
  "authorization",
  "Authorization",
];

export const REDACT_PATHS = [
  ...HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `*.headers["${h}"]`]),
  ...FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

/** A URL as logged: the value of a `token` query parameter (a call's monitor URLs) is not. */
export function loggableUrl(url: string | undefined): string | undefined {
  // A logged object's `req` need not be a request (a caller may log its own `{req: …}`).
  return typeof url === "string" ? url.replace(/([?&]token=)[^&#]*/gi, "$1[redacted]") : url;
}

/** Fastify's own request serializer, with the URL's tokens redacted. */
function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    url: loggableUrl(req.url),
    version: req.headers?.["accept-version"] as string | undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/**
 * The Fastify options that make the above happen. `logger` is the build option: false for none, an
 * object (e.g. `{level, stream}` in tests) merged over the defaults; the app name and redaction
 * always apply.
 */
export function loggingOptions(
  app: AppName,
  level: string,
  logger: boolean | object | undefined,
): Pick<FastifyServerOptions, "logger" | "genReqId" | "requestIdHeader"> {
  return {
    logger:
      logger === false
        ? false
        : {
            level,
            ...(typeof logger === "object" ? logger : {}),
            base: { app, pid: process.pid, hostname: hostname() },
            redact: { paths: REDACT_PATHS, censor: "[redacted]" },
            serializers: { req: serializeRequest },
          },
    // Fastify would take the header as it is; the id is checked here instead. Request log lines
    // carry it as `reqId` (Fastify's default label).
    requestIdHeader: false,
    genReqId: (req) => requestIdFor(req.headers[REQUEST_ID_HEADER]),
  };
}

/** Returns each request's id in `x-request-id` (set first thing, so every answer carries it). */
export function installRequestId(app: FastifyInstance): void {
  app.addHook("onRequest", (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
}
