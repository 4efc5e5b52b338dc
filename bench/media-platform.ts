// What `bench:media` and `bench:scale` run around the media processes they measure: the provider
// fakes and the simulated callers, each in its own node process (bench/media-fakes.ts,
// bench/media-callers.ts); in this process the API (Twilio inbound webhook → Call + TwiML + stream
// token), the worker (BullMQ on a bench-only prefix), the Twilio REST fake and a customer webhook
// server; one org with one assistant (the providers' fixed delays, no configured waits) on one
// imported number. Also the environment a media child (bench/media-child.ts) runs with, and the
// platform overhead of each turn: what the caller heard less what the providers took, as the media
// process saw it (bench/media.ts describes it).
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { buildWorker } from "../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../apps/worker/src/config.ts";
import type { Db } from "../libs/db/index.ts";
import { ClauseChunker } from "../libs/providers/chunker.ts";
import { BullMqQueue, JOBS } from "../libs/queue/index.ts";
import { FakeTwilio } from "../test/fakes/index.ts";
import { REDIS_URL, startTestApi, type TestApi, type TestOrg, testEnv } from "../test/helpers/api.ts";
import { assistantBody, uniqueNumber } from "../test/helpers/bodies.ts";
import { startCustomerServer } from "../test/webhooks/customer-server.ts";
import type { RunResult } from "./media-callers.ts";
import {
  ENDPOINTING_MS,
  FIRST_MESSAGE,
  ITL_MS,
  REPLY,
  STT_DELAY_MS,
  TTFB_MS,
  TTFT_MS,
} from "./media-script.ts";
import { freePort, pin, pinDatabases, roleNames, sleep, startChild, stopChild } from "./processes.ts";

export const ACCOUNT_SID = `AC${"fedcba9876543210".repeat(2)}`;
export const AUTH_TOKEN = "bench-media-twilio-auth-token-0001";

/** Index of the token that completes the first clause (TTS can start only then). */
function firstClauseTokenIndex(text: string): number {
  // FakeOpenAI's tokenisation.
  const tokens = text.match(/\s*\S+|\s+/g) ?? [];
  const chunker = new ClauseChunker();
  for (let i = 0; i < tokens.length; i++) {
    if (chunker.push(tokens[i] as string).length > 0) return i;
  }
  return tokens.length - 1;
}
export const FIRST_CLAUSE_TOKEN = firstClauseTokenIndex(REPLY);
export const PROVIDER_WAIT_MS =
  ENDPOINTING_MS + STT_DELAY_MS + TTFT_MS + FIRST_CLAUSE_TOKEN * ITL_MS + TTFB_MS;

/** The voices `bench:media` can measure (BENCH_VOICES), each against its loopback fake. */
export const BENCH_VOICES = {
  "11labs": {
    provider: "11labs",
    voiceId: "21m00Tcm4TlvDq8ikWAM",
    model: "eleven_turbo_v2_5",
    stability: 0.5,
    similarityBoost: 0.75,
  },
  cartesia: { provider: "cartesia", voiceId: "a0e99841-438c-4a64-b679-ae501e7d6091", model: "sonic-3" },
  deepgram: { provider: "deepgram", voiceId: "thalia", model: "aura-2" },
  openai: { provider: "openai", voiceId: "alloy", model: "tts-1" },
} as const;
export type BenchVoice = keyof typeof BENCH_VOICES;

/** One assistant of the bench org: its voice, id, and the imported number it answers. */
export interface BenchLine {
  assistantId: string;
  number: string;
}

export interface PlatformOptions {
  /** BullMQ prefix of the run (a UUID is appended), e.g. "bench-media". */
  queuePrefix: string;
  /** The org's concurrency limit. */
  concurrencyLimit: number;
  /** More environment for the API, the worker and the media children (e.g. CALL_LEASE_MS). */
  env?: Record<string, string>;
  /** Voices besides ElevenLabs (the `number`'s): an assistant and a number each (`lines`). */
  voices?: BenchVoice[];
  /** The assistants record their calls (artifactPlan.recordingEnabled; off by default here). */
  recording?: boolean;
  /** With `recording`: one more ElevenLabs assistant and number that does not record (`unrecorded`). */
  unrecorded?: boolean;
}

export interface Platform {
  t: TestApi;
  org: TestOrg;
  fakes: ChildProcess;
  fakeUrls: FakeUrls;
  callers: ChildProcess;
  twilio: FakeTwilio;
  /** The environment the API and the worker were configured from. */
  env: Record<string, string>;
  /** The API's port (listening) and the port its MEDIA_PUBLIC_URL names. */
  apiPort: number;
  mediaPort: number;
  prefix: string;
  /** The imported number the callers call (its assistant answers, with the ElevenLabs voice). */
  number: string;
  /** Per voice: its assistant and number (ElevenLabs' is `number`). */
  lines: Map<BenchVoice, BenchLine>;
  /** PlatformOptions.unrecorded: the ElevenLabs assistant that does not record, on its own number. */
  unrecorded?: BenchLine;
  /** The environment of a media child listening on `port` (bench/media-child.ts). */
  mediaEnv(port: number, overrides?: Record<string, string>): Record<string, string>;
  /** Waits (up to 60 s) until the worker has no job waiting or running. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

interface FakeUrls {
  deepgram: string;
  openai: string;
  elevenlabs: string;
  cartesia: string;
  deepgramTts: string;
  openaiTts: string;
}

/** Starts everything but the measured servers; `close()` stops it and deletes the run's Redis keys. */
export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const fakesStarted = await startChild<FakeUrls & { ready: boolean }>("bench/media-fakes.ts", {});
  const fakes = fakesStarted.child;
  pinDatabases("driver");
  process.once("exit", () => pinDatabases("free"));
  roleNames.set(fakes.pid ?? 0, "provider fakes");
  pin(fakes.pid, "driver");
  const fakeUrls = fakesStarted.ready;
  const callers = (await startChild<{ ready: boolean }>("bench/media-callers.ts", {})).child;
  roleNames.set(callers.pid ?? 0, "callers");
  pin(callers.pid, "driver");
  const [twilio, customer] = await Promise.all([
    FakeTwilio.start({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }] }),
    startCustomerServer(),
  ]);
  const [apiPort, mediaPort] = await Promise.all([freePort(), freePort()]);
  const prefix = `${opts.queuePrefix}-${randomUUID()}`;
  // Recordings (BENCH_RECORDING) are spooled and kept in a directory of this run's, removed at the end.
  const recordingsDir = path.resolve(".scratch", `recordings-${prefix}`);
  const env: Record<string, string> = {
    PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}`,
    DEEPGRAM_API_URL: fakeUrls.deepgram,
    OPENAI_BASE_URL: fakeUrls.openai,
    ELEVENLABS_API_URL: fakeUrls.elevenlabs,
    CARTESIA_API_URL: fakeUrls.cartesia,
    DEEPGRAM_TTS_API_URL: fakeUrls.deepgramTts,
    OPENAI_TTS_BASE_URL: fakeUrls.openaiTts,
    CARTESIA_API_KEY: "platform-cartesia",
    OPENAI_API_KEY: "sk-platform-openai",
    DEEPGRAM_API_KEY: "platform-deepgram",
    ELEVENLABS_API_KEY: "platform-elevenlabs",
    RATE_LIMIT_PER_MINUTE: "1000000",
    RECORDINGS_DIR: recordingsDir,
    ...opts.env,
  };
  const t = await startTestApi(env, { twilio });
  const workerRedis = t.redis.duplicate();
  const queue = new BullMqQueue(workerRedis, { prefix });
  const worker = await buildWorker(
    workerConfigFromEnv(
      testEnv({ ...env, DATABASE_URL: t.database.url, SECRETS_KEY: t.config.secretsKey.toString("base64") }),
    ),
    { db: t.db, redis: t.redis, queue, logger: false },
  );
  const jobQueues = [...new Set(Object.values(JOBS).map((j) => j.queue))].map(
    (name) => new Queue(name, { connection: t.redis, prefix }),
  );
  const close = async (): Promise<void> => {
    await Promise.all(jobQueues.map((q) => q.close()));
    await stopChild(callers);
    await stopChild(fakes);
    await twilio.close();
    await worker.close();
    await queue.close();
    workerRedis.disconnect();
    await deleteKeys(t.redis, prefix);
    await customer.close();
    await t.close();
    await rm(recordingsDir, { recursive: true, force: true });
  };
  try {
    await t.app.listen({ port: apiPort, host: "127.0.0.1" });
    const org = await t.createOrg("Bench");
    await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: opts.concurrencyLimit } });
    const lines = new Map<BenchVoice, BenchLine>();
    for (const voice of new Set<BenchVoice>(["11labs", ...(opts.voices ?? [])]))
      lines.set(voice, await addLine(t, org, twilio, customer.url, voice, opts.recording ?? false));
    const number = (lines.get("11labs") as BenchLine).number;
    const unrecorded = opts.unrecorded
      ? await addLine(t, org, twilio, customer.url, "11labs", false)
      : undefined;

    const shared = testEnv({
      ...env,
      DATABASE_URL: t.database.url,
      SECRETS_KEY: t.config.secretsKey.toString("base64"),
    });
    return {
      t,
      org,
      fakes,
      fakeUrls,
      callers,
      twilio,
      env,
      apiPort,
      mediaPort,
      prefix,
      number,
      lines,
      unrecorded,
      mediaEnv: (port, overrides = {}) => ({
        ...env,
        DATABASE_URL: t.database.url,
        REDIS_URL,
        SECRETS_KEY: t.config.secretsKey.toString("base64"),
        ADMIN_TOKEN: shared.ADMIN_TOKEN ?? "bench-admin-token-0123456789",
        TWILIO_API_URL: twilio.baseUrl,
        ALLOW_PRIVATE_WEBHOOK_URLS: "true",
        MEDIA_PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        MEDIA_DRAIN_MS: "2000",
        BENCH_QUEUE_PREFIX: prefix,
        ...overrides,
      }),
      async settle() {
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          const counts = await Promise.all(
            jobQueues.map((q) => q.getJobCounts("waiting", "active", "prioritized")),
          );
          if (counts.every((c) => Object.values(c).every((n) => n === 0))) return;
          await sleep(250);
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The bench's assistant (the providers' fixed delays, no configured waits) with `voice`, on a number of its own. */
async function addLine(
  t: TestApi,
  org: TestOrg,
  twilio: FakeTwilio,
  serverUrl: string,
  voice: BenchVoice,
  recording: boolean,
): Promise<BenchLine> {
  const res = await t.request({
    method: "POST",
    url: "/assistant",
    key: org.key,
    payload: assistantBody({
      voice: BENCH_VOICES[voice],
      firstMessage: FIRST_MESSAGE,
      server: { url: serverUrl, secret: "bench-secret" },
      serverMessages: ["status-update", "end-of-call-report"],
      transcriber: { provider: "deepgram", model: "nova-3", language: "en", endpointing: ENDPOINTING_MS },
      startSpeakingPlan: {
        waitSeconds: 0,
        transcriptionEndpointingPlan: {
          onPunctuationSeconds: 0,
          onNoPunctuationSeconds: 0,
          onNumberSeconds: 0,
        },
      },
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 0 },
      silenceTimeoutSeconds: 120,
      artifactPlan: { recordingEnabled: recording },
    }),
  });
  if (res.statusCode !== 201) throw new Error(`assistant: ${res.statusCode} ${res.body}`);
  const assistantId = (res.json() as { id: string }).id;
  const number = uniqueNumber();
  twilio.addNumber(ACCOUNT_SID, number);
  const imp = await t.request({
    method: "POST",
    url: "/phone-number",
    key: org.key,
    payload: {
      provider: "twilio",
      number,
      twilioAccountSid: ACCOUNT_SID,
      twilioAuthToken: AUTH_TOKEN,
      assistantId,
    },
  });
  if (imp.statusCode !== 201) throw new Error(`phone number: ${imp.statusCode} ${imp.body}`);
  return { assistantId, number };
}

/** BullMQ keys of this run only. */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

// ---------------------------------------------------------------- platform overhead per turn

export type ServerTurns = Map<string, Array<Record<string, number>>>;

/**
 * The session's own per-turn metrics (artifact.performanceMetrics.turnLatencies) of these calls (by
 * Twilio CallSid, or by call id for web calls: `by: "id"`), once every one is finalised (waits up to
 * `timeoutMs`).
 */
export async function finalisedTurns(
  db: Db,
  sids: string[],
  timeoutMs = 15_000,
  by: "providerCallId" | "id" = "providerCallId",
): Promise<ServerTurns> {
  const until = Date.now() + timeoutMs;
  let rows: Array<{ providerCallId: string | null; artifact: unknown }> = [];
  while (Date.now() < until) {
    const found = await db.call.findMany({
      where: { [by]: { in: sids }, finalizedAt: { not: null } },
      select: { id: true, providerCallId: true, artifact: true },
    });
    rows = found.map((r) => ({ ...r, providerCallId: by === "id" ? r.id : r.providerCallId }));
    if (rows.length >= sids.length) break;
    await sleep(250);
  }
  const serverTurns: ServerTurns = new Map();
  for (const row of rows) {
    const pm = (row.artifact as { performanceMetrics?: { turnLatencies?: Array<Record<string, number>> } })
      ?.performanceMetrics;
    serverTurns.set(row.providerCallId ?? "", pm?.turnLatencies ?? []);
  }
  return serverTurns;
}

export interface TurnFigures {
  /** Per turn: the caller-heard latency less the provider time the media process saw (ms). */
  overheads: number[];
  /** Per turn: the caller-heard latency less the fixed provider delays (PROVIDER_WAIT_MS). */
  overheadsFixed: number[];
  /** Per turn: the caller-heard latency. */
  latencies: number[];
  /** Per turn: the session's own platformLatency. */
  platform: number[];
  providerParts: {
    providerLatency: number[];
    transcriberLatency: number[];
    modelLatency: number[];
    voiceLatency: number[];
  };
  /** The overheads by turn index. */
  byTurn: number[][];
  /** Turns the caller heard no reply to. */
  missingTurns: number;
  /** Turns without the session's metrics to match. */
  unmatched: number;
}

/**
 * Per turn: the caller-heard latency, less what the providers took as the media process saw it
 * (turn i of a call is the session's turnLatencies[i]). Also: less the FIXED provider delays,
 * which leaves in the fakes' own timer and event-loop lag, and the session's own platformLatency.
 */
export function turnFigures(calls: RunResult["calls"], serverTurns: ServerTurns, turns: number): TurnFigures {
  const out: TurnFigures = {
    overheads: [],
    overheadsFixed: [],
    latencies: [],
    platform: [],
    providerParts: { providerLatency: [], transcriberLatency: [], modelLatency: [], voiceLatency: [] },
    byTurn: Array.from({ length: turns }, () => []),
    missingTurns: 0,
    unmatched: 0,
  };
  for (const c of calls) {
    const server = serverTurns.get(c.callSid) ?? [];
    c.latencies.forEach((l, i) => {
      if (l === null) {
        out.missingTurns++;
        return;
      }
      out.latencies.push(l);
      out.overheadsFixed.push(l - PROVIDER_WAIT_MS);
      const st = server[i];
      if (st?.providerLatency === undefined || c.latencies.length !== server.length) {
        out.unmatched++;
        return;
      }
      const o = l - st.providerLatency;
      out.overheads.push(o);
      out.byTurn[i]?.push(o);
      if (st.platformLatency !== undefined) out.platform.push(st.platformLatency);
      for (const [k, xs] of Object.entries(out.providerParts))
        if (typeof st[k] === "number") xs.push(st[k] as number);
    });
  }
  return out;
}
