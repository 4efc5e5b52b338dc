import assert from "node:assert/strict";
import { after, before, describe, it, test } from "node:test";
import { DEFAULT_PRICE_CATALOG, effectivePricing, priceCall } from "../../libs/billing/index.ts";
import { callUsage } from "../billing/fixtures.ts";
import { FakeAssemblyAI } from "../fakes/assemblyai.ts";
import { PREMADE_VOICE_IDS } from "../fakes/index.ts";
import { FakeOpenAIRealtimeStt } from "../fakes/openai-realtime-stt.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  type StoredArtifact,
  startMediaEnv,
  waitForSpoken,
} from "./harness.ts";

// A phone call transcribed by AssemblyAI and by OpenAI: the caller's words reach the model, its
// reply is spoken, the provider's own end of turn ends the caller's turn (no transcription
// endpointing wait), and the call is priced by the transcriber's model.

const VOICE = PREMADE_VOICE_IDS[0] as string;
// A long wait without punctuation: a transcriber's native end of turn must not be held by it.
const SLOW_ENDPOINTING = {
  transcriptionEndpointingPlan: { onPunctuationSeconds: 3, onNoPunctuationSeconds: 3, onNumberSeconds: 3 },
};

describe("media session: AssemblyAI and OpenAI transcribers", () => {
  let env: MediaEnv;
  let assemblyai: FakeAssemblyAI;
  let openaiStt: FakeOpenAIRealtimeStt;
  before(async () => {
    [assemblyai, openaiStt] = await Promise.all([FakeAssemblyAI.start(), FakeOpenAIRealtimeStt.start()]);
    env = await startMediaEnv({
      env: {
        ASSEMBLYAI_API_URL: assemblyai.url,
        ASSEMBLYAI_API_KEY: "platform-assemblyai",
        OPENAI_REALTIME_URL: openaiStt.realtimeUrl,
      },
    });
    // The harness's callers register what they say with the Deepgram fake.
    assemblyai.utterances = env.deepgram;
    openaiStt.utterances = env.deepgram;
  });
  after(async () => {
    await env.close();
    await Promise.all([assemblyai.close(), openaiStt.close()]);
  });

  it("assembly-ai: the caller's words reach the model and the reply is spoken; priced per Universal-Streaming minute", async () => {
    const said = "AssemblyAI caller wants a table for 2 at 7pm.";
    const prompt = "TEST assemblyai call.";
    const { sim } = await callAssistant(env, {
      model: { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "system", content: prompt }] },
      transcriber: { provider: "assembly-ai", keytermsPrompt: ["Switchboard"] },
      voice: { provider: "11labs", voiceId: VOICE },
      startSpeakingPlan: SLOW_ENDPOINTING,
    });
    await waitForSpoken(sim, 1);
    await sim.say(said);
    await waitForSpoken(sim, 2, 10_000);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(
      call.transcript ?? "",
      /User: AssemblyAI caller wants a table for 2 at 7pm\.\nAI: You said: AssemblyAI caller wants a table for 2 at 7pm\.\./,
    );

    const session = assemblyai.sessions.find((s) => s.turns.some((t) => t.transcript === said));
    assert.ok(session, "AssemblyAI heard the caller");
    assert.equal(session.authorization, "platform-assemblyai", "the platform's key, bare");
    assert.equal(session.params.speech_model, "universal-streaming-english");
    assert.equal(session.params.encoding, "pcm_mulaw");
    assert.equal(session.params.sample_rate, "8000");
    // Vapi's defaults for the turn: formatted, 0.7 confidence, 160 ms when confident, 400 ms at most.
    assert.equal(session.params.format_turns, "true");
    assert.equal(session.params.end_of_turn_confidence_threshold, "0.7");
    assert.equal(session.params.min_turn_silence, "160");
    assert.equal(session.params.max_turn_silence, "400");
    assert.deepEqual(JSON.parse(session.params.keyterms_prompt ?? "[]"), ["Switchboard"]);
    assert.ok(
      session.controls.some((c) => c.type === "Terminate"),
      "the session was terminated (billing stops)",
    );

    const request = env.openai.requests.find((r) => r.body.messages[0]?.content === prompt);
    assert.equal(request?.body.messages.at(-1)?.content, said);
    const turns = (call.artifact as unknown as StoredArtifact).performanceMetrics.turnLatencies;
    assert.ok(
      (turns[0]?.endpointingLatency ?? Infinity) < 1000,
      `native end of turn: ${JSON.stringify(turns[0])}`,
    );

    const line = (
      call.costs as Array<{ type: string; transcriber?: { provider: string; model: string } }>
    ).find((c) => c.type === "transcriber");
    assert.deepEqual(line?.transcriber, { provider: "assembly-ai", model: "universal-streaming-english" });
  });

  it("openai: gpt-4o-mini-transcribe over a Realtime transcription session, the same call", async () => {
    const said = "OpenAI caller asks about order 4521.";
    const prompt = "TEST openai transcriber call.";
    const { sim } = await callAssistant(env, {
      model: { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "system", content: prompt }] },
      transcriber: { provider: "openai", model: "gpt-4o-mini-transcribe", language: "en" },
      voice: { provider: "11labs", voiceId: VOICE },
      startSpeakingPlan: SLOW_ENDPOINTING,
    });
    await waitForSpoken(sim, 1);
    await sim.say(said);
    await waitForSpoken(sim, 2, 10_000);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(
      call.transcript ?? "",
      /User: OpenAI caller asks about order 4521\.\nAI: You said: OpenAI caller asks about order 4521\.\./,
    );

    const session = openaiStt.sessions.find((s) => s.transcripts.includes(said));
    assert.ok(session, "OpenAI transcribed the caller");
    assert.equal(
      session.authorization,
      "Bearer sk-platform-openai",
      "OpenAI's platform key, shared with the model",
    );
    assert.equal(session.model, "gpt-4o-mini-transcribe");
    const input = (session.session?.audio as { input?: Record<string, unknown> } | undefined)?.input;
    assert.deepEqual(input?.format, { type: "audio/pcmu" }, "Twilio's μ-law goes through unconverted");
    assert.deepEqual(input?.transcription, { model: "gpt-4o-mini-transcribe", language: "en" });

    const request = env.openai.requests.find((r) => r.body.messages[0]?.content === prompt);
    assert.equal(request?.body.messages.at(-1)?.content, said);
    const turns = (call.artifact as unknown as StoredArtifact).performanceMetrics.turnLatencies;
    assert.ok(
      (turns[0]?.endpointingLatency ?? Infinity) < 1000,
      `native end of turn: ${JSON.stringify(turns[0])}`,
    );

    const line = (
      call.costs as Array<{ type: string; transcriber?: { provider: string; model: string } }>
    ).find((c) => c.type === "transcriber");
    assert.deepEqual(line?.transcriber, { provider: "openai", model: "gpt-4o-mini-transcribe" });
  });

  // Last: the organisation's own AssemblyAI key is then used by its calls.
  it("an organisation's own AssemblyAI key (credential assembly-ai) is used; refused, the call ends with Vapi's reason", async () => {
    const res = await env.t.request({
      method: "POST",
      url: "/credential",
      key: env.org.key,
      payload: { provider: "assembly-ai", apiKey: "aai-org-key-revoked", name: "ours" },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().apiKey, undefined, "the key is never returned");
    assemblyai.rejectKeys.add("aai-org-key-revoked");
    const { sim } = await callAssistant(env, {
      transcriber: { provider: "assembly-ai" },
      voice: { provider: "11labs", voiceId: VOICE },
    });
    const call = await finalizedCall(env, sim.callSid, 10_000);
    assert.equal(call.endedReason, "pipeline-error-assembly-ai-returning-401-invalid-credentials");
    assert.ok(assemblyai.sessions.some((s) => s.authorization === "aai-org-key-revoked"));
  });
});

test("transcriber minutes are priced per provider and model, not at the fallback price", () => {
  const table = DEFAULT_PRICE_CATALOG.tableAt(new Date("2025-06-15T12:00:00Z"));
  const cases = [
    ["assembly-ai", "universal-streaming-english", 0.0025],
    ["assembly-ai", "universal-streaming-multilingual", 0.0025],
    ["assembly-ai", "universal-3-5-pro", 0.0075],
    ["openai", "gpt-4o-transcribe", 0.006],
    ["openai", "gpt-4o-mini-transcribe", 0.003],
  ] as const;
  for (const [provider, model, perMinute] of cases) {
    const usage = callUsage();
    usage.stt = { provider, model, audioSeconds: 120, byo: false };
    const priced = priceCall(usage, effectivePricing(table));
    const line = priced.lines.find((l) => l.category === "stt");
    assert.ok(line, `${provider} ${model}`);
    assert.equal(line.fallback, false, `${provider} ${model} is in the table`);
    assert.equal(priced.costBreakdown.stt, perMinute * 2, `${provider} ${model}`);
  }
});
