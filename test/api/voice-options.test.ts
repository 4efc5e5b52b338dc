// The voice providers' options are checked when an assistant is saved: the voice block picks its
// shape by `provider` (an unknown field of that provider's shape names that field), and options a
// model does not take are refused with a 400 naming the field and what the model supports.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

let t: TestApi;
let org: TestOrg;

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Voices");
});
after(() => t.close());

async function save(voice: Record<string, unknown>) {
  return t.request({ method: "POST", url: "/assistant", key: org.key, payload: assistantBody({ voice }) });
}

async function refused(voice: Record<string, unknown>): Promise<string> {
  const res = await save(voice);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error, "Bad Request");
  return res.json().message as string;
}

describe("POST /assistant with the new voice providers", () => {
  test("a voice of each provider is saved and returned as sent", async () => {
    for (const voice of [
      {
        provider: "cartesia",
        voiceId: "a0e99841-438c-4a64-b679-ae501e7d6091",
        model: "sonic-3",
        language: "es",
      },
      { provider: "deepgram", voiceId: "thalia", model: "aura-2", mipOptOut: true },
      { provider: "openai", voiceId: "nova", model: "gpt-4o-mini-tts", instructions: "Warm.", speed: 1.1 },
    ]) {
      const res = await save(voice);
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json().voice, voice);
    }
  });

  test("the shape follows the provider: another provider's field is named as not recognised", async () => {
    assert.equal(
      await refused({ provider: "cartesia", voiceId: "v", stability: 0.5 }),
      "body.voice.stability is not a recognised field",
    );
    assert.equal(
      await refused({ provider: "deepgram", voiceId: "nova" }),
      `body.voice.voiceId must be one of: ${"asteria luna stella athena hera orion arcas perseus angus orpheus helios zeus thalia andromeda helena apollo aries amalthea atlas aurora callista cora cordelia delia draco electra harmonia hermes hyperion iris janus juno jupiter mars minerva neptune odysseus ophelia pandora phoebe pluto saturn selene theia vesta celeste estrella nestor sirio carina alvaro diana aquila selena javier viktoria kara fabian julius lara elara aurelia".split(" ").join(", ")}`,
    );
    assert.match(
      await refused({ provider: "openai", voiceId: "nova", speed: 5 }),
      /^body\.voice\.speed must be <= 4/,
    );
    assert.equal(
      await refused({ provider: "playht", voiceId: "x" }),
      'body.voice.provider "playht" is not a supported provider',
    );
  });

  test("Cartesia: a sunsetted model, a language the model does not speak, controls no served model takes", async () => {
    assert.match(
      await refused({ provider: "cartesia", voiceId: "v", model: "sonic-english" }),
      /^body\.voice\.model: Cartesia no longer serves sonic-english/,
    );
    assert.match(
      await refused({ provider: "cartesia", voiceId: "v", model: "sonic-2", language: "hi" }),
      /^body\.voice\.language: Cartesia's sonic-2 does not speak "hi"/,
    );
    assert.match(
      await refused({
        provider: "cartesia",
        voiceId: "v",
        experimentalControls: { emotion: "positivity:high" },
      }),
      /^body\.voice\.experimentalControls: no model Cartesia serves takes experimental controls/,
    );
    assert.match(
      await refused({
        provider: "cartesia",
        voiceId: "v",
        model: "sonic-3.5",
        generationConfig: { speed: 1.2 },
      }),
      /^body\.voice\.generationConfig\.speed: Cartesia has disabled speed control on sonic-3\.5/,
    );
  });

  test("Deepgram: a voice that is not in the chosen Aura family", async () => {
    assert.match(
      await refused({ provider: "deepgram", voiceId: "stella" }),
      /^body\.voice\.voiceId: Deepgram has no aura-2 voice "stella".*set voice\.model to "aura"/,
    );
  });

  test("OpenAI: instructions on tts-1, a realtime-only voice", async () => {
    assert.match(
      await refused({ provider: "openai", voiceId: "alloy", model: "tts-1", instructions: "Calm." }),
      /^body\.voice\.instructions: OpenAI takes instructions only with gpt-4o-mini-tts/,
    );
    assert.match(
      await refused({ provider: "openai", voiceId: "coral" }),
      /^body\.voice\.voiceId: "coral" is one of the voices Vapi reserves for OpenAI's realtime models/,
    );
  });

  test("a Cartesia credential is taken (BYO key); Vapi's on-prem apiUrl is refused by name", async () => {
    const ok = await t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: { provider: "cartesia", apiKey: "sk_car_abc123", name: "Cartesia" },
    });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(ok.json().provider, "cartesia");
    assert.equal("apiKey" in ok.json(), false);
    const onPrem = await t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: { provider: "cartesia", apiKey: "sk_car_abc123", apiUrl: "https://tts.internal" },
    });
    assert.equal(onPrem.statusCode, 400);
    assert.equal(onPrem.json().message, "body.apiUrl is not a recognised field");
  });
});
