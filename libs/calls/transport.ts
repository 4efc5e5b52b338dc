import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

// `Call.transport` of a websocket call (Vapi's `vapi.websocket` transport), decoded in one place for
// the API (which writes it when the call is created) and the media plane (which reads the audio
// format and the allowed origins when the client connects to `websocketCallUrl`).
//
// `allowedOrigins` is copied from the public key that created the call (its `restrictions`), so the
// media plane can hold the websocket's `Origin` to the same list the API held the request's to.
// Absent: any origin (a private key, or a public key without an origin restriction).

export const WEBSOCKET_TRANSPORT = "vapi.websocket";
export const WEBSOCKET_CALL_TYPE = "vapi.websocketCall";

export const WEBSOCKET_AUDIO_FORMATS = ["pcm_s16le", "mulaw"] as const;
export type WebsocketAudioFormatName = (typeof WEBSOCKET_AUDIO_FORMATS)[number];

/**
 * Vapi's spec allows 0 to 192,000 Hz; below 8 kHz no speech survives, so 8 kHz is the floor here.
 */
export const SAMPLE_RATE_BOUNDS = { minimum: 8000, maximum: 192_000 } as const;

/** Vapi's defaults: 16 kHz PCM; μ-law is telephone audio, 8 kHz. */
export const DEFAULT_SAMPLE_RATE: Record<WebsocketAudioFormatName, number> = {
  pcm_s16le: 16_000,
  mulaw: 8000,
};

export const WebsocketAudioFormat = Type.Object({
  format: Type.Union([Type.Literal("pcm_s16le"), Type.Literal("mulaw")]),
  container: Type.Literal("raw"),
  sampleRate: Type.Integer(SAMPLE_RATE_BOUNDS),
});
export type WebsocketAudioFormat = Static<typeof WebsocketAudioFormat>;

export const CallTransportRecord = Type.Object({
  provider: Type.Literal(WEBSOCKET_TRANSPORT),
  audioFormat: WebsocketAudioFormat,
  allowedOrigins: Type.Optional(Type.Array(Type.String())),
});
export type CallTransportRecord = Static<typeof CallTransportRecord>;

/** The audio format a client asked for, with Vapi's defaults filled in. */
export function websocketAudioFormat(asked?: {
  format?: WebsocketAudioFormatName;
  sampleRate?: number;
}): WebsocketAudioFormat {
  const format = asked?.format ?? "pcm_s16le";
  return { format, container: "raw", sampleRate: asked?.sampleRate ?? DEFAULT_SAMPLE_RATE[format] };
}

/** `Call.transport` decoded; undefined for a call without one (phone calls) or a malformed value. */
export function callTransport(json: unknown): CallTransportRecord | undefined {
  return Value.Check(CallTransportRecord, json) ? json : undefined;
}

/**
 * An origin as browsers send it (`scheme://host[:port]`, lowercase, no path); undefined when the
 * value is not one. The same normal form is stored and compared, so `https://App.example.com/` and
 * `https://app.example.com` are the same origin.
 */
export function normaliseOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== "/" && url.pathname !== "") return undefined;
  return url.origin;
}

/** Whether `origin` may use a call or key restricted to `allowed` (undefined or empty: any). */
export function originAllowed(allowed: readonly string[] | undefined, origin: string | undefined): boolean {
  if (!allowed || allowed.length === 0) return true;
  const o = origin === undefined ? undefined : normaliseOrigin(origin);
  return o !== undefined && allowed.includes(o);
}

/**
 * `MEDIA_PUBLIC_URL/<callId>/transport?token=…` with http → ws and https → wss: the URL a client
 * opens to carry the call's audio (its token is single-use and expires: libs/telephony/media-token.ts).
 */
export function websocketCallUrl(mediaPublicUrl: string, callId: string, token: string): string {
  const base = mediaPublicUrl.replace(/\/$/, "").replace(/^http(s?):\/\//i, "ws$1://");
  return `${base}/${callId}/transport?token=${encodeURIComponent(token)}`;
}
