import { createHmac } from "node:crypto";
import type { BackoffPlan, Server } from "../vapi/common.ts";
import { postOnce, WebhookError } from "./http.ts";

// Which server gets a message, which headers it carries, and the direct (answered) send.
//
// Headers on every server message, in the order they are applied (later wins):
//   content-type: application/json
//   x-vapi-secret: <server.secret>                  when the server has a secret (Vapi's legacy scheme)
//   <server.headers…>                               the customer's own headers (names lower-cased)
//   x-timestamp: <Unix time in milliseconds>        when the server has a secret
//   x-signature: hex(HMAC-SHA256(secret, `${x-timestamp}.${body}`))
//                                                   Vapi's HMAC credential defaults: header names
//                                                   x-signature / x-timestamp, payload "{timestamp}.{body}",
//                                                   hex, no prefix. `body` is the exact raw request body.
//   x-vapi-idempotency-key: <delivery id>           queued deliveries; identical on every retry
// A customer verifies with: hmac = HMAC-SHA256(secret, timestamp + "." + rawBody) as lowercase hex,
// constant-time compare with x-signature, and reject timestamps too far from now (replay window).
// A retry of a queued delivery is signed afresh (new timestamp, same body and idempotency key).

export const DEFAULT_SERVER_TIMEOUT_SECONDS = 20;
export const SIGNATURE_HEADER = "x-signature";
export const TIMESTAMP_HEADER = "x-timestamp";
export const SECRET_HEADER = "x-vapi-secret";
export const IDEMPOTENCY_HEADER = "x-vapi-idempotency-key";

/** A server with a URL (what `resolveServer` returns). */
export type ServerTarget = Server & { url: string };

interface HasServer {
  server?: Server | null;
}

/**
 * Vapi's precedence for where a message goes: the tool's server (tool calls only), then the
 * assistant's, the phone number's, the organisation's. The first with a URL wins.
 */
export function resolveServer(sources: {
  tool?: HasServer | null;
  assistant?: HasServer | null;
  phoneNumber?: HasServer | null;
  org?: HasServer | null;
}): ServerTarget | undefined {
  for (const s of [sources.tool, sources.assistant, sources.phoneNumber, sources.org]) {
    const server = s?.server;
    if (server?.url) return { ...server, url: server.url };
  }
  return undefined;
}

export function serverTimeoutMs(server: Server): number {
  return Math.round((server.timeoutSeconds ?? DEFAULT_SERVER_TIMEOUT_SECONDS) * 1000);
}

/** hex HMAC-SHA256 over `${timestamp}.${body}`. */
export function signBody(secret: string, timestamp: string, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** Headers that do not depend on the moment of sending (no signature). */
export function baseHeaders(server: Pick<Server, "secret" | "headers">): Record<string, string> {
  const headers: Record<string, string> = {};
  if (server.secret) headers[SECRET_HEADER] = server.secret;
  for (const [k, v] of Object.entries(server.headers ?? {})) headers[k.toLowerCase()] = v;
  headers["content-type"] = "application/json";
  return headers;
}

/** The signature headers for one send; empty without a secret. */
export function signatureHeaders(
  secret: string | undefined,
  body: string,
  now: number = Date.now(),
): Record<string, string> {
  if (!secret) return {};
  const timestamp = String(now);
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signBody(secret, timestamp, body) };
}

export function buildHeaders(
  server: Pick<Server, "secret" | "headers">,
  body: string,
  options: { idempotencyKey?: string; now?: number } = {},
): Record<string, string> {
  return {
    ...baseHeaders(server),
    ...signatureHeaders(server.secret, body, options.now),
    ...(options.idempotencyKey ? { [IDEMPOTENCY_HEADER]: options.idempotencyKey } : {}),
  };
}

export interface SendOptions {
  /** Per attempt; default the server's `timeoutSeconds` (20 s). assistant-request passes 7 500. */
  timeoutMs?: number;
  /** Aborts the request and any pending retry (the call ended, barge-in…). */
  signal?: AbortSignal;
  /** ALLOW_PRIVATE_WEBHOOK_URLS. */
  allowPrivate: boolean;
}

/** Delay before retry `retry` (1-based) of a Vapi backoffPlan. */
export function backoffPlanDelayMs(plan: BackoffPlan, retry: number): number {
  const base = plan.baseDelaySeconds * 1000;
  return plan.type === "exponential" ? base * 2 ** (retry - 1) : base;
}

function retryable(err: WebhookError, plan: BackoffPlan): boolean {
  if (err.kind === "aborted" || err.kind === "unsafe-url" || err.kind === "invalid-json") return false;
  if (err.kind === "status" && err.status !== undefined) {
    return !(plan.excludedStatusCodes ?? []).includes(err.status);
  }
  return true;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * POSTs a message that needs an answer (tool-calls, assistant-request, transfer-destination-request)
 * and returns the parsed JSON response. Throws WebhookError (`kind`: unsafe-url | timeout | aborted |
 * network | status | invalid-json). No retries unless `server.backoffPlan` asks for them (then any
 * non-2xx not in `excludedStatusCodes`, timeouts and network errors are retried).
 */
export async function sendServerMessage<T = unknown>(
  server: ServerTarget,
  message: unknown,
  options: SendOptions,
): Promise<T> {
  const body = JSON.stringify(message);
  const timeoutMs = options.timeoutMs ?? serverTimeoutMs(server);
  const plan = server.backoffPlan;
  const maxRetries = plan ? Math.max(0, Math.floor(plan.maxRetries)) : 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await postOnce(server.url, body, buildHeaders(server, body), {
        timeoutMs,
        signal: options.signal,
        allowPrivate: options.allowPrivate,
      });
      if (res.status < 200 || res.status >= 300) {
        throw new WebhookError(
          "status",
          server.url,
          `server answered ${res.status}`,
          res.status,
          res.body.slice(0, 500),
        );
      }
      if (res.body.trim() === "") return {} as T;
      try {
        return JSON.parse(res.body) as T;
      } catch {
        throw new WebhookError(
          "invalid-json",
          server.url,
          `server answered ${res.status} with a body that is not JSON`,
          res.status,
          res.body.slice(0, 500),
        );
      }
    } catch (err) {
      if (!(err instanceof WebhookError) || !plan || attempt >= maxRetries || !retryable(err, plan))
        throw err;
      await sleep(backoffPlanDelayMs(plan, attempt + 1), options.signal);
      if (options.signal?.aborted)
        throw new WebhookError("aborted", server.url, `request to ${server.url} aborted`);
    }
  }
}
