// End-to-end harness for the media plane: the real API (Twilio webhooks on PUBLIC_URL), the real
// media app on loopback, the real worker (webhook delivery) sharing one in-process queue, and the
// provider fakes (Twilio, Deepgram, OpenAI, ElevenLabs, Anthropic, a custom LLM) with the real adapters pointed at them.
import { createServer as createNetServer } from "node:net";
import { type BuildMediaOptions, buildMedia, type MediaApp } from "../../apps/media/src/app.ts";
import { mediaConfigFromEnv } from "../../apps/media/src/config.ts";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import type { Call } from "../../libs/db/index.ts";
import { InProcessQueue } from "../../libs/queue/index.ts";
import {
  FakeAnthropic,
  FakeCustomLlm,
  FakeDeepgram,
  FakeElevenLabs,
  type FakeElevenLabsOptions,
  FakeOpenAI,
  type FakeOpenAIOptions,
  FakeTwilio,
  type TwilioCallSimulator,
} from "../fakes/index.ts";
import { startTestApi, type TestApi, type TestOrg, testEnv } from "../helpers/api.ts";
import { assistantBody, uniqueNumber } from "../helpers/bodies.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";

export const ACCOUNT_SID = `AC${"abcdef0123456789".repeat(2)}`;
export const AUTH_TOKEN = "media-test-twilio-auth-token-0123";

export interface MediaEnv {
  t: TestApi;
  media: MediaApp;
  worker: WorkerApp;
  twilio: FakeTwilio;
  deepgram: FakeDeepgram;
  openai: FakeOpenAI;
  elevenlabs: FakeElevenLabs;
  anthropic: FakeAnthropic;
  /** A customer's OpenAI-compatible server, for `model.provider: "custom-llm"` (its `url`). */
  customLlm: FakeCustomLlm;
  customer: CustomerServer;
  org: TestOrg;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startMediaEnv(
  opts: {
    openai?: FakeOpenAIOptions;
    elevenlabs?: FakeElevenLabsOptions;
    env?: Record<string, string>;
    /** More options for the media app (e.g. a manual start-deadline timer). */
    media?: BuildMediaOptions;
  } = {},
): Promise<MediaEnv> {
  const [twilio, deepgram, openai, elevenlabs, customer, anthropic, customLlm] = await Promise.all([
    FakeTwilio.start({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }] }),
    FakeDeepgram.start(),
    FakeOpenAI.start(opts.openai),
    FakeElevenLabs.start({ msPerChar: 10, ...opts.elevenlabs }),
    startCustomerServer(),
    FakeAnthropic.start({ rejectKeys: ["sk-ant-revoked"] }),
    FakeCustomLlm.start(),
  ]);
  const [apiPort, mediaPort] = await Promise.all([freePort(), freePort()]);
  const env = {
    PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}`,
    DEEPGRAM_API_URL: deepgram.url,
    OPENAI_BASE_URL: openai.baseUrl,
    ELEVENLABS_API_URL: elevenlabs.url,
    ANTHROPIC_BASE_URL: anthropic.url,
    // The media plane's Twilio REST calls (transfers) go to the fake too.
    TWILIO_API_URL: twilio.baseUrl,
    OPENAI_API_KEY: "sk-platform-openai",
    DEEPGRAM_API_KEY: "platform-deepgram",
    ELEVENLABS_API_KEY: "platform-elevenlabs",
    ANTHROPIC_API_KEY: "sk-ant-platform",
    MEDIA_DRAIN_MS: "2000",
    ...opts.env,
  };
  const t = await startTestApi(env, { twilio });
  await t.app.listen({ port: apiPort, host: "127.0.0.1" });
  const shared = testEnv({
    ...env,
    DATABASE_URL: t.database.url,
    SECRETS_KEY: t.config.secretsKey.toString("base64"),
  });
  const queue = new InProcessQueue();
  const worker = await buildWorker(workerConfigFromEnv(shared), {
    db: t.db,
    redis: t.redis,
    queue,
    logger: false,
    // Tests sweep by hand (sweepStaleCalls) when they mean to.
    sweepIntervalMs: 0,
  });
  const media = await buildMedia(mediaConfigFromEnv(shared), {
    db: t.db,
    redis: t.redis,
    queue,
    logger: false,
    sweepIntervalMs: 0,
    ...opts.media,
  });
  await media.listen({ port: mediaPort, host: "127.0.0.1" });
  const org = await t.createOrg("Media");
  // The tests place many calls at once; the default concurrency limit (10) would refuse some.
  await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 100 } });
  return {
    t,
    media,
    worker,
    twilio,
    deepgram,
    openai,
    elevenlabs,
    anthropic,
    customLlm,
    customer,
    org,
    async close() {
      await twilio.close();
      await media.close();
      await worker.close();
      await queue.close();
      await Promise.all([
        deepgram.close(),
        openai.close(),
        elevenlabs.close(),
        customer.close(),
        anthropic.close(),
        customLlm.close(),
      ]);
      await t.close();
    },
  };
}

/** An assistant (Vapi body) whose server is the test's customer server. */
export async function createAssistant(
  env: MediaEnv,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const res = await env.t.request({
    method: "POST",
    url: "/assistant",
    key: env.org.key,
    payload: assistantBody({
      server: { url: env.customer.url, secret: "tool-secret-123" },
      serverMessages: [
        "status-update",
        "end-of-call-report",
        "tool-calls",
        "user-interrupted",
        "conversation-update",
      ],
      ...overrides,
    }),
  });
  if (res.statusCode !== 201) throw new Error(`assistant failed: ${res.statusCode} ${res.body}`);
  return res.json().id as string;
}

export async function importNumber(env: MediaEnv, body: Record<string, unknown>): Promise<string> {
  const number = uniqueNumber();
  env.twilio.addNumber(ACCOUNT_SID, number);
  const res = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: {
      provider: "twilio",
      number,
      twilioAccountSid: ACCOUNT_SID,
      twilioAuthToken: AUTH_TOKEN,
      ...body,
    },
  });
  if (res.statusCode !== 201) throw new Error(`import failed: ${res.statusCode} ${res.body}`);
  return number;
}

/** Places an inbound call to a fresh number answered by a fresh assistant. */
export async function callAssistant(
  env: MediaEnv,
  overrides: Record<string, unknown> = {},
): Promise<{ sim: TwilioCallSimulator; assistantId: string }> {
  const assistantId = await createAssistant(env, overrides);
  const number = await importNumber(env, { assistantId });
  const sim = await env.twilio.placeInboundCall({
    to: number,
    from: "+14155550100",
    simulator: { utterances: env.deepgram, recordAudio: false },
  });
  return { sim, assistantId };
}

export async function waitUntil<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 5000,
  what = "condition",
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the assistant finished `n` utterances (end marks echoed by Twilio). */
export function waitForSpoken(sim: TwilioCallSimulator, n: number, timeoutMs = 8000): Promise<true> {
  return waitUntil(
    () => sim.echoedMarks.filter((m) => m.endsWith(":end")).length >= n || undefined,
    timeoutMs,
    `${n} utterances`,
  );
}

/** The call row once it is ended and its cost recorded. */
export async function finalizedCall(env: MediaEnv, callSid: string, timeoutMs = 8000): Promise<Call> {
  return waitUntil(
    async () => {
      const row = await env.t.db.call.findUnique({ where: { providerCallId: callSid } });
      return row && row.status === "ended" && row.finalizedAt ? row : undefined;
    },
    timeoutMs,
    "the call to be finalised",
  );
}

export interface StoredMessage {
  role: string;
  message?: string;
  time: number;
  secondsFromStart: number;
  endTime?: number;
  duration?: number;
  /** Bot messages: whether the caller cut it off. */
  interrupted?: boolean;
}

export interface StoredArtifact {
  transcript: string;
  messages: StoredMessage[];
  performanceMetrics: {
    turnLatencies: Array<Record<string, number>>;
    turnLatencyAverage: number;
    modelLatencyAverage: number;
    voiceLatencyAverage: number;
    transcriberLatencyAverage: number;
    endpointingLatencyAverage: number;
    numAssistantInterrupted: number;
  };
}
