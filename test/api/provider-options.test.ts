// Provider options a model does not take are refused when an assistant is accepted — saved,
// patched, in a squad (with overrides), inline or overridden on POST /call, or in an
// assistant-request answer — with a 400 naming the field and what the model supports.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { assistantBody } from "../helpers/bodies.ts";
import {
  createAssistant,
  importNumber,
  startTelephony,
  type TelephonyEnv,
  waitFor,
} from "../telephony/setup.ts";

let env: TelephonyEnv;

before(async () => {
  env = await startTelephony();
});
after(async () => {
  await env.close();
});

function req(method: "POST" | "PATCH" | "GET", url: string, payload?: object) {
  return env.t.request({ method, url, key: env.org.key, ...(payload ? { payload } : {}) });
}

async function refused(method: "POST" | "PATCH", url: string, payload: object): Promise<string> {
  const res = await req(method, url, payload);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error, "Bad Request");
  return res.json().message as string;
}

describe("POST/PATCH /assistant", () => {
  test("eleven_v3 is refused, naming the models ElevenLabs' realtime websocket serves", async () => {
    const message = await refused(
      "POST",
      "/assistant",
      assistantBody({ voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM", model: "eleven_v3" } }),
    );
    assert.match(
      message,
      /^body\.voice\.model: ElevenLabs does not serve eleven_v3 on its realtime websocket/,
    );
    assert.match(
      message,
      /eleven_flash_v2_5, eleven_flash_v2, eleven_turbo_v2_5, eleven_turbo_v2, eleven_multilingual_v2/,
    );
  });

  test("a Vapi preset voice name is refused: ElevenLabs documents no voice id for it", async () => {
    const message = await refused(
      "POST",
      "/assistant",
      assistantBody({ voice: { provider: "11labs", voiceId: "burt" } }),
    );
    assert.match(message, /^body\.voice\.voiceId: "burt" is one of Vapi's preset voice names/);
  });

  test("OpenAI reasoning models: a non-default temperature is refused; without one (Vapi's default) they are accepted", async () => {
    const message = await refused(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-5", temperature: 0.3 } }),
    );
    assert.match(
      message,
      /^body\.model\.temperature: gpt-5 is a reasoning model that takes only the default temperature \(1\)/,
    );
    const ok = await req(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-5" } }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
    const chat = await req(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-5-chat-latest", temperature: 0.3 } }),
    );
    assert.equal(chat.statusCode, 201, chat.body);
  });

  test("Deepgram: keyterm on nova-2 and intensified keywords on nova-3 are refused; plain keywords on nova-3 pass", async () => {
    assert.match(
      await refused(
        "POST",
        "/assistant",
        assistantBody({ transcriber: { provider: "deepgram", model: "nova-2", keyterm: ["Acme"] } }),
      ),
      /^body\.transcriber\.keyterm: keyterm prompting is for Deepgram nova-3 models/,
    );
    assert.match(
      await refused(
        "POST",
        "/assistant",
        assistantBody({ transcriber: { provider: "deepgram", model: "nova-3", keywords: ["Acme:2"] } }),
      ),
      /^body\.transcriber\.keywords: nova-3 takes keyterm, not keywords/,
    );
    const ok = await req(
      "POST",
      "/assistant",
      assistantBody({
        transcriber: { provider: "deepgram", model: "nova-3", keywords: ["Acme"], numerals: true },
      }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test("several problems are reported together", async () => {
    const message = await refused(
      "POST",
      "/assistant",
      assistantBody({
        model: { provider: "openai", model: "o3", temperature: 0.2 },
        transcriber: { provider: "deepgram", model: "flux-general-en" },
      }),
    );
    assert.match(
      message,
      /body\.model\.temperature: .*; body\.transcriber\.model: flux-general-en is a Flux model/,
    );
  });

  test("PATCH: the assistant as it would be saved is checked, and a refused patch changes nothing", async () => {
    const id = await createAssistant(env);
    const message = await refused("PATCH", `/assistant/${id}`, {
      voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM", language: "es" },
    });
    assert.match(
      message,
      /^body\.voice\.language: ElevenLabs takes a language code only with eleven_turbo_v2_5 and eleven_flash_v2_5/,
    );
    const stored = (await req("GET", `/assistant/${id}`)).json();
    assert.equal(stored.voice.model, "eleven_turbo_v2_5", "unchanged");
  });
});

describe("squads", () => {
  test("an inline member is checked as an assistant", async () => {
    const message = await refused("POST", "/squad", {
      members: [{ assistant: { name: "Inline", model: { provider: "openai", model: "gpt-realtime-2" } } }],
    });
    assert.match(
      message,
      /^body\.members\[0\]\.assistant\.model\.model: gpt-realtime-2 is a Realtime API model/,
    );
  });

  test("the squad's overrides are checked over each member's saved assistant, and named where the option is set", async () => {
    // The saved assistant takes temperature 0.3 on gpt-4o; the squad switches every member to gpt-5.
    const saved = await createAssistant(env);
    const message = await refused("POST", "/squad", {
      members: [{ assistantId: saved }],
      membersOverrides: { model: { provider: "openai", model: "gpt-5" } },
    });
    assert.match(
      message,
      new RegExp(
        `^body\\.members\\[0\\]\\.assistantId \\(assistant ${saved}\\): model\\.temperature: gpt-5 is a reasoning model`,
      ),
    );
    const voice = await refused("POST", "/squad", {
      members: [
        { assistantId: saved, assistantOverrides: { voice: { provider: "11labs", voiceId: "marissa" } } },
      ],
    });
    assert.match(voice, /^body\.members\[0\]\.assistantOverrides\.voice\.voiceId: "marissa"/);
    const ok = await req("POST", "/squad", {
      members: [
        {
          assistantId: saved,
          assistantOverrides: { voice: { provider: "11labs", voiceId: "EXAVITQu4vr4xnSDxMaL" } },
        },
      ],
    });
    assert.equal(ok.statusCode, 201, ok.body);
  });
});

describe("POST /call", () => {
  let phoneNumberId: string;
  before(async () => {
    ({ id: phoneNumberId } = await importNumber(env));
  });

  function call(body: object) {
    return { phoneNumberId, customer: { number: "+14155550177" }, ...body };
  }

  test("an inline assistant is checked before anything is dialled", async () => {
    const before = env.twilio.requests.length;
    const message = await refused(
      "POST",
      "/call",
      call({
        assistant: assistantBody({
          voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM", model: "eleven_v3" },
        }),
      }),
    );
    assert.match(message, /^body\.assistant\.voice\.model: ElevenLabs does not serve eleven_v3/);
    assert.equal(env.twilio.requests.length, before, "Twilio was not asked");
  });

  test("overrides are checked over the saved assistant they apply to", async () => {
    const id = await createAssistant(env);
    const message = await refused(
      "POST",
      "/call",
      call({ assistantId: id, assistantOverrides: { model: { provider: "openai", model: "o4-mini" } } }),
    );
    assert.match(
      message,
      new RegExp(`^body\\.assistantId \\(assistant ${id}\\): model\\.temperature: o4-mini`),
    );
    const voice = await refused(
      "POST",
      "/call",
      call({
        assistantId: id,
        assistantOverrides: { transcriber: { provider: "deepgram", model: "whisper" } },
      }),
    );
    assert.match(
      voice,
      /^body\.assistantOverrides\.transcriber\.model: Deepgram's Whisper Cloud has no live streaming/,
    );
  });

  test("every member of an inline squad is checked", async () => {
    const message = await refused(
      "POST",
      "/call",
      call({
        squad: {
          members: [
            { assistant: assistantBody({ name: "First" }) },
            {
              assistant: assistantBody({
                name: "Second",
                transcriber: { provider: "deepgram", eotThreshold: 0.8 },
              }),
            },
          ],
        },
      }),
    );
    assert.match(
      message,
      /^body\.squad\.members\[1\]\.assistant\.transcriber\.eotThreshold: eotThreshold is an end-of-turn setting of Deepgram's Flux models only/,
    );
  });
});

describe("assistant-request answers", () => {
  test("an answer with a model option its model does not take ends the call as an invalid assistant", async () => {
    const answers: unknown[] = [
      { assistant: assistantBody({ voice: { provider: "11labs", voiceId: "andrea" } }) },
      {
        assistantId: await createAssistant(env),
        assistantOverrides: { model: { provider: "openai", model: "gpt-5" } },
      },
    ];
    const server = await answerWith(() => answers.shift());
    try {
      const { number } = await importNumber(env, { server: { url: server.url } });
      for (let i = 0; i < 2; i++) {
        const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550178" });
        await sim.waitForEnd();
        const row = await waitFor(() => env.t.db.call.findUnique({ where: { providerCallId: sim.callSid } }));
        assert.equal(row.endedReason, "assistant-request-returned-invalid-assistant", `answer ${i}`);
      }
    } finally {
      await new Promise<void>((r) => server.server.close(() => r()));
    }
  });
});

async function answerWith(next: () => unknown): Promise<{ server: Server; url: string }> {
  const server = createServer((request, res) => {
    request.resume();
    request.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(next() ?? {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/vapi` };
}
