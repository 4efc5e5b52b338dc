import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import twilio from "twilio";
import { type Call as CallRow, type Db, Prisma } from "../db/index.ts";

// The token the API hands Twilio in `<Stream><Parameter name="token">` and the media plane checks on
// `start`: `v1.<callId>.<expiresAtMs>.<nonce>.<sig>`, sig = base64url HMAC-SHA256 over everything
// before it, with a key derived from SECRETS_KEY under its own label (so it is useless for anything
// else). It is bound to one call, expires after MEDIA_TOKEN_TTL_MS, and is single-use because the
// media plane consumes it atomically (`Call.streamConnectedAt` set once).

export const MEDIA_TOKEN_TTL_MS = 60_000;
const VERSION = "v1";
const LABEL = "switchboard/media-stream-token/v1";

/** The HMAC key for media tokens, derived from SECRETS_KEY. */
export function mediaTokenKey(secretsKey: Buffer): Buffer {
  return createHmac("sha256", secretsKey).update(LABEL).digest();
}

function sign(key: Buffer, payload: string): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}

/** Issues a token for `callId`, valid until `now + ttlMs`. */
export function issueMediaToken(
  secretsKey: Buffer,
  callId: string,
  now: number = Date.now(),
  ttlMs: number = MEDIA_TOKEN_TTL_MS,
): string {
  const payload = `${VERSION}.${callId}.${now + ttlMs}.${randomBytes(12).toString("base64url")}`;
  return `${payload}.${sign(mediaTokenKey(secretsKey), payload)}`;
}

export type MediaTokenFailure = "malformed" | "bad-signature" | "wrong-call" | "expired";

export type MediaTokenCheck = { ok: true; expiresAt: number } | { ok: false; reason: MediaTokenFailure };

/** Checks signature, call binding and expiry (not single use: see consumeMediaToken). */
export function verifyMediaToken(
  secretsKey: Buffer,
  token: string,
  callId: string,
  now: number = Date.now(),
): MediaTokenCheck {
  const parts = token.split(".");
  if (parts.length !== 5) return { ok: false, reason: "malformed" };
  const [version, tokenCallId, expires, nonce, sig] = parts as [string, string, string, string, string];
  if (version !== VERSION || !/^\d{1,15}$/.test(expires) || !nonce || !sig) {
    return { ok: false, reason: "malformed" };
  }
  const expected = Buffer.from(sign(mediaTokenKey(secretsKey), parts.slice(0, 4).join(".")));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: "bad-signature" };
  }
  if (tokenCallId !== callId) return { ok: false, reason: "wrong-call" };
  const expiresAt = Number(expires);
  if (now > expiresAt) return { ok: false, reason: "expired" };
  return { ok: true, expiresAt };
}

export type ConsumeResult =
  | { ok: true; call: CallRow }
  | { ok: false; reason: MediaTokenFailure | "call-not-found" | "already-used" | "call-ended" };

/** What else the claim writes, in the same statement (the media plane marks the call in progress). */
export interface StreamClaimData {
  status?: string;
  startedAt?: Date;
  mediaProcessId?: string;
  heartbeatAt?: Date;
}

/**
 * What the media plane does on `start`, before anything else: verify the token, then claim the call's
 * single stream atomically. A second use (or a retried `start`) is refused, as is a call already ended.
 * `also` is written by the same statement (only when the claim succeeds).
 */
export async function consumeMediaToken(
  db: Db,
  secretsKey: Buffer,
  token: string,
  callId: string,
  now: number = Date.now(),
  also: StreamClaimData = {},
): Promise<ConsumeResult> {
  const check = verifyMediaToken(secretsKey, token, callId, now);
  if (!check.ok) return check;
  // One statement claims the stream and returns the call; only a refusal reads the row again. Raw
  // SQL: it runs at every call start on the media process, where an ORM statement costs about twice
  // the CPU of a raw one (Prisma's query compiler); `RETURNING *` comes back in the ORM's types.
  const at = new Date(now).toISOString();
  const iso = (d: Date | undefined) => (d ? d.toISOString() : null);
  const [claimed] = await db.$queryRaw<CallRow[]>(Prisma.sql`
    UPDATE "Call" SET
      "streamConnectedAt" = ${at}::timestamptz,
      "status" = COALESCE(${also.status ?? null}::text, "status"),
      "startedAt" = COALESCE(${iso(also.startedAt)}::timestamptz, "startedAt"),
      "mediaProcessId" = COALESCE(${also.mediaProcessId ?? null}::text, "mediaProcessId"),
      "heartbeatAt" = COALESCE(${iso(also.heartbeatAt)}::timestamptz, "heartbeatAt"),
      "updatedAt" = ${at}::timestamptz
    WHERE "id" = ${callId}::uuid AND "streamConnectedAt" IS NULL AND "status" <> 'ended'
    RETURNING *`);
  if (claimed) return { ok: true, call: claimed };
  const call = await db.call.findUnique({ where: { id: callId }, select: { status: true } });
  if (!call) return { ok: false, reason: "call-not-found" };
  return { ok: false, reason: call.status === "ended" ? "call-ended" : "already-used" };
}

/**
 * `<Connect><Stream url="MEDIA_PUBLIC_URL/twilio/stream">` with the call id and token as
 * `<Parameter>`s (Twilio's stream URL takes no query string).
 */
export function mediaStreamTwiml(mediaPublicUrl: string, callId: string, token: string): string {
  const vr = new twilio.twiml.VoiceResponse();
  const stream = vr.connect().stream({ url: `${mediaPublicUrl.replace(/\/$/, "")}/twilio/stream` });
  stream.parameter({ name: "callId", value: callId });
  stream.parameter({ name: "token", value: token });
  return vr.toString();
}

/** `<Say>message</Say><Hangup/>`: a short spoken notice, then the call ends. */
export function sayAndHangupTwiml(message: string | undefined): string {
  const vr = new twilio.twiml.VoiceResponse();
  if (message) vr.say(message);
  vr.hangup();
  return vr.toString();
}
