import { validateHeaderName, validateHeaderValue } from "node:http";
import { ValidationError } from "../errors/index.ts";
import { IDEMPOTENCY_HEADER, SECRET_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "./server.ts";
import { checkUrlWhenSaved, type SsrfOptions, UnsafeUrlError } from "./ssrf.ts";

// What a saved `server` (and any other URL the platform would fetch) must satisfy beyond its schema,
// checked when it is saved so the customer hears of a mistake at once instead of every later
// delivery failing quietly: the URL passes the send-time SSRF rule (ssrf.ts), and every header could
// actually be sent (Node refuses a CR, LF or NUL in a value when the request is made).

/**
 * Headers a customer may not set in `server.headers`: the ones the platform sets on every server
 * message (see server.ts) and the ones HTTP/1.1 framing and routing own (overriding Host,
 * Content-Length, Transfer-Encoding or Connection would let a header smuggle or redirect a request).
 */
export const RESERVED_SERVER_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "trailer",
  "expect",
  SECRET_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  IDEMPOTENCY_HEADER,
  "x-vapi-signature",
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Throws ValidationError naming `field` unless `url` is one the platform may send to. */
export async function checkOutboundUrl(url: string, field: string, options: SsrfOptions): Promise<void> {
  try {
    await checkUrlWhenSaved(url, options);
  } catch (err) {
    if (err instanceof UnsafeUrlError) throw new ValidationError(`${field} ${err.message}`);
    throw err;
  }
}

/** Throws ValidationError naming the header unless every header could be sent and none is reserved. */
export function checkServerHeaders(headers: Record<string, unknown>, field: string): void {
  for (const [name, value] of Object.entries(headers)) {
    const where = `${field}[${JSON.stringify(name)}]`;
    try {
      validateHeaderName(name);
    } catch {
      throw new ValidationError(
        `${where} is not a valid header name (letters, digits and !#$%&'*+-.^_\`|~ only)`,
      );
    }
    if (RESERVED_SERVER_HEADERS.has(name.toLowerCase())) {
      throw new ValidationError(`${where} is set by the platform and cannot be overridden`);
    }
    if (typeof value !== "string") throw new ValidationError(`${where} must be a string`);
    try {
      validateHeaderValue(name, value);
    } catch {
      throw new ValidationError(`${where} must not contain CR, LF, NUL or other control characters`);
    }
  }
}

/**
 * Checks a Vapi `Server` object at `field` (e.g. `body.server`): its URL, its headers and its
 * secret (sent as the X-Vapi-Secret header). Anything that is not an object is left to the schema.
 */
export async function checkServerConfig(server: unknown, field: string, options: SsrfOptions): Promise<void> {
  if (!isPlainObject(server)) return;
  if (isPlainObject(server.headers)) checkServerHeaders(server.headers, `${field}.headers`);
  if (typeof server.secret === "string") {
    try {
      validateHeaderValue(SECRET_HEADER, server.secret);
    } catch {
      throw new ValidationError(`${field}.secret must not contain CR, LF, NUL or other control characters`);
    }
  }
  if (typeof server.url === "string") await checkOutboundUrl(server.url, `${field}.url`, options);
}
