// The per-model rules of each provider (libs/providers/*-rules.ts), one test per rule, and the
// adapters against the loopback fakes, which refuse what the real APIs refuse for a model.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WebSocket } from "ws";
import {
  assistantProviderProblems,
  DeepgramStt,
  deepgramTranscriberProblems,
  deepgramVocabulary,
  ElevenLabsTts,
  elevenLabsQueryParams,
  elevenLabsVoiceProblems,
  elevenLabsVoiceSettings,
  isOpenAiReasoningModel,
  type LlmEvent,
  type LlmRequest,
  MULAW_8K,
  OpenAiLlm,
  openAiModelProblems,
  openAiSamplingParams,
  ProviderError,
  type SttEvent,
  type SttOptions,
  type TtsEvent,
  type TtsOptions,
} from "../../libs/providers/index.ts";
import type { ElevenLabsVoice } from "../../libs/vapi/assistant.ts";
import { resolveVoiceDefaults } from "../../libs/vapi/defaults.ts";
import {
  encodeUtteranceFrames,
  FakeDeepgram,
  FakeElevenLabs,
  FakeOpenAI,
  PREMADE_VOICE_IDS,
  SILENCE_FRAME,
} from "../fakes/index.ts";
import { rejection, until } from "./helpers.ts";

/** The HTTP answer to a websocket upgrade the server refused: status, body and headers. */
function refusedUpgrade(
  url: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: "Token dg-key", "xi-api-key": "xi-key" } });
    ws.on("open", () => {
      ws.terminate();
      reject(new Error("the upgrade was accepted"));
    });
    ws.on("error", () => {});
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
  });
}

// ------------------------------------------------------------------------------------------ OpenAI

describe("OpenAI: per-model rules", () => {
  let fake: FakeOpenAI;
  let llm: OpenAiLlm;
  before(async () => {
    fake = await FakeOpenAI.start();
    llm = new OpenAiLlm({ baseUrl: fake.baseUrl });
  });
  after(() => fake.close());

  function request(model: string, over: Partial<LlmRequest> = {}): LlmRequest {
    return {
      apiKey: "sk-test",
      model,
      messages: [
        { role: "system", content: `rules ${model}` },
        { role: "user", content: "Hello" },
      ],
      temperature: 0.5,
      maxTokens: 250,
      signal: new AbortController().signal,
      ...over,
    };
  }

  async function collect(req: LlmRequest): Promise<LlmEvent[]> {
    const events: LlmEvent[] = [];
    for await (const e of llm.stream(req)) events.push(e);
    return events;
  }

  test("reasoning models are the o-series and the gpt-5 family, except the *-chat* models", () => {
    for (const m of [
      "o1",
      "o3",
      "o3-mini",
      "o4-mini",
      "gpt-5",
      "gpt-5-mini",
      "gpt-5-nano",
      "gpt-5.1",
      "gpt-5.6-luna",
    ]) {
      assert.equal(isOpenAiReasoningModel(m), true, m);
    }
    for (const m of [
      "gpt-5-chat-latest",
      "gpt-5.1-chat-latest",
      "gpt-5.2-chat-latest",
      "gpt-4.1",
      "gpt-4o",
      "chatgpt-4o-latest",
      "gpt-3.5-turbo",
    ]) {
      assert.equal(isOpenAiReasoningModel(m), false, m);
    }
  });

  test("the token limit is max_completion_tokens for every model; temperature only to models that take it", () => {
    assert.deepEqual(openAiSamplingParams("gpt-4o", { temperature: 0.5, maxTokens: 250 }), {
      temperature: 0.5,
      max_completion_tokens: 250,
    });
    assert.deepEqual(openAiSamplingParams("gpt-5", { temperature: 0.5, maxTokens: 250 }), {
      max_completion_tokens: 250,
    });
    assert.deepEqual(openAiSamplingParams("o4-mini", { temperature: 1 }), {});
  });

  test("saving: a non-default temperature on a reasoning model is refused, naming what takes one", () => {
    const [problem] = openAiModelProblems({ model: "gpt-5", temperature: 0.7 });
    assert.equal(problem?.path, "model.temperature");
    assert.match(
      problem?.message ?? "",
      /gpt-5 is a reasoning model that takes only the default temperature \(1\)/,
    );
    assert.match(problem?.message ?? "", /gpt-4\.1, gpt-4o/);
    assert.deepEqual(openAiModelProblems({ model: "gpt-5", temperature: 1 }), []);
    assert.deepEqual(openAiModelProblems({ model: "gpt-5" }), [], "Vapi's default (0.5) is simply not sent");
    assert.deepEqual(openAiModelProblems({ model: "gpt-5-chat-latest", temperature: 0.7 }), []);
    assert.deepEqual(openAiModelProblems({ model: "gpt-4o", temperature: 1.4 }), []);
  });

  test("saving: realtime models, Azure regional ids and o1-mini cannot run on Chat Completions", () => {
    assert.match(openAiModelProblems({ model: "gpt-realtime-2" })[0]?.message ?? "", /Realtime API model/);
    assert.match(
      openAiModelProblems({ model: "gpt-4o:australiaeast" })[0]?.message ?? "",
      /Azure OpenAI.*use gpt-4o$/,
    );
    assert.match(
      openAiModelProblems({ model: "o1-mini" })[0]?.message ?? "",
      /neither a system prompt nor tools/,
    );
  });

  test("the fake answers 400 unsupported_value to a temperature on gpt-5, and unsupported_parameter to max_tokens", async () => {
    const post = (body: unknown) =>
      fetch(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        headers: { Authorization: "Bearer sk-test", "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    const messages = [{ role: "user", content: "Hi" }];
    const hot = await post({ model: "gpt-5", messages, temperature: 0.5 });
    assert.equal(hot.status, 400);
    const hotError = ((await hot.json()) as { error: Record<string, unknown> }).error;
    assert.equal(hotError.code, "unsupported_value");
    assert.equal(hotError.param, "temperature");
    assert.equal(hotError.type, "invalid_request_error");
    const legacy = await post({ model: "o4-mini", messages, max_tokens: 100 });
    assert.equal(legacy.status, 400);
    assert.equal(((await legacy.json()) as { error: { code: string } }).error.code, "unsupported_parameter");
    assert.equal((await post({ model: "gpt-4o", messages, temperature: 0.5, max_tokens: 100 })).status, 200);
  });

  for (const model of ["gpt-5", "o4-mini", "gpt-5.1", "gpt-5-chat-latest", "gpt-4.1", "gpt-4o"]) {
    test(`a reply from ${model} with Vapi's default temperature and token limit`, async () => {
      const events = await collect(request(model));
      assert.equal(events.at(-1)?.type, "done");
      const sent = fake.requests.find((r) => r.body.messages[0]?.content === `rules ${model}`)?.body;
      assert.ok(sent);
      assert.equal(sent.max_completion_tokens, 250);
      assert.equal(sent.max_tokens, undefined);
      assert.equal(sent.temperature, isOpenAiReasoningModel(model) ? undefined : 0.5);
    });
  }

  test("the fake holds its rule whatever the client sends: gpt-5 with a temperature is a 400", async () => {
    // What every call on gpt-5 sent before the rules.
    const raw = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { Authorization: "Bearer sk-test", "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "gpt-5",
        messages: [{ role: "user", content: "Hi" }],
        temperature: 0.5,
        stream: true,
      }),
    });
    assert.equal(raw.status, 400);
    assert.match(await raw.text(), /Only the default \(1\) value is supported/);
  });
});

// ---------------------------------------------------------------------------------------- Deepgram

describe("Deepgram: per-model rules", () => {
  let fake: FakeDeepgram;
  let stt: DeepgramStt;
  before(async () => {
    fake = await FakeDeepgram.start();
    stt = new DeepgramStt({ baseUrl: fake.url });
  });
  after(() => fake.close());

  function options(over: Partial<SttOptions>): SttOptions {
    return {
      apiKey: "dg-key",
      audio: MULAW_8K,
      model: "nova-3",
      language: "en",
      endpointingMs: 300,
      utteranceEndMs: 1000,
      signal: new AbortController().signal,
      ...over,
    };
  }

  test("vocabulary: nova-3 gets keyterm (plain keywords too), older models keywords with intensifiers", () => {
    assert.deepEqual(deepgramVocabulary("nova-3", { keyterms: ["Switchboard"], keywords: ["Acme"] }), {
      keyterm: ["Switchboard", "Acme"],
      keywords: [],
    });
    assert.deepEqual(deepgramVocabulary("nova-3-medical", { keywords: ["Acme:2"] }), {
      keyterm: [],
      keywords: [],
    });
    assert.deepEqual(
      deepgramVocabulary("nova-2-phonecall", { keyterms: ["Switchboard"], keywords: ["Acme:2"] }),
      {
        keyterm: [],
        keywords: ["Acme:2"],
      },
    );
  });

  test("saving: keyterm on a model without it, intensified keywords on nova-3, Flux, Whisper and Flux-only settings are refused", () => {
    assert.match(
      deepgramTranscriberProblems({ model: "nova-2", keyterm: ["Acme"] })[0]?.message ?? "",
      /keyterm prompting is for Deepgram nova-3 models; nova-2 takes transcriber.keywords/,
    );
    const weighted = deepgramTranscriberProblems({ model: "nova-3", keywords: ["Acme:2", "Bolt"] });
    assert.equal(weighted[0]?.path, "transcriber.keywords");
    assert.match(weighted[0]?.message ?? "", /no intensifier \(Acme:2\)/);
    assert.deepEqual(
      deepgramTranscriberProblems({ model: "nova-3", keywords: ["Acme"], keyterm: ["Bolt"] }),
      [],
    );
    assert.deepEqual(deepgramTranscriberProblems({ keywords: ["Acme"] }), [], "nova-3 is the default");
    assert.deepEqual(deepgramTranscriberProblems({ model: "nova-2", keywords: ["Acme:-3"] }), []);
    assert.match(deepgramTranscriberProblems({ model: "flux-general-en" })[0]?.message ?? "", /\/v2\/listen/);
    assert.match(deepgramTranscriberProblems({ model: "whisper" })[0]?.message ?? "", /no live streaming/);
    assert.equal(
      deepgramTranscriberProblems({ model: "nova-3", eotThreshold: 0.7 })[0]?.path,
      "transcriber.eotThreshold",
    );
  });

  test("the fake refuses keywords on nova-3 at the handshake with Deepgram's 400 body and dg-error header", async () => {
    const refused = await refusedUpgrade(`${fake.url}/v1/listen?model=nova-3&keywords=Acme`);
    assert.equal(refused.status, 400);
    const body = JSON.parse(refused.body) as { err_code: string; err_msg: string };
    assert.equal(body.err_code, "INVALID_QUERY_PARAMETER");
    assert.equal(body.err_msg, "Keywords are not supported for Nova-3. Please use `keyterm` instead.");
    assert.equal(refused.headers["dg-error"], refused.body);
    assert.equal((await refusedUpgrade(`${fake.url}/v1/listen?model=nova-2&keyterm=Acme`)).status, 400);
    assert.equal((await refusedUpgrade(`${fake.url}/v1/listen?model=flux-general-en`)).status, 400);
  });

  test("a refused handshake carries Deepgram's reason (its dg-error header) in the ProviderError", async () => {
    // Flux is refused when an assistant is saved; one stored before that fails the call like this.
    const err = await rejection(stt.connect(options({ model: "flux-general-en" }), () => {}));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.status, 400);
    assert.equal(err.retryable, false);
    assert.match(err.message, /HTTP 400: Model flux-general-en is only available on \/v2\/listen/);
  });

  for (const [model, vocabulary] of [
    ["nova-3", { keywords: ["Acme"], keyterms: ["Switchboard"] }],
    ["nova-2", { keywords: ["Acme:2"] }],
    ["nova-2-phonecall", { keywords: ["Acme"] }],
  ] as const) {
    test(`${model} with ${JSON.stringify(vocabulary)}: the stream opens and the vocabulary is sent as the model takes it`, async () => {
      const ac = new AbortController();
      const connP = fake.waitForConnection();
      const stream = await stt.connect(
        options({
          model,
          keywords: [...(vocabulary.keywords ?? [])],
          keyterms: "keyterms" in vocabulary ? [...vocabulary.keyterms] : [],
          signal: ac.signal,
        }),
        () => {},
      );
      const conn = await connP;
      assert.equal(conn.params.model, model);
      if (model === "nova-3") {
        assert.equal(conn.params.keywords, undefined);
        assert.equal(conn.params.keyterm, "Acme", "plain keywords become keyterms (after the keyterms)");
      } else {
        assert.equal(conn.params.keyterm, undefined);
        assert.equal(conn.params.keywords, vocabulary.keywords[0]);
      }
      await stream.close();
    });
  }

  test("numerals=true is sent, and digits then arrive as digits (without it or smart_format, as words)", async () => {
    const heard: string[] = [];
    for (const numerals of [true, false]) {
      const events: SttEvent[] = [];
      const ac = new AbortController();
      const connP = fake.waitForConnection();
      const stream = await stt.connect(options({ numerals, smartFormat: false, signal: ac.signal }), (e) =>
        events.push(e),
      );
      const conn = await connP;
      assert.equal(conn.params.numerals, numerals ? "true" : undefined);
      for (const f of encodeUtteranceFrames(fake.allocateUtterance("My PIN is 4521"), 800))
        stream.sendAudio(f);
      for (let t = 0; t < 600; t += 20) stream.sendAudio(SILENCE_FRAME);
      await until(() => events.some((e) => e.type === "transcript" && e.speechFinal));
      const final = events.find((e) => e.type === "transcript" && e.speechFinal);
      heard.push(final?.type === "transcript" ? final.text : "");
      await stream.close();
    }
    assert.deepEqual(heard, ["My PIN is 4521", "My PIN is four five two one"]);
  });

  test("profanity_filter and mip_opt_out are sent when set, and only then", () => {
    const on = new URL(stt.listenUrl(options({ profanityFilter: true, mipOptOut: true }))).searchParams;
    assert.equal(on.get("profanity_filter"), "true");
    assert.equal(on.get("mip_opt_out"), "true");
    const off = new URL(stt.listenUrl(options({}))).searchParams;
    assert.equal(off.has("profanity_filter"), false);
    assert.equal(off.has("numerals"), false);
  });
});

// -------------------------------------------------------------------------------------- ElevenLabs

describe("ElevenLabs: per-model rules", () => {
  let fake: FakeElevenLabs;
  let tts: ElevenLabsTts;
  const voice = PREMADE_VOICE_IDS[0] as string;
  before(async () => {
    fake = await FakeElevenLabs.start({ msPerChar: 5, chunkMs: 100 });
    tts = new ElevenLabsTts({ baseUrl: fake.baseUrl, warm: false });
  });
  after(() => fake.close());

  function options(signal: AbortSignal, over: Partial<Omit<ElevenLabsVoice, "provider">> = {}): TtsOptions {
    return {
      apiKey: "xi-key",
      voice: resolveVoiceDefaults({
        provider: "11labs",
        voiceId: voice,
        model: "eleven_flash_v2_5",
        ...over,
      }),
      outputFormat: MULAW_8K,
      signal,
    };
  }

  async function speak(over: Partial<Omit<ElevenLabsVoice, "provider">>): Promise<TtsEvent[]> {
    const ac = new AbortController();
    const events: TtsEvent[] = [];
    try {
      const stream = await tts.open(options(ac.signal, over), (e) => events.push(e));
      stream.sendText("Hello there.", true);
      stream.end();
      await until(() => events.some((e) => e.type === "done" || e.type === "error"));
    } finally {
      ac.abort();
    }
    return events;
  }

  test("voice_settings: none when the assistant sets none; otherwise with the two required fields", () => {
    assert.equal(elevenLabsVoiceSettings(undefined), undefined);
    assert.equal(elevenLabsVoiceSettings({ stability: undefined, speed: undefined }), undefined);
    assert.deepEqual(elevenLabsVoiceSettings({ speed: 1.1 }), {
      stability: 0.5,
      similarity_boost: 0.75,
      speed: 1.1,
    });
    assert.deepEqual(
      elevenLabsVoiceSettings({ stability: 0.3, similarityBoost: 0.9, useSpeakerBoost: false }),
      {
        stability: 0.3,
        similarity_boost: 0.9,
        use_speaker_boost: false,
      },
    );
  });

  test("query: language_code only for Turbo/Flash v2.5; SSML parsing and auto mode when set", () => {
    assert.deepEqual(
      elevenLabsQueryParams({
        model: "eleven_flash_v2_5",
        language: "de",
        enableSsmlParsing: true,
        autoMode: true,
      }),
      {
        language_code: "de",
        enable_ssml_parsing: "true",
        auto_mode: "true",
      },
    );
    assert.deepEqual(elevenLabsQueryParams({ model: "eleven_multilingual_v2", language: "de" }), {});
  });

  test("saving: eleven_v3 is refused naming the models the realtime websocket serves", () => {
    const [problem] = elevenLabsVoiceProblems({ voiceId: voice, model: "eleven_v3" });
    assert.equal(problem?.path, "voice.model");
    assert.match(problem?.message ?? "", /does not serve eleven_v3 on its realtime websocket/);
    assert.match(
      problem?.message ?? "",
      /eleven_flash_v2_5, eleven_flash_v2, eleven_turbo_v2_5, eleven_turbo_v2, eleven_multilingual_v2/,
    );
    assert.deepEqual(elevenLabsVoiceProblems({ voiceId: voice, model: "eleven_turbo_v2_5" }), []);
  });

  test("saving: Vapi's preset voice names are refused (no documented ElevenLabs id)", () => {
    const [problem] = elevenLabsVoiceProblems({ voiceId: "burt" });
    assert.equal(problem?.path, "voice.voiceId");
    assert.match(problem?.message ?? "", /"burt" is one of Vapi's preset voice names/);
    assert.deepEqual(elevenLabsVoiceProblems({ voiceId: "Burt123xyz" }), []);
  });

  test("saving: a language with a model that takes no language_code is refused (the default model included)", () => {
    assert.match(
      elevenLabsVoiceProblems({ voiceId: voice, language: "es" })[0]?.message ?? "",
      /eleven_turbo_v2 \(the default model\) answers it with an error/,
    );
    assert.deepEqual(
      elevenLabsVoiceProblems({ voiceId: voice, model: "eleven_flash_v2_5", language: "es" }),
      [],
    );
  });

  test("the fake refuses eleven_v3 at the handshake with 403, and the adapter reports it as not retryable", async () => {
    const refused = await refusedUpgrade(
      `${fake.url}/v1/text-to-speech/${voice}/multi-stream-input?model_id=eleven_v3`,
    );
    assert.equal(refused.status, 403);
    const err = await rejection(
      tts.open(options(new AbortController().signal, { model: "eleven_v3" }), () => {}),
    );
    assert.ok(err instanceof ProviderError);
    assert.equal(err.status, 403);
    assert.equal(err.retryable, false);
  });

  test("an unknown voice id fails the reply with voice_not_found, not retryable", async () => {
    const events = await speak({ voiceId: "burt" });
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error");
    assert.match(error.error.message, /A voice for the voice_id burt was not found/);
    assert.equal(error.error.retryable, false);
  });

  test("only documented parameters and no empty voice_settings reach the socket; language_code on v2.5", async () => {
    const before = fake.connections.length;
    const events = await speak({
      optimizeStreamingLatency: 3,
      language: "de",
      autoMode: true,
    });
    assert.equal(events.at(-1)?.type, "done");
    const conn = fake.connections[before];
    assert.ok(conn);
    assert.deepEqual(conn.undocumentedParams, []);
    assert.equal(conn.params.language_code, "de");
    assert.equal(conn.params.auto_mode, "true");
    assert.equal("voice_settings" in (conn.contexts[0]?.init ?? {}), false);
  });

  for (const model of [
    "eleven_flash_v2_5",
    "eleven_turbo_v2_5",
    "eleven_turbo_v2",
    "eleven_multilingual_v2",
  ] as const) {
    test(`${model}: a reply is spoken with the assistant's settings`, async () => {
      const events = await speak({ model, speed: 1.1 });
      assert.equal(events.at(-1)?.type, "done");
      assert.ok(events.some((e) => e.type === "audio"));
    });
  }
});

// --------------------------------------------------------------------------- the save-time check

test("assistantProviderProblems checks each provider block of an assistant, and nothing else", () => {
  const problems = assistantProviderProblems({
    model: { provider: "openai", model: "o3", temperature: 0.2 },
    voice: { provider: "11labs", voiceId: "andrea", model: "eleven_v3" },
    transcriber: { provider: "deepgram", model: "nova-2", keyterm: ["Acme"] },
  });
  assert.deepEqual(
    problems.map((p) => p.path),
    ["model.temperature", "voice.voiceId", "voice.model", "transcriber.keyterm"],
  );
  assert.deepEqual(assistantProviderProblems({ name: "Riley" }), []);
  assert.deepEqual(
    assistantProviderProblems({
      model: { provider: "openai", model: "gpt-4o", temperature: 0.3 },
      voice: { provider: "11labs", voiceId: voice11(), model: "eleven_turbo_v2_5", language: "en" },
      transcriber: { provider: "deepgram", model: "nova-3", keywords: ["Acme"], numerals: true },
    }),
    [],
  );
});

function voice11(): string {
  return PREMADE_VOICE_IDS[0] as string;
}
