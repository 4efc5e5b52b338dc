import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DeepgramTts } from "../../libs/providers/deepgram-tts.ts";
import { deepgramSpeakModel, deepgramVoiceProblems } from "../../libs/providers/deepgram-tts-rules.ts";
import { ProviderError, type TtsEvent, type TtsOptions } from "../../libs/providers/types.ts";
import type { DeepgramVoice } from "../../libs/vapi/assistant.ts";
import { FakeDeepgramTts } from "../fakes/deepgram-tts.ts";
import { audioBytes, rejection, speakClauses, ttsOptions, until, type VoiceOver } from "./helpers.ts";

let fake: FakeDeepgramTts;
let tts: DeepgramTts;

before(async () => {
  fake = await FakeDeepgramTts.start({ rejectKeys: ["dg-revoked"], msPerChar: 10, chunkMs: 100 });
  tts = new DeepgramTts({ baseUrl: fake.url });
});
after(() => fake.close());

type Over = VoiceOver<DeepgramVoice>;

const options = (signal: AbortSignal, over: Over = {}): TtsOptions =>
  ttsOptions<DeepgramVoice>({ provider: "deepgram", voiceId: "thalia" }, "dg-key", signal, over);

// A bound for a stuck test, not a timing assertion: generous for a loaded machine.
const STUCK_MS = 20_000;

const speak = (engine: DeepgramTts, signal: AbortSignal, clauses: string[], over: Over = {}) =>
  speakClauses(engine, options(signal, over), clauses, STUCK_MS);

describe("Deepgram Aura over the streaming websocket", () => {
  test("the model is the voice: aura-2-thalia-en, μ-law 8 kHz in the URL; Speak + Flush; done at the last Flushed", async () => {
    const ac = new AbortController();
    const before = fake.connections.length;
    const events = await speak(tts, ac.signal, ["Hello there.", "How can I help?"]);
    const done = events.at(-1);
    assert.ok(done?.type === "done");
    assert.equal(done.characters, "Hello there. How can I help?".length);
    assert.equal(audioBytes(events), "Hello there. How can I help?".length * 10 * 8);
    const conn = fake.connections[before];
    assert.ok(conn);
    assert.equal(conn.query.model, "aura-2-thalia-en");
    assert.equal(conn.query.encoding, "mulaw");
    assert.equal(conn.query.sample_rate, "8000");
    assert.equal(conn.authorization, "Token dg-key");
    assert.deepEqual(
      conn.messages.map((m) => m.type),
      ["Speak", "Flush", "Speak", "Flush"],
    );
    ac.abort();
  });

  test("Aura voices map to their family and language; PCM at the call's rate", async () => {
    assert.equal(deepgramSpeakModel("aura", "asteria"), "aura-asteria-en");
    assert.equal(deepgramSpeakModel("aura-2", "celeste"), "aura-2-celeste-es");
    assert.equal(deepgramSpeakModel("aura-2", "viktoria"), "aura-2-viktoria-de");
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 16000 }), {
      encoding: "linear16",
      sampleRate: 16000,
    });
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 22050 }), {
      encoding: "linear16",
      sampleRate: 24000,
    });
    const ac = new AbortController();
    const before = fake.connections.length;
    const events = await speak(tts, ac.signal, ["Hallo."], {
      voiceId: "viktoria",
      mipOptOut: true,
      outputFormat: { encoding: "linear16", sampleRate: 16000 },
    });
    assert.equal(events.at(-1)?.type, "done");
    assert.equal(audioBytes(events), "Hallo.".length * 10 * 32);
    const conn = fake.connections[before];
    assert.equal(conn?.query.model, "aura-2-viktoria-de");
    assert.equal(conn?.query.encoding, "linear16");
    assert.equal(conn?.query.mip_opt_out, "true");
    ac.abort();
  });

  test("one socket per call: replies take turns on it; the call's end closes it", async () => {
    const ac = new AbortController();
    const before = fake.connections.length;
    tts.prewarm(options(ac.signal));
    await until(() => fake.connections.length === before + 1, STUCK_MS);
    await speak(tts, ac.signal, ["First reply."]);
    await speak(tts, ac.signal, ["Second reply."]);
    assert.equal(fake.connections.length, before + 1);
    assert.deepEqual(fake.connections[before]?.spoken, ["First reply.", "Second reply."]);
    ac.abort();
    const conn = fake.connections[before];
    await until(() => conn?.ws.readyState === conn?.ws.CLOSED, STUCK_MS);
  });

  test("abort (barge-in) sends Clear: no audio of it after, and the next reply is heard whole", async () => {
    const ac = new AbortController();
    const events: TtsEvent[] = [];
    const stream = await tts.open(options(ac.signal), (e) => events.push(e));
    stream.sendText("This is a long answer that the caller is going to interrupt halfway through.", true);
    await until(() => events.some((e) => e.type === "audio"), STUCK_MS);
    stream.abort();
    const heard = events.length;
    const next = await speak(tts, ac.signal, ["Sure, go ahead."]);
    assert.equal(events.length, heard);
    assert.equal(next.at(-1)?.type, "done");
    assert.equal(audioBytes(next), "Sure, go ahead.".length * 10 * 8);
    const conn = fake.connections.at(-1);
    assert.ok(conn?.messages.some((m) => m.type === "Clear"));
    ac.abort();
  });

  test("flushes stay under Deepgram's cap: clause flushes are skipped near it, an end flush waits for the window", async () => {
    const limit = { count: 4, windowMs: 400 };
    const capped = await FakeDeepgramTts.start({ msPerChar: 1, chunkMs: 100, flushLimit: limit });
    try {
      const engine = new DeepgramTts({ baseUrl: capped.url, flushLimit: limit, warm: false });
      const ac = new AbortController();
      // 3 replies of 3 clauses: 9 flushes asked for, more than the window allows.
      for (let i = 0; i < 3; i++) {
        const events = await speak(engine, ac.signal, [`Reply ${i} one.`, "Two.", "Three."]);
        assert.equal(events.at(-1)?.type, "done", `reply ${i}`);
      }
      const conn = capped.connections[0];
      assert.equal(conn?.warnings, 0);
      // The first reply flushed its clauses; later ones only their ends, the last after a wait.
      assert.ok((conn?.messages.filter((m) => m.type === "Flush").length ?? 0) < 9);
      assert.equal(
        conn?.spoken.join(" ").replace(/\s+/g, " "),
        "Reply 0 one. Two. Three. Reply 1 one. Two. Three. Reply 2 one. Two. Three.",
      );
      ac.abort();
    } finally {
      await capped.close();
    }
  });

  test("a refused handshake keeps Deepgram's reason: a bad key (401) and an unknown model (400) are not retryable", async () => {
    const bad = await rejection(
      tts.open(options(new AbortController().signal, { apiKey: "dg-revoked" }), () => {}),
    );
    assert.ok(bad instanceof ProviderError);
    assert.equal(bad.kind, "voice");
    assert.equal(bad.status, 401);
    assert.equal(bad.retryable, false);
    const unknown = await rejection(
      tts.open(options(new AbortController().signal, { model: "aura", voiceId: "thalia" }), () => {}),
    );
    assert.ok(unknown instanceof ProviderError);
    assert.equal(unknown.status, 400);
    assert.match(unknown.message, /aura-thalia-en/);
    assert.equal(unknown.retryable, false);
  });

  test("a socket that closes mid-reply (1011 NET-0000) fails it as retryable; the next reply dials again", async () => {
    const ac = new AbortController();
    fake.dropOnText = "drop me";
    const events = await speak(tts, ac.signal, ["Please drop me now."]);
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error");
    assert.equal(error.error.status, 1011);
    assert.match(error.error.message, /NET-0000/);
    assert.equal(error.error.retryable, true);
    const next = await speak(tts, ac.signal, ["Back again."]);
    assert.equal(next.at(-1)?.type, "done");
    ac.abort();
  });
});

describe("Deepgram voice rules (save time)", () => {
  test("a voice must exist in its family", () => {
    assert.deepEqual(deepgramVoiceProblems({ voiceId: "thalia" }), []);
    assert.deepEqual(deepgramVoiceProblems({ voiceId: "asteria", model: "aura" }), []);
    const [aura2Only] = deepgramVoiceProblems({ voiceId: "thalia", model: "aura" });
    assert.equal(aura2Only?.path, "voice.voiceId");
    assert.match(aura2Only?.message ?? "", /no aura voice "thalia".*set voice\.model to "aura-2"/);
    const [aura1Only] = deepgramVoiceProblems({ voiceId: "stella" });
    assert.match(aura1Only?.message ?? "", /no aura-2 voice "stella".*"aura".*defaults to "aura-2"/);
  });
});
