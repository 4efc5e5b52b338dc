import { createHmac, timingSafeEqual } from "node:crypto";
import { TRACK_ROUTES, type Track } from "./tracks.ts";

// Signed, expiring download URLs (Vapi's `presigned*Url`): `…/call/:id/recording/<track>.wav?
// expires=<unix seconds>&signature=<HMAC>` works without an API key until it expires, so a page can
// embed it in an <audio> element. The signature is HMAC-SHA256 of the call id, the track and the
// expiry under a key derived from SECRETS_KEY with its own label: nothing is stored, and a link is
// good for one track of one call until its time.

const LABEL = "switchboard/recording-url/v1";
/** How long a presigned URL in an API answer works. */
export const PRESIGNED_TTL_MS = 60 * 60 * 1000;
/** How long the URL a download route redirects to works (the client follows it at once). */
export const REDIRECT_TTL_MS = 5 * 60 * 1000;

const keys = new WeakMap<Buffer, Buffer>();

function keyFor(secretsKey: Buffer): Buffer {
  let k = keys.get(secretsKey);
  if (!k) {
    k = createHmac("sha256", secretsKey).update(LABEL).digest();
    keys.set(secretsKey, k);
  }
  return k;
}

function sign(secretsKey: Buffer, callId: string, track: Track, expires: number): string {
  return createHmac("sha256", keyFor(secretsKey))
    .update(`${callId}\n${track}\n${expires}`)
    .digest("base64url");
}

export interface RecordingLinks {
  publicUrl: string;
  secretsKey: Buffer;
}

/** The path of a track's signed download (below PUBLIC_URL). */
export function signedPath(callId: string, track: Track): string {
  return `/call/${callId}/recording/${track}.wav`;
}

export function signedRecordingUrl(
  links: RecordingLinks,
  callId: string,
  track: Track,
  expiresAtMs: number,
): string {
  const expires = Math.ceil(expiresAtMs / 1000);
  const signature = sign(links.secretsKey, callId, track, expires);
  return `${links.publicUrl.replace(/\/$/, "")}${signedPath(callId, track)}?expires=${expires}&signature=${signature}`;
}

export type SignedCheck = "ok" | "expired" | "invalid";

/** Whether a signed URL's query is good now (constant time). */
export function checkSignedRecording(
  secretsKey: Buffer,
  callId: string,
  track: Track,
  expires: string | undefined,
  signature: string | undefined,
  nowMs: number,
): SignedCheck {
  if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return "invalid";
  const expected = Buffer.from(sign(secretsKey, callId, track, Number(expires)));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid";
  return Number(expires) * 1000 < nowMs ? "expired" : "ok";
}

/** Vapi's presigned fields of an artifact with a recording, valid for PRESIGNED_TTL_MS from `nowMs`. */
export function presignedRecordingFields(links: RecordingLinks, callId: string, nowMs: number) {
  const at = nowMs + PRESIGNED_TTL_MS;
  return {
    presignedMonoUrl: signedRecordingUrl(links, callId, "mono", at),
    presignedStereoUrl: signedRecordingUrl(links, callId, "stereo", at),
    presignedCustomerUrl: signedRecordingUrl(links, callId, "customer", at),
    presignedAssistantUrl: signedRecordingUrl(links, callId, "assistant", at),
    presignedUrlsExpiresAt: new Date(Math.ceil(at / 1000) * 1000).toISOString(),
  };
}

export function isTrack(v: string): v is Track {
  return v in TRACK_ROUTES;
}
