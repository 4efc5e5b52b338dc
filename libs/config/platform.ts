import path from "node:path";
import { type CallLogLimits, DEFAULT_CALL_LOG_LIMITS } from "../call-logs/call-log.ts";
import { parseSecretsKey } from "../crypto/secret-box.ts";
import type { RecordingsConfig } from "../recordings/stores.ts";
import { bool, ConfigError, type Env, requireVar } from "./env.ts";

/** Provider endpoints and the platform's own keys. Self-hosters and tests point them elsewhere. */
export interface ProviderConfig {
  openaiBaseUrl: string;
  deepgramApiUrl: string;
  elevenlabsApiUrl: string;
  /** AssemblyAI's streaming host (`wss://streaming.assemblyai.com`; `/v3/ws` is appended). */
  assemblyAiApiUrl: string;
  /** OpenAI's Realtime endpoint (speech to text); by default `openaiBaseUrl` + `/realtime`. */
  openaiRealtimeUrl: string;
  /** Anthropic's API (`https://api.anthropic.com`; `/v1/messages` is appended). */
  anthropicBaseUrl: string;
  /** Cartesia's API host (`https://api.cartesia.ai`; the TTS websocket is `/tts/websocket`). */
  cartesiaApiUrl: string;
  /** Deepgram's host for Aura TTS (by default `deepgramApiUrl`). */
  deepgramTtsApiUrl: string;
  /** OpenAI's base URL for speech (by default `openaiBaseUrl`). */
  openaiTtsBaseUrl: string;
  twilioApiUrl: string;
  stripeApiUrl: string;
  openaiApiKey?: string;
  anthropicApiKey?: string;
  deepgramApiKey?: string;
  elevenlabsApiKey?: string;
  cartesiaApiKey?: string;
  assemblyAiApiKey?: string;
  stripeSecretKey?: string;
  stripeWebhookSecret?: string;
  /** Stripe Billing Meter event names and optional existing price ids (see libs/billing/stripe.ts). */
  stripeMeterVoiceMinutes: string;
  stripeMeterProviderUsage: string;
  stripePriceVoiceMinutes?: string;
  stripePriceProviderUsage?: string;
}

export interface CommonConfig {
  logLevel: string;
  databaseUrl: string;
  redisUrl?: string;
  publicUrl: string;
  mediaPublicUrl: string;
  secretsKey: Buffer;
  previousSecretsKeys: Buffer[];
  adminToken: string;
  /** Bearer token `GET /metrics` requires; unset: open (scraped from the cluster network). */
  metricsToken?: string;
  allowPrivateWebhookUrls: boolean;
  /** Fastify's trustProxy: which peers' X-Forwarded-For names the client address. */
  trustProxy: TrustProxy;
  providers: ProviderConfig;
  /** CALL_LEASE_MS: a call whose media process died is ended within this (libs/media/lease.ts). */
  callLeaseMs: number;
  /** CALL_LOG_MAX_ENTRIES / CALL_LOG_MAX_BYTES: the cap of each call's log. */
  callLogs: CallLogLimits;
  /** Where call recordings are kept (RECORDINGS_*). */
  recordings: RecordingsConfig;
}

/** Fastify's `trustProxy`: all, none, addresses/CIDRs/names, or the nearest N hops. */
export type TrustProxy = boolean | string | ((address: string, hop: number) => boolean);

// Only proxies on private networks are believed by default: a client on the internet cannot pick
// its own address (and so a fresh per-address budget) with a forged X-Forwarded-For.
const DEFAULT_TRUST_PROXY = "loopback,linklocal,uniquelocal";

export function trustProxy(raw: string | undefined): TrustProxy {
  const v = (raw ?? DEFAULT_TRUST_PROXY).trim();
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_address, hop) => hop < hops;
  }
  return v;
}

export function providerConfig(env: Env): ProviderConfig {
  const openaiBaseUrl = env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
  return {
    openaiBaseUrl,
    deepgramApiUrl: env.DEEPGRAM_API_URL ?? "wss://api.deepgram.com",
    elevenlabsApiUrl: env.ELEVENLABS_API_URL ?? "https://api.elevenlabs.io",
    assemblyAiApiUrl: env.ASSEMBLYAI_API_URL ?? "wss://streaming.assemblyai.com",
    openaiRealtimeUrl:
      env.OPENAI_REALTIME_URL ?? `${openaiBaseUrl.replace(/^http/, "ws").replace(/\/+$/, "")}/realtime`,
    anthropicBaseUrl: env.ANTHROPIC_BASE_URL ?? "https://api.anthropic.com",
    cartesiaApiUrl: env.CARTESIA_API_URL ?? "https://api.cartesia.ai",
    deepgramTtsApiUrl: env.DEEPGRAM_TTS_API_URL ?? env.DEEPGRAM_API_URL ?? "wss://api.deepgram.com",
    openaiTtsBaseUrl: env.OPENAI_TTS_BASE_URL ?? openaiBaseUrl,
    twilioApiUrl: env.TWILIO_API_URL ?? "https://api.twilio.com",
    stripeApiUrl: env.STRIPE_API_URL ?? "https://api.stripe.com",
    openaiApiKey: env.OPENAI_API_KEY,
    anthropicApiKey: env.ANTHROPIC_API_KEY,
    deepgramApiKey: env.DEEPGRAM_API_KEY,
    elevenlabsApiKey: env.ELEVENLABS_API_KEY,
    cartesiaApiKey: env.CARTESIA_API_KEY,
    assemblyAiApiKey: env.ASSEMBLYAI_API_KEY,
    stripeSecretKey: env.STRIPE_SECRET_KEY,
    stripeWebhookSecret: env.STRIPE_WEBHOOK_SECRET,
    stripeMeterVoiceMinutes: env.STRIPE_METER_VOICE_MINUTES ?? "voice_minutes",
    stripeMeterProviderUsage: env.STRIPE_METER_PROVIDER_USAGE ?? "provider_usage",
    stripePriceVoiceMinutes: env.STRIPE_PRICE_VOICE_MINUTES,
    stripePriceProviderUsage: env.STRIPE_PRICE_PROVIDER_USAGE,
  };
}

export function commonConfig(env: Env): CommonConfig {
  const apiPort = env.API_PORT ?? 3000;
  const mediaPort = env.MEDIA_PORT ?? 3001;
  const secretsKey = parseSecretsKey(requireVar(env, "SECRETS_KEY", "encryption of secrets at rest"));
  const previous = (env.SECRETS_KEY_PREVIOUS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => parseSecretsKey(s, "SECRETS_KEY_PREVIOUS"));
  const publicUrl = (env.PUBLIC_URL ?? `http://127.0.0.1:${apiPort}`).replace(/\/$/, "");
  return {
    logLevel: env.LOG_LEVEL ?? "info",
    databaseUrl: requireVar(env, "DATABASE_URL", "Postgres connection string"),
    redisUrl: env.REDIS_URL,
    publicUrl,
    mediaPublicUrl: (env.MEDIA_PUBLIC_URL ?? `ws://127.0.0.1:${mediaPort}`).replace(/\/$/, ""),
    secretsKey,
    previousSecretsKeys: previous,
    adminToken: requireVar(env, "ADMIN_TOKEN", "operator bootstrap token for POST /org"),
    metricsToken: env.METRICS_TOKEN,
    allowPrivateWebhookUrls: bool(env.ALLOW_PRIVATE_WEBHOOK_URLS, false),
    trustProxy: trustProxy(env.TRUST_PROXY),
    providers: providerConfig(env),
    callLeaseMs: env.CALL_LEASE_MS ?? 15_000,
    callLogs: {
      maxEntries: env.CALL_LOG_MAX_ENTRIES ?? DEFAULT_CALL_LOG_LIMITS.maxEntries,
      maxBytes: env.CALL_LOG_MAX_BYTES ?? DEFAULT_CALL_LOG_LIMITS.maxBytes,
    },
    recordings: recordingsConfig(env),
  };
}

export function recordingsConfig(env: Env): RecordingsConfig {
  const dir = path.resolve(env.RECORDINGS_DIR ?? path.join(env.DATA_DIR || ".data", "recordings"));
  const id = env.RECORDINGS_S3_ACCESS_KEY_ID;
  const secret = env.RECORDINGS_S3_SECRET_ACCESS_KEY;
  if ((id === undefined) !== (secret === undefined)) {
    throw new ConfigError(
      "RECORDINGS_S3_ACCESS_KEY_ID and RECORDINGS_S3_SECRET_ACCESS_KEY go together (or neither: the AWS SDK's default credentials)",
    );
  }
  const bucket = env.RECORDINGS_S3_BUCKET;
  return {
    dir,
    ...(bucket
      ? {
          s3: {
            bucket,
            region: env.RECORDINGS_S3_REGION ?? "us-east-1",
            endpoint: env.RECORDINGS_S3_ENDPOINT,
            forcePathStyle: bool(env.RECORDINGS_S3_FORCE_PATH_STYLE, false),
            prefix: env.RECORDINGS_S3_PREFIX,
            ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
          },
        }
      : {}),
    customS3Endpoint: env.RECORDINGS_CUSTOM_S3_ENDPOINT,
    customS3ForcePathStyle: bool(env.RECORDINGS_CUSTOM_S3_FORCE_PATH_STYLE, false),
  };
}

export { ConfigError };
