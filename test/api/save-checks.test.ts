import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, functionToolBody, phoneNumberBody } from "../helpers/bodies.ts";

// What is checked when a configuration is saved, beyond its schema: server URLs (http or https, no
// private, loopback, link-local or metadata targets without ALLOW_PRIVATE_WEBHOOK_URLS), server
// headers, and the length of every field. Each refusal is a 400 whose message names the field.

let t: TestApi;
let org: TestOrg;
before(async () => {
  t = await startTestApi({ ALLOW_PRIVATE_WEBHOOK_URLS: "false" });
  org = await t.createOrg();
});
after(async () => {
  await t.close();
});

const req = (method: "POST" | "PATCH" | "GET", url: string, payload?: unknown) =>
  t.request({ method, url, key: org.key, payload: payload as object | undefined });

async function refused(method: "POST" | "PATCH", url: string, payload: unknown, message: RegExp) {
  const res = await req(method, url, payload);
  assert.equal(res.statusCode, 400, `${method} ${url}: ${res.body}`);
  assert.deepEqual(Object.keys(res.json()).sort(), ["error", "message", "statusCode"]);
  assert.match(res.json().message, message);
}

const PRIVATE_URLS: [string, RegExp][] = [
  [
    "http://169.254.169.254/latest/meta-data/",
    /169\.254\.169\.254 \(linkLocal\), which is not a public address/,
  ],
  ["http://2130706433/", /127\.0\.0\.1 \(loopback\)/],
  ["http://0x7f.0.0.1:8080/", /127\.0\.0\.1 \(loopback\)/],
  ["http://[::ffff:127.0.0.1]/", /loopback/],
  ["http://[fd00:ec2::254]/", /uniqueLocal/],
  ["http://10.0.0.5/hook", /private/],
  ["http://100.64.1.1/", /carrierGradeNat/],
  ["http://[::]/", /unspecified/],
  ["http://metadata.google.internal/computeMetadata/v1/", /names a private or local target/],
  ["http://localhost:3000/", /names a private or local target/],
];

describe("server.url is checked when saved", () => {
  test("tools: private, loopback, link-local and metadata targets are refused, naming the field", async () => {
    for (const [url, why] of PRIVATE_URLS) {
      await refused("POST", "/tool", functionToolBody({ server: { url } }), /^body\.server\.url /);
      await refused("POST", "/tool", functionToolBody({ server: { url } }), why);
    }
  });

  test("only http and https, without a user name or password", async () => {
    for (const [url, why] of [
      ["file:///etc/passwd", /body\.server\.url must use http or https, not file/],
      ["ftp://files.example.com/x", /not ftp/],
      ["javascript:alert(1)", /not javascript/],
      ["gopher://example.com/", /not gopher/],
      [
        "https://user:pass@hooks.example.com/vapi",
        /body\.server\.url must not contain a user name or password/,
      ],
    ] as const) {
      await refused("POST", "/assistant", assistantBody({ server: { url } }), why);
    }
  });

  test("a public URL is accepted, also when its host does not resolve yet", async () => {
    const tool = await req("POST", "/tool", functionToolBody({ server: { url: "https://8.8.8.8/tools" } }));
    assert.equal(tool.statusCode, 201, tool.body);
    const a = await req(
      "POST",
      "/assistant",
      assistantBody({ server: { url: "https://not-yet.example.com/vapi" } }),
    );
    assert.equal(a.statusCode, 201, a.body);
    assert.equal(a.json().server.url, "https://not-yet.example.com/vapi");
  });

  test("PATCH is checked like POST", async () => {
    const tool = (await req("POST", "/tool", functionToolBody())).json();
    await refused("PATCH", `/tool/${tool.id}`, { server: { url: "http://127.0.0.1/" } }, /body\.server\.url/);
    const a = (await req("POST", "/assistant", assistantBody())).json();
    await refused(
      "PATCH",
      `/assistant/${a.id}`,
      { server: { url: "http://192.168.1.1/" } },
      /body\.server\.url/,
    );
    assert.equal(
      (await req("GET", `/assistant/${a.id}`)).json().server.url,
      "https://hooks.example.com/vapi",
    );
  });

  test("assistants: inline tools, tools:append, background sounds", async () => {
    const inline = { ...functionToolBody({ server: { url: "http://10.1.2.3/" } }) };
    await refused(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-4o", tools: [inline] } }),
      /body\.model\.tools\[0\]\.server\.url .*private/,
    );
    await refused(
      "POST",
      "/assistant",
      assistantBody({ backgroundSound: "http://169.254.169.254/sound.mp3" }),
      /body\.backgroundSound .*linkLocal/,
    );
  });

  test("squads: inline members, member overrides and the squad's overrides", async () => {
    const bad = { url: "http://127.0.0.1:9000/hook" };
    await refused(
      "POST",
      "/squad",
      { members: [{ assistant: assistantBody({ server: bad }) }] },
      /body\.members\[0\]\.assistant\.server\.url/,
    );
    const saved = (await req("POST", "/assistant", assistantBody())).json();
    await refused(
      "POST",
      "/squad",
      { members: [{ assistantId: saved.id, assistantOverrides: { server: bad } }] },
      /body\.members\[0\]\.assistantOverrides\.server\.url/,
    );
    await refused(
      "POST",
      "/squad",
      {
        members: [{ assistantId: saved.id }],
        membersOverrides: { "tools:append": [functionToolBody({ server: bad })] },
      },
      /body\.membersOverrides\.tools:append\[0\]\.server\.url/,
    );
  });

  test("phone numbers: their server and the fallback destination's audio URLs", async () => {
    await refused(
      "POST",
      "/phone-number",
      phoneNumberBody({ server: { url: "http://169.254.169.254/" } }),
      /body\.server\.url/,
    );
    await refused(
      "POST",
      "/phone-number",
      phoneNumberBody({
        fallbackDestination: {
          type: "number",
          number: "+14155550100",
          transferPlan: { mode: "blind-transfer", holdAudioUrl: "file:///etc/passwd" },
        },
      }),
      /body\.fallbackDestination\.transferPlan\.holdAudioUrl must use http or https/,
    );
    const ok = await req(
      "POST",
      "/phone-number",
      phoneNumberBody({ server: { url: "https://8.8.4.4/vapi" } }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
    await refused(
      "PATCH",
      `/phone-number/${ok.json().id}`,
      { server: { url: "http://10.0.0.1/" } },
      /body\.server\.url/,
    );
  });

  test("transferCall destinations' audio URLs", async () => {
    await refused(
      "POST",
      "/tool",
      {
        type: "transferCall",
        destinations: [
          {
            type: "number",
            number: "+14155550100",
            transferPlan: {
              mode: "warm-transfer-say-message",
              transferCompleteAudioUrl: "http://[::1]/done.wav",
            },
          },
        ],
      },
      /body\.destinations\[0\]\.transferPlan\.transferCompleteAudioUrl .*loopback/,
    );
  });

  test("the organisation's server: PATCH /org checks it, GET /org shows it, null removes it", async () => {
    await refused("PATCH", "/org", { server: { url: "http://169.254.169.254/" } }, /body\.server\.url/);
    await refused(
      "PATCH",
      "/org",
      { server: { url: "https://hooks.example.com/", headers: { Host: "x" } } },
      /Host/,
    );
    const set = await req("PATCH", "/org", {
      server: { url: "https://hooks.example.com/org", secret: "s3cret" },
    });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(set.json().server, { url: "https://hooks.example.com/org", secret: "s3cret" });
    assert.deepEqual((await req("GET", "/org")).json().server, set.json().server);
    const row = await t.db.org.findUnique({ where: { id: org.orgId } });
    assert.deepEqual(row?.server, { url: "https://hooks.example.com/org", secret: "s3cret" });

    const renamed = await req("PATCH", "/org", { name: "Acme Corp" });
    assert.equal(renamed.json().name, "Acme Corp");
    assert.equal(
      renamed.json().server.url,
      "https://hooks.example.com/org",
      "fields not in the patch are kept",
    );
    const cleared = await req("PATCH", "/org", { server: null });
    assert.equal(cleared.statusCode, 200);
    assert.equal(cleared.json().server, undefined);
    await refused(
      "PATCH",
      "/org",
      { name: "x".repeat(81) },
      /body\.name must NOT have more than 80 characters/,
    );
  });
});

describe("server.headers and server.secret are checked when saved", () => {
  test("a CR or LF in a header value is refused, naming the header", async () => {
    await refused(
      "POST",
      "/assistant",
      assistantBody({
        server: { url: "https://hooks.example.com/", headers: { "X-Team": "support\r\nX-Injected: 1" } },
      }),
      /body\.server\.headers\["X-Team"\] must not contain CR, LF, NUL/,
    );
    await refused(
      "POST",
      "/tool",
      functionToolBody({ server: { url: "https://hooks.example.com/", secret: "abc\ndef" } }),
      /body\.server\.secret must not contain CR, LF/,
    );
  });

  test("a provider API key is sent as a header: control characters, spaces and non-ASCII are refused", async () => {
    // Pasted with a line break, an OpenAI, Deepgram or ElevenLabs key was accepted and every call
    // that used it then failed when the provider request was built.
    const keys = ["sk-abc\r\nX-Injected: 1", "sk-abc\n", "dg\u0007key", " sk-abc", "ключ"];
    for (const provider of ["openai", "deepgram", "11labs"]) {
      for (const apiKey of keys) {
        await refused("POST", "/credential", { provider, apiKey }, /^body\.apiKey /);
      }
    }
    const created = await req("POST", "/credential", { provider: "openai", apiKey: "sk-proj_AZaz09-._~" });
    assert.equal(created.statusCode, 201);
    await refused("PATCH", `/credential/${created.json().id}`, { apiKey: "sk-new\r\n" }, /^body\.apiKey /);
  });

  test("names must be header tokens; headers the platform sets cannot be overridden", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ "X Team": "a" }, /body\.server\.headers\["X Team"\] is not a valid header name/],
      [{ "X-Ä": "a" }, /is not a valid header name/],
      [{ Host: "internal.example.com" }, /body\.server\.headers\["Host"\] is set by the platform/],
      [{ "Content-Length": "0" }, /\["Content-Length"\] is set by the platform/],
      [{ "transfer-encoding": "chunked" }, /is set by the platform/],
      [{ Connection: "upgrade" }, /is set by the platform/],
      [{ "X-Vapi-Signature": "forged" }, /is set by the platform/],
      [{ "X-Vapi-Secret": "s" }, /is set by the platform/],
    ];
    for (const [headers, message] of cases) {
      await refused(
        "POST",
        "/tool",
        functionToolBody({ server: { url: "https://hooks.example.com/", headers } }),
        message,
      );
    }
    const ok = await req(
      "POST",
      "/tool",
      functionToolBody({
        server: {
          url: "https://hooks.example.com/",
          headers: { Authorization: "Bearer t0ken", "X-Team": "é" },
        },
      }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
  });
});

describe("every field is bounded", () => {
  test("names: 40 characters (a 1 MB squad name is refused)", async () => {
    await refused(
      "POST",
      "/squad",
      { name: "x".repeat(1_000_000), members: [{ assistant: {} }] },
      /body\.name must NOT have more than 40 characters/,
    );
    await refused(
      "POST",
      "/assistant",
      { name: "x".repeat(41) },
      /body\.name must NOT have more than 40 characters/,
    );
    await refused(
      "POST",
      "/tool",
      { type: "transferCall", destinations: [{ type: "assistant", assistantName: "a".repeat(41) }] },
      /body\.destinations\[0\]\.assistantName must NOT have more than 40 characters/,
    );
    const ok = await req("POST", "/squad", { name: "x".repeat(40), members: [{ assistant: {} }] });
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test("free text, URLs, secrets and list items", async () => {
    const cases: [string, unknown, RegExp][] = [
      [
        "/assistant",
        { firstMessage: "x".repeat(10_001) },
        /body\.firstMessage must NOT have more than 10000 characters/,
      ],
      [
        "/assistant",
        { server: { url: `https://hooks.example.com/${"a".repeat(2048)}` } },
        /body\.server\.url must NOT have more than 2048 characters/,
      ],
      [
        "/assistant",
        {
          model: {
            provider: "openai",
            model: "gpt-4o",
            toolIds: Array(129).fill("00000000-0000-4000-8000-000000000000"),
          },
        },
        /body\.model\.toolIds must NOT have more than 128 items/,
      ],
      [
        "/assistant",
        { endCallPhrases: Array(101).fill("goodbye") },
        /body\.endCallPhrases must NOT have more than 100 items/,
      ],
      [
        "/tool",
        functionToolBody({ function: { name: "f", description: "d".repeat(10_001) } }),
        /body\.function\.description must NOT have more than 10000 characters/,
      ],
      [
        "/phone-number",
        phoneNumberBody({ twilioAuthToken: "t".repeat(8193) }),
        /body\.twilioAuthToken must NOT have more than 8192 characters/,
      ],
      [
        "/squad",
        { members: Array(101).fill({ assistant: {} }) },
        /body\.members must NOT have more than 100 items/,
      ],
    ];
    for (const [url, payload, message] of cases) await refused("POST", url, payload, message);
  });

  test("metadata, variableValues and headers are bounded in keys", async () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    await refused(
      "POST",
      "/assistant",
      { metadata: many(201) },
      /body\.metadata must NOT have more than 200 properties/,
    );
    await refused(
      "POST",
      "/assistant",
      { metadata: { ["k".repeat(201)]: 1 } },
      /body\.metadata has a key, "k{40}…", that must NOT have more than 200 characters/,
    );
    const a = (await req("POST", "/assistant", assistantBody({ metadata: many(200) }))).json();
    assert.equal(Object.keys(a.metadata).length, 200);
    await refused(
      "POST",
      "/squad",
      { members: [{ assistantId: a.id, assistantOverrides: { variableValues: many(201) } }] },
      /body\.members\[0\]\.assistantOverrides\.variableValues must NOT have more than 200 properties/,
    );
    const headers = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, "v"]));
    await refused(
      "POST",
      "/tool",
      functionToolBody({ server: { url: "https://hooks.example.com/", headers } }),
      /body\.server\.headers must NOT have more than 50 properties/,
    );
  });
});
