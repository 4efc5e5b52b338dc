import { createHash } from "node:crypto";
import twilio from "twilio";
import type TwilioRequestClient from "twilio/lib/base/RequestClient.js";
import { AppError, UpstreamError, ValidationError } from "../errors/index.ts";

// The official `twilio` SDK, pointed at TWILIO_API_URL (providers.twilioApiUrl). Twilio's hosts
// (`api.twilio.com`, regional/edge `*.twilio.com`) are rewritten to the configured base when it is
// not the default, so self-hosters and the tests' FakeTwilio get every request.

export const DEFAULT_TWILIO_API_URL = "https://api.twilio.com";

const TWILIO_HOST = /^https:\/\/(?:[a-z0-9-]+\.)*twilio\.com(?=[/:?]|$)/i;
const REQUEST_TIMEOUT_MS = 10_000;

type RequestOptions<T> = TwilioRequestClient.RequestOptions<T>;

/** A `twilio.RequestClient` that sends every `*.twilio.com` request to `baseUrl` instead. */
export class RebasedTwilioRequestClient extends twilio.RequestClient {
  readonly baseUrl: string;
  constructor(baseUrl: string) {
    super({ timeout: REQUEST_TIMEOUT_MS });
    this.baseUrl = baseUrl.replace(/\/$/, "");
  }
  override request<TData>(opts: RequestOptions<TData>) {
    return super.request<TData>({ ...opts, uri: opts.uri.replace(TWILIO_HOST, this.baseUrl) });
  }
}

export type TwilioClient = twilio.Twilio;

const cache = new Map<string, TwilioClient>();
const CACHE_MAX = 1000;

/**
 * A Twilio REST client for one account, cached per (API base, account, token): the token is part of
 * the key so a rotated token takes effect at once.
 */
export function twilioFor(
  accountSid: string,
  authToken: string,
  apiUrl: string = DEFAULT_TWILIO_API_URL,
): TwilioClient {
  const base = apiUrl.replace(/\/$/, "");
  const key = `${base}|${accountSid}|${createHash("sha256").update(authToken).digest("hex").slice(0, 16)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const httpClient =
    base === DEFAULT_TWILIO_API_URL
      ? new twilio.RequestClient({ timeout: REQUEST_TIMEOUT_MS })
      : new RebasedTwilioRequestClient(base);
  const client = twilio(accountSid, authToken, { httpClient });
  if (cache.size >= CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, client);
  return client;
}

/** Twilio's own account credentials, as stored on a phone number. */
export interface TwilioAccount {
  accountSid: string;
  authToken: string;
}

interface RestLike {
  status: number;
  code?: number;
  message: string;
}

function isRestException(err: unknown): err is RestLike {
  return (
    err instanceof twilio.RestException ||
    (typeof err === "object" &&
      err !== null &&
      typeof (err as { status?: unknown }).status === "number" &&
      typeof (err as { message?: unknown }).message === "string" &&
      "moreInfo" in err)
  );
}

/** Twilio's reason for a failure, e.g. `Authenticate (Twilio error 20003)`. */
export function twilioReason(err: unknown): string {
  if (isRestException(err)) {
    return err.code !== undefined ? `${err.message} (Twilio error ${err.code})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Twilio's numeric error code, when the failure came from Twilio's API. */
export function twilioErrorCode(err: unknown): number | undefined {
  return isRestException(err) ? err.code : undefined;
}

/**
 * Maps a failed Twilio request to our typed errors: Twilio's 4xx (bad credentials, unknown number,
 * invalid parameter) are the caller's to fix → 400 with Twilio's reason; anything else → 502.
 */
export function mapTwilioError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (isRestException(err)) {
    if (err.status === 401 || err.code === 20003) {
      return new ValidationError(
        `Twilio rejected the credentials while trying to ${what}: ${twilioReason(err)}. Check twilioAccountSid and twilioAuthToken`,
      );
    }
    if (err.status >= 400 && err.status < 500) {
      return new ValidationError(`Twilio refused to ${what}: ${twilioReason(err)}`);
    }
    return new UpstreamError(`Twilio failed to ${what}: ${twilioReason(err)}`);
  }
  return new UpstreamError(`Twilio could not be reached to ${what}: ${twilioReason(err)}`);
}

export interface ConfigureNumberInput extends TwilioAccount {
  /** E.164, exactly as Twilio lists it. */
  phoneNumber: string;
  /** The API's public base URL (PUBLIC_URL). */
  publicUrl: string;
  apiUrl?: string;
}

export interface ConfiguredNumber {
  sid: string;
  voiceUrl: string;
  statusCallback: string;
}

export function inboundWebhookUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/$/, "")}/twilio/inbound`;
}

export function statusWebhookUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/$/, "")}/twilio/status`;
}

/**
 * Points a Twilio number's voice URL and status callback at the platform, using that number's own
 * account. Throws ValidationError (400) when Twilio rejects the credentials or the account does not
 * own the number, UpstreamError (502) when Twilio fails.
 */
export async function configureNumber(input: ConfigureNumberInput): Promise<ConfiguredNumber> {
  const client = twilioFor(input.accountSid, input.authToken, input.apiUrl);
  let sid: string | undefined;
  try {
    const found = await client.incomingPhoneNumbers.list({ phoneNumber: input.phoneNumber, limit: 20 });
    sid = found.find((n) => n.phoneNumber === input.phoneNumber)?.sid;
  } catch (err) {
    throw mapTwilioError(err, `look up ${input.phoneNumber}`);
  }
  if (!sid) {
    throw new ValidationError(
      `body.number ${input.phoneNumber} is not a phone number of Twilio account ${input.accountSid}`,
    );
  }
  const voiceUrl = inboundWebhookUrl(input.publicUrl);
  const statusCallback = statusWebhookUrl(input.publicUrl);
  try {
    await client.incomingPhoneNumbers(sid).update({
      voiceUrl,
      voiceMethod: "POST",
      statusCallback,
      statusCallbackMethod: "POST",
    });
  } catch (err) {
    throw mapTwilioError(err, `set the voice URL of ${input.phoneNumber}`);
  }
  return { sid, voiceUrl, statusCallback };
}

export interface CreateCallInput extends TwilioAccount {
  from: string;
  to: string;
  twiml: string;
  statusCallback: string;
  apiUrl?: string;
  /** Seconds to let it ring (Twilio default 60). */
  timeoutSeconds?: number;
}

/** Dials out through Twilio REST; resolves with the CallSid. Errors are mapped (400 / 502). */
export async function createCall(input: CreateCallInput): Promise<{ sid: string; status: string }> {
  const client = twilioFor(input.accountSid, input.authToken, input.apiUrl);
  try {
    const call = await client.calls.create({
      to: input.to,
      from: input.from,
      twiml: input.twiml,
      statusCallback: input.statusCallback,
      statusCallbackMethod: "POST",
      statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
      ...(input.timeoutSeconds !== undefined ? { timeout: input.timeoutSeconds } : {}),
    });
    return { sid: call.sid, status: call.status };
  } catch (err) {
    throw mapTwilioError(err, `call ${input.to}`);
  }
}

export type CallUpdate =
  /** Hang up: `completed` for an answered call, `canceled` for one still queued or ringing. */
  | { status: "completed" | "canceled" }
  /** Replace the running TwiML (e.g. `<Dial>` for a transfer); ends the media stream. */
  | { twiml: string };

/** Updates a live call (hang up, or new TwiML). Errors are mapped (400 / 502). */
export async function updateCall(
  account: TwilioAccount & { apiUrl?: string },
  callSid: string,
  update: CallUpdate,
): Promise<void> {
  const client = twilioFor(account.accountSid, account.authToken, account.apiUrl);
  try {
    await client.calls(callSid).update(update);
  } catch (err) {
    throw mapTwilioError(err, "update the call");
  }
}

/** `<Response><Dial>number</Dial></Response>` for a transfer. */
export function transferTwiml(number: string, opts: { say?: string; callerId?: string } = {}): string {
  const vr = new twilio.twiml.VoiceResponse();
  if (opts.say) vr.say(opts.say);
  const dial = vr.dial(opts.callerId ? { callerId: opts.callerId } : {});
  dial.number(number);
  return vr.toString();
}
