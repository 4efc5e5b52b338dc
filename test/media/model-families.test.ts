import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isOpenAiReasoningModel } from "../../libs/providers/index.ts";
import { PREMADE_VOICE_IDS } from "../fakes/index.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  type StoredArtifact,
  startMediaEnv,
  waitForSpoken,
} from "./harness.ts";

// A call works with each model family of each provider: the options reach the provider in the form
// its API takes for that model, and the fakes (which refuse what the real APIs refuse per model)
// answer. Each call says something of its own, so the shared environment can tell them apart.

const VOICE = PREMADE_VOICE_IDS[0] as string;

interface Family {
  name: string;
  model: Record<string, unknown>;
  transcriber: Record<string, unknown>;
  voice: Record<string, unknown>;
  said: string;
  /** What the transcript shows the caller said (numbers as words without numerals). */
  heard: string;
}

const FAMILIES: Family[] = [
  {
    name: "gpt-5 (reasoning: no temperature), nova-3 with keywords as keyterms, flash v2.5 in German",
    model: { provider: "openai", model: "gpt-5", maxTokens: 300 },
    transcriber: { provider: "deepgram", model: "nova-3", keywords: ["Acme"], keyterm: ["Switchboard"] },
    voice: { provider: "11labs", voiceId: VOICE, model: "eleven_flash_v2_5", language: "de", speed: 1.1 },
    said: "Family one calling about order 4521",
    heard: "Family one calling about order four five two one",
  },
  {
    name: "o4-mini, nova-2 keywords with an intensifier, turbo v2 (Vapi's default voice model)",
    model: { provider: "openai", model: "o4-mini", temperature: 1 },
    transcriber: { provider: "deepgram", model: "nova-2", keywords: ["Acme:2"] },
    voice: { provider: "11labs", voiceId: VOICE },
    said: "Family two has a question",
    heard: "Family two has a question",
  },
  {
    name: "gpt-4.1 with a temperature, nova-3 with numerals, multilingual v2 with voice settings",
    model: { provider: "openai", model: "gpt-4.1", temperature: 0.2 },
    transcriber: { provider: "deepgram", model: "nova-3", numerals: true },
    voice: { provider: "11labs", voiceId: VOICE, model: "eleven_multilingual_v2", stability: 0.3 },
    said: "Family three PIN 4521",
    heard: "Family three PIN 4521",
  },
  {
    name: "gpt-5-chat-latest with a temperature, nova-2-phonecall, turbo v2.5 with SSML parsing",
    model: { provider: "openai", model: "gpt-5-chat-latest", temperature: 0.7 },
    transcriber: { provider: "deepgram", model: "nova-2-phonecall", profanityFilter: true },
    voice: { provider: "11labs", voiceId: VOICE, model: "eleven_turbo_v2_5", enableSsmlParsing: true },
    said: "Family four says hello",
    heard: "Family four says hello",
  },
];

describe("media session: a call with each provider's model families", { concurrency: true }, () => {
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv();
  });
  after(async () => {
    await env.close();
  });

  for (const f of FAMILIES) {
    it(f.name, async () => {
      const prompt = `TEST ${f.said}.`;
      const { sim } = await callAssistant(env, {
        model: { ...f.model, messages: [{ role: "system", content: prompt }] },
        transcriber: f.transcriber,
        voice: f.voice,
        startSpeakingPlan: {
          transcriptionEndpointingPlan: {
            onPunctuationSeconds: 0.1,
            onNoPunctuationSeconds: 3,
            onNumberSeconds: 0.1,
          },
        },
      });
      await waitForSpoken(sim, 1);
      await sim.say(f.said);
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(call.endedReason, "customer-ended-call");
      assert.match(call.transcript ?? "", new RegExp(`User: ${f.heard}\\nAI: You said: ${f.heard}\\.`));

      const request = env.openai.requests.find((r) => r.body.messages[0]?.content === prompt);
      assert.ok(request, "the model was asked");
      assert.equal(request.status, 200);
      assert.equal(request.body.model, f.model.model);
      // Reasoning models get no temperature (not even their default 1); others the assistant's or Vapi's 0.5.
      const reasoning = isOpenAiReasoningModel(String(f.model.model));
      assert.equal(request.body.temperature, reasoning ? undefined : (f.model.temperature ?? 0.5));
      assert.equal(request.body.max_tokens, undefined);
      assert.equal(request.body.max_completion_tokens, f.model.maxTokens ?? 250);

      const stt = env.deepgram.connections.find((c) => c.transcripts.some((t) => t.startsWith(f.heard)));
      assert.ok(stt, "the transcriber heard the caller");
      assert.equal(stt.params.model, f.transcriber.model);
      const voice = env.elevenlabs.connections.find((c) => c.text.includes(`You said: ${f.heard}.`));
      assert.ok(voice, "the reply was spoken");
      assert.deepEqual(voice.undocumentedParams, []);
      assert.equal(voice.params.model_id, f.voice.model ?? "eleven_turbo_v2");

      if (f.transcriber.numerals) {
        // Digits end the caller's words, so onNumberSeconds (0.1 s) applies, not onNoPunctuationSeconds (3 s).
        const turns = (call.artifact as unknown as StoredArtifact).performanceMetrics.turnLatencies;
        assert.ok((turns[0]?.endpointingLatency ?? Infinity) < 3000, JSON.stringify(turns[0]));
      }
    });
  }
});
