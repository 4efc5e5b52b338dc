import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CartesiaTts } from "../../libs/providers/cartesia.ts";
import { cartesiaVoiceProblems } from "../../libs/providers/cartesia-rules.ts";
import { MULAW_8K, ProviderError, type TtsEvent, type TtsOptions } from "../../libs/providers/types.ts";
import type { CartesiaVoice } from "../../libs/vapi/assistant.ts";
import { FakeCartesia } from "../fakes/cartesia.ts";
import { audioBytes, rejection, speakClauses, ttsOptions, until, type VoiceOver } from "./helpers.ts";

const VOICE_ID = "a0e99841-438c-4a64-b679-ae501e7d6091";

let fake: FakeCartesia;
let tts: CartesiaTts;

before(async () => {
  fake = await FakeCartesia.start({ rejectKeys: ["sk_car_revoked"], msPerChar: 10, chunkMs: 100 });
  tts = new CartesiaTts({ baseUrl: fake.url });
});
after(() => fake.close());

type Over = VoiceOver<CartesiaVoice>;

const options = (signal: AbortSignal, over: Over = {}): TtsOptions =>
  ttsOptions<CartesiaVoice>({ provider: "cartesia", voiceId: VOICE_ID }, "sk_car_test", signal, over);

const speak = (signal: AbortSignal, clauses: string[], over: Over = {}) =>
  speakClauses(tts, options(signal, over), clauses);

describe("Cartesia Sonic over the websocket", () => {
  test("an utterance is one context fed clause by clause: μ-law 8 kHz audio, then done with its characters", async () => {
    const ac = new AbortController();
    const before = fake.connections.length;
    const events = await speak(ac.signal, ["Hello there.", "How can I help?"]);
    const done = events.at(-1);
    assert.equal(done?.type, "done");
    assert.equal(done.type === "done" && done.characters, "Hello there. How can I help?".length);
    // 10 ms per character, 8 bytes per ms of μ-law 8 kHz.
    assert.equal(audioBytes(events), "Hello there. How can I help?".length * 10 * 8);
    const conn = fake.connections[before];
    assert.ok(conn);
    assert.equal(conn.headers.authorization, "Bearer sk_car_test");
    assert.equal(conn.version, "2026-03-01");
    const [ctx] = [...conn.contexts.values()];
    assert.ok(ctx);
    assert.equal(ctx.transcript, "Hello there. How can I help?");
    const first = ctx.requests[0] as Record<string, unknown>;
    assert.deepEqual(first.voice, { mode: "id", id: VOICE_ID });
    assert.equal(first.model_id, "sonic-3");
    assert.deepEqual(first.output_format, { container: "raw", encoding: "pcm_mulaw", sample_rate: 8000 });
    assert.equal(first.continue, true);
    assert.equal(first.max_buffer_delay_ms, 0);
    assert.equal((ctx.requests.at(-1) as Record<string, unknown>).continue, false);
    ac.abort();
  });

  test("PCM at the call's rate when asked: outputFor offers it, the socket sends pcm_s16le at that rate", async () => {
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 16000 }), {
      encoding: "linear16",
      sampleRate: 16000,
    });
    assert.deepEqual(tts.outputFor(MULAW_8K), MULAW_8K);
    // 11.025 kHz is no rate of Cartesia's: the next one up.
    assert.deepEqual(tts.outputFor({ encoding: "linear16", sampleRate: 11025 }), {
      encoding: "linear16",
      sampleRate: 16000,
    });
    const ac = new AbortController();
    const before = fake.connections.length;
    const events = await speak(ac.signal, ["Hello there."], {
      outputFormat: { encoding: "linear16", sampleRate: 16000 },
    });
    assert.equal(events.at(-1)?.type, "done");
    // 32 bytes per ms of 16 kHz 16-bit PCM.
    assert.equal(audioBytes(events), "Hello there.".length * 10 * 32);
    const ctx = [...(fake.connections[before]?.contexts.values() ?? [])][0];
    assert.ok(ctx, "the utterance opened a context");
    assert.deepEqual((ctx.requests[0] as Record<string, unknown>).output_format, {
      container: "raw",
      encoding: "pcm_s16le",
      sample_rate: 16000,
    });
    ac.abort();
  });

  test("one socket per call, prewarmed; each reply a new context; the call's end closes it", async () => {
    const ac = new AbortController();
    const before = fake.connections.length;
    tts.prewarm(options(ac.signal));
    await until(() => fake.connections.length === before + 1);
    await speak(ac.signal, ["First reply."]);
    await speak(ac.signal, ["Second reply."]);
    assert.equal(fake.connections.length, before + 1);
    const conn = fake.connections[before];
    assert.ok(conn);
    assert.deepEqual(
      [...conn.contexts.values()].map((c) => c.transcript),
      ["First reply.", "Second reply."],
    );
    ac.abort();
    await until(() => conn.ws.readyState === conn.ws.CLOSED);
  });

  test("abort (barge-in) cancels the context: no audio after it, even a chunk already in flight", async () => {
    fake.lateChunkAfterCancel = true;
    try {
      const ac = new AbortController();
      const events: TtsEvent[] = [];
      const stream = await tts.open(options(ac.signal), (e) => events.push(e));
      stream.sendText("This is a long answer that the caller is going to interrupt halfway.", true);
      await until(() => events.some((e) => e.type === "audio"));
      stream.abort();
      const heard = events.length;
      const conn = fake.connections.at(-1);
      const ctx = [...(conn?.contexts.values() ?? [])].at(-1);
      await until(() => ctx?.cancelled === true);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(events.length, heard);
      assert.ok(events.every((e) => e.type === "audio"));
      // The socket stays for the next reply.
      const next = await speak(ac.signal, ["Sure, go ahead."]);
      assert.equal(next.at(-1)?.type, "done");
      ac.abort();
    } finally {
      fake.lateChunkAfterCancel = false;
    }
  });

  test("a revoked key is refused at the handshake: a voice ProviderError, not retryable", async () => {
    const err = await rejection(
      tts.open(options(new AbortController().signal, { apiKey: "sk_car_revoked" }), () => {}),
    );
    assert.ok(err instanceof ProviderError);
    assert.equal(err.kind, "voice");
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
  });

  test("an error frame for the context fails the utterance with Cartesia's message (a sunsetted model: not retryable)", async () => {
    const ac = new AbortController();
    const events = await speak(ac.signal, ["Hello."], { model: "sonic-english" });
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error");
    assert.equal(error.error.kind, "voice");
    assert.match(error.error.message, /Model sunsetted.*model_sunsetted/);
    assert.equal(error.error.retryable, false);
    assert.equal(audioBytes(events), 0);
    ac.abort();
  });

  test("a socket that drops mid-reply fails it as retryable", async () => {
    const ac = new AbortController();
    fake.dropOnTranscript = "drop me";
    const events = await speak(ac.signal, ["Please drop me now."]);
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error");
    assert.equal(error.error.status, 1011);
    assert.equal(error.error.retryable, true);
    // The next reply dials a new socket.
    const next = await speak(ac.signal, ["Back again."]);
    assert.equal(next.at(-1)?.type, "done");
    ac.abort();
  });

  test("language, generation_config and the pronunciation dictionary reach a sonic-3 context unchanged in every input", async () => {
    const ac = new AbortController();
    const before = fake.connections.length;
    const events = await speak(ac.signal, ["Hola.", "¿Qué tal?"], {
      model: "sonic-3-2026-01-12",
      language: "es",
      generationConfig: { speed: 1.2, volume: 0.8 },
      pronunciationDictId: "dict_abc123",
    });
    assert.equal(events.at(-1)?.type, "done");
    const conn = fake.connections[before];
    assert.equal(conn?.errors.length, 0);
    const ctx = [...(conn?.contexts.values() ?? [])][0];
    for (const req of ctx?.requests ?? []) {
      assert.equal(req.language, "es");
      assert.deepEqual(req.generation_config, { speed: 1.2, volume: 0.8 });
      assert.equal(req.pronunciation_dict_id, "dict_abc123");
    }
    ac.abort();
  });
});

describe("Cartesia per-model rules (save time)", () => {
  const problem = (v: Record<string, unknown>) =>
    cartesiaVoiceProblems(v).map((p) => `${p.path}: ${p.message}`);

  test("served models pass; sunsetted and unlisted ones are refused, naming what Cartesia serves", () => {
    for (const model of ["sonic-3.5", "sonic-3", "sonic-3-2026-01-12", "sonic-2", "sonic-2-2025-06-11"]) {
      assert.deepEqual(problem({ model }), [], model);
    }
    assert.deepEqual(problem({}), []);
    for (const model of ["sonic", "sonic-english", "sonic-multilingual", "sonic-preview"]) {
      const [p] = problem({ model });
      assert.match(p ?? "", /^voice\.model: Cartesia no longer serves/, model);
      assert.match(p ?? "", /sonic-3\.5, sonic-3\.5-2026-05-04, sonic-3/);
    }
  });

  test("sonic-2 speaks 8 languages since 2026-06-01; sonic-3 speaks 42", () => {
    assert.deepEqual(problem({ model: "sonic-2", language: "de" }), []);
    assert.match(
      problem({ model: "sonic-2", language: "it" })[0] ?? "",
      /^voice\.language: .*does not speak "it"/,
    );
    assert.deepEqual(problem({ model: "sonic-3", language: "it" }), []);
  });

  test("experimental controls are refused: no served model takes them", () => {
    assert.match(
      problem({ model: "sonic-2", experimentalControls: { speed: "fast" } })[0] ?? "",
      /^voice\.experimentalControls: no model Cartesia serves takes experimental controls/,
    );
  });

  test("generationConfig only on sonic-3; speed and volume not on sonic-3.5; no accent localization", () => {
    assert.deepEqual(problem({ model: "sonic-3", generationConfig: { speed: 1.1, volume: 1.5 } }), []);
    assert.match(
      problem({ model: "sonic-2", generationConfig: { speed: 1.1 } })[0] ?? "",
      /^voice\.generationConfig: .*only on the sonic-3/,
    );
    assert.deepEqual(
      problem({ model: "sonic-3.5", generationConfig: { speed: 1.1, volume: 1.5 } }).map(
        (p) => p.split(":")[0],
      ),
      ["voice.generationConfig.speed", "voice.generationConfig.volume"],
    );
    assert.match(
      problem({ model: "sonic-3", generationConfig: { experimental: { accentLocalization: 1 } } })[0] ?? "",
      /^voice\.generationConfig\.experimental: /,
    );
  });

  test("a pronunciation dictionary needs sonic-3", () => {
    assert.deepEqual(problem({ model: "sonic-3", pronunciationDictId: "dict_1" }), []);
    assert.match(
      problem({ model: "sonic-2", pronunciationDictId: "dict_1" })[0] ?? "",
      /^voice\.pronunciationDictId: /,
    );
  });
});
