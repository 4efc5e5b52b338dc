import assert from "node:assert/strict";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import type { CallUsage } from "../../libs/billing/usage.ts";
import { createDb } from "../../libs/db/index.ts";
import { billAndRelease } from "../../libs/media/finalize.ts";
import type { ChatRequest, Script } from "../fakes/index.ts";
import { sleep } from "../fakes/util.ts";
import { startTestApi } from "../helpers/api.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";
import {
  callAssistant,
  createAssistant,
  finalizedCall,
  importNumber,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// Follow-ups to the media plane: caller audio from the very start of the stream reaches the
// transcriber, `speech-update` for the caller, squad `membersOverrides` on hand-off, and the cost
// write surviving a saturated database pool.

const responders = new Map<string, (req: ChatRequest) => Script>();
function model(name: string, respond?: (req: ChatRequest) => Script) {
  if (respond) responders.set(name, respond);
  return {
    provider: "openai",
    model: "gpt-4o",
    messages: [{ role: "system", content: `TEST ${name}. Caller: {{customer.number}}.` }],
  };
}
function requestsOf(env: MediaEnv, name: string) {
  return env.openai.requests.filter((r) =>
    String(r.body.messages[0]?.content ?? "").startsWith(`TEST ${name}.`),
  );
}
function lastUser(req: ChatRequest): string {
  const m = [...req.messages].reverse().find((x) => x.role === "user");
  return typeof m?.content === "string" ? m.content : "";
}

/**
 * A loopback TCP proxy in front of FakeDeepgram that holds a connection for `delayMs` when its
 * upgrade request carries one of `slowKeys`: the transcriber of that call opens late, as a slow
 * network or provider would make it.
 */
class SlowLink {
  readonly slowKeys = new Set<string>();
  delayMs = 1000;
  targetPort = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
    server.on("connection", (client) => {
      this.#sockets.add(client);
      client.on("close", () => this.#sockets.delete(client));
      client.on("error", () => {});
      client.once("data", (first: Buffer) => {
        client.pause();
        const head = first.toString("latin1");
        const slow = [...this.slowKeys].some((k) => head.includes(k));
        setTimeout(
          () => {
            if (client.destroyed) return;
            const up = tcpConnect(this.targetPort, "127.0.0.1", () => {
              up.write(first);
              client.pipe(up);
              up.pipe(client);
            });
            this.#sockets.add(up);
            up.on("close", () => {
              this.#sockets.delete(up);
              client.destroy();
            });
            up.on("error", () => client.destroy());
            client.on("close", () => up.destroy());
          },
          slow ? this.delayMs : 0,
        );
      });
    });
  }

  static async start(): Promise<SlowLink> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return new SlowLink(server);
  }

  get url(): string {
    const addr = this.#server.address();
    return `ws://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

describe("media session: follow-ups end to end", { concurrency: true }, () => {
  let env: MediaEnv;
  let link: SlowLink;
  const servers: CustomerServer[] = [];
  async function ownServer(): Promise<CustomerServer> {
    const s = await startCustomerServer();
    servers.push(s);
    return s;
  }

  before(async () => {
    link = await SlowLink.start();
    env = await startMediaEnv({ env: { DEEPGRAM_API_URL: link.url } });
    link.targetPort = Number(new URL(env.deepgram.url).port);
    env.openai.respond = (req) => {
      const first = String(req.messages[0]?.content ?? "");
      const name = /^TEST ([\w-]+)\./.exec(first)?.[1] ?? "";
      const r = responders.get(name);
      if (r) return r(req);
      const last = lastUser(req);
      return { text: last ? `You said: ${last}.` : "Hello." };
    };
  });
  after(async () => {
    await env.close();
    await link.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  // ------------------------------------------------------------------ 1. early caller audio

  it("early caller audio: what the caller says while the call is still starting is transcribed and answered", async () => {
    const name = "early";
    // An organisation of its own whose transcriber connection opens a second late.
    const org = await env.t.createOrg("Early audio");
    await env.t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 100 } });
    const e: MediaEnv = { ...env, org };
    const key = `dg-slow-${Math.random().toString(36).slice(2)}`;
    link.slowKeys.add(key);
    const cred = await e.t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: { provider: "deepgram", apiKey: key },
    });
    assert.equal(cred.statusCode, 201, cred.body);

    const assistantId = await createAssistant(e, {
      firstMessageMode: "assistant-waits-for-user",
      model: model(name),
    });
    const number = await importNumber(e, { assistantId });
    const sim = await e.twilio.placeInboundCall({
      to: number,
      from: "+14155550100",
      simulator: { utterances: env.deepgram, recordAudio: false },
    });
    // The caller starts talking the moment the stream starts (900 ms of speech).
    const turn = await sim.say("Hello, anyone there?");
    const conn = await waitUntil(
      () => env.deepgram.connections.find((c) => c.key === key),
      5000,
      "the transcriber connection",
    );
    assert.ok(
      turn.lastVoicedAt !== undefined && conn.openedAt >= turn.lastVoicedAt,
      "the whole utterance was spoken before the transcriber was open",
    );
    await waitForSpoken(sim, 1, 8000);
    await sim.hangup();
    const call = await finalizedCall(e, sim.callSid);
    assert.match(
      call.transcript ?? "",
      /^User: Hello, anyone there\?\nAI: You said: Hello, anyone there\?\.$/,
    );
    assert.equal(lastUser(requestsOf(env, name)[0]?.body as ChatRequest), "Hello, anyone there?");
    // Every byte the caller sent reached the transcriber, and is billed as transcribed audio.
    const usage = call.usage as unknown as CallUsage;
    assert.equal(conn.audioBytes, usage.stt.audioSeconds * 8000);
    assert.ok(usage.stt.audioSeconds >= 0.9, String(usage.stt.audioSeconds));
  });

  // ------------------------------------------------------------------ 1b. the caller's long silences

  it("the caller's long silences reach the transcriber in 200 ms messages; speech goes frame by frame, every byte arrives", async () => {
    const name = "silencebatch";
    const { sim } = await callAssistant(env, {
      // ~4 s of assistant speech while the caller listens in silence.
      firstMessage:
        "Hello and thank you for calling Acme, the home of fine widgets since nineteen ninety. How can I help you today?",
      model: model(name),
      transcriber: { provider: "deepgram", model: "nova-3", language: "en", keyterm: [name] },
    });
    await waitForSpoken(sim, 1, 10_000);
    const conn = await waitUntil(
      () => env.deepgram.connections.find((c) => c.params.keyterm === name),
      5000,
      "the transcriber connection",
    );
    // Quiet for seconds: 200 ms messages (10 frames), inside Deepgram's 20–250 ms guidance.
    assert.equal(conn.largestAudioMessage, 1600);
    const framesBefore = conn.audioBytes / 160;
    assert.ok(
      conn.audioMessages < framesBefore / 2,
      `${conn.audioMessages} messages for ${framesBefore} frames of silence`,
    );
    // Speech is not gathered: one message per frame (the first also carries what was gathered).
    const m0 = conn.audioMessages;
    const b0 = conn.audioBytes;
    // Five words: 1.5 s of speech, 75 frames.
    await sim.say("What are your opening hours?");
    await waitUntil(() => conn.audioBytes - b0 >= 75 * 160, 3000, "the utterance at Deepgram");
    const frames = (conn.audioBytes - b0) / 160;
    assert.ok(
      frames - (conn.audioMessages - m0) <= 9,
      `${conn.audioMessages - m0} messages for ${frames} frames`,
    );
    // Gathered again as soon as the transcriber ended the utterance (UtteranceEnd, a second after
    // the last word), not half a second later by the session's own window: two 200 ms messages.
    await waitUntil(() => conn.sent.some((m) => m.type === "UtteranceEnd"), 5000, "the utterance's end");
    const m1 = conn.audioMessages;
    const b1 = conn.audioBytes;
    await waitUntil(() => conn.audioBytes - b1 >= 3200, 3000, "400 ms of silence after the utterance's end");
    assert.ok(
      conn.audioMessages - m1 <= 3,
      `${conn.audioMessages - m1} messages for ${(conn.audioBytes - b1) / 160} frames after the utterance's end`,
    );
    await waitForSpoken(sim, 2);
    // Hang up while silence is being gathered (three frames or more sent but not yet at Deepgram).
    const heldAt = await waitUntil(
      () => (sim.framesSent * 160 - conn.audioBytes >= 480 ? conn.audioBytes : undefined),
      5000,
      "silence being gathered",
    );
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.match(call.transcript ?? "", /User: What are your opening hours\?/);
    // What was gathered went before the stream closed: every byte is transcribed (and billed) audio.
    assert.ok(conn.audioBytes >= heldAt + 320, `${conn.audioBytes - heldAt} bytes flushed at the end`);
    const usage = call.usage as unknown as CallUsage;
    assert.equal(usage.stt.audioSeconds, conn.audioBytes / 8000);
  });

  // ------------------------------------------------------------------ 2. speech-update for the caller

  it("speech-update for the caller: started when they start talking, stopped at the endpoint, only when subscribed", async () => {
    const hooks = await ownServer();
    const { sim } = await callAssistant(env, {
      server: { url: hooks.url },
      serverMessages: ["speech-update", "end-of-call-report"],
      model: model("speechupd"),
    });
    await waitForSpoken(sim, 1);
    await sim.say("What are your opening hours?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    await waitUntil(
      () => hooks.received.find((r) => r.json.message?.type === "end-of-call-report"),
      10_000,
      "end-of-call-report",
    );
    const speech = hooks.received
      .map((r) => r.json.message ?? {})
      .filter((m) => m.type === "speech-update")
      .map((m) => ({
        role: String(m.role),
        status: String(m.status),
        at: Number(m.timestamp),
        callId: (m.call as { id?: string } | undefined)?.id,
      }))
      .sort((a, b) => a.at - b.at);
    for (const m of speech) assert.equal(m.callId, call.id);
    const user = speech.filter((m) => m.role === "user");
    assert.deepEqual(
      user.map((m) => m.status),
      ["started", "stopped"],
      JSON.stringify(speech),
    );
    const [started, stopped] = user;
    assert.ok(started && stopped);
    // The caller spoke for 1.5 s; the endpoint comes after the last word.
    assert.ok(stopped.at - started.at >= 800, `${stopped.at - started.at} ms`);
    // The assistant's reply starts after the caller's turn ended.
    const replyStarted = speech.filter((m) => m.role === "assistant" && m.status === "started")[1];
    assert.ok(replyStarted && replyStarted.at >= stopped.at, JSON.stringify(speech));

    // Not subscribed: no speech-update at all, for either side.
    const quiet = await ownServer();
    const other = await callAssistant(env, {
      server: { url: quiet.url },
      serverMessages: ["transcript", "end-of-call-report"],
      model: model("speechquiet"),
    });
    await waitForSpoken(other.sim, 1);
    await other.sim.say("Anyone there?");
    await waitForSpoken(other.sim, 2);
    await other.sim.hangup();
    await finalizedCall(env, other.sim.callSid);
    await waitUntil(
      () => quiet.received.find((r) => r.json.message?.type === "end-of-call-report"),
      10_000,
      "end-of-call-report",
    );
    assert.ok(quiet.received.some((r) => r.json.message?.type === "transcript"));
    assert.ok(quiet.received.every((r) => r.json.message?.type !== "speech-update"));
  });

  // ------------------------------------------------------------------ 3. squad membersOverrides

  it("squad hand-off applies the squad's membersOverrides and the member's assistantOverrides", async () => {
    const a = "ovrA";
    const b = "ovrB";
    const suffix = Math.random().toString(36).slice(2, 8);
    const billingName = `Billing ${suffix}`;
    // Voices of the account (ElevenLabs refuses a voice id it does not have).
    env.elevenlabs.addVoice("voice-billing-member", "voice-squad-wide");
    const greeterId = await createAssistant(env, {
      name: `Greeter ${suffix}`,
      firstMessage: "Greeter's own first message.",
      model: model(a, (req) => {
        if (lastUser(req).includes("billing"))
          return {
            toolCalls: [{ id: "call_ho", name: "transferCall", arguments: { destination: billingName } }],
          };
        return { text: "Anything else?" };
      }),
    });
    const billingId = await createAssistant(env, {
      name: billingName,
      firstMessage: "Billing's own first message.",
      model: model(b, (req) => ({ text: `Billing answer to: ${lastUser(req)}.` })),
    });
    const squad = await env.t.request({
      method: "POST",
      url: "/squad",
      key: env.org.key,
      payload: {
        name: `Squad ${suffix}`,
        members: [
          {
            assistantId: greeterId,
            assistantOverrides: { firstMessage: "Welcome, the greeter speaking." },
            assistantDestinations: [
              { type: "assistant", assistantName: billingName, message: "Passing you to billing." },
            ],
          },
          {
            assistantId: billingId,
            assistantOverrides: { voice: { provider: "11labs", voiceId: "voice-billing-member" } },
          },
        ],
        membersOverrides: {
          firstMessage: "Billing desk, as the squad says.",
          voice: { provider: "11labs", voiceId: "voice-squad-wide" },
        },
      },
    });
    assert.equal(squad.statusCode, 201, squad.body);
    const number = await importNumber(env, { squadId: squad.json().id });
    const sim = await env.twilio.placeInboundCall({
      to: number,
      from: "+14155550100",
      simulator: { utterances: env.deepgram, recordAudio: false },
    });
    await waitForSpoken(sim, 1);
    await sim.say("I have a billing question.");
    await waitForSpoken(sim, 3, 10_000);
    await sim.say("Why was I charged twice?");
    await waitForSpoken(sim, 4, 10_000);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    // The member's own override wins at call start; after the hand-off the squad-wide firstMessage
    // replaces the billing assistant's own one.
    assert.match(
      call.transcript ?? "",
      /^AI: Welcome, the greeter speaking\.\nUser: I have a billing question\.\nAI: Passing you to billing\.\nAI: Billing desk, as the squad says\.\nUser: Why was I charged twice\?\nAI: Billing answer to: Why was I charged twice\?\.$/,
    );
    // Voices: the squad-wide voiceId for the greeter, the member's own for billing (merged into
    // the assistant's voice, whose model stays).
    const voiceOf = (text: string) =>
      env.elevenlabs.connections.filter((c) => c.text.includes(text)).map((c) => c.voiceId);
    assert.deepEqual(voiceOf("Welcome, the greeter speaking."), ["voice-squad-wide"]);
    assert.deepEqual(voiceOf("Billing desk, as the squad says."), ["voice-billing-member"]);
    assert.deepEqual(voiceOf("Billing answer to: Why was I charged twice?."), ["voice-billing-member"]);
    const billingConn = env.elevenlabs.connections.find((c) => c.text.includes("Billing desk"));
    assert.equal(billingConn?.params.model_id, "eleven_turbo_v2_5");
    assert.match(String(requestsOf(env, b)[0]?.body.messages[0]?.content), /^TEST ovrB\./);
  });
});

// ------------------------------------------------------------------ 4. the cost under a saturated pool

describe("billAndRelease under a saturated database pool", () => {
  it("retries recording the cost on P2028 and records it once connections free up", async () => {
    const t = await startTestApi();
    // Two connections, both held by long transactions: the cost transaction cannot start within
    // Prisma's maxWait (2 s) the first time.
    const db = createDb(t.database.url, { max: 2 });
    try {
      const org = await t.createOrg("Saturated");
      const usage: CallUsage = {
        durationSeconds: 60,
        transport: { provider: "twilio", direction: "inbound", seconds: 60, byo: true },
        stt: { provider: "deepgram", model: "nova-3", audioSeconds: 60, byo: false },
        llm: {
          provider: "openai",
          model: "gpt-4o",
          promptTokens: 1000,
          cachedPromptTokens: 0,
          completionTokens: 100,
          byo: false,
        },
        tts: { provider: "11labs", model: "eleven_turbo_v2_5", characters: 500, byo: false },
      };
      const endedCall = async () =>
        t.db.call.create({
          data: {
            orgId: org.orgId,
            type: "inboundPhoneCall",
            status: "ended",
            endedReason: "customer-ended-call",
            startedAt: new Date(Date.now() - 60_000),
            endedAt: new Date(),
            usage,
          },
        });
      const saturate = (seconds: number) =>
        Promise.all(
          [0, 1].map(() =>
            db.$transaction(async (tx) => tx.$executeRaw`SELECT pg_sleep(${seconds})`, { timeout: 20_000 }),
          ),
        );
      const logs: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
      const logger = {
        warn: (obj: object, msg: string) => logs.push({ level: "warn", msg, obj: { ...obj } }),
        error: (obj: object, msg: string) => logs.push({ level: "error", msg, obj: { ...obj } }),
      };

      // Control: without retries the saturated pool makes the cost write fail (P2028).
      const control = await endedCall();
      const holding = saturate(2.6);
      await sleep(100);
      await billAndRelease({ db, logger, costRetryDelaysMs: [] }, control.id, org.orgId);
      await holding;
      const failed = logs.find((l) => l.level === "error");
      assert.ok(failed, "the cost write failed without retries");
      assert.equal((failed.obj.err as { code?: string }).code, "P2028");
      assert.equal((await t.db.call.findUniqueOrThrow({ where: { id: control.id } })).cost, null);

      // The default retries: the first attempt times out, a retry records it.
      logs.length = 0;
      const call = await endedCall();
      const holding2 = saturate(2.6);
      await sleep(100);
      await billAndRelease({ db, logger }, call.id, org.orgId);
      await holding2;
      assert.deepEqual(
        logs.map((l) => [l.level, l.obj.code]),
        [["warn", "P2028"]],
        JSON.stringify(logs.map((l) => l.msg)),
      );
      const row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
      assert.ok(row.cost !== null && Number(row.cost.toString()) > 0, String(row.cost));
      assert.ok(row.finalizedAt);
      const lines = await t.db.usageLine.findMany({ where: { callId: call.id } });
      assert.deepEqual(lines.map((l) => l.category).sort(), ["llm", "platform", "stt", "transport", "tts"]);
    } finally {
      await db.$disconnect();
      await t.close();
    }
  });
});
