import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

// The environment is read once, here, at process start. A missing or malformed variable stops
// the process with a message naming it. Nothing else reads process.env.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const Url = Type.String({ pattern: "^(https?|wss?|postgres(ql)?|rediss?)://" });
const Bool = Type.Union([Type.Literal("true"), Type.Literal("false")]);
const Port = Type.Integer({ minimum: 0, maximum: 65535 });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Optional(
    Type.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l))),
  ),
  DATABASE_URL: Type.Optional(Url),
  REDIS_URL: Type.Optional(Url),
  PUBLIC_URL: Type.Optional(Url),
  MEDIA_PUBLIC_URL: Type.Optional(Url),
  SECRETS_KEY: Type.Optional(Type.String({ minLength: 40 })),
  SECRETS_KEY_PREVIOUS: Type.Optional(Type.String()),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /** When set, `GET /metrics` on every app requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  API_PORT: Type.Optional(Port),
  MEDIA_PORT: Type.Optional(Port),
  WORKER_PORT: Type.Optional(Port),
  HOST: Type.Optional(Type.String()),
  ALLOW_PRIVATE_WEBHOOK_URLS: Type.Optional(Bool),
  MIGRATE_ON_START: Type.Optional(Bool),
  DATA_DIR: Type.Optional(Type.String()),
  RATE_LIMIT_PER_MINUTE: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Per client address: unauthenticated requests, missing or invalid keys, key lookups (default 300). */
  RATE_LIMIT_PER_ADDRESS_PER_MINUTE: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Per client address on the signed Twilio and Stripe webhooks (default 6000). */
  WEBHOOK_RATE_LIMIT_PER_MINUTE: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Whose X-Forwarded-For is believed: "true", "false", a hop count, or addresses/CIDRs/names. */
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  BODY_LIMIT_BYTES: Type.Optional(Type.Integer({ minimum: 1024 })),
  AUTH_CACHE_TTL_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  OPENAI_BASE_URL: Type.Optional(Url),
  DEEPGRAM_API_URL: Type.Optional(Url),
  ELEVENLABS_API_URL: Type.Optional(Url),
  /** AssemblyAI's streaming host (default wss://streaming.assemblyai.com; EU: wss://streaming.eu.assemblyai.com). */
  ASSEMBLYAI_API_URL: Type.Optional(Url),
  /** OpenAI's Realtime endpoint for speech to text (default: OPENAI_BASE_URL's /realtime, as ws(s)). */
  OPENAI_REALTIME_URL: Type.Optional(Url),
  /** Anthropic's API (default https://api.anthropic.com; `/v1/messages` is appended). */
  ANTHROPIC_BASE_URL: Type.Optional(Url),
  /** Cartesia's API host (default https://api.cartesia.ai; the TTS websocket is /tts/websocket). */
  CARTESIA_API_URL: Type.Optional(Url),
  /** Deepgram's host for Aura TTS (default: DEEPGRAM_API_URL). */
  DEEPGRAM_TTS_API_URL: Type.Optional(Url),
  /** OpenAI's base URL for speech, /audio/speech (default: OPENAI_BASE_URL). */
  OPENAI_TTS_BASE_URL: Type.Optional(Url),
  TWILIO_API_URL: Type.Optional(Url),
  STRIPE_API_URL: Type.Optional(Url),
  OPENAI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  DEEPGRAM_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  ELEVENLABS_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  CARTESIA_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  ANTHROPIC_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  ASSEMBLYAI_API_KEY: Type.Optional(Type.String({ minLength: 1 })),
  STRIPE_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  STRIPE_WEBHOOK_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  /** Billing Meter event names (created on first need when absent): the platform fee in minutes … */
  STRIPE_METER_VOICE_MINUTES: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,100}$" })),
  /** … and platform-billed provider costs in micro-dollars. */
  STRIPE_METER_PROVIDER_USAGE: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,100}$" })),
  /** Existing metered price ids to subscribe organisations to (otherwise created once, found by lookup_key). */
  STRIPE_PRICE_VOICE_MINUTES: Type.Optional(Type.String({ pattern: "^price_" })),
  STRIPE_PRICE_PROVIDER_USAGE: Type.Optional(Type.String({ pattern: "^price_" })),
  /** JSON file replacing or extending the built-in price table (see libs/billing/prices.ts). */
  PRICE_TABLE_PATH: Type.Optional(Type.String({ minLength: 1 })),
  /** The platform fee per call minute in USD, as a decimal string (default "0.05"). */
  PLATFORM_FEE_PER_MINUTE_USD: Type.Optional(Type.String({ pattern: "^\\d{1,6}(\\.\\d{1,12})?$" })),
  /** How long a stopping media process lets active calls run before ending them (ms, default 30000). */
  MEDIA_DRAIN_MS: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Database connections a media process may hold (default 20). */
  MEDIA_DB_POOL_SIZE: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  /** A media websocket without a valid `start` after this long is closed with 1008 (ms, default 5000). */
  MEDIA_START_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000 })),
  /** Open media websockets per process, authenticated or not; more are closed with 1013 (default 2000). */
  MEDIA_MAX_CONNECTIONS: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  /** Not yet authenticated media websockets per remote address (IPv6: per /64) (default 200). */
  MEDIA_MAX_PENDING_PER_ADDRESS: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  /**
   * A call whose media process died is ended within this (ms, default 15000): media processes
   * heartbeat their calls every fifth of it, and every media and worker process sweeps for calls
   * whose heartbeat stopped. Set the same value on every process.
   */
  CALL_LEASE_MS: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
  /**
   * A job whose worker died (webhook delivery, Stripe usage…) runs again within about 1.5 × this
   * once a worker runs (ms, default 30000): BullMQ's lock on a running job, renewed every half of it.
   */
  WORKER_JOB_LOCK_MS: Type.Optional(Type.Integer({ minimum: 1000, maximum: 600_000 })),
  /** A call's log (artifactPlan.loggingEnabled) keeps at most this many entries (default 5000); a note says when it was cut. */
  CALL_LOG_MAX_ENTRIES: Type.Optional(Type.Integer({ minimum: 10, maximum: 1_000_000 })),
  /** … and at most this many bytes of JSON (default 2097152, 2 MiB). */
  CALL_LOG_MAX_BYTES: Type.Optional(Type.Integer({ minimum: 4096, maximum: 1_073_741_824 })),
  /** Where recordings are kept when no bucket is set, and spooled while calls run (default DATA_DIR/recordings). */
  RECORDINGS_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /** The platform's bucket for recordings (any S3-compatible store); unset: RECORDINGS_DIR. */
  RECORDINGS_S3_BUCKET: Type.Optional(Type.String({ pattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" })),
  RECORDINGS_S3_REGION: Type.Optional(Type.String({ pattern: "^[a-z0-9-]{1,40}$" })),
  /** An S3-compatible endpoint (MinIO, R2 …); unset: AWS for the region. */
  RECORDINGS_S3_ENDPOINT: Type.Optional(Url),
  RECORDINGS_S3_FORCE_PATH_STYLE: Type.Optional(Bool),
  /** Every recording's key starts with this. */
  RECORDINGS_S3_PREFIX: Type.Optional(Type.String({ maxLength: 200 })),
  /** Keys of the platform's bucket; unset: the AWS SDK's default chain (environment, instance role). */
  RECORDINGS_S3_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1 })),
  RECORDINGS_S3_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** Where organisations' `s3` credentials are sent instead of AWS (an S3-compatible server). */
  RECORDINGS_CUSTOM_S3_ENDPOINT: Type.Optional(Url),
  RECORDINGS_CUSTOM_S3_FORCE_PATH_STYLE: Type.Optional(Bool),
});
export type Env = Static<typeof EnvSchema>;

const NUMERIC = new Set([
  "API_PORT",
  "MEDIA_PORT",
  "WORKER_PORT",
  "RATE_LIMIT_PER_MINUTE",
  "RATE_LIMIT_PER_ADDRESS_PER_MINUTE",
  "WEBHOOK_RATE_LIMIT_PER_MINUTE",
  "BODY_LIMIT_BYTES",
  "AUTH_CACHE_TTL_MS",
  "MEDIA_DRAIN_MS",
  "MEDIA_DB_POOL_SIZE",
  "MEDIA_START_TIMEOUT_MS",
  "MEDIA_MAX_CONNECTIONS",
  "MEDIA_MAX_PENDING_PER_ADDRESS",
  "CALL_LEASE_MS",
  "WORKER_JOB_LOCK_MS",
  "CALL_LOG_MAX_ENTRIES",
  "CALL_LOG_MAX_BYTES",
]);

/** Validates the raw environment; throws ConfigError naming every bad variable. */
export function parseEnv(raw: Record<string, string | undefined>): Env {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = raw[key];
    if (v === undefined || v === "") continue;
    picked[key] = NUMERIC.has(key) && /^-?\d+$/.test(v) ? Number(v) : v;
  }
  const errors = [...Value.Errors(EnvSchema as TSchema, picked)];
  if (errors.length > 0) {
    const lines = errors.map((e) => `${e.path.replace(/^\//, "")}: ${e.message}`);
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(lines)].join("\n  ")}`);
  }
  return picked as Env;
}

export function requireVar<K extends keyof Env>(env: Env, name: K, why: string): NonNullable<Env[K]> {
  const v = env[name];
  if (v === undefined || v === null) throw new ConfigError(`${String(name)} is required (${why})`);
  return v as NonNullable<Env[K]>;
}

export function bool(v: "true" | "false" | undefined, fallback: boolean): boolean {
  return v === undefined ? fallback : v === "true";
}
