// One phone call per new voice provider, end to end: the real API, media app and worker, Twilio,
// Deepgram (transcriber) and OpenAI (model) fakes, and each voice provider's own fake. The caller
// hears the first message and an answer in that provider's voice, and the call is billed a tts line
// for that provider and model at the price table's rate.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FakeCartesia } from "../fakes/cartesia.ts";
import { FakeDeepgramTts } from "../fakes/deepgram-tts.ts";
import { FakeOpenAiTts } from "../fakes/openai-tts.ts";
import { callAssistant, finalizedCall, type MediaEnv, startMediaEnv, waitForSpoken } from "./harness.ts";

const FIRST = "Hi, this is Riley from Acme. How can I help?";

let env: MediaEnv;
let cartesia: FakeCartesia;
let aura: FakeDeepgramTts;
let speech: FakeOpenAiTts;

before(async () => {
  [cartesia, aura, speech] = await Promise.all([
    FakeCartesia.start({ msPerChar: 10 }),
    FakeDeepgramTts.start({ msPerChar: 10 }),
    FakeOpenAiTts.start({ msPerChar: 10 }),
  ]);
  env = await startMediaEnv({
    env: {
      CARTESIA_API_URL: cartesia.url,
      CARTESIA_API_KEY: "sk_car_platform",
      DEEPGRAM_TTS_API_URL: aura.url,
      OPENAI_TTS_BASE_URL: speech.baseUrl,
    },
  });
  env.openai.respond = () => ({ text: "We open at nine." });
});
after(async () => {
  await env.close();
  await Promise.all([cartesia.close(), aura.close(), speech.close()]);
});

/** A call with `voice`: first message, one question, the answer, hang up; the finalised row and its tts line. */
async function converse(voice: Record<string, unknown>) {
  const { sim } = await callAssistant(env, { voice, firstMessage: FIRST });
  await sim.waitForAudio({ since: 0, timeoutMs: 8000 });
  await waitForSpoken(sim, 1);
  const afterFirst = sim.heardBytes;
  const turn = await sim.say("When do you open?");
  await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 8000 });
  await waitForSpoken(sim, 2);
  await sim.hangup();
  const call = await finalizedCall(env, sim.callSid);
  const lines = await env.t.db.usageLine.findMany({ where: { callId: call.id } });
  const tts = lines.find((l) => l.category === "tts");
  return { sim, call, afterFirst, tts };
}

describe("a call in each new voice", { concurrency: false }, () => {
  test("cartesia: the caller hears Sonic's μ-law audio; billed as cartesia sonic-3 characters", async () => {
    const before = cartesia.connections.length;
    const { sim, call, afterFirst, tts } = await converse({
      provider: "cartesia",
      voiceId: "a0e99841-438c-4a64-b679-ae501e7d6091",
    });
    assert.equal(call.endedReason, "customer-ended-call");
    // 10 ms of audio per character at 8 bytes per ms.
    assert.ok(afterFirst >= FIRST.length * 80 * 0.9, `heard ${afterFirst} bytes of the first message`);
    assert.ok(sim.heardBytes > afterFirst, "and the answer");
    assert.match(call.transcript ?? "", /AI: We open at nine\./);
    const conn = cartesia.connections[before];
    assert.equal(conn?.apiKey, "sk_car_platform");
    assert.equal(cartesia.connections.length, before + 1, "one socket for the call");
    assert.deepEqual(
      [...(conn?.contexts.values() ?? [])].map((c) => c.transcript),
      [FIRST, "We open at nine."],
    );
    assert.equal(tts?.provider, "cartesia");
    assert.equal(tts?.model, "sonic-3");
    assert.equal(tts?.quantity.toString(), String(FIRST.length + "We open at nine.".length));
    assert.equal(tts?.unitPrice.toString(), "0.00005");
  });

  test("deepgram: Aura-2 Thalia on the socket; billed as deepgram aura-2", async () => {
    const before = aura.connections.length;
    const { sim, call, afterFirst, tts } = await converse({ provider: "deepgram", voiceId: "thalia" });
    assert.equal(call.endedReason, "customer-ended-call");
    assert.ok(afterFirst >= FIRST.length * 80 * 0.9, `heard ${afterFirst} bytes`);
    assert.ok(sim.heardBytes > afterFirst);
    const conn = aura.connections[before];
    assert.equal(conn?.query.model, "aura-2-thalia-en");
    assert.equal(conn?.query.encoding, "mulaw");
    assert.equal(conn?.authorization, "Token platform-deepgram");
    assert.deepEqual(conn?.spoken, [FIRST, "We open at nine."]);
    assert.equal(tts?.provider, "deepgram");
    assert.equal(tts?.model, "aura-2");
    assert.equal(tts?.unitPrice.toString(), "0.00003");
  });

  test("openai: PCM 24 kHz speech converted to the phone's μ-law 8 kHz; billed as openai tts-1", async () => {
    const before = speech.requests.length;
    const { sim, call, afterFirst, tts } = await converse({ provider: "openai", voiceId: "nova" });
    assert.equal(call.endedReason, "customer-ended-call");
    // 24 kHz PCM (48 bytes per ms) becomes 8 bytes per ms of μ-law: the same duration.
    assert.ok(afterFirst >= FIRST.length * 80 * 0.9, `heard ${afterFirst} bytes`);
    assert.ok(sim.heardBytes > afterFirst);
    const requests = speech.requests.slice(before);
    assert.ok(requests.every((r) => r.body.response_format === "pcm" && r.body.voice === "nova"));
    assert.equal(requests.map((r) => r.body.input).join(" "), `${FIRST} We open at nine.`);
    assert.equal(requests[0]?.authorization, "Bearer sk-platform-openai");
    assert.equal(tts?.provider, "openai");
    assert.equal(tts?.model, "tts-1");
    assert.equal(tts?.unitPrice.toString(), "0.000015");
  });
});
