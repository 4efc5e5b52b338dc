import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import {
  FakeDeepgram,
  FakeElevenLabs,
  FakeOpenAI,
  FakeTwilio,
  type TwilioCallSimulator,
} from "../fakes/index.ts";
import { startTestApi, type TestApi, type TestOrg, testEnv } from "../helpers/api.ts";
import { assistantBody, uniqueNumber } from "../helpers/bodies.ts";
import {
  type AppProcess,
  freePort,
  type RedisServer,
  startApp,
  startRedisServer,
} from "../helpers/fault-processes.ts";
import { ACCOUNT_SID, AUTH_TOKEN, waitForSpoken, waitUntil } from "../media/harness.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";

// A media process killed mid-call (SIGKILL: no drain, no last write). A real media process runs
// as production runs it; the API, the worker (with its sweeper) and the provider fakes run here.
// Within the lease the call is ended with worker-died, keeps the turn it completed, frees its
// concurrency slot, and is billed once for the duration Twilio reports.

const LEASE_MS = 3000;
const WORKER_DIED = "call.in-progress.error-vapifault-worker-died";

interface CallRecord {
  id: string;
  status: string;
  endedReason?: string;
  transcript?: string;
  messages?: Array<{ role: string; message?: string }>;
  cost?: number;
  costs?: Array<{ type: string; minutes?: number; promptTokens?: number; characters?: number }>;
  startedAt?: string;
  endedAt?: string;
}

describe("a media process killed mid-call", () => {
  let redis: RedisServer;
  let twilio: FakeTwilio;
  let deepgram: FakeDeepgram;
  let openai: FakeOpenAI;
  let elevenlabs: FakeElevenLabs;
  let customer: CustomerServer;
  let t: TestApi;
  let worker: WorkerApp;
  let org: TestOrg;
  let mediaEnv: Record<string, string>;
  const children: AppProcess[] = [];

  before(async () => {
    redis = await startRedisServer();
    [twilio, deepgram, openai, elevenlabs, customer] = await Promise.all([
      FakeTwilio.start({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }] }),
      FakeDeepgram.start(),
      FakeOpenAI.start(),
      FakeElevenLabs.start({ msPerChar: 10 }),
      startCustomerServer(),
    ]);
    openai.respond = (req) => {
      const last = [...req.messages].reverse().find((m) => m.role === "user");
      return { text: last ? `You said: ${String(last.content)}.` : "Hello." };
    };
    const [apiPort, mediaPort] = await Promise.all([freePort(), freePort()]);
    const common = {
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}`,
      DEEPGRAM_API_URL: deepgram.url,
      OPENAI_BASE_URL: openai.baseUrl,
      ELEVENLABS_API_URL: elevenlabs.url,
      TWILIO_API_URL: twilio.baseUrl,
      OPENAI_API_KEY: "sk-platform-openai",
      DEEPGRAM_API_KEY: "platform-deepgram",
      ELEVENLABS_API_KEY: "platform-elevenlabs",
      REDIS_URL: redis.url,
      CALL_LEASE_MS: String(LEASE_MS),
    };
    t = await startTestApi(common, { twilio, redisUrl: redis.url });
    await t.app.listen({ port: apiPort, host: "127.0.0.1" });
    const secretsKey = t.config.secretsKey.toString("base64");
    worker = await buildWorker(
      workerConfigFromEnv(testEnv({ ...common, DATABASE_URL: t.database.url, SECRETS_KEY: secretsKey })),
      { db: t.db, logger: false, schedule: false },
    );
    mediaEnv = {
      ...common,
      DATABASE_URL: t.database.url,
      SECRETS_KEY: secretsKey,
      ADMIN_TOKEN: t.config.adminToken,
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      LOG_LEVEL: "warn",
      MEDIA_PORT: String(mediaPort),
    };
    org = await t.createOrg("Faults");
    // One call at a time: a slot the dead call kept would refuse the next one.
    await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 1 } });
  });

  after(async () => {
    for (const c of children) await c.kill("SIGKILL");
    await twilio.close();
    await worker.close();
    await Promise.all([deepgram.close(), openai.close(), elevenlabs.close(), customer.close()]);
    await t.close();
    await redis.close();
  });

  async function getCall(id: string): Promise<CallRecord> {
    const res = await t.request({ method: "GET", url: `/call/${id}`, key: org.key });
    assert.equal(res.statusCode, 200);
    return res.json() as CallRecord;
  }

  async function importNumber(assistantId: string): Promise<{ id: string; number: string }> {
    const number = uniqueNumber();
    twilio.addNumber(ACCOUNT_SID, number);
    const res = await t.request({
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
    assert.equal(res.statusCode, 201, res.body);
    return { id: res.json().id as string, number };
  }

  /** A call answered by a fresh media process, with one completed turn (first message, question, answer). */
  async function callWithOneTurn(): Promise<{
    media: AppProcess;
    sim: TwilioCallSimulator;
    callId: string;
    phoneNumberId: string;
    assistantId: string;
  }> {
    const media = await startApp("media", mediaEnv);
    children.push(media);
    const created = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      payload: assistantBody({ server: { url: customer.url }, serverMessages: ["end-of-call-report"] }),
    });
    assert.equal(created.statusCode, 201, created.body);
    const assistantId = created.json().id as string;
    const { id: phoneNumberId, number } = await importNumber(assistantId);
    const sim = await twilio.placeInboundCall({
      to: number,
      from: "+14155550100",
      simulator: { utterances: deepgram, recordAudio: false },
    });
    await waitForSpoken(sim, 1, 15_000);
    await sim.say("What are your opening hours?");
    await waitForSpoken(sim, 2, 15_000);
    const row = await t.db.call.findUniqueOrThrow({ where: { providerCallId: sim.callSid } });
    // The completed turn is in the record while the call runs (the media process wrote it then).
    await waitUntil(
      async () =>
        (await getCall(row.id)).messages?.some((m) => m.role === "bot" && m.message?.startsWith("You said")),
      5000,
      "the completed turn in the call record",
    );
    return { media, sim, callId: row.id, phoneNumberId, assistantId };
  }

  function twilioDuration(sim: TwilioCallSimulator): number {
    const report = sim.statusCallbacks.find((r) => r.params.CallStatus === "completed");
    assert.ok(report?.params.CallDuration, "Twilio reported the call's duration");
    return Number(report.params.CallDuration);
  }

  function assertKeptTheTurn(call: CallRecord): void {
    assert.equal(call.endedReason, WORKER_DIED);
    assert.match(
      call.transcript ?? "",
      /^AI: Hi, this is Riley from Acme\. How can I help\?\nUser: What are your opening hours\?\nAI: You said: What are your opening hours\?\./,
    );
    assert.deepEqual(
      call.messages?.map((m) => m.role),
      ["system", "bot", "user", "bot"],
    );
  }

  async function assertBilledOnce(callId: string, seconds: number): Promise<void> {
    // The end-of-call report goes out once the call is billed and analysed.
    const report = await waitUntil(
      () =>
        customer.received.find(
          (r) =>
            r.json.message?.type === "end-of-call-report" &&
            (r.json.message.call as { id?: string } | undefined)?.id === callId,
        ),
      15_000,
      "the end-of-call report",
    );
    assert.equal(report.json.message?.endedReason, WORKER_DIED);
    const call = await getCall(callId);
    assert.ok(call.cost !== undefined, "the call's cost");
    const byType = new Map(call.costs?.map((c) => [c.type, c]));
    assert.ok(
      Math.abs((byType.get("transport")?.minutes ?? 0) * 60 - seconds) < 0.01,
      `transport billed for Twilio's ${seconds} s`,
    );
    assert.ok((byType.get("model")?.promptTokens ?? 0) > 0, "the completed turn's LLM tokens are billed");
    assert.ok((byType.get("voice")?.characters ?? 0) > 40, "the completed turn's TTS characters are billed");
    const ledger = async () => {
      const lines = await t.db.usageLine.findMany({ where: { callId } });
      return lines.map((l) => `${l.category} ${l.amountMicros}`).sort();
    };
    const lines = await ledger();
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      ["analysis", "llm", "platform", "stt", "transport", "tts"],
      "one ledger line per category",
    );
    const total = lines.reduce((sum, l) => sum + BigInt(l.split(" ")[1] ?? "0"), 0n);
    assert.equal(Number(total) / 1e6, call.cost);
    // Sweeps keep running in the worker: nothing is billed again.
    await new Promise((r) => setTimeout(r, LEASE_MS));
    assert.deepEqual(await ledger(), lines);
    assert.equal((await getCall(callId)).cost, call.cost);
  }

  it("Twilio's completed callback ends the call at once: worker-died, its completed turn kept, billed once for Twilio's CallDuration", async (tc) => {
    const { media, sim, callId } = await callWithOneTurn();
    const killedAt = Date.now();
    assert.equal((await media.kill("SIGKILL")).signal, "SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await getCall(callId);
        return c.status === "ended" ? c : undefined;
      },
      2 * LEASE_MS,
      "the call to end",
    );
    const endedInMs = Date.now() - killedAt;
    tc.diagnostic(`SIGKILL to the call ended in the record: ${endedInMs} ms (Twilio's callback)`);
    assert.ok(endedInMs < LEASE_MS, `ended within the lease (${endedInMs} ms)`);
    assertKeptTheTurn(ended);
    await assertBilledOnce(callId, twilioDuration(sim));
  });

  it("with Twilio's callback late, the sweeper ends the call within the lease and frees its slot; the callback then sets the duration it is billed for, once", async (tc) => {
    // Admitted at the org's limit of one call: the slot of the call killed before is free.
    const { media, sim, callId, phoneNumberId, assistantId } = await callWithOneTurn();
    sim.holdStatusCallbacks = true;
    const killedAt = Date.now();
    await media.kill("SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await getCall(callId);
        return c.status === "ended" ? c : undefined;
      },
      3 * LEASE_MS,
      "the sweeper to end the call",
    );
    const endedInMs = Date.now() - killedAt;
    tc.diagnostic(`SIGKILL to the call ended in the record: ${endedInMs} ms (the worker's sweeper)`);
    assert.ok(endedInMs <= LEASE_MS + 1000, `ended within the lease (${endedInMs} ms)`);
    assertKeptTheTurn(ended);
    assert.equal(ended.cost, undefined, "not billed before Twilio reports the duration");
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 0);

    // Its concurrency slot is free: a new call is admitted (Twilio reports it unanswered).
    twilio.outboundOutcome = () => "no-answer";
    const next = await t.request({
      method: "POST",
      url: "/call",
      key: org.key,
      payload: { assistantId, phoneNumberId, customer: { number: "+14155550199" } },
    });
    assert.equal(next.statusCode, 201, next.body);
    await waitUntil(
      async () => (await getCall(next.json().id as string)).status === "ended",
      5000,
      "no answer",
    );

    sim.releaseStatusCallbacks();
    await assertBilledOnce(callId, twilioDuration(sim));
  });
});
