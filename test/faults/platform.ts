// The platform around the processes a fault test starts and kills: the real API (listening, so the
// Twilio simulator reaches its webhooks), its own Postgres database, the provider fakes and a
// customer's server, all in the test process. Media and worker processes are started by the test
// (helpers/fault-processes.ts) with `appEnv`, pointed at the same database, Redis and fakes.
import assert from "node:assert/strict";
import {
  FakeDeepgram,
  FakeElevenLabs,
  FakeOpenAI,
  FakeTwilio,
  type TwilioCallSimulator,
} from "../fakes/index.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, uniqueNumber } from "../helpers/bodies.ts";
import { freePort } from "../helpers/fault-processes.ts";
import { ACCOUNT_SID, AUTH_TOKEN, waitForSpoken, waitUntil } from "../media/harness.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";

export interface CallRecord {
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

export interface FaultPlatform {
  t: TestApi;
  twilio: FakeTwilio;
  deepgram: FakeDeepgram;
  openai: FakeOpenAI;
  elevenlabs: FakeElevenLabs;
  customer: CustomerServer;
  org: TestOrg;
  /** The environment of a media or worker process of this platform (the media one listens on MEDIA_PORT). */
  appEnv: Record<string, string>;
  /** The call as its organisation sees it (`GET /call/:id`). */
  getCall(id: string): Promise<CallRecord>;
  /** An inbound call to a fresh number and assistant, answered and one turn completed. */
  callWithOneTurn(opts?: { serverMessages?: string[] }): Promise<{
    sim: TwilioCallSimulator;
    callId: string;
    phoneNumberId: string;
    assistantId: string;
  }>;
  close(): Promise<void>;
}

export async function startFaultPlatform(opts: {
  redisUrl: string;
  env?: Record<string, string>;
}): Promise<FaultPlatform> {
  const [twilio, deepgram, openai, elevenlabs, customer] = await Promise.all([
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
    REDIS_URL: opts.redisUrl,
    ...opts.env,
  };
  const t = await startTestApi(common, { twilio, redisUrl: opts.redisUrl });
  await t.app.listen({ port: apiPort, host: "127.0.0.1" });
  const appEnv = {
    ...common,
    DATABASE_URL: t.database.url,
    SECRETS_KEY: t.config.secretsKey.toString("base64"),
    ADMIN_TOKEN: t.config.adminToken,
    ALLOW_PRIVATE_WEBHOOK_URLS: "true",
    LOG_LEVEL: "warn",
    MEDIA_PORT: String(mediaPort),
  };
  const org = await t.createOrg("Faults");

  async function getCall(id: string): Promise<CallRecord> {
    const res = await t.request({ method: "GET", url: `/call/${id}`, key: org.key });
    assert.equal(res.statusCode, 200);
    return res.json() as CallRecord;
  }

  return {
    t,
    twilio,
    deepgram,
    openai,
    elevenlabs,
    customer,
    org,
    appEnv,
    getCall,
    async callWithOneTurn(o = {}) {
      const created = await t.request({
        method: "POST",
        url: "/assistant",
        key: org.key,
        payload: assistantBody({
          server: { url: customer.url },
          serverMessages: o.serverMessages ?? ["end-of-call-report"],
        }),
      });
      assert.equal(created.statusCode, 201, created.body);
      const assistantId = created.json().id as string;
      const number = uniqueNumber();
      twilio.addNumber(ACCOUNT_SID, number);
      const imported = await t.request({
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
      assert.equal(imported.statusCode, 201, imported.body);
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
          (await getCall(row.id)).messages?.some(
            (m) => m.role === "bot" && m.message?.startsWith("You said"),
          ),
        5000,
        "the completed turn in the call record",
      );
      return { sim, callId: row.id, phoneNumberId: imported.json().id as string, assistantId };
    },
    async close() {
      await twilio.close();
      await Promise.all([deepgram.close(), openai.close(), elevenlabs.close(), customer.close()]);
      await t.close();
    },
  };
}
