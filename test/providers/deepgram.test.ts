import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { DeepgramStt } from "../../libs/providers/deepgram.ts";
import { MULAW_8K, ProviderError, type SttEvent, type SttOptions } from "../../libs/providers/types.ts";
import { encodeUtteranceFrames, FakeDeepgram, silenceFrame } from "../fakes/index.ts";
import { rejection, speakUtterance, until } from "./helpers.ts";

let fake: FakeDeepgram;
let stt: DeepgramStt;

before(async () => {
  fake = await FakeDeepgram.start({ rejectKeys: ["revoked-key"] });
  stt = new DeepgramStt({ baseUrl: fake.url });
});
after(() => fake.close());

function options(signal: AbortSignal, over: Partial<SttOptions> = {}): SttOptions {
  return {
    apiKey: "dg-key",
    audio: MULAW_8K,
    model: "nova-3",
    language: "en",
    endpointingMs: 300,
    utteranceEndMs: 1000,
    keyterms: ["Switchboard"],
    signal,
    ...over,
  };
}

/** What `connect` rejects with (undefined if it connected). */
const connectError = (engine: DeepgramStt, over: Partial<SttOptions> = {}) =>
  rejection(engine.connect(options(new AbortController().signal, over), () => {}));

test("streams a caller's utterance: speech-started, interim, final, utterance-end in order", async () => {
  const ac = new AbortController();
  const events: SttEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await stt.connect(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  assert.equal(conn.authorization, "Token dg-key");
  assert.equal(conn.params.encoding, "mulaw");
  assert.equal(conn.params.sample_rate, "8000");
  assert.equal(conn.params.endpointing, "300");
  assert.equal(conn.params.utterance_end_ms, "1000");
  assert.equal(conn.params.vad_events, "true");
  assert.equal(conn.params.interim_results, "true");
  assert.equal(conn.params.keyterm, "Switchboard");
  assert.ok(typeof stream.connectMs === "number" && stream.connectMs >= 0);

  speakUtterance(fake, (b) => stream.sendAudio(b), "I would like to book a table for two", 1200, 1200);
  await until(() => events.some((e) => e.type === "utterance-end"));

  const kinds = events.map((e) =>
    e.type === "transcript" ? (e.isFinal ? (e.speechFinal ? "final+speech" : "final") : "interim") : e.type,
  );
  assert.equal(kinds[0], "speech-started");
  assert.ok(kinds.indexOf("interim") > 0, `interim after speech-started: ${kinds.join(",")}`);
  assert.ok(kinds.indexOf("final+speech") > kinds.lastIndexOf("interim"));
  assert.equal(kinds[kinds.length - 1], "utterance-end");
  const final = events.find((e) => e.type === "transcript" && e.speechFinal);
  assert.ok(final?.type === "transcript");
  assert.equal(final.text, "I would like to book a table for two");
  assert.ok(final.confidence > 0.9);
  // Audio time of the last word's end: the 1.2 s utterance, not the endpointing silence after it.
  assert.equal(final.endMs, 1200);
  const started = events[0];
  assert.ok(started?.type === "speech-started");
  assert.equal(started.atMs, 0);

  await stream.close();
  assert.deepEqual(
    conn.controls.map((c) => c.type),
    ["CloseStream"],
  );
  await until(() => conn.closeCode !== undefined);
  assert.equal(conn.closeCode, 1000);
  assert.equal(events.filter((e) => e.type === "error").length, 0);
  assert.equal(events[events.length - 1]?.type, "closed");
});

test("JSON that is no message (null, a number, a string) or no JSON at all is ignored; the stream carries on", async () => {
  const ac = new AbortController();
  const events: SttEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await stt.connect(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  for (const raw of ["null", "42", '"Results"', "[]", "{not json"]) conn.sendRaw(raw);
  speakUtterance(fake, (b) => stream.sendAudio(b), "cancel my order", 600, 0);
  stream.finalize();
  await until(() => events.some((e) => e.type === "transcript" && e.isFinal));
  assert.equal(events.filter((e) => e.type === "error").length, 0);
  await stream.close();
  ac.abort();
});

test("finalize() flushes pending words as a final result", async () => {
  const ac = new AbortController();
  const events: SttEvent[] = [];
  const stream = await stt.connect(options(ac.signal), (e) => events.push(e));
  speakUtterance(fake, (b) => stream.sendAudio(b), "cancel my order", 600, 0);
  stream.finalize();
  await until(() => events.some((e) => e.type === "transcript" && e.isFinal));
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.ok(final?.type === "transcript");
  assert.equal(final.text, "cancel my order");
  assert.equal(final.fromFinalize, true);
  assert.equal(final.speechFinal, false);
  ac.abort();
  await until(() => events.some((e) => e.type === "closed"));
  assert.equal(events.filter((e) => e.type === "error").length, 0, "an abort is not an error");
});

test("a rejected key fails the connect with a non-retryable ProviderError", async () => {
  const err = await connectError(stt, { apiKey: "revoked-key" });
  assert.ok(err instanceof ProviderError);
  assert.equal(err.status, 401);
  assert.equal(err.retryable, false);
  assert.equal(err.provider, "deepgram");
  assert.equal(err.kind, "transcriber");
});

test("an unreachable endpoint is a retryable ProviderError", async () => {
  const down = new DeepgramStt({ baseUrl: "ws://127.0.0.1:9", connectTimeoutMs: 1000 });
  const err = await connectError(down);
  assert.ok(err instanceof ProviderError);
  assert.equal(err.retryable, true);
});

test("a server that accepts the connection but never answers the upgrade fails the connect at its deadline", async () => {
  // A TCP listener that reads the upgrade request and says nothing (an overloaded proxy).
  const held: Socket[] = [];
  const silent = createServer((socket) => {
    held.push(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const { port } = silent.address() as { port: number };
  try {
    const slow = new DeepgramStt({ baseUrl: `ws://127.0.0.1:${port}`, connectTimeoutMs: 200 });
    const started = Date.now();
    const err = await connectError(slow);
    assert.ok(err instanceof ProviderError);
    assert.equal(err.retryable, true);
    assert.match(err.message, /deepgram connection failed: no handshake answer within 200 ms/);
    assert.ok(Date.now() - started < 2000, "the deadline holds");
  } finally {
    for (const s of held) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test("a server drop mid-call emits a retryable error, then closed", async () => {
  const ac = new AbortController();
  const events: SttEvent[] = [];
  const connP = fake.waitForConnection();
  await stt.connect(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  conn.drop(1011, "NET-0001");
  await until(() => events.some((e) => e.type === "closed"));
  assert.deepEqual(
    events.map((e) => e.type),
    ["error", "closed"],
  );
  const e = events[0];
  assert.ok(e?.type === "error");
  assert.equal(e.error.retryable, true);
  assert.equal(e.error.status, 1011);
  ac.abort();
});

test("sends KeepAlive when no audio flows", async () => {
  const quick = new DeepgramStt({ baseUrl: fake.url, keepAliveIntervalMs: 30 });
  const ac = new AbortController();
  const connP = fake.waitForConnection();
  const stream = await quick.connect(options(ac.signal), () => {});
  const conn = await connP;
  await until(() => conn.controls.filter((c) => c.type === "KeepAlive").length >= 2);
  await stream.close();
  assert.ok(conn.controls.some((c) => c.type === "KeepAlive"));
});

test("takes linear16 at the call's rate and μ-law at 8 kHz natively, and says so in the listen URL", async () => {
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 16000 }), true);
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 44100 }), true);
  assert.equal(stt.accepts({ encoding: "mulaw", sampleRate: 8000 }), true);
  assert.equal(stt.accepts({ encoding: "mulaw", sampleRate: 16000 }), false);
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 4000 }), false);

  const ac = new AbortController();
  const events: SttEvent[] = [];
  const pcm = { encoding: "linear16", sampleRate: 16000 } as const;
  const connP = fake.waitForConnection();
  const stream = await stt.connect(options(ac.signal, { audio: pcm }), (e) => events.push(e));
  const conn = await connP;
  assert.equal(conn.params.encoding, "linear16");
  assert.equal(conn.params.sample_rate, "16000");
  const id = fake.allocateUtterance("a table for two please");
  for (const f of encodeUtteranceFrames(id, 1000, pcm)) stream.sendAudio(f);
  for (let t = 0; t < 1200; t += 20) stream.sendAudio(silenceFrame(pcm));
  await until(() => events.some((e) => e.type === "utterance-end"));
  const final = events.find((e) => e.type === "transcript" && e.speechFinal);
  assert.equal(final?.type === "transcript" ? final.text : "", "a table for two please");
  // 1 s of voice at 32 000 bytes a second: Deepgram's audio clock counts the declared rate.
  assert.ok(final?.type === "transcript" && final.endMs === 1000, "endMs in audio time");
  ac.abort();
});
