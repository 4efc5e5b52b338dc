import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { OpenAiStt, openAiRealtimeUrl } from "../../libs/providers/openai-stt.ts";
import { openAiTranscriberProblems } from "../../libs/providers/openai-stt-rules.ts";
import { MULAW_8K, ProviderError, type SttEvent, type SttOptions } from "../../libs/providers/types.ts";
import { encodeUtteranceFrames, silenceFrame } from "../fakes/deepgram.ts";
import { FakeOpenAIRealtimeStt, transcriptionSessionRefusal } from "../fakes/openai-realtime-stt.ts";
import { kinds, rejection, speakUtterance, until } from "./helpers.ts";

let fake: FakeOpenAIRealtimeStt;
let stt: OpenAiStt;

before(async () => {
  fake = await FakeOpenAIRealtimeStt.start({ rejectKeys: ["sk-revoked"] });
  stt = new OpenAiStt({ realtimeUrl: fake.realtimeUrl });
});
after(() => fake.close());

function options(signal: AbortSignal, over: Partial<SttOptions> = {}): SttOptions {
  return {
    apiKey: "sk-test",
    audio: MULAW_8K,
    model: "gpt-4o-transcribe",
    language: "en",
    endpointingMs: 500,
    utteranceEndMs: 1000,
    signal,
    ...over,
  };
}

/** What `connect` rejects with (undefined if it connected). */
const connectError = (over: Partial<SttOptions> = {}) =>
  rejection(stt.connect(options(new AbortController().signal, over), () => {}));

test("a transcription session: session.update (μ-law, model, language, server VAD), then speech-started, partials, one final and an utterance end", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(new AbortController().signal), (e) => events.push(e));
  const session = await sessionP;
  assert.equal(session.authorization, "Bearer sk-test");
  assert.equal(session.query.intent, "transcription");
  const update = session.received.find((e) => e.type === "session.update");
  assert.deepEqual(update?.session, {
    type: "transcription",
    audio: {
      input: {
        format: { type: "audio/pcmu" },
        transcription: { model: "gpt-4o-transcribe", language: "en" },
        turn_detection: {
          type: "server_vad",
          threshold: 0.5,
          prefix_padding_ms: 300,
          silence_duration_ms: 500,
        },
      },
    },
    include: ["item.input_audio_transcription.logprobs"],
  });

  speakUtterance(fake, (b) => stream.sendAudio(b), "My number is 4521.", 1000, 700);
  await until(() => events.some((e) => e.type === "utterance-end"));
  assert.ok(session.appends >= 80, "one append per 20 ms frame");
  const k = kinds(events);
  assert.equal(k[0], "speech-started");
  assert.ok(k.includes("partial"));
  assert.deepEqual(k.slice(-2), ["final", "utterance-end"]);
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.ok(final?.type === "transcript");
  assert.equal(final.text, "My number is 4521.");
  assert.equal(final.speechFinal, false);
  assert.ok(final.confidence > 0.9, `confidence from logprobs: ${final.confidence}`);
  // speech_stopped's audio_end_ms less the 500 ms of silence the VAD waited: near the words' end.
  assert.ok(final.endMs >= 980 && final.endMs <= 1100, `endMs ${final.endMs}`);
  await stream.close();
  assert.equal(events.at(-1)?.type, "closed");
  assert.ok(!events.some((e) => e.type === "error"));
});

test("PCM goes as audio/pcm only at 24 kHz; other rates are for the session to convert", async () => {
  assert.equal(stt.accepts(MULAW_8K), true);
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 24000 }), true);
  assert.equal(stt.accepts({ encoding: "linear16", sampleRate: 16000 }), false);
  assert.equal(stt.accepts({ encoding: "mulaw", sampleRate: 16000 }), false);
  const format = { encoding: "linear16", sampleRate: 24000 } as const;
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(new AbortController().signal, { audio: format }), (e) =>
    events.push(e),
  );
  const session = await sessionP;
  assert.deepEqual((session.session?.audio as { input?: { format?: unknown } } | undefined)?.input?.format, {
    type: "audio/pcm",
    rate: 24000,
  });
  for (const f of encodeUtteranceFrames(fake.allocateUtterance("Hello."), 400, format)) stream.sendAudio(f);
  for (let t = 0; t < 700; t += 20) stream.sendAudio(silenceFrame(format));
  await until(() => events.some((e) => e.type === "utterance-end"));
  assert.equal(session.transcripts[0], "Hello.");
  await stream.close();
});

test("finalize() commits the buffer: the caller's words so far come as a final answering it; an empty buffer answers empty", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  const stream = await stt.connect(options(new AbortController().signal), (e) => events.push(e));
  const session = await sessionP;
  stream.finalize();
  await until(() => events.some((e) => e.type === "transcript"));
  const empty = events.find((e) => e.type === "transcript");
  assert.ok(empty?.type === "transcript" && empty.isFinal && empty.fromFinalize && empty.text === "");
  events.length = 0;
  for (const f of encodeUtteranceFrames(fake.allocateUtterance("hold on"), 400)) stream.sendAudio(f);
  stream.finalize();
  await until(() => events.some((e) => e.type === "utterance-end"));
  assert.ok(session.received.some((e) => e.type === "input_audio_buffer.commit"));
  const final = events.find((e) => e.type === "transcript" && e.isFinal);
  assert.ok(final?.type === "transcript" && final.fromFinalize === true && final.text === "hold on");
  assert.ok(!events.some((e) => e.type === "error"));
  await stream.close();
});

test("close() waits for the transcript of speech already committed", async () => {
  fake.transcriptionDelayMs = 150;
  try {
    const events: SttEvent[] = [];
    const stream = await stt.connect(options(new AbortController().signal), (e) => events.push(e));
    speakUtterance(fake, (b) => stream.sendAudio(b), "one last thing", 500, 560);
    await new Promise((r) => setTimeout(r, 20));
    await stream.close();
    const final = events.find((e) => e.type === "transcript" && e.isFinal);
    assert.equal(final?.type === "transcript" && final.text, "one last thing");
  } finally {
    fake.transcriptionDelayMs = 0;
  }
});

test("a refused key fails the connect with a non-retryable 401", async () => {
  const err = await connectError({ apiKey: "sk-revoked" });
  assert.ok(err instanceof ProviderError, String(err));
  assert.equal(err.provider, "openai");
  assert.equal(err.kind, "transcriber");
  assert.equal(err.status, 401);
  assert.equal(err.retryable, false);
});

test("a model the session does not take fails the connect with OpenAI's reason, not retryable", async () => {
  const err = await connectError({ model: "gpt-4o-realtime-preview" });
  assert.ok(err instanceof ProviderError, String(err));
  assert.equal(err.retryable, false);
  assert.match(err.message, /Invalid value: 'gpt-4o-realtime-preview'/);
});

test("the fake refuses what OpenAI documents per model; the adapter's session passes", () => {
  const session = (
    model: string,
    extra: Record<string, unknown> = {},
    td: unknown = { type: "server_vad" },
  ) => ({
    type: "transcription",
    audio: {
      input: { format: { type: "audio/pcmu" }, transcription: { model, ...extra }, turn_detection: td },
    },
  });
  assert.match(transcriptionSessionRefusal(session("gpt-realtime-whisper"))?.param ?? "", /turn_detection/);
  assert.match(
    transcriptionSessionRefusal(session("gpt-realtime-whisper", { prompt: "x" }, null))?.param ?? "",
    /prompt/,
  );
  assert.match(
    transcriptionSessionRefusal(session("gpt-4o-transcribe", { keywords: ["a"] }))?.param ?? "",
    /keywords/,
  );
  assert.match(
    transcriptionSessionRefusal(session("gpt-4o-transcribe", { delay: "low" }))?.param ?? "",
    /delay/,
  );
  assert.equal(
    transcriptionSessionRefusal(session("gpt-realtime-whisper", { delay: "low" }, null)),
    undefined,
  );
  const pcm16k = {
    type: "transcription",
    audio: { input: { format: { type: "audio/pcm", rate: 16000 }, transcription: { model: "whisper-1" } } },
  };
  assert.match(transcriptionSessionRefusal(pcm16k)?.param ?? "", /rate/);
  for (const model of ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"]) {
    const update = stt.sessionUpdate(options(new AbortController().signal, { model }));
    assert.equal(transcriptionSessionRefusal(update.session as Record<string, unknown>), undefined, model);
  }
  assert.deepEqual(openAiTranscriberProblems({ model: "gpt-4o-mini-transcribe" }), []);
  assert.equal(openAiTranscriberProblems({ model: "gpt-realtime-whisper" })[0]?.path, "transcriber.model");
});

test("a server error mid-call is a retryable error event; a dropped socket too; an abort closes quietly", async () => {
  const events: SttEvent[] = [];
  const sessionP = fake.waitForSession();
  await stt.connect(options(new AbortController().signal), (e) => events.push(e));
  const session = await sessionP;
  session.sendError({
    type: "server_error",
    message: "The server had an error while processing your request.",
  });
  await until(() => events.some((e) => e.type === "error"));
  const error = events.find((e) => e.type === "error");
  assert.ok(error?.type === "error" && error.error.retryable && error.error.kind === "transcriber");
  session.drop(1011);
  await until(() => events.some((e) => e.type === "closed"));
  assert.deepEqual(kinds(events), ["error", "error", "closed"]);

  const ac = new AbortController();
  const quiet: SttEvent[] = [];
  await stt.connect(options(ac.signal), (e) => quiet.push(e));
  ac.abort();
  await until(() => quiet.some((e) => e.type === "closed"));
  assert.deepEqual(kinds(quiet), ["closed"]);
});

test("the Realtime URL follows the OpenAI base URL unless set", () => {
  assert.equal(openAiRealtimeUrl("https://api.openai.com/v1"), "wss://api.openai.com/v1/realtime");
  assert.equal(openAiRealtimeUrl("http://127.0.0.1:9/v1/"), "ws://127.0.0.1:9/v1/realtime");
});
