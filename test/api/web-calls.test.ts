// Web calls over Vapi's `vapi.websocket` transport, from the API's side: creating them (private and
// public keys, the public key's restrictions, CORS for browsers), the keys they need, admission,
// the media token in `websocketCallUrl`, a client that never connects, and pricing the transport.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SpendControls } from "../../libs/billing/spend-controls.ts";
import { callTransportUsage } from "../../libs/billing/usage.ts";
import { websocketCallUrl } from "../../libs/calls/transport.ts";
import { Prisma } from "../../libs/db/index.ts";
import { finalizeEndedCall } from "../../libs/media/finalize.ts";
import { sweepStaleCalls } from "../../libs/media/sweeper.ts";
import { consumeMediaToken, MEDIA_TOKEN_TTL_MS } from "../../libs/telephony/media-token.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, phoneNumberBody } from "../helpers/bodies.ts";

let t: TestApi;
/** Brings its own OpenAI and ElevenLabs keys; Deepgram's is the platform's. */
let org: TestOrg;
let assistantId: string;
let otherAssistantId: string;
let squadId: string;

const WEBSOCKET = { provider: "vapi.websocket" } as const;
const APP = "https://app.example.com";

before(async () => {
  // Only Deepgram has a platform key: OpenAI and ElevenLabs must come from the organisation.
  t = await startTestApi({ DEEPGRAM_API_KEY: "dg-platform-key" });
  org = await t.createOrg("Web calls");
  for (const provider of ["openai", "11labs"]) {
    const res = await post(org.key, "/credential", { provider, apiKey: `${provider}-org-key` });
    assert.equal(res.statusCode, 201, res.body);
  }
  assistantId = (await post(org.key, "/assistant", assistantBody({ name: "Riley" }))).json().id;
  otherAssistantId = (await post(org.key, "/assistant", assistantBody({ name: "Sam" }))).json().id;
  squadId = (
    await post(org.key, "/squad", {
      name: "Desk",
      members: [{ assistantId }, { assistantId: otherAssistantId }],
    })
  ).json().id;
});

after(async () => {
  await t?.close();
});

function post(key: string | undefined, url: string, payload: unknown, headers: Record<string, string> = {}) {
  return t.request({ method: "POST", url, key, payload: payload as object, headers });
}

function webCall(key: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return post(key, "/call", { assistantId, transport: WEBSOCKET, ...body }, headers);
}

async function publicKey(restrictions?: Record<string, unknown>, on: TestOrg = org): Promise<string> {
  const res = await post(on.key, "/token", { tag: "public", ...(restrictions ? { restrictions } : {}) });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().value;
}

function tokenOf(url: string): string {
  return new URL(url).searchParams.get("token") ?? "";
}

/** Ends every call the org still has open (so the next test's concurrency starts from zero). */
async function endOpenCalls(on: TestOrg = org): Promise<void> {
  const open = await t.db.call.findMany({ where: { orgId: on.orgId, status: { not: "ended" } } });
  const spend = new SpendControls(t.db, t.redis);
  for (const c of open) {
    await t.db.call.update({
      where: { id: c.id },
      data: { status: "ended", endedReason: "manually-canceled" },
    });
    await spend.releaseCall(on.orgId, c.id);
  }
}

test("a private key starts a websocket call: queued vapi.websocketCall with a single-use websocketCallUrl on the media plane", async () => {
  const res = await webCall(org.key, { name: "Web demo", metadata: { page: "demo" } });
  assert.equal(res.statusCode, 201, res.body);
  const call = res.json();
  assert.equal(call.type, "vapi.websocketCall");
  assert.equal(call.status, "queued");
  assert.equal(call.assistantId, assistantId);
  assert.equal(call.name, "Web demo");
  assert.equal(call.phoneCallProvider, undefined);
  assert.deepEqual(call.transport.provider, "vapi.websocket");
  assert.deepEqual(call.transport.audioFormat, { format: "pcm_s16le", container: "raw", sampleRate: 16000 });

  const url = new URL(call.transport.websocketCallUrl);
  assert.equal(`${url.protocol}//${url.host}`, t.config.mediaPublicUrl);
  assert.equal(url.pathname, `/${call.id}/transport`);
  // The media plane claims the call with the token, once.
  const token = tokenOf(call.transport.websocketCallUrl);
  const first = await consumeMediaToken(t.db, t.config.secretsKey, token, call.id);
  assert.equal(first.ok, true);
  const again = await consumeMediaToken(t.db, t.config.secretsKey, token, call.id);
  assert.deepEqual(again, { ok: false, reason: "already-used" });

  // GET shows the transport but not the URL: its token is a credential, used or expired by then.
  const got = (await t.request({ method: "GET", url: `/call/${call.id}`, key: org.key })).json();
  assert.deepEqual(got.transport, {
    provider: "vapi.websocket",
    audioFormat: { format: "pcm_s16le", container: "raw", sampleRate: 16000 },
  });
  const row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
  assert.deepEqual(row.transport, {
    provider: "vapi.websocket",
    audioFormat: { format: "pcm_s16le", container: "raw", sampleRate: 16000 },
  });
  await endOpenCalls();
});

test("audio formats: μ-law defaults to 8 kHz, a rate the client names is kept, https media URLs become wss", async () => {
  const mulaw = await webCall(org.key, { transport: { ...WEBSOCKET, audioFormat: { format: "mulaw" } } });
  assert.equal(mulaw.statusCode, 201, mulaw.body);
  assert.deepEqual(mulaw.json().transport.audioFormat, {
    format: "mulaw",
    container: "raw",
    sampleRate: 8000,
  });

  const pcm = await webCall(org.key, {
    transport: {
      ...WEBSOCKET,
      conversationType: "voice",
      audioFormat: { format: "pcm_s16le", container: "raw", sampleRate: 48000 },
    },
  });
  assert.equal(pcm.statusCode, 201, pcm.body);
  assert.deepEqual(pcm.json().transport.audioFormat, {
    format: "pcm_s16le",
    container: "raw",
    sampleRate: 48000,
  });

  assert.equal(
    websocketCallUrl("https://media.example.com/", "c1", "v1.a.b"),
    "wss://media.example.com/c1/transport?token=v1.a.b",
  );
  assert.equal(
    websocketCallUrl("http://10.0.0.5:3001", "c1", "t"),
    "ws://10.0.0.5:3001/c1/transport?token=t",
  );
  await endOpenCalls();
});

test("bad web call bodies are 400s naming the field and saying why", async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ phoneNumberId: "00000000-0000-4000-8000-000000000000" }, /body\.phoneNumberId.*no phone number/],
    [{ customer: { number: "+14155550123" } }, /body\.customer\.number.*no phone number/],
    [
      { transport: { ...WEBSOCKET, audioFormat: { container: "wav" } } },
      /body\.transport\.audioFormat\.container/,
    ],
    [
      { transport: { ...WEBSOCKET, audioFormat: { format: "opus" } } },
      /body\.transport\.audioFormat\.format/,
    ],
    [
      { transport: { ...WEBSOCKET, audioFormat: { sampleRate: 4000 } } },
      /body\.transport\.audioFormat\.sampleRate/,
    ],
    [
      { transport: { ...WEBSOCKET, audioFormat: { sampleRate: 384000 } } },
      /body\.transport\.audioFormat\.sampleRate/,
    ],
    [
      { transport: { ...WEBSOCKET, audioFormat: { sampleRate: 16000.5 } } },
      /body\.transport\.audioFormat\.sampleRate/,
    ],
    [{ transport: { provider: "daily" } }, /body\.transport\.provider.*vapi\.websocket/],
    [
      { transport: { ...WEBSOCKET, roomDeleteOnUserLeaveEnabled: true } },
      /body\.transport\.roomDeleteOnUserLeaveEnabled/,
    ],
    [
      { assistantId: undefined },
      /one of body\.assistantId, body\.assistant, body\.squadId or body\.squad is required/,
    ],
    [{ squadId }, /only one of .*body\.assistantId and body\.squadId/],
  ];
  for (const [body, message] of cases) {
    const res = await webCall(org.key, body);
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)} → ${res.body}`);
    assert.match(res.json().message, message, JSON.stringify(body));
  }
  assert.equal(await t.db.call.count({ where: { orgId: org.orgId, status: { not: "ended" } } }), 0);
});

test("a squad, a transient assistant and overrides start web calls too", async () => {
  const squad = await post(org.key, "/call", { squadId, transport: WEBSOCKET });
  assert.equal(squad.statusCode, 201, squad.body);
  assert.equal(squad.json().squadId, squadId);
  assert.equal(squad.json().assistantId, assistantId);

  const transient = await post(org.key, "/call", {
    assistant: assistantBody({ name: "Pop-up" }),
    assistantOverrides: { variableValues: { company: "Acme" } },
    transport: WEBSOCKET,
  });
  assert.equal(transient.statusCode, 201, transient.body);
  assert.equal(transient.json().assistant.name, "Pop-up");
  assert.deepEqual(transient.json().assistantOverrides, { variableValues: { company: "Acme" } });
  await endOpenCalls();
});

test("missing provider keys: a 400 naming each missing key and how to add it", async () => {
  const keyless = await t.createOrg("No keys");
  const saved = (await post(keyless.key, "/assistant", assistantBody())).json().id;
  const refused = await post(keyless.key, "/call", { assistantId: saved, transport: WEBSOCKET });
  assert.equal(refused.statusCode, 400, refused.body);
  const message: string = refused.json().message;
  assert.match(message, /Missing provider keys: openai \(model\), 11labs \(voice\)/);
  assert.match(message, /POST \/credential \{"provider":"openai","apiKey":"…"\}/);
  assert.match(message, /POST \/credential \{"provider":"11labs","apiKey":"…"\}/);
  assert.match(message, /OPENAI_API_KEY, ELEVENLABS_API_KEY/);
  // Deepgram has the platform's key.
  assert.doesNotMatch(message, /deepgram|DEEPGRAM_API_KEY/);

  // A squad's members are checked too.
  const squad = await post(keyless.key, "/call", {
    squad: { members: [{ assistantId: saved }] },
    transport: WEBSOCKET,
  });
  assert.equal(squad.statusCode, 400, squad.body);
  assert.match(squad.json().message, /openai \(model, squad members\[0\]\.model\)/);

  // The organisation's own credential is enough; then the next key is the only one missing.
  assert.equal(
    (await post(keyless.key, "/credential", { provider: "openai", apiKey: "sk-own" })).statusCode,
    201,
  );
  const half = await post(keyless.key, "/call", { assistantId: saved, transport: WEBSOCKET });
  assert.equal(half.statusCode, 400);
  assert.match(half.json().message, /^Missing provider keys: 11labs \(voice\)\./);
  assert.equal(
    (await post(keyless.key, "/credential", { provider: "11labs", apiKey: "el-own" })).statusCode,
    201,
  );
  assert.equal(
    (await post(keyless.key, "/call", { assistantId: saved, transport: WEBSOCKET })).statusCode,
    201,
  );
  assert.equal(
    await t.db.call.count({ where: { orgId: keyless.orgId } }),
    1,
    "refused calls leave no record",
  );
  await endOpenCalls(keyless);
});

test("public keys start websocket calls and nothing else", async () => {
  const key = await publicKey();
  const started = await webCall(key, { assistant: assistantBody(), assistantId: undefined });
  assert.equal(started.statusCode, 201, started.body);
  const row = await t.db.call.findUniqueOrThrow({ where: { id: started.json().id } });
  assert.equal((row.transport as { allowedOrigins?: unknown }).allowedOrigins, undefined);

  const phone = await post(key, "/call", {
    assistantId,
    phoneNumberId: "00000000-0000-4000-8000-000000000000",
    customer: { number: "+14155550123" },
  });
  assert.equal(phone.statusCode, 403, phone.body);
  assert.match(phone.json().message, /public key can only start web calls.*vapi\.websocket/);

  for (const [method, url] of [
    ["GET", "/assistant"],
    ["GET", `/call/${started.json().id}`],
    ["GET", "/token"],
  ] as const) {
    const res = await t.request({ method, url, key });
    assert.equal(res.statusCode, 403, `${method} ${url}`);
    assert.match(res.json().message, /public key/);
  }
  await endOpenCalls();
});

test("a public key's allowedOrigins: the listed origin is served (and copied onto the call), others and none are refused", async () => {
  const key = await publicKey({ allowedOrigins: ["https://App.Example.com/", "http://localhost:5173"] });
  const token = (await t.request({ method: "GET", url: "/token", key: org.key }))
    .json()
    .find((k: { prefix: string }) => key.startsWith(k.prefix));
  assert.deepEqual(token.restrictions, { allowedOrigins: [APP, "http://localhost:5173"] });

  const ok = await webCall(key, {}, { origin: APP });
  assert.equal(ok.statusCode, 201, ok.body);
  assert.equal(ok.headers["access-control-allow-origin"], APP);
  const row = await t.db.call.findUniqueOrThrow({ where: { id: ok.json().id } });
  assert.deepEqual((row.transport as { allowedOrigins?: string[] }).allowedOrigins, [
    APP,
    "http://localhost:5173",
  ]);

  const evil = await webCall(key, {}, { origin: "https://evil.example.net" });
  assert.equal(evil.statusCode, 403, evil.body);
  assert.match(evil.json().message, /origin "https:\/\/evil\.example\.net".*allowedOrigins/);
  assert.equal(evil.headers["access-control-allow-origin"], undefined, "a refused origin reads nothing");

  const none = await webCall(key);
  assert.equal(none.statusCode, 403, none.body);
  assert.match(none.json().message, /no Origin header/);

  // A private key is not bound by origins, and its calls carry none.
  const priv = await webCall(org.key, {}, { origin: "https://evil.example.net" });
  assert.equal(priv.statusCode, 201, priv.body);
  const privRow = await t.db.call.findUniqueOrThrow({ where: { id: priv.json().id } });
  assert.equal((privRow.transport as { allowedOrigins?: unknown }).allowedOrigins, undefined);
  await endOpenCalls();
});

test("a public key's allowedAssistantIds and allowTransientAssistant", async () => {
  const listed = await publicKey({ allowedAssistantIds: [assistantId] });
  assert.equal((await webCall(listed)).statusCode, 201);
  const refusals: Array<[Record<string, unknown>, RegExp]> = [
    [{ assistantId: otherAssistantId }, /assistant .* is not in the key's allowedAssistantIds/],
    [{ assistantId: undefined, squadId }, /only start calls with the assistants in its allowedAssistantIds/],
    [{ assistantId: undefined, assistant: assistantBody() }, /allowedAssistantIds: send body\.assistantId/],
    [{ assistantOverrides: { firstMessage: "Hi" } }, /body\.assistantOverrides\.firstMessage is refused/],
  ];
  for (const [body, message] of refusals) {
    const res = await webCall(listed, body);
    assert.equal(res.statusCode, 403, `${JSON.stringify(body)} → ${res.body}`);
    assert.match(res.json().message, message);
  }
  // variableValues are not a transient assistant.
  const vars = await webCall(listed, { assistantOverrides: { variableValues: { company: "Acme" } } });
  assert.equal(vars.statusCode, 201, vars.body);

  const noTransient = await publicKey({ allowTransientAssistant: false });
  assert.equal((await webCall(noTransient, { assistantId: otherAssistantId })).statusCode, 201);
  assert.equal((await webCall(noTransient, { assistantId: undefined, squadId })).statusCode, 201);
  for (const field of ["assistant", "squad"]) {
    const body =
      field === "assistant" ? { assistant: assistantBody() } : { squad: { members: [{ assistantId }] } };
    const res = await webCall(noTransient, { assistantId: undefined, ...body });
    assert.equal(res.statusCode, 403, res.body);
    assert.match(
      res.json().message,
      new RegExp(`does not allow transient assistants: body\\.${field} is refused`),
    );
  }
  await endOpenCalls();
});

test("restrictions are validated, apply at once when changed, and enabled: false turns a key off", async () => {
  const badOrigin = await post(org.key, "/token", {
    tag: "public",
    restrictions: { allowedOrigins: [APP, "https://app.example.com/path"] },
  });
  assert.equal(badOrigin.statusCode, 400);
  assert.match(badOrigin.json().message, /body\.restrictions\.allowedOrigins\[1\] is not an origin/);

  const stranger = await t.createOrg("Stranger");
  const foreign = (await post(stranger.key, "/assistant", assistantBody())).json().id;
  const badId = await post(org.key, "/token", {
    tag: "public",
    restrictions: { allowedAssistantIds: [foreign] },
  });
  assert.equal(badId.statusCode, 400);
  assert.match(
    badId.json().message,
    /body\.restrictions\.allowedAssistantIds\[0\] refers to assistant .* which does not exist/,
  );

  const created = (await post(org.key, "/token", { tag: "public", name: "site" })).json();
  assert.equal((await webCall(created.value)).statusCode, 201, "unrestricted at first (and cached)");
  const patched = await t.request({
    method: "PATCH",
    url: `/token/${created.id}`,
    key: org.key,
    payload: { restrictions: { allowedAssistantIds: [otherAssistantId] } },
  });
  assert.equal(patched.statusCode, 200, patched.body);
  assert.equal(patched.json().name, "site", "changing restrictions keeps the name");
  assert.deepEqual(patched.json().restrictions, { allowedAssistantIds: [otherAssistantId] });
  assert.equal((await webCall(created.value)).statusCode, 403, "the new restriction applies at once");

  await t.request({
    method: "PATCH",
    url: `/token/${created.id}`,
    key: org.key,
    payload: { restrictions: { enabled: false } },
  });
  const off = await webCall(created.value);
  assert.equal(off.statusCode, 401, off.body);
  await endOpenCalls();
});

test("CORS: POST /call answers browsers (preflight included); the rest of the API does not", async () => {
  const preflight = await t.request({
    method: "OPTIONS",
    url: "/call",
    headers: {
      origin: APP,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
  assert.equal(preflight.statusCode, 204);
  assert.equal(preflight.headers["access-control-allow-origin"], APP);
  assert.equal(preflight.headers["access-control-allow-methods"], "POST");
  assert.equal(preflight.headers["access-control-allow-headers"], "authorization, content-type");
  assert.match(String(preflight.headers.vary), /Origin/);

  const elsewhere = await t.request({
    method: "OPTIONS",
    url: "/assistant",
    headers: { origin: APP, "access-control-request-method": "GET" },
  });
  assert.equal(elsewhere.statusCode, 404);
  assert.equal(elsewhere.headers["access-control-allow-origin"], undefined);

  const read = await t.request({ method: "GET", url: "/assistant", key: org.key, headers: { origin: APP } });
  assert.equal(read.statusCode, 200);
  assert.equal(
    read.headers["access-control-allow-origin"],
    undefined,
    "GET /assistant is not cross-origin readable",
  );

  const started = await webCall(org.key, {}, { origin: APP });
  assert.equal(started.statusCode, 201);
  assert.equal(started.headers["access-control-allow-origin"], APP);
  await endOpenCalls();
});

test("POST /call/web (Vapi's Daily rooms) is a 400 pointing to the websocket transport", async () => {
  const key = await publicKey();
  for (const k of [key, org.key]) {
    const res = await post(k, "/call/web", { assistantId });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(
      res.json().message,
      /not available: use POST \/call with transport \{"provider":"vapi\.websocket"\}/,
    );
  }
  assert.equal((await post(undefined, "/call/web", { assistantId })).statusCode, 401);
});

test("admission: web calls count against the concurrency limit and are refused when billing is frozen", async () => {
  await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 1 } });
  try {
    const first = await webCall(org.key);
    assert.equal(first.statusCode, 201, first.body);
    const second = await webCall(org.key);
    assert.equal(second.statusCode, 429, second.body);
    assert.match(second.json().message, /Concurrency limit reached: 1 calls/);
    assert.ok(second.headers["retry-after"]);
    // A phone call competes for the same slot.
    const number = (await post(org.key, "/phone-number", phoneNumberBody({ assistantId }))).json();
    const phone = await post(org.key, "/call", {
      assistantId,
      phoneNumberId: number.id,
      customer: { number: "+14155550199" },
    });
    assert.equal(phone.statusCode, 429, phone.body);
  } finally {
    await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 10 } });
    await endOpenCalls();
  }
  await t.db.org.update({ where: { id: org.orgId }, data: { billingState: "past_due" } });
  try {
    const frozen = await webCall(org.key);
    assert.equal(frozen.statusCode, 402, frozen.body);
  } finally {
    await t.db.org.update({ where: { id: org.orgId }, data: { billingState: "active" } });
  }
});

test("a websocket call never connected is ended when its token expires: specific endedReason, slot released, nothing billed", async () => {
  await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 1 } });
  try {
    const res = await webCall(org.key);
    assert.equal(res.statusCode, 201, res.body);
    const call = res.json();
    const createdAt = Date.parse(call.createdAt);
    const deps = { db: t.db, spend: new SpendControls(t.db, t.redis) };

    // The sweeper on a clock just before the token expires leaves it alone…
    await sweepStaleCalls(deps, { now: createdAt + MEDIA_TOKEN_TTL_MS - 1 });
    assert.equal((await t.db.call.findUniqueOrThrow({ where: { id: call.id } })).status, "queued");
    // …and ends it once it has.
    await sweepStaleCalls(deps, { now: createdAt + MEDIA_TOKEN_TTL_MS + 1 });
    const ended = (await t.request({ method: "GET", url: `/call/${call.id}`, key: org.key })).json();
    assert.equal(ended.status, "ended");
    assert.equal(ended.endedReason, "call.in-progress.error-providerfault-transport-never-connected");
    assert.equal(ended.cost, 0);
    assert.deepEqual(
      ended.costs.find((c: { type: string }) => c.type === "transport"),
      { type: "transport", provider: "vapi.websocket", minutes: 0, cost: 0, billedBy: "platform" },
    );
    const lines = await t.db.usageLine.findMany({ where: { callId: call.id } });
    assert.ok(lines.length > 0 && lines.every((l) => l.amountMicros === 0n), "priced once, at zero");

    // The token no longer claims it, and the slot is free again.
    const late = await consumeMediaToken(
      t.db,
      t.config.secretsKey,
      tokenOf(call.transport.websocketCallUrl),
      call.id,
    );
    assert.equal(late.ok, false);
    assert.equal((await webCall(org.key)).statusCode, 201);

    // A call whose client connected in time is not the never-connected sweep's to end.
    await endOpenCalls();
    const connected = (await webCall(org.key)).json();
    assert.equal(
      (
        await consumeMediaToken(
          t.db,
          t.config.secretsKey,
          tokenOf(connected.transport.websocketCallUrl),
          connected.id,
        )
      ).ok,
      true,
    );
    await sweepStaleCalls(deps, { now: Date.parse(connected.createdAt) + MEDIA_TOKEN_TTL_MS + 1 });
    const row = await t.db.call.findUniqueOrThrow({ where: { id: connected.id } });
    assert.notEqual(row.endedReason, "call.in-progress.error-providerfault-transport-never-connected");
  } finally {
    await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 10 } });
    await endOpenCalls();
  }
});

test("the vapi.websocket transport is priced from the price table: a transport line in costs[] and costBreakdown", async () => {
  // The built-in price is zero; an organisation's price overrides set one, like any other price.
  await t.db.org.update({
    where: { id: org.orgId },
    data: {
      pricingOverrides: {
        prices: {
          transport: { "vapi.websocket": { inboundPerMinuteUsd: "0.01", outboundPerMinuteUsd: "0.01" } },
        },
      },
    },
  });
  try {
    const call = (await webCall(org.key)).json();
    const claimed = await consumeMediaToken(
      t.db,
      t.config.secretsKey,
      tokenOf(call.transport.websocketCallUrl),
      call.id,
    );
    assert.equal(claimed.ok, true);
    // What the media plane writes when the call ends: 90 s on the websocket transport.
    const startedAt = new Date();
    const endedAt = new Date(startedAt.getTime() + 90_000);
    await finalizeEndedCall(
      { db: t.db, spend: new SpendControls(t.db, t.redis) },
      {
        callId: call.id,
        orgId: org.orgId,
        endedReason: "customer-ended-call",
        startedAt,
        endedAt,
        transcript: "",
        messages: [],
        artifact: {},
        usage: {
          durationSeconds: 90,
          transport: { ...callTransportUsage("vapi.websocketCall"), seconds: 90 },
          stt: { provider: "deepgram", model: "nova-3", audioSeconds: 90, byo: false },
          llm: {
            provider: "openai",
            model: "gpt-4o",
            promptTokens: 0,
            cachedPromptTokens: 0,
            completionTokens: 0,
            byo: true,
          },
          tts: { provider: "11labs", model: "eleven_turbo_v2_5", characters: 0, byo: true },
        },
      },
    );
    const got = (await t.request({ method: "GET", url: `/call/${call.id}`, key: org.key })).json();
    const transport = got.costs.find((c: { type: string }) => c.type === "transport");
    assert.deepEqual(
      {
        type: transport.type,
        provider: transport.provider,
        minutes: transport.minutes,
        cost: transport.cost,
      },
      { type: "transport", provider: "vapi.websocket", minutes: 1.5, cost: 0.015 },
    );
    assert.equal(got.costBreakdown.transport, 0.015);
    const line = await t.db.usageLine.findFirstOrThrow({ where: { callId: call.id, category: "transport" } });
    assert.equal(line.provider, "vapi.websocket");
    assert.equal(line.billedBy, "platform");
    assert.equal(line.amountMicros, 15_000n);
  } finally {
    await t.db.org.update({ where: { id: org.orgId }, data: { pricingOverrides: Prisma.DbNull } });
    await endOpenCalls();
  }
});
