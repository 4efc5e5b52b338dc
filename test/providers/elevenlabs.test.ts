import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { cutAudio, ElevenLabsTts } from "../../libs/providers/elevenlabs.ts";
import { MULAW_8K, ProviderError, type TtsEvent, type TtsOptions } from "../../libs/providers/types.ts";
import type { ElevenLabsVoice } from "../../libs/vapi/assistant.ts";
import { type ElevenLabsConnection, FakeElevenLabs } from "../fakes/index.ts";
import { sleep } from "../fakes/util.ts";
import { audioBytes, rejection, speakClauses, ttsOptions, until, type VoiceOver } from "./helpers.ts";

let fake: FakeElevenLabs;
let tts: ElevenLabsTts;

before(async () => {
  // 10 ms of audio per character, 100 ms per chunk: a 20-char clause is 2 chunks of 800 bytes.
  fake = await FakeElevenLabs.start({
    rejectKeys: ["xi-revoked"],
    msPerChar: 10,
    chunkMs: 100,
    voices: ["voice-1", "voice-2"],
  });
  tts = new ElevenLabsTts({ baseUrl: fake.baseUrl });
});
after(() => fake.close());

type Over = VoiceOver<ElevenLabsVoice>;

const VOICE: ElevenLabsVoice = {
  provider: "11labs",
  voiceId: "voice-1",
  model: "eleven_flash_v2_5",
  stability: 0.4,
  similarityBoost: 0.8,
  speed: 1.1,
  optimizeStreamingLatency: 3,
};

const options = (signal: AbortSignal, over: Over = {}): TtsOptions =>
  ttsOptions(VOICE, "xi-key", signal, over);

function connectionsSince(index: number): ElevenLabsConnection[] {
  return fake.connections.slice(index);
}

/** Speaks one flushed clause and resolves with its events once done (or failed). */
const speak = (engine: ElevenLabsTts, signal: AbortSignal, text: string, over: Over = {}) =>
  speakClauses(engine, options(signal, over), [text]);

test("clause-by-clause text comes back as audio chunks, then done with the characters sent", async () => {
  const ac = new AbortController();
  const events: TtsEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  assert.equal(conn.multi, true, "the multi-context socket");
  assert.equal(conn.voiceId, "voice-1");
  assert.equal(conn.headerKey, "xi-key");
  assert.equal(conn.params.model_id, "eleven_flash_v2_5");
  assert.equal(conn.params.output_format, "ulaw_8000");
  assert.equal(conn.params.inactivity_timeout, "180");
  assert.deepEqual(conn.undocumentedParams, [], "optimize_streaming_latency is not sent on the socket");
  assert.ok(typeof stream.connectMs === "number");

  stream.sendText("Sure, I can help with that.");
  await until(() => events.some((e) => e.type === "audio"));
  stream.sendText("What time works for you?");
  stream.end();
  await until(() => events.some((e) => e.type === "done"));

  assert.equal(conn.contexts.length, 1);
  const ctx = conn.contexts[0];
  assert.ok(ctx);
  assert.equal(ctx.init.text, " ");
  assert.equal(ctx.init.context_id, ctx.id);
  assert.deepEqual(ctx.voiceSettings, { stability: 0.4, similarity_boost: 0.8, speed: 1.1 });
  assert.deepEqual(ctx.init.generation_config?.chunk_length_schedule, [50, 120, 160, 250]);
  assert.deepEqual(
    ctx.received.slice(1).map((m) => m.text),
    ["Sure, I can help with that. ", "What time works for you? ", "", undefined],
    "two clauses, a flush, then close_context",
  );
  assert.equal(ctx.received[ctx.received.length - 1]?.close_context, true);
  assert.ok(
    conn.received.every((m) => m.context_id === ctx.id),
    "every message names the context",
  );
  assert.deepEqual(
    ctx.generations.map((g) => g.text),
    ["Sure, I can help with that. ", "What time works for you? "],
    "each clause was generated on its own",
  );
  const done = events[events.length - 1];
  assert.ok(done?.type === "done");
  assert.equal(done.characters, ctx.charsReceived);
  assert.equal(done.characters, 53);
  assert.ok(events.filter((e) => e.type === "audio").length >= 4, "audio arrives in chunks");
  assert.equal(audioBytes(events), 53 * 10 * 8);
  assert.equal(events.filter((e) => e.type === "error").length, 0);
  assert.equal(conn.closedAt, undefined, "the socket stays open for the call's next reply");
  ac.abort();
  await until(() => conn.closedAt !== undefined);
});

test("JSON that is no message (null, a number, a string) or no JSON at all is ignored; the utterance carries on", async () => {
  const ac = new AbortController();
  const events: TtsEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  for (const raw of ["null", "42", '"audio"', "[]", "{not json"]) conn.sendRaw(raw);
  stream.sendText("Sure, I can help with that.", true);
  stream.end();
  await until(() => events.some((e) => e.type === "done" || e.type === "error"));
  assert.equal(events.filter((e) => e.type === "error").length, 0);
  assert.ok(audioBytes(events) > 0);
  ac.abort();
});

test("an audio message's audio is cut out of its bytes; the rest parses as the same message", () => {
  const audio = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255, 34, 92]);
  const text = `{"audio":"${audio.toString("base64")}","isFinal":null,"alignment":{"chars":["\\"","é"]},"contextId":"c-1"}`;
  const cut = cutAudio(Buffer.from(text));
  assert.ok(cut);
  assert.deepEqual(cut.audio, audio);
  assert.deepEqual(JSON.parse(cut.rest), { ...JSON.parse(text), audio: "" });
  // Escaped quotes inside a string never match the key; no audio string (null, spaced JSON) parses whole.
  assert.equal(cutAudio(Buffer.from('{"message":"say \\"audio\\":\\"x\\"","audio":null}')), undefined);
  assert.equal(cutAudio(Buffer.from('{"audio": "AAAA", "contextId": "c-1"}')), undefined);
  const spoken = `{"message":"\\"audio\\":\\"no\\"","audio":"${audio.toString("base64")}"}`;
  assert.deepEqual(cutAudio(Buffer.from(spoken))?.audio, audio);
});

test("two utterances of one call share one socket, each in its own context", async () => {
  const ac = new AbortController();
  const first = fake.connections.length;
  tts.prewarm(options(ac.signal));
  await until(() => fake.connections.length === first + 1);

  const one = await speak(tts, ac.signal, "Welcome back.");
  const two = await speak(tts, ac.signal, "How can I help?");
  assert.deepEqual(
    [one, two].map((events) => events.filter((e) => e.type !== "audio")),
    [[{ type: "done", characters: 14 }], [{ type: "done", characters: 16 }]],
  );
  assert.equal(audioBytes(one), 14 * 10 * 8);
  assert.equal(audioBytes(two), 16 * 10 * 8);

  const conns = connectionsSince(first);
  assert.equal(conns.length, 1, "one socket for the whole call");
  const conn = conns[0];
  assert.ok(conn);
  assert.equal(conn.contexts.length, 2);
  assert.notEqual(conn.contexts[0]?.id, conn.contexts[1]?.id, "a fresh context per utterance");
  assert.deepEqual(
    conn.contexts.map((c) => c.text),
    ["Welcome back. ", "How can I help? "],
  );
  assert.ok(conn.contexts.every((c) => c.finalAt !== undefined && c.closedAt !== undefined));

  // The same call's socket is reused once it is open: no handshake to wait for.
  const events: TtsEvent[] = [];
  const third = await tts.open(options(ac.signal), (e) => events.push(e));
  assert.ok((third.connectMs ?? Number.POSITIVE_INFINITY) < 50, `connectMs ${third.connectMs}`);
  third.abort();

  // Another call never shares it; another voice gets its own socket.
  const other = new AbortController();
  await speak(tts, other.signal, "Someone else.");
  const voice2 = await tts.open(options(ac.signal, { voiceId: "voice-2" }), () => {});
  voice2.abort();
  const now = connectionsSince(first);
  assert.equal(now.length, 3);
  assert.deepEqual(
    now.map((c) => c.voiceId),
    ["voice-1", "voice-1", "voice-2"],
  );
  assert.equal(now[1]?.contexts[0]?.text, "Someone else. ");

  ac.abort();
  other.abort();
  await until(() => now.every((c) => c.closedAt !== undefined));
});

test("barge-in: abort() closes the context and drops its audio; the next utterance reuses the socket, unmixed", async () => {
  fake.chunkIntervalMs = 20;
  const ac = new AbortController();
  try {
    const events1: TtsEvent[] = [];
    const before = fake.connections.length;
    const connP = fake.waitForConnection();
    const s1 = await tts.open(options(ac.signal), (e) => events1.push(e));
    const conn = await connP;
    const long =
      "This is a long answer that keeps on going for quite a while, well past the barge-in. ".repeat(4);
    s1.sendText(long, true);
    await until(() => events1.some((e) => e.type === "audio"));
    s1.abort();
    const heard1 = events1.length;
    const ctx1 = conn.contexts[0];
    assert.ok(ctx1);
    await until(() => ctx1.closedAt !== undefined);
    const sentAtAbort = ctx1.audioBytesSent;

    // The next reply, while the server is still draining the interrupted one.
    const events2: TtsEvent[] = [];
    const s2 = await tts.open(options(ac.signal), (e) => events2.push(e));
    const answer = "Sure, go ahead.";
    s2.sendText(answer, true);
    s2.end();
    await until(() => events2.some((e) => e.type === "done"));

    // The server finishes what was flushed for the interrupted context ("continue flushing").
    await until(() => ctx1.finalAt !== undefined, 10_000);
    assert.equal(fake.connections.length, before + 1, "no new socket");
    assert.equal(conn.closedAt, undefined, "the socket survived the barge-in");
    assert.equal(conn.contexts.length, 2, "one context per utterance");
    assert.ok(ctx1.audioBytesSent > sentAtAbort, "audio for the interrupted context kept coming");
    assert.equal(ctx1.audioBytesSent, long.length * 10 * 8);
    assert.equal(events1.length, heard1, "no events for the interrupted utterance after abort");
    assert.equal(audioBytes(events2), (answer.length + 1) * 10 * 8, "only the new utterance's audio");
    assert.deepEqual(events2[events2.length - 1], { type: "done", characters: answer.length + 1 });
    assert.equal(events2.filter((e) => e.type === "error").length, 0);
  } finally {
    fake.chunkIntervalMs = 0;
    ac.abort();
  }
});

test("the call's abort ends the live stream silently and closes the socket with close_socket", async () => {
  const ac = new AbortController();
  const events: TtsEvent[] = [];
  const connP = fake.waitForConnection();
  const stream = await tts.open(options(ac.signal), (e) => events.push(e));
  const conn = await connP;
  stream.sendText("Hello there.", true);
  ac.abort();
  await until(() => conn.closedAt !== undefined);
  assert.equal(conn.closeCode, 1000);
  assert.deepEqual(conn.received[conn.received.length - 1], { close_socket: true });
  await sleep(50);
  assert.equal(events.filter((e) => e.type !== "audio").length, 0, "no done, no error");
  await assert.rejects(
    tts.open(options(ac.signal), () => {}),
    (e: unknown) => e instanceof Error && e.name === "AbortError",
  );
});

test("a rejected key fails open with a non-retryable ProviderError", async () => {
  const err = await rejection(
    tts.open(options(new AbortController().signal, { apiKey: "xi-revoked" }), () => {}),
  );
  assert.ok(err instanceof ProviderError);
  assert.equal(err.status, 401);
  assert.equal(err.retryable, false);
  assert.equal(err.provider, "11labs");
  assert.equal(err.kind, "voice");
});

test("a socket dropped mid-utterance is a retryable error event; the next utterance dials again", async () => {
  fake.chunkIntervalMs = 20;
  const ac = new AbortController();
  try {
    const events: TtsEvent[] = [];
    const connP = fake.waitForConnection();
    const stream = await tts.open(options(ac.signal), (e) => events.push(e));
    const conn = await connP;
    stream.sendText("A long sentence that is still being spoken when the socket goes away.", true);
    await until(() => events.some((e) => e.type === "audio"));
    conn.drop(1011, "internal server error");
    await until(() => events.some((e) => e.type === "error"));
    const e = events[events.length - 1];
    assert.ok(e?.type === "error");
    assert.equal(e.error.message, "11labs closed the stream (code 1011): internal server error");
    assert.equal(e.error.retryable, true);
    assert.equal(e.error.status, 1011);
    assert.equal(events.filter((x) => x.type === "done").length, 0);

    fake.chunkIntervalMs = 0;
    const before = fake.connections.length;
    const next = await speak(tts, ac.signal, "Let me try that again.");
    assert.equal(fake.connections.length, before + 1, "a new socket");
    assert.deepEqual(next[next.length - 1], { type: "done", characters: 23 });
  } finally {
    fake.chunkIntervalMs = 0;
    ac.abort();
  }
});

test("keep-alives: a context waiting for text is kept alive; an idle socket is left alone and re-dialed once gone", async () => {
  const quick = new ElevenLabsTts({ baseUrl: fake.baseUrl, keepAliveIntervalMs: 30 });
  const ac = new AbortController();
  const connP = fake.waitForConnection();
  quick.prewarm(options(ac.signal));
  const conn = await connP;
  // Idle: nothing is sent (a keep-alive would need a context id that does not exist yet).
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(conn.received, []);
  assert.equal(conn.contexts.length, 0);

  // While a reply waits for text (a slow model), its own context is kept alive, never billed.
  const events: TtsEvent[] = [];
  const stream = await quick.open(options(ac.signal), (e) => events.push(e));
  await until(() => (conn.contexts[0]?.keepAlives ?? 0) >= 2);
  assert.equal(conn.charsReceived, 0);
  stream.sendText("Thanks for waiting.", true);
  stream.end();
  await until(() => events.some((e) => e.type === "done"));
  assert.equal(conn.charsReceived, 20);

  // Idle again after the reply: no more keep-alives.
  const after = conn.keepAlives;
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(conn.keepAlives, after);

  // The service closes the idle socket (its inactivity timeout): the next reply dials a new one.
  const nextP = fake.waitForConnection();
  conn.drop(1000, "inactivity timeout");
  await until(() => conn.closedAt !== undefined);
  const again: TtsEvent[] = [];
  const second = await quick.open(options(ac.signal), (e) => again.push(e));
  const next = await nextP;
  second.sendText("Still here.", true);
  second.end();
  await until(() => again.some((e) => e.type === "done"));
  assert.ok(again.some((e) => e.type === "audio"));
  assert.ok(!again.some((e) => e.type === "error"));
  assert.equal(next.charsReceived, 12);
  ac.abort();
  await until(() => next.closedAt !== undefined);
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
  assert.match(
    e.error.message,
    /^11labs closed the stream \(code 1008\): Have not received a new text input/,
  );
});

test("rapid barge-ins never exceed the 5-context limit: a full socket is replaced, not failed", async () => {
  fake.chunkIntervalMs = 20;
  const ac = new AbortController();
  try {
    const before = fake.connections.length;
    const errors: TtsEvent[] = [];
    const long = "An answer the caller keeps interrupting, again and again and again. ".repeat(6);
    for (let i = 0; i < 5; i++) {
      const events: TtsEvent[] = [];
      const s = await tts.open(options(ac.signal), (e) => {
        events.push(e);
        if (e.type === "error") errors.push(e);
      });
      s.sendText(long, true);
      await until(() => events.some((e) => e.type === "audio"));
      s.abort(); // still draining on the server: the context stays unfinished for a while
    }
    const first = fake.connections[before];
    assert.ok(first);
    assert.equal(first.unfinishedContexts, 5);

    const sixth = await speak(tts, ac.signal, "Okay, I am listening.");
    assert.deepEqual(sixth[sixth.length - 1], { type: "done", characters: 22 });
    assert.equal(errors.length, 0);
    assert.equal(fake.connections.length, before + 2, "a second socket for the call");
    await until(() => first.closedAt !== undefined);
    assert.equal(first.closeCode, 1000, "the full socket was closed by us, not failed by the server");
  } finally {
    fake.chunkIntervalMs = 0;
    ac.abort();
  }
});

test("output formats: the call's own where ElevenLabs makes it, the nearest offered one otherwise", async () => {
  assert.deepEqual(tts.outputFor(MULAW_8K), MULAW_8K);
  for (const rate of [8000, 16000, 22050, 24000]) {
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: rate }), {
      encoding: "linear16",
      sampleRate: rate,
    });
  }
  // 44.1 kHz PCM is Pro-tier only; voices are made at 24 kHz: the session resamples.
  assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 44100 }), {
    encoding: "linear16",
    sampleRate: 24000,
  });
  assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 12000 }), {
    encoding: "linear16",
    sampleRate: 16000,
  });
  assert.deepEqual(tts.outputFor({ encoding: "mulaw", sampleRate: 16000 }), {
    encoding: "linear16",
    sampleRate: 16000,
  });

  const ac = new AbortController();
  const connP = fake.waitForConnection();
  const events = await speak(tts, ac.signal, "Hello there.", {
    outputFormat: { encoding: "linear16", sampleRate: 16000 },
  });
  const conn = await connP;
  assert.equal(conn.params.output_format, "pcm_16000");
  // "Hello there. " (the adapter ends a chunk with a space): 13 characters at this fake's 10 ms
  // each, 32 bytes per ms of 16 kHz PCM.
  assert.equal(audioBytes(events), 13 * 10 * 32);
  ac.abort();
});
