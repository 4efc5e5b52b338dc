import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AssemblyAiStt } from "../../libs/providers/assemblyai.ts";
import { assemblyAiTranscriberProblems } from "../../libs/providers/assemblyai-rules.ts";
import { MULAW_8K, ProviderError, type SttEvent, type SttOptions } from "../../libs/providers/types.ts";
import { assemblyAiRefusal, FakeAssemblyAI } from "../fakes/assemblyai.ts";
import { encodeUtteranceFrames, SILENCE_FRAME, silenceFrame } from "../fakes/deepgram.ts";
import { kinds, rejection, speakUtterance, until } from "./helpers.ts";

let fake: FakeAssemblyAI;
let stt: AssemblyAiStt;

before(async () => {
  fake = await FakeAssemblyAI.start({ rejectKeys: ["revoked-key"] });
  stt = new AssemblyAiStt({ baseUrl: fake.url });
});
after(() => fake.close());

function options(signal: AbortSignal, over: Partial<SttOptions> = {}): SttOptions {
  return {
    apiKey: "aai-key",
    audio: MULAW_8K,
    model: "universal-streaming-english",
    language: "en",
    endpointingMs: 400,
    utteranceEndMs: 1000,
    keyterms: ["Switchboard"],
    minConfidence: 0.4,
    assemblyAi: {
      formatTurns: true,
      endOfTurnConfidenceThreshold: 0.7,
      minTurnSilenceMs: 160,
      maxTurnSilenceMs: 400,
    },
    signal,
    ...over,
  };
}

/** What `connect` rejects with (undefined if it connected). */
const connectError = (over: Partial<SttOptions> = {}) =>
  rejection(stt.connect(options(new AbortController().signal, over), () => {}));

test("a caller's utterance: partials, then AssemblyAI's end of turn as one formatted final and an utterance end", async () => {
  const ac = new AbortController();
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(ac.signal), (e) => events.push(e));
  const session = await sessionP;
  assert.equal(session.authorization, "aai-key", "the bare key, no Bearer");
  assert.equal(session.params.encoding, "pcm_mulaw");
  assert.equal(session.params.sample_rate, "8000");
  assert.equal(session.params.speech_model, "universal-streaming-english");
  assert.equal(session.params.format_turns, "true");
  assert.equal(session.params.end_of_turn_confidence_threshold, "0.7");
  assert.equal(session.params.min_turn_silence, "160");
  assert.equal(session.params.max_turn_silence, "400");
  assert.deepEqual(JSON.parse(session.params.keyterms_prompt ?? ""), ["Switchboard"]);
  assert.ok(stream.connectMs !== undefined && stream.connectMs >= 0);

  speakUtterance(fake, (b) => stream.sendAudio(b), "I'd like to book 2 tables, please.", 1200, 600);
  await until(() => events.some((e) => e.type === "utterance-end"));

  const k = kinds(events);
  assert.ok(k.indexOf("partial") >= 0, k.join(","));
  assert.equal(k.filter((x) => x === "final").length, 1, "the unformatted end of turn is not a second final");
  assert.deepEqual(k.slice(-2), ["final", "utterance-end"]);
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.ok(final?.type === "transcript");
  assert.equal(final.text, "I'd like to book 2 tables, please.");
  assert.equal(final.speechFinal, false, "no second wait on our side: the utterance end ends the turn");
  assert.ok(final.endMs > 1000 && final.endMs <= 1220, `endMs ${final.endMs}`);
  const partial = events.find((e) => e.type === "transcript" && !e.isFinal);
  assert.ok(
    partial?.type === "transcript" && /^i'd like/.test(partial.text),
    "partials carry words not yet final",
  );
  // 20 ms frames went as messages AssemblyAI takes (50–1000 ms).
  assert.ok(
    session.audioMessageMs.every((ms) => ms >= 50 && ms <= 1000),
    session.audioMessageMs.join(","),
  );

  await stream.close();
  assert.deepEqual(session.controls.at(-1), { type: "Terminate" });
  await until(() => session.closeCode !== undefined);
  assert.equal(session.closeCode, 1000);
  assert.ok(
    session.sent.some((m) => m.type === "Termination"),
    "AssemblyAI's Termination came before the close",
  );
  assert.equal(events.at(-1)?.type, "closed");
  assert.ok(!events.some((e) => e.type === "error"), "a requested close is no error");
});

test("the U3 Pro model: SpeechStarted, one formatted end of turn; no parameters it does not take", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(
    options(new AbortController().signal, {
      model: "universal-3-5-pro",
      assemblyAi: {
        formatTurns: true,
        endOfTurnConfidenceThreshold: 0.7,
        prompt: "A restaurant booking",
        mode: "balanced",
      },
    }),
    (e) => events.push(e),
  );
  const session = await sessionP;
  assert.equal(session.params.format_turns, undefined);
  assert.equal(session.params.end_of_turn_confidence_threshold, undefined);
  assert.equal(session.params.prompt, "A restaurant booking");
  assert.equal(session.params.mode, "balanced");
  speakUtterance(fake, (b) => stream.sendAudio(b), "Table for two.", 600, 400);
  await until(() => events.some((e) => e.type === "utterance-end"));
  assert.equal(events[0]?.type, "speech-started");
  const finals = events.filter((e) => e.type === "transcript" && e.isFinal);
  assert.equal(finals.length, 1);
  assert.equal(finals[0]?.type === "transcript" && finals[0].text, "Table for two.");
  await stream.close();
});

test("linear16 at the call's rate is sent as pcm_s16le; μ-law only at 8 kHz", async () => {
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 16000 }), true);
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 48000 }), true);
  assert.equal(stt.accepts(MULAW_8K), true);
  assert.equal(stt.accepts({ encoding: "mulaw", sampleRate: 16000 }), false);
  const format = { encoding: "linear16", sampleRate: 16000 } as const;
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(new AbortController().signal, { audio: format }), (e) =>
    events.push(e),
  );
  const session = await sessionP;
  assert.equal(session.params.encoding, "pcm_s16le");
  assert.equal(session.params.sample_rate, "16000");
  for (const f of encodeUtteranceFrames(fake.allocateUtterance("Hello there."), 600, format))
    stream.sendAudio(f);
  for (let t = 0; t < 600; t += 20) stream.sendAudio(silenceFrame(format));
  await until(() => events.some((e) => e.type === "utterance-end"));
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.equal(final?.type === "transcript" && final.text, "Hello there.");
  await stream.close();
});

test("finalize() sends ForceEndpoint after the audio gathered so far; the turn's final answers it", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(new AbortController().signal), (e) => events.push(e));
  const session = await sessionP;
  // Speech with no silence after it: only ForceEndpoint can end this turn.
  for (const f of encodeUtteranceFrames(fake.allocateUtterance("wait"), 300)) stream.sendAudio(f);
  stream.sendAudio(SILENCE_FRAME);
  stream.finalize();
  await until(() => events.some((e) => e.type === "utterance-end"));
  assert.deepEqual(session.controls.at(-1), { type: "ForceEndpoint" });
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.ok(final?.type === "transcript");
  assert.equal(final.fromFinalize, true);
  assert.equal(final.text, "wait");
  assert.ok(
    session.audioMessageMs.every((ms) => ms >= 50),
    "the short tail was padded to 50 ms",
  );
  await stream.close();
});

test("a turn heard below the confidence threshold is dropped (an empty final), partials can be turned off", async () => {
  fake.wordConfidence = 0.2;
  try {
    const events: SttEvent[] = [];
    const stream = await stt.connect(options(new AbortController().signal, { interimResults: false }), (e) =>
      events.push(e),
    );
    speakUtterance(fake, (b) => stream.sendAudio(b), "mumble mumble", 600, 600);
    await until(() => events.some((e) => e.type === "utterance-end"));
    assert.ok(!events.some((e) => e.type === "transcript" && !e.isFinal), "no partials");
    const final = events.find((e) => e.type === "transcript" && e.isFinal);
    assert.equal(final?.type === "transcript" && final.text, "");
    await stream.close();
  } finally {
    fake.wordConfidence = 0.95;
  }
});

test("a refused key fails the connect with a non-retryable 401 (AssemblyAI closes 1008 after the upgrade)", async () => {
  const err = await connectError({ apiKey: "revoked-key" });
  assert.ok(err instanceof ProviderError, String(err));
  assert.equal(err.kind, "transcriber");
  assert.equal(err.provider, "assembly-ai");
  assert.equal(err.retryable, false);
  assert.equal(err.status, 401);
  assert.match(err.message, /Unauthorized Connection/);
});

test("a model AssemblyAI does not serve fails the connect, not retryable (Error, then close 3006)", async () => {
  const err = await connectError({ model: "no-such-model" });
  assert.ok(err instanceof ProviderError, String(err));
  assert.equal(err.retryable, false);
  assert.equal(err.status, 3006);
  assert.match(err.message, /speech_model/);
});

test("the fake refuses what AssemblyAI documents per model; the adapter never sends it", () => {
  const q = (s: string) => assemblyAiRefusal(new URLSearchParams(s))?.error;
  assert.match(
    q("speech_model=universal-3-5-pro&sample_rate=8000&end_of_turn_confidence_threshold=0.5") ?? "",
    /end_of_turn/,
  );
  assert.match(q("speech_model=universal-streaming-english&sample_rate=8000&prompt=x") ?? "", /prompt/);
  assert.match(q('speech_model=whisper-rt&sample_rate=8000&keyterms_prompt=["a"]') ?? "", /keyterms/);
  assert.equal(q("speech_model=universal-3-5-pro&sample_rate=8000&prompt=x&mode=balanced"), undefined);
  const url = (model: string) =>
    new URL(
      stt.streamUrl(
        options(new AbortController().signal, {
          model,
          assemblyAi: {
            formatTurns: true,
            endOfTurnConfidenceThreshold: 0.5,
            prompt: "p",
            mode: "min_latency",
          },
        }),
      ),
    ).searchParams;
  assert.equal(assemblyAiRefusal(url("universal-3-5-pro")), undefined);
  assert.equal(assemblyAiRefusal(url("universal-streaming-multilingual")), undefined);
  assert.equal(url("universal-streaming-english").get("prompt"), null);
});

test("an unreachable endpoint is a retryable ProviderError", async () => {
  const dead = new AssemblyAiStt({ baseUrl: "ws://127.0.0.1:1", connectTimeoutMs: 1000 });
  const err = await rejection(dead.connect(options(new AbortController().signal), () => {}));
  assert.ok(err instanceof ProviderError);
  assert.equal(err.retryable, true);
});

test("AssemblyAI ending a session mid-call is an error event: a server error is retryable, a bad message is not", async () => {
  for (const [code, retryable] of [
    [3005, true],
    [3008, true],
    [3006, false],
  ] as const) {
    const events: SttEvent[] = [];
    const sessionP = fake.waitForSession();
    await stt.connect(options(new AbortController().signal), (e) => events.push(e));
    const session = await sessionP;
    session.fail(code, `failure ${code}`);
    await until(() => events.some((e) => e.type === "closed"));
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error", `code ${code}`);
    assert.equal(error.error.retryable, retryable, `code ${code}`);
    assert.equal(error.error.status, code);
    assert.match(error.error.message, new RegExp(`failure ${code}`));
  }
});

test("a dropped connection is a retryable error, then closed; the call's abort closes quietly", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  await stt.connect(options(new AbortController().signal), (e) => events.push(e));
  (await sessionP).drop(1011);
  await until(() => events.some((e) => e.type === "closed"));
  assert.deepEqual(kinds(events), ["error", "closed"]);
  assert.equal(events[0]?.type === "error" && events[0].error.retryable, true);

  const ac = new AbortController();
  const quiet: SttEvent[] = [];
  await stt.connect(options(ac.signal), (e) => quiet.push(e));
  ac.abort();
  await until(() => quiet.some((e) => e.type === "closed"));
  assert.deepEqual(kinds(quiet), ["closed"]);
});

test("save-time rules: fields with no Universal-Streaming parameter and per-model fields are refused", () => {
  assert.deepEqual(
    assemblyAiTranscriberProblems({ speechModel: "universal-streaming-english", formatTurns: true }),
    [],
  );
  const paths = (t: Record<string, unknown>) => assemblyAiTranscriberProblems(t).map((p) => p.path);
  assert.deepEqual(paths({ wordBoost: ["a"] }), ["transcriber.wordBoost"]);
  assert.deepEqual(paths({ realtimeUrl: "wss://evil.example" }), ["transcriber.realtimeUrl"]);
  assert.deepEqual(paths({ speechModel: "universal-3-5-pro", endOfTurnConfidenceThreshold: 0.5 }), [
    "transcriber.endOfTurnConfidenceThreshold",
  ]);
  assert.deepEqual(paths({ prompt: "x", mode: "balanced" }), ["transcriber.prompt", "transcriber.mode"]);
  assert.deepEqual(paths({ speechModel: "universal-3-5-pro", prompt: "x", mode: "balanced" }), []);
  assert.deepEqual(paths({ speechModel: "universal-streaming-english", language: "multi" }), [
    "transcriber.language",
  ]);
  assert.deepEqual(paths({ language: "multi" }), [], "multi without a model picks the multilingual one");
  assert.match(
    assemblyAiTranscriberProblems({ keytermsPrompt: ["x".repeat(51)] })[0]?.message ?? "",
    /50 characters/,
  );
});
