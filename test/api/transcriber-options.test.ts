// AssemblyAI and OpenAI transcribers: Vapi's fields are accepted where they reach the provider for
// that model, refused when the assistant is saved (400 naming the field, the model and what it
// takes) where they cannot; the AssemblyAI credential is accepted with its key never returned.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

let t: TestApi;
let org: TestOrg;

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Transcribers");
});
after(async () => {
  await t.close();
});

function send(method: "POST" | "PATCH", url: string, payload: object) {
  return t.request({ method, url, key: org.key, payload });
}

async function refused(method: "POST" | "PATCH", url: string, payload: object): Promise<string> {
  const res = await send(method, url, payload);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error, "Bad Request");
  return res.json().message as string;
}

describe("assembly-ai transcriber", () => {
  test("Vapi's fields for the model are saved as sent and returned", async () => {
    const transcriber = {
      provider: "assembly-ai",
      speechModel: "universal-streaming-multilingual",
      language: "multi",
      formatTurns: true,
      endOfTurnConfidenceThreshold: 0.6,
      minEndOfTurnSilenceWhenConfident: 200,
      maxTurnSilence: 800,
      confidenceThreshold: 0.5,
      keytermsPrompt: ["Switchboard", "Acme Corp"],
      disablePartialTranscripts: false,
    };
    const res = await send("POST", "/assistant", assistantBody({ transcriber }));
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().transcriber, transcriber);
    const u3 = {
      provider: "assembly-ai",
      speechModel: "universal-3-5-pro",
      prompt: "Restaurant bookings",
      mode: "min_latency",
    };
    const res2 = await send("POST", "/assistant", assistantBody({ transcriber: u3 }));
    assert.equal(res2.statusCode, 201, res2.body);
  });

  test("per-model fields are refused on the models that do not take them", async () => {
    assert.match(
      await refused(
        "POST",
        "/assistant",
        assistantBody({
          transcriber: {
            provider: "assembly-ai",
            speechModel: "universal-3-5-pro",
            endOfTurnConfidenceThreshold: 0.5,
          },
        }),
      ),
      /^body\.transcriber\.endOfTurnConfidenceThreshold: the end-of-turn confidence threshold is a Universal-Streaming setting; universal-3-5-pro ends turns on punctuation/,
    );
    assert.match(
      await refused(
        "POST",
        "/assistant",
        assistantBody({ transcriber: { provider: "assembly-ai", prompt: "Restaurant bookings" } }),
      ),
      /^body\.transcriber\.prompt: prompt applies to the universal-3-5-pro speech model only; universal-streaming-english has none/,
    );
    assert.match(
      await refused(
        "POST",
        "/assistant",
        assistantBody({
          transcriber: {
            provider: "assembly-ai",
            speechModel: "universal-streaming-english",
            language: "multi",
          },
        }),
      ),
      /^body\.transcriber\.language: universal-streaming-english transcribes English only/,
    );
  });

  test("Vapi fields with no Universal-Streaming v3 parameter are refused, naming what to use", async () => {
    const message = await refused(
      "POST",
      "/assistant",
      assistantBody({
        transcriber: {
          provider: "assembly-ai",
          wordBoost: ["Acme"],
          realtimeUrl: "wss://proxy.example.com/v3/ws",
        },
      }),
    );
    assert.match(message, /body\.transcriber\.wordBoost: .*takes transcriber\.keytermsPrompt instead/);
    assert.match(
      message,
      /body\.transcriber\.realtimeUrl: the platform connects to its configured AssemblyAI endpoint/,
    );
  });

  test("a PATCH that makes the transcriber invalid is refused; keyterms beyond AssemblyAI's limits too", async () => {
    const res = await send("POST", "/assistant", assistantBody({ transcriber: { provider: "assembly-ai" } }));
    assert.equal(res.statusCode, 201, res.body);
    const id = res.json().id as string;
    assert.match(
      await refused("PATCH", `/assistant/${id}`, {
        transcriber: { provider: "assembly-ai", mode: "balanced" },
      }),
      /^body\.transcriber\.mode: mode applies to the universal-3-5-pro speech model only/,
    );
    assert.match(
      await refused("PATCH", `/assistant/${id}`, {
        transcriber: { provider: "assembly-ai", keytermsPrompt: ["x".repeat(51)] },
      }),
      /^body\.transcriber\.keytermsPrompt: a keyterm is at most 50 characters/,
    );
  });

  test("an unknown speech model is a 400 naming the field", async () => {
    const res = await send(
      "POST",
      "/assistant",
      assistantBody({ transcriber: { provider: "assembly-ai", speechModel: "best" } }),
    );
    assert.equal(res.statusCode, 400);
    assert.match(res.json().message, /transcriber/);
  });

  test("the assembly-ai credential: created, listed, its key never returned", async () => {
    const res = await send("POST", "/credential", {
      provider: "assembly-ai",
      apiKey: "aai-0123456789",
      name: "prod",
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().provider, "assembly-ai");
    assert.equal(res.json().apiKey, undefined);
    assert.ok(!res.body.includes("aai-0123456789"));
    const bad = await send("POST", "/credential", { provider: "assembly-ai", apiKey: "with space" });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /apiKey/);
  });
});

describe("openai transcriber", () => {
  test("gpt-4o-transcribe and gpt-4o-mini-transcribe with a language are saved", async () => {
    for (const model of ["gpt-4o-transcribe", "gpt-4o-mini-transcribe"]) {
      const transcriber = { provider: "openai", model, language: "de" };
      const res = await send("POST", "/assistant", assistantBody({ transcriber }));
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json().transcriber, transcriber);
    }
  });

  test("a model Vapi's OpenAI transcriber does not offer, or a Deepgram field on it, is a 400 naming the field", async () => {
    const whisper = await send(
      "POST",
      "/assistant",
      assistantBody({ transcriber: { provider: "openai", model: "whisper-1" } }),
    );
    assert.equal(whisper.statusCode, 400);
    assert.match(whisper.json().message, /transcriber/);
    const missing = await send("POST", "/assistant", assistantBody({ transcriber: { provider: "openai" } }));
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().message, /body\.transcriber.*model/);
    const deepgramField = await send(
      "POST",
      "/assistant",
      assistantBody({ transcriber: { provider: "openai", model: "gpt-4o-transcribe", keywords: ["Acme"] } }),
    );
    assert.equal(deepgramField.statusCode, 400);
    assert.match(deepgramField.json().message, /body\.transcriber.*keywords/);
  });
});
