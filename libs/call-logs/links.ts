import { createHmac, timingSafeEqual } from "node:crypto";

// The call log's signed, expiring URL (`artifact.logUrl` in API answers): `…/call/:id/call-logs.json
// ?expires=<unix seconds>&signature=<HMAC>` works without an API key until it expires, so a page can
// link it. The signature is HMAC-SHA256 of the call id and the expiry under a key derived from
// SECRETS_KEY with its own label: nothing is stored, and a link opens one call's log, nothing else
// (a recording's or a monitor's signature is no good here, nor the reverse).

const LABEL = "switchboard/call-log-url/v1";
/** How long `artifact.logUrl` in an API answer works. */
export const LOG_URL_TTL_MS = 60 * 60 * 1000;
/** How long the URL `GET /call/:id/call-logs` redirects to works (the client follows it at once). */
export const LOG_REDIRECT_TTL_MS = 5 * 60 * 1000;

export interface CallLogLinks {
  publicUrl: string;
  secretsKey: Buffer;
}

const keys = new WeakMap<Buffer, Buffer>();

function keyFor(secretsKey: Buffer): Buffer {
  let k = keys.get(secretsKey);
  if (!k) {
    k = createHmac("sha256", secretsKey).update(LABEL).digest();
    keys.set(secretsKey, k);
  }
  return k;
}

function sign(secretsKey: Buffer, callId: string, expires: number): string {
  return createHmac("sha256", keyFor(secretsKey)).update(`${callId}\n${expires}`).digest("base64url");
}

const base = (publicUrl: string) => publicUrl.replace(/\/$/, "");

/** The authenticated route (an API key of the call's organisation): what a stored artifact names. */
export function callLogRouteUrl(publicUrl: string, callId: string): string {
  return `${base(publicUrl)}/call/${callId}/call-logs`;
}

export function signedCallLogUrl(links: CallLogLinks, callId: string, expiresAtMs: number): string {
  const expires = Math.ceil(expiresAtMs / 1000);
  const signature = sign(links.secretsKey, callId, expires);
  return `${base(links.publicUrl)}/call/${callId}/call-logs.json?expires=${expires}&signature=${signature}`;
}

export type SignedLogCheck = "ok" | "expired" | "invalid";

/** Whether a signed log URL's query is good at `nowMs` (constant time). */
export function checkSignedCallLog(
  secretsKey: Buffer,
  callId: string,
  expires: string | undefined,
  signature: string | undefined,
  nowMs: number,
): SignedLogCheck {
  if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return "invalid";
  const expected = Buffer.from(sign(secretsKey, callId, Number(expires)));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid";
  return Number(expires) * 1000 < nowMs ? "expired" : "ok";
}

/**
 * A stored artifact as an API answer shows it: a call with a log gets a fresh signed `logUrl`
 * (LOG_URL_TTL_MS from `nowMs`) in place of the authenticated route it was stored with.
 */
export function withSignedLogUrl(
  artifact: unknown,
  links: CallLogLinks,
  callId: string,
  nowMs: number,
): unknown {
  if (!artifact || typeof artifact !== "object" || Array.isArray(artifact)) return artifact;
  const a = artifact as Record<string, unknown>;
  if (typeof a.logUrl !== "string") return artifact;
  return { ...a, logUrl: signedCallLogUrl(links, callId, nowMs + LOG_URL_TTL_MS) };
}
