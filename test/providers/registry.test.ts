import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createProviders,
  DeepgramStt,
  type DeepgramTts,
  ElevenLabsTts,
  MULAW_8K,
  OpenAiLlm,
} from "../../libs/providers/index.ts";
import { resolveVoiceDefaults } from "../../libs/vapi/defaults.ts";

test("the registry is keyed by Vapi provider names and uses the configured endpoints", () => {
  const p = createProviders({
    deepgramApiUrl: "ws://127.0.0.1:7001",
    openaiBaseUrl: "http://127.0.0.1:7002/v1",
    elevenlabsApiUrl: "http://127.0.0.1:7003/",
  });
  assert.deepEqual(Object.keys(p.stt), ["deepgram", "assembly-ai", "openai"]);
  assert.deepEqual(Object.keys(p.llm), ["openai", "anthropic", "custom-llm"]);
  assert.deepEqual(Object.keys(p.tts), ["11labs", "cartesia", "deepgram", "openai"]);
  // Aura speaks on Deepgram's host and OpenAI speech on OpenAI's unless their own URLs are set.
  assert.equal(
    (p.tts.deepgram as DeepgramTts).speakUrl({
      apiKey: "k",
      voice: resolveVoiceDefaults({ provider: "deepgram", voiceId: "thalia" }),
      outputFormat: MULAW_8K,
      signal: new AbortController().signal,
    }),
    "ws://127.0.0.1:7001/v1/speak?model=aura-2-thalia-en&encoding=mulaw&sample_rate=8000",
  );
  assert.ok(p.stt.deepgram instanceof DeepgramStt);
  assert.ok(p.llm.openai instanceof OpenAiLlm);
  assert.ok(p.tts["11labs"] instanceof ElevenLabsTts);
  const signal = new AbortController().signal;
  assert.match(
    (p.stt.deepgram as DeepgramStt).listenUrl({
      apiKey: "k",
      audio: MULAW_8K,
      model: "nova-3",
      language: "en",
      endpointingMs: 300,
      utteranceEndMs: 1000,
      signal,
    }),
    /^ws:\/\/127\.0\.0\.1:7001\/v1\/listen\?encoding=mulaw&sample_rate=8000&channels=1&model=nova-3&language=en&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&smart_format=true&punctuate=true$/,
  );
  assert.equal(
    (p.tts["11labs"] as ElevenLabsTts).streamUrl({
      apiKey: "k",
      voice: resolveVoiceDefaults({ provider: "11labs", voiceId: "a b", model: "eleven_flash_v2_5" }),
      outputFormat: MULAW_8K,
      signal,
    }),
    "ws://127.0.0.1:7003/v1/text-to-speech/a%20b/multi-stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000&inactivity_timeout=180",
  );
});
