import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { OpenAiTts } from "../../libs/providers/openai-tts.ts";
import { openAiVoiceProblems } from "../../libs/providers/openai-tts-rules.ts";
import { MULAW_8K, ProviderError, type TtsEvent, type TtsOptions } from "../../libs/providers/types.ts";
import type { OpenAiVoice } from "../../libs/vapi/assistant.ts";
import { FakeOpenAiTts } from "../fakes/openai-tts.ts";
import { speakClauses, ttsOptions, until, type VoiceOver } from "./helpers.ts";

let fake: FakeOpenAiTts;
let tts: OpenAiTts;

before(async () => {
  fake = await FakeOpenAiTts.start({ rejectKeys: ["sk-revoked"], msPerChar: 10 });
  tts = new OpenAiTts({ baseUrl: fake.baseUrl });
});
after(() => fake.close());

type Over = Omit<VoiceOver<OpenAiVoice>, "outputFormat">;

const options = (signal: AbortSignal, over: Over = {}): TtsOptions =>
  ttsOptions<OpenAiVoice>({ provider: "openai", voiceId: "alloy" }, "sk-test", signal, {
    ...over,
    outputFormat: tts.outputFor(MULAW_8K),
  });

const speak = (signal: AbortSignal, clauses: string[], over: Over = {}) =>
  speakClauses(tts, options(signal, over), clauses);

const audio = (events: TtsEvent[]) =>
  Buffer.concat(events.flatMap((e) => (e.type === "audio" ? [e.audio] : [])));

describe("OpenAI speech", () => {
  test("the only raw format is PCM 24 kHz: outputFor says so whatever the call wants", () => {
    const pcm24 = { encoding: "linear16", sampleRate: 24000 };
    assert.deepEqual(tts.outputFor(MULAW_8K), pcm24);
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 16000 }), pcm24);
  });

  test("one request per clause (pcm, the voice and model); audio in clause order, whole samples only", async () => {
    const ac = new AbortController();
    const before = fake.requests.length;
    const clauses = ["Hello there.", "How can I help you today?", "Take your time."];
    const events = await speak(ac.signal, clauses);
    const done = events.at(-1);
    assert.ok(done?.type === "done");
    assert.equal(done.characters, clauses.join("").length);
    const requests = fake.requests.slice(before);
    assert.deepEqual(
      requests.map((r) => r.body.input),
      clauses,
    );
    for (const r of requests) {
      assert.equal(r.body.response_format, "pcm");
      assert.equal(r.body.model, "tts-1");
      assert.equal(r.body.voice, "alloy");
      assert.equal("instructions" in r.body, false);
      assert.equal(r.authorization, "Bearer sk-test");
    }
    const pcm = audio(events);
    // 10 ms per character at 48 bytes per ms (24 kHz, 16-bit); every chunk an even length.
    assert.equal(pcm.length, clauses.join("").length * 10 * 48);
    assert.ok(events.every((e) => e.type !== "audio" || e.audio.length % 2 === 0));
    ac.abort();
  });

  test("gpt-4o-mini-tts takes instructions and speed; a custom voice goes as {id}", async () => {
    const ac = new AbortController();
    const before = fake.requests.length;
    const events = await speak(ac.signal, ["Welcome."], {
      model: "gpt-4o-mini-tts",
      voiceId: "voice_1234",
      instructions: "Speak warmly.",
      speed: 1.25,
    });
    assert.equal(events.at(-1)?.type, "done");
    const body = fake.requests[before]?.body;
    assert.deepEqual(body?.voice, { id: "voice_1234" });
    assert.equal(body?.instructions, "Speak warmly.");
    assert.equal(body?.speed, 1.25);
    ac.abort();
  });

  test("abort (barge-in) cancels the requests: no audio after it, the server sees the client go", async () => {
    const ac = new AbortController();
    const events: TtsEvent[] = [];
    const stream = await tts.open(options(ac.signal), (e) => events.push(e));
    const before = fake.requests.length;
    stream.sendText("This is a long answer that the caller is going to interrupt halfway through it.", true);
    await until(() => events.some((e) => e.type === "audio"));
    stream.abort();
    const heard = events.length;
    await until(() => fake.requests[before]?.aborted === true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(events.length, heard);
    ac.abort();
  });

  test("errors: a bad key is a voice error, not retryable; 429 and 500 are retryable", async () => {
    const ac = new AbortController();
    const revoked = await speak(ac.signal, ["Hello."], { apiKey: "sk-revoked" });
    const e401 = revoked.find((e) => e.type === "error");
    assert.ok(e401?.type === "error");
    assert.ok(e401.error instanceof ProviderError);
    assert.equal(e401.error.kind, "voice");
    assert.equal(e401.error.status, 401);
    assert.equal(e401.error.retryable, false);
    for (const status of [429, 500]) {
      fake.failNext(status);
      const events = await speak(ac.signal, ["Hello."]);
      const err = events.find((e) => e.type === "error");
      assert.ok(err?.type === "error");
      assert.equal(err.error.status, status);
      assert.equal(err.error.retryable, true);
    }
    ac.abort();
  });

  test("the fake refuses what the model does not take: instructions on tts-1 (400, not retryable)", async () => {
    const ac = new AbortController();
    const events = await speak(ac.signal, ["Hello."], { model: "tts-1", instructions: "Whisper." });
    const err = events.find((e) => e.type === "error");
    assert.ok(err?.type === "error");
    assert.equal(err.error.status, 400);
    assert.match(err.error.message, /instructions/);
    assert.equal(err.error.retryable, false);
    ac.abort();
  });

  test("an unreachable server is a retryable voice error", async () => {
    const down = new OpenAiTts({ baseUrl: "http://127.0.0.1:9/v1", timeoutMs: 2000 });
    const events: TtsEvent[] = [];
    const ac = new AbortController();
    const stream = await down.open(options(ac.signal), (e) => events.push(e));
    stream.sendText("Hello.", true);
    stream.end();
    await until(() => events.some((e) => e.type === "error"));
    const err = events.find((e) => e.type === "error");
    assert.ok(err?.type === "error");
    assert.equal(err.error.retryable, true);
    ac.abort();
  });
});

describe("OpenAI voice rules (save time)", () => {
  test("instructions only with gpt-4o-mini-tts", () => {
    assert.deepEqual(openAiVoiceProblems({ model: "gpt-4o-mini-tts", instructions: "Calm." }), []);
    const [p] = openAiVoiceProblems({ instructions: "Calm." });
    assert.equal(p?.path, "voice.instructions");
    assert.match(p?.message ?? "", /only with gpt-4o-mini-tts.*tts-1 \(the default model\)/);
  });

  test("realtime-only voices are refused; marin and cedar need gpt-4o-mini-tts", () => {
    assert.match(openAiVoiceProblems({ voiceId: "coral" })[0]?.message ?? "", /realtime models/);
    assert.match(
      openAiVoiceProblems({ voiceId: "marin", model: "tts-1-hd" })[0]?.message ?? "",
      /gpt-4o-mini-tts only/,
    );
    assert.deepEqual(openAiVoiceProblems({ voiceId: "marin", model: "gpt-4o-mini-tts" }), []);
    assert.deepEqual(openAiVoiceProblems({ voiceId: "voice_abc", model: "tts-1" }), []);
  });
});
