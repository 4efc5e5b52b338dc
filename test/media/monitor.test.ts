import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { buildMedia, type MediaApp } from "../../apps/media/src/app.ts";
import { mediaConfigFromEnv } from "../../apps/media/src/config.ts";
import { monitorToken } from "../../libs/calls/monitor.ts";
import { InProcessQueue } from "../../libs/queue/index.ts";
import type { TwilioCallSimulator } from "../fakes/index.ts";
import { testEnv } from "../helpers/api.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// Live listen and control end to end (`call.monitor`): a listener on the media plane hears both
// parties as Vapi streams them (PCM 16 kHz, stereo, channel 0 the customer, channel 1 the
// assistant), from the process holding the call or from another one through Redis; the controlUrl
// reaches the call without an API key.

const SAMPLES_PER_MS = 16;
/** Bytes of one stereo sample. */
const FRAME = 4;
const BLOCK_MS = 20;
/** The fake voice (FakeElevenLabs, msPerChar 10): 10 ms of tone per character. */
const MS_PER_CHAR = 10;

interface Listener {
  ws: WebSocket;
  chunks: Buffer[];
  /** Bytes received so far. */
  bytes(): number;
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

function listen(url: string, headers: Record<string, string> = {}): Listener {
  const ws = new WebSocket(url, { headers });
  const chunks: Buffer[] = [];
  let bytes = 0;
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    assert.ok(isBinary, "listen audio is binary");
    chunks.push(data);
    bytes += data.length;
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return { ws, chunks, bytes: () => bytes, opened, closed };
}

type Levels = Array<[number, number]>;

/** Per 20 ms block of the stream: the mean absolute level of each channel. */
function levels(chunks: Buffer[]): Levels {
  const pcm = Buffer.concat(chunks);
  const per = BLOCK_MS * SAMPLES_PER_MS;
  const out: Levels = [];
  for (let b = 0; b + per * FRAME <= pcm.length; b += per * FRAME) {
    let c = 0;
    let a = 0;
    for (let i = 0; i < per; i++) {
      c += Math.abs(pcm.readInt16LE(b + i * FRAME));
      a += Math.abs(pcm.readInt16LE(b + i * FRAME + 2));
    }
    out.push([c / per, a / per]);
  }
  return out;
}

const VOICED = 500;

function voiced(block: [number, number] | undefined, channel: 0 | 1): boolean {
  return block !== undefined && block[channel] > VOICED;
}

/**
 * The voiced stretches of one channel, as [first, last] block (inclusive). Gaps of up to 200 ms do
 * not split a stretch: a caller's frame that reaches the mix later than its delay (100 ms; the
 * test's process is the media server too, and shares two cores with others) is laid after the
 * silence already sent in its place.
 */
function stretches(blocks: Levels, channel: 0 | 1): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < blocks.length; i++) {
    if (!voiced(blocks[i], channel)) continue;
    const last = out[out.length - 1];
    if (last && i - last[1] <= 11) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}

function voicedMs(blocks: Levels, channel: 0 | 1): number {
  return blocks.filter((b) => voiced(b, channel)).length * BLOCK_MS;
}

function callIdOf(sim: TwilioCallSimulator): string {
  const id = sim.customParameters.callId;
  assert.ok(id);
  return id;
}

async function monitorOf(
  env: MediaEnv,
  callId: string,
): Promise<{ listenUrl?: string; controlUrl?: string }> {
  const res = await env.t.request({ method: "GET", url: `/call/${callId}`, key: env.org.key });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().monitor ?? {};
}

/** POSTs to a controlUrl as a client would: no API key, the URL as given. */
async function control(url: string, payload: object): Promise<{ status: number; body: string }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  return { status: res.status, body: await res.text() };
}

/** The same URL on another media process (a load balancer sending the listener elsewhere). */
function on(media: MediaApp, url: string): string {
  const u = new URL(url);
  const addr = media.server.address();
  assert.ok(addr && typeof addr === "object");
  u.port = String(addr.port);
  return u.href;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("live listen and control", { concurrency: true }, () => {
  let env: MediaEnv;
  let other: MediaApp;

  before(async () => {
    env = await startMediaEnv();
    env.openai.respond = (req) => {
      const last = [...req.messages].reverse().find((m) => m.role === "user");
      return { text: `You said: ${typeof last?.content === "string" ? last.content : "nothing"}.` };
    };
    // A second media process on the same database and Redis, holding no call.
    const c = env.t.config;
    other = await buildMedia(
      mediaConfigFromEnv(
        testEnv({
          DATABASE_URL: env.t.database.url,
          SECRETS_KEY: c.secretsKey.toString("base64"),
          PUBLIC_URL: c.publicUrl,
          MEDIA_PUBLIC_URL: c.mediaPublicUrl,
        }),
      ),
      { db: env.t.db, redis: env.t.redis, queue: new InProcessQueue(), logger: false, sweepIntervalMs: 0 },
    );
    await other.listen({ port: 0, host: "127.0.0.1" });
  });
  after(async () => {
    await other.close();
    await env.close();
  });

  it("a listener hears both parties in time: the caller on channel 0, the assistant's voice on channel 1, silence between; closed 1000 when the call ends", async () => {
    const { sim } = await callAssistant(env, { firstMessage: "Hello there." });
    const { listenUrl } = await monitorOf(env, callIdOf(sim));
    assert.ok(listenUrl);
    const l = listen(listenUrl);
    await l.opened;
    const openedAt = Date.now();
    await waitForSpoken(sim, 1);
    // Caller and assistant take turns: the caller speaks for a second, the assistant answers.
    await sleep(300);
    await sim.say("I would like to check my order status", 1000);
    await waitForSpoken(sim, 2);
    await sleep(300);
    await sim.hangup();
    const closed = await l.closed;
    const connectedMs = Date.now() - openedAt;
    assert.deepEqual(closed, { code: 1000, reason: "call ended" });

    // Whole stereo samples of 16 bits, in real time: as many as the listener was connected for.
    assert.equal(l.bytes() % FRAME, 0);
    const streamedMs = l.bytes() / FRAME / SAMPLES_PER_MS;
    // (The test's own process serves the call: a busy event loop delays its view of both ends.)
    assert.ok(
      streamedMs <= connectedMs + 200 && streamedMs >= connectedMs - 400,
      `${streamedMs} ms streamed in ${connectedMs} ms`,
    );
    const blocks = levels(l.chunks);
    const customer = stretches(blocks, 0);
    const assistant = stretches(blocks, 1);
    // The caller's second of speech, and nothing else, on channel 0.
    assert.equal(customer.length, 1, JSON.stringify(customer));
    assert.ok(Math.abs(voicedMs(blocks, 0) - 1000) <= 100, `customer voiced ${voicedMs(blocks, 0)} ms`);
    // The reply on channel 1, after the caller finished.
    const reply = assistant[assistant.length - 1];
    const said = customer[0];
    assert.ok(reply && said);
    assert.ok(reply[0] > said[1], `reply ${reply} after the caller ${said}`);
    // As long as what was sent to the caller for it.
    const replyMs = voicedMs(blocks.slice(reply[0], reply[1] + 1), 1);
    const sentMs = "You said: I would like to check my order status.".length * MS_PER_CHAR;
    assert.ok(Math.abs(replyMs - sentMs) <= 60, `reply ${replyMs} ms, sent ${sentMs} ms`);
    // Nobody talks over anyone here: where one channel is voiced, the other is silent.
    const overlap = blocks.filter((b) => voiced(b, 0) && voiced(b, 1)).length;
    assert.ok(overlap <= 2, `${overlap} blocks with both voiced`);
    assert.equal((await finalizedCall(env, sim.callSid)).endedReason, "customer-ended-call");
  });

  it("a barge-in cuts the assistant's channel where the caller stopped hearing it", async () => {
    const long = `Thanks for calling. ${"Our opening hours are nine to five on weekdays and ten to two on Saturdays. ".repeat(3)}`;
    const { sim } = await callAssistant(env, {
      firstMessage: long,
      firstMessageInterruptionsEnabled: true,
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 1 },
    });
    const { listenUrl } = await monitorOf(env, callIdOf(sim));
    assert.ok(listenUrl);
    const l = listen(listenUrl);
    await l.opened;
    await waitUntil(() => sim.heardBytes > 8 * 800, 5000, "the first message playing");
    await sim.say("Wait, stop", 800);
    await waitUntil(() => sim.clears > 0, 3000, "the barge-in");
    await sleep(1500);
    await sim.hangup();
    await l.closed;
    const blocks = levels(l.chunks);
    const spoke = stretches(blocks, 0)[0];
    const assistant = stretches(blocks, 1);
    const lastAssistant = assistant[assistant.length - 1];
    assert.ok(spoke && lastAssistant);
    // The assistant stops within voiceSeconds (200 ms) of the caller's voice, give or take the
    // frames a loaded machine delays, not when its message would have ended.
    const cutAfterMs = (lastAssistant[1] - spoke[0]) * BLOCK_MS;
    assert.ok(cutAfterMs <= 500, `assistant cut ${cutAfterMs} ms after the caller began`);
    assert.ok(voicedMs(blocks, 1) < long.length * MS_PER_CHAR * 0.6, "far less than the whole message");
  });

  it("controlUrl without an API key: say is spoken (and heard by a listener), end-call ends the call manually-canceled and closes the listener", async () => {
    const { sim } = await callAssistant(env, { firstMessage: "Hi." });
    await waitForSpoken(sim, 1);
    const { listenUrl, controlUrl } = await monitorOf(env, callIdOf(sim));
    assert.ok(listenUrl && controlUrl);
    const l = listen(listenUrl);
    await l.opened;
    const say = await control(controlUrl, { type: "say", content: "A supervisor is listening in." });
    assert.equal(say.status, 202, say.body);
    assert.deepEqual(JSON.parse(say.body), { ok: true });
    await waitForSpoken(sim, 2);
    await sleep(300);
    const heardMs = voicedMs(levels(l.chunks), 1);
    const sentMs = "A supervisor is listening in.".length * MS_PER_CHAR;
    assert.ok(Math.abs(heardMs - sentMs) <= 60, `said ${sentMs} ms, on the assistant channel ${heardMs} ms`);
    const end = await control(controlUrl, { type: "end-call" });
    assert.equal(end.status, 202, end.body);
    assert.deepEqual(await l.closed, { code: 1000, reason: "call ended" });
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "manually-canceled");
    assert.match(call.transcript ?? "", /AI: A supervisor is listening in\./);
    const late = await control(controlUrl, { type: "say", content: "Too late" });
    assert.equal(late.status, 409);
  });

  it("listen tokens: a wrong one, another call's, or the control token is refused (1008); an ended call 1000", async () => {
    const { sim } = await callAssistant(env);
    const { listenUrl, controlUrl } = await monitorOf(env, callIdOf(sim));
    assert.ok(listenUrl && controlUrl);
    const { sim: sim2 } = await callAssistant(env);
    const otherListen = (await monitorOf(env, callIdOf(sim2))).listenUrl ?? "";
    const base = listenUrl.slice(0, listenUrl.indexOf("?"));
    for (const url of [
      base,
      `${base}?token=abc`,
      `${base}?token=${new URL(controlUrl).searchParams.get("token")}`,
      `${base}?token=${new URL(otherListen).searchParams.get("token")}`,
    ]) {
      const closed = await listen(url).closed;
      assert.equal(closed.code, 1008, url);
      assert.match(closed.reason, /invalid listen token/);
    }
    await Promise.all([sim.hangup(), sim2.hangup()]);
    await finalizedCall(env, sim.callSid);
    assert.deepEqual(await listen(listenUrl).closed, { code: 1000, reason: "call ended" });
  });

  it("monitorPlan: listenEnabled false has no listenUrl and refuses its token; listenAuthenticationEnabled needs an API key of the call's organisation", async () => {
    const { sim } = await callAssistant(env, { monitorPlan: { listenEnabled: false } });
    const callId = callIdOf(sim);
    assert.equal((await monitorOf(env, callId)).listenUrl, undefined);
    const token = monitorToken(env.t.config.secretsKey, "listen", callId);
    const wsBase = env.t.config.mediaPublicUrl.replace(/^http/, "ws");
    const off = await listen(`${wsBase}/call/${callId}/monitor/listen?token=${token}`).closed;
    assert.equal(off.code, 1008);
    assert.match(off.reason, /listening is off/);

    const { sim: guarded } = await callAssistant(env, { monitorPlan: { listenAuthenticationEnabled: true } });
    const { listenUrl } = await monitorOf(env, callIdOf(guarded));
    assert.ok(listenUrl);
    const stranger = await env.t.createOrg("Stranger");
    const refusals: Array<Record<string, string>> = [{}, { authorization: `Bearer ${stranger.key}` }];
    for (const headers of refusals) {
      const refused: { code: number; reason: string } = await listen(listenUrl, headers).closed;
      assert.equal(refused.code, 1008);
      assert.match(refused.reason, /Authorization: Bearer/);
    }
    const l = listen(listenUrl, { authorization: `Bearer ${env.org.key}` });
    await l.opened;
    await waitUntil(() => l.bytes() > 0, 3000, "audio for the organisation's key");
    await Promise.all([sim.hangup(), guarded.hangup()]);
    assert.equal((await l.closed).code, 1000);
  });

  it("another media process relays the call through Redis only while it has a listener; at most 10 listeners per call there", async () => {
    // Not recorded, so the only tap the call can have is a listener's.
    const { sim } = await callAssistant(env, {
      firstMessage: "Hi.",
      artifactPlan: { recordingEnabled: false },
    });
    await waitForSpoken(sim, 1);
    const callId = callIdOf(sim);
    const { listenUrl, controlUrl } = await monitorOf(env, callId);
    assert.ok(listenUrl && controlUrl);
    const session = env.media.calls.find(callId);
    assert.ok(session);
    // Nobody listens: no tap on the call, nothing mixed or published.
    assert.equal(session.taps.size, 0);

    const remote = listen(on(other, listenUrl));
    await remote.opened;
    await waitUntil(() => remote.bytes() > 0, 3000, "relayed audio");
    assert.equal(other.listening.counts.relayed, 1);
    assert.equal(session.taps.size, 1);
    const say = await control(controlUrl, { type: "say", content: "Relayed words for the supervisor." });
    assert.equal(say.status, 202);
    await waitForSpoken(sim, 2);
    await sleep(300);
    const heardMs = voicedMs(levels(remote.chunks), 1);
    const sentMs = "Relayed words for the supervisor.".length * MS_PER_CHAR;
    assert.ok(Math.abs(heardMs - sentMs) <= 60, `said ${sentMs} ms, relayed ${heardMs} ms`);
    remote.ws.close();
    await remote.closed;
    // The holder notices nobody receives its frames any more and stops: the tap is gone.
    await waitUntil(() => session.taps.size === 0, 3000, "the relay to stop");
    assert.equal(other.listening.counts.relayed, 0);

    // Ten listeners on the other process; the eleventh is turned away.
    const many = Array.from({ length: 10 }, () => listen(on(other, listenUrl)));
    await Promise.all(many.map((m) => m.opened));
    await waitUntil(() => many.every((m) => m.bytes() > 0), 3000, "ten relayed listeners");
    assert.equal(session.taps.size, 1, "one mix for all of them");
    const eleventh = await listen(on(other, listenUrl)).closed;
    assert.deepEqual(eleventh, { code: 1013, reason: "too many listeners on this call" });
    await sim.hangup();
    for (const m of many) assert.deepEqual(await m.closed, { code: 1000, reason: "call ended" });
    assert.deepEqual(other.listening.counts, { held: 0, relayed: 0 });
  });
});
