import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ElevenLabsTts } from "../../libs/providers/elevenlabs.ts";
import { ProviderError, type TtsEvent, type TtsOptions } from "../../libs/providers/types.ts";
import { FakeElevenLabs } from "../fakes/index.ts";

let fake: FakeElevenLabs;
let tts: ElevenLabsTts;

before(async () => {
  // 10 ms of audio per character, 100 ms per chunk: a 20-char clause is 2 chunks of 800 bytes.
  fake = await FakeElevenLabs.start({ rejectKeys: ["xi-revoked"], msPerChar: 10, chunkMs: 100 });
  tts = new ElevenLabsTts({ baseUrl: fake.baseUrl });
});
after(() => fake.close());

function options(signal: AbortSignal, over: Partial<TtsOptions> = {}): TtsOptions {
  return {
    apiKey: "xi-key",
    voiceId: "voice-1",
    model: "eleven_flash_v2_5",
    outputFormat: "ulaw_8000",
    voiceSettings: { stability: 0.4, similarityBoost: 0.8, speed: 1.1 },
    optimizeStreamingLatency: 3,
    signal,
    ...over,
  };
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function audioBytes(events: TtsEvent[]): number {
  return events.reduce((n, e) => n + (e.type === "audio" ? e.mulaw.length : 0), 0);
}

test("clause-by-clause text comes back as audio chunks, then done with the characters sent", async () => {
  const ac = new AbortController();
  const events: TtsEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  assert.equal(conn.voiceId, "voice-1");
  assert.equal(conn.headerKey, "xi-key");
  assert.equal(conn.params.model_id, "eleven_flash_v2_5");
  assert.equal(conn.params.output_format, "ulaw_8000");
  assert.equal(conn.params.optimize_streaming_latency, "3");
  assert.ok(typeof stream.connectMs === "number");

  stream.sendText("Sure, I can help with that.");
  await until(() => events.some((e) => e.type === "audio"));
  stream.sendText("What time works for you?");
  stream.end();
  await until(() => events.some((e) => e.type === "done"));

  const bos = conn.received[0];
  assert.equal(bos?.text, " ");
  assert.deepEqual(bos?.voice_settings, { stability: 0.4, similarity_boost: 0.8, speed: 1.1 });
  assert.deepEqual(bos?.generation_config?.chunk_length_schedule, [50, 120, 160, 250]);
  assert.deepEqual(
    conn.received.slice(1).map((m) => m.text),
    ["Sure, I can help with that. ", "What time works for you? ", ""],
  );
  assert.deepEqual(
    conn.generations.map((g) => g.text),
    ["Sure, I can help with that. ", "What time works for you? "],
    "each clause was generated on its own",
  );
  const done = events[events.length - 1];
  assert.ok(done?.type === "done");
  assert.equal(done.characters, conn.charsReceived);
  assert.equal(done.characters, 53);
  assert.ok(events.filter((e) => e.type === "audio").length >= 4, "audio arrives in chunks");
  assert.equal(audioBytes(events), 53 * 10 * 8);
  assert.equal(events.filter((e) => e.type === "error").length, 0);
});

test("abort() stops audio at once and closes the socket", async () => {
  fake.chunkIntervalMs = 20;
  try {
    const events: TtsEvent[] = [];
    const connP = fake.waitForConnection();
    const stream = await tts.open(options(new AbortController().signal), (e) => events.push(e));
    const conn = await connP;
    const long =
      "This is a long answer that keeps on going for quite a while, well past the barge-in. ".repeat(4);
    stream.sendText(long);
    stream.end();
    await until(() => events.some((e) => e.type === "audio"));
    stream.abort();
    const count = events.length;
    await until(() => conn.closedAt !== undefined);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(events.length, count, "no events after abort");
    assert.ok(conn.audioBytesSent < long.length * 10 * 8, "the provider stopped before the end");
  } finally {
    fake.chunkIntervalMs = 0;
  }
});

test("the call's abort signal ends the stream without an error", async () => {
  const ac = new AbortController();
  const events: TtsEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  stream.sendText("Hello there.");
  ac.abort();
  await until(() => conn.closedAt !== undefined);
  assert.equal(events.filter((e) => e.type === "error").length, 0);
});

test("a rejected key fails open with a non-retryable ProviderError", async () => {
  const err = await tts
    .open(options(new AbortController().signal, { apiKey: "xi-revoked" }), () => {})
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(err instanceof ProviderError);
  assert.equal(err.status, 401);
  assert.equal(err.retryable, false);
  assert.equal(err.provider, "11labs");
  assert.equal(err.kind, "voice");
});

test("prewarm: the reply uses the pre-opened socket and a replacement is opened", async () => {
  const ac = new AbortController();
  const firstP = fake.waitForConnection();
  tts.prewarm(options(ac.signal));
  const warm = await firstP;
  await until(() => warm.received.length === 1, 1000); // BOS already sent
  const before = fake.connections.length;

  const events: TtsEvent[] = [];
  const replacementP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  stream.sendText("Welcome back.");
  stream.end();
  await until(() => events.some((e) => e.type === "done"));
  assert.equal(warm.generations[0]?.text, "Welcome back. ", "spoken on the warm socket");
  const replacement = await replacementP;
  assert.equal(fake.connections.length, before + 1, "exactly one replacement");
  assert.notEqual(replacement.id, warm.id);

  // A different voice is not served from this pool.
  const otherP = fake.waitForConnection();
  const other = await tts.open(options(ac.signal, { voiceId: "voice-2" }), () => {});
  assert.equal((await otherP).voiceId, "voice-2");
  other.abort();

  ac.abort();
  await until(() => replacement.closedAt !== undefined);
  assert.equal(fake.openConnections, 0, "the call's abort released every socket");
});

test("keep-alives hold a warm socket open and are not billed", async () => {
  const quick = new ElevenLabsTts({ baseUrl: fake.baseUrl, keepAliveIntervalMs: 30 });
  const ac = new AbortController();
  const connP = fake.waitForConnection();
  quick.prewarm(options(ac.signal));
  const conn = await connP;
  await until(() => conn.received.filter((m) => m.text === " ").length >= 3);
  assert.equal(conn.charsReceived, 0);
  ac.abort();
  await until(() => conn.closedAt !== undefined);
});

test("a provider timeout mid-reply is a retryable error event", async () => {
  const short = new ElevenLabsTts({
    baseUrl: fake.baseUrl,
    inactivityTimeoutS: 1,
    keepAliveIntervalMs: 60_000,
  });
  const events: TtsEvent[] = [];
  await short.open(options(new AbortController().signal), (e) => events.push(e));
  await until(() => events.length > 0, 3000);
  const e = events[0];
  assert.ok(e?.type === "error");
  assert.equal(e.error.retryable, true);
  assert.equal(e.error.status, 1008);
});
