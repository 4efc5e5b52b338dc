// Drives the real API over HTTP with Vapi's own TypeScript SDK: if Switchboard drifts from Vapi's wire
// format (paths, methods, bodies, status codes), these calls fail the way a customer's code would.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { type Vapi, VapiClient, VapiError } from "@vapi-ai/server-sdk";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";

let t: TestApi;
let org: TestOrg;
let baseUrl: string;
let client: VapiClient;

before(async () => {
  // Platform provider keys: a web call is refused without a key for each provider it needs.
  t = await startTestApi({
    OPENAI_API_KEY: "sk-platform",
    DEEPGRAM_API_KEY: "dg-platform",
    ELEVENLABS_API_KEY: "el-platform",
  });
  org = await t.createOrg("SDK compat");
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = t.app.server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  // No retries: a failure should surface as the first error, not after backoff.
  client = new VapiClient({ baseUrl, token: org.key, maxRetries: 0, timeoutInSeconds: 10 });
});

after(async () => {
  await t?.close();
});

/** The fields of `actual` named by `sent`, for a deepEqual against what was sent. */
function subset(actual: object, sent: object): Record<string, unknown> {
  const a = actual as Record<string, unknown>;
  return Object.fromEntries(Object.keys(sent).map((k) => [k, a[k]]));
}

function assertResource(r: { id?: string; orgId?: string; createdAt?: unknown; updatedAt?: unknown }): void {
  assert.match(String(r.id), /^[0-9a-f-]{36}$/);
  assert.equal(r.orgId, org.orgId);
  assert.ok(r.createdAt, "createdAt");
  assert.ok(r.updatedAt, "updatedAt");
}

/** Awaits an SDK call that must fail with a 404 `VapiError`. */
async function assertSdk404(call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof VapiError, `expected VapiError, got ${String(err)}`);
    assert.equal(err.statusCode, 404);
    return true;
  });
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
const twilioAccountSid = `AC${hex(16)}`;

let assistantId = "";

test("assistants: create, get, list, update and delete through the Vapi SDK", async () => {
  const sent = {
    name: "Riley (scheduling)",
    firstMessage: "Hi, this is Riley from Wellness Partners. How can I help you today?",
    model: {
      provider: "openai",
      model: "gpt-4o",
      messages: [
        {
          role: "system",
          content: "You are Riley, a friendly scheduling assistant for a clinic. Keep answers short.",
        },
      ],
      temperature: 0.4,
      maxTokens: 250,
    },
    voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM", stability: 0.5, similarityBoost: 0.75 },
    transcriber: { provider: "deepgram", model: "nova-3", language: "en" },
    server: { url: "https://hooks.example.com/vapi", timeoutSeconds: 20 },
    serverMessages: ["end-of-call-report", "status-update", "tool-calls", "transcript"],
    endCallPhrases: ["goodbye", "talk to you soon"],
    maxDurationSeconds: 900,
    startSpeakingPlan: {
      waitSeconds: 0.4,
      smartEndpointingEnabled: false,
      transcriptionEndpointingPlan: {
        onPunctuationSeconds: 0.1,
        onNoPunctuationSeconds: 1.5,
        onNumberSeconds: 0.5,
      },
    },
    stopSpeakingPlan: { numWords: 2, voiceSeconds: 0.2, backoffSeconds: 1 },
    metadata: { team: "scheduling", version: 3 },
  } satisfies Vapi.CreateAssistantDto;

  const created = await client.assistants.create(sent);
  assertResource(created);
  assert.deepEqual(subset(created, sent), sent);
  assistantId = created.id;

  const got = await client.assistants.get({ id: created.id });
  assert.deepEqual(subset(got, sent), sent);
  assert.equal(got.id, created.id);

  const list = await client.assistants.list();
  assert.ok(Array.isArray(list));
  const listed = list.find((a) => a.id === created.id);
  assert.ok(listed, "the created assistant is listed");
  assert.deepEqual(subset(listed, sent), sent);

  // The SDK's list filters go out as query parameters.
  const filtered = await client.assistants.list({ limit: 5, createdAtGe: created.createdAt });
  assert.ok(
    filtered.some((a) => a.id === created.id),
    "createdAtGe includes the assistant itself",
  );
  const future = new Date(Date.now() + 3_600_000).toISOString();
  assert.deepEqual(await client.assistants.list({ createdAtGt: future }), []);

  const patch = { name: "Riley v2", firstMessage: "Hello! Riley here.", maxDurationSeconds: 600 };
  const updated = await client.assistants.update({ id: created.id, ...patch });
  assert.deepEqual(subset(updated, patch), patch);
  // Untouched fields survive a partial update.
  assert.deepEqual(updated.model, sent.model);
  assert.deepEqual(updated.voice, sent.voice);
  assert.deepEqual((await client.assistants.get({ id: created.id })).name, "Riley v2");

  // A second, throwaway assistant exercises delete (the first is used by the squad and phone number).
  const doomed = await client.assistants.create({ name: "Temp" });
  const deleted = await client.assistants.delete({ id: doomed.id });
  assert.equal(deleted.id, doomed.id);
  await assertSdk404(() => client.assistants.get({ id: doomed.id }));
});

test("tools: a function tool round-trips through the Vapi SDK", async () => {
  const sent = {
    type: "function",
    function: {
      name: "book_appointment",
      description: "Book an appointment slot for the caller.",
      parameters: {
        type: "object",
        properties: {
          date: { type: "string", description: "ISO date, e.g. 2025-05-01" },
          time: { type: "string", description: "24h time, e.g. 14:30" },
          partySize: { type: "integer", description: "How many people" },
        },
        required: ["date", "time"],
      },
    },
    async: false,
    server: { url: "https://hooks.example.com/tools/book" },
    messages: [{ type: "request-start", content: "One moment while I book that for you." }],
  } satisfies Vapi.CreateToolsRequest.Function;

  const created = await client.tools.create(sent);
  assertResource(created);
  assert.deepEqual(subset(created, sent), sent);

  const got = await client.tools.get({ id: created.id });
  assert.deepEqual(subset(got, sent), sent);

  const list = await client.tools.list();
  const listed = list.find((x) => x.id === created.id);
  assert.ok(listed, "the created tool is listed");
  assert.deepEqual(subset(listed, sent), sent);

  const patchBody = {
    type: "function",
    messages: [{ type: "request-start", content: "Booking now." }],
  } satisfies Vapi.UpdateToolsRequestBody.Function;
  const updated = await client.tools.update({ id: created.id, body: patchBody });
  assert.deepEqual(subset(updated, patchBody), patchBody);
  assert.deepEqual(subset(updated, { function: 1 }), { function: sent.function });

  const deleted = await client.tools.delete({ id: created.id });
  assert.equal(deleted.id, created.id);
  await assertSdk404(() => client.tools.get({ id: created.id }));
});

test("squads: two members, one by assistantId with assistantDestinations", async () => {
  assert.ok(assistantId, "needs the assistant from the first test");
  const sent = {
    name: "Front desk",
    members: [
      {
        assistantId,
        assistantDestinations: [
          {
            type: "assistant",
            assistantName: "Billing",
            message: "Let me pass you to billing.",
            description: "Questions about invoices and payments",
          },
        ],
      },
      {
        assistant: {
          name: "Billing",
          firstMessage: "Billing here, how can I help?",
          model: {
            provider: "openai",
            model: "gpt-4o",
            messages: [{ role: "system", content: "You handle billing questions." }],
          },
        },
      },
    ],
  } satisfies Vapi.CreateSquadDto;

  const created = await client.squads.create(sent);
  assertResource(created);
  assert.deepEqual(subset(created, sent), sent);

  const got = await client.squads.get({ id: created.id });
  assert.deepEqual(subset(got, sent), sent);

  const list = await client.squads.list();
  const listed = list.find((s) => s.id === created.id);
  assert.ok(listed, "the created squad is listed");
  assert.deepEqual(subset(listed, sent), sent);

  // The SDK's UpdateSquadDto requires `members`.
  const patch = { name: "Front desk v2", members: sent.members };
  const updated = await client.squads.update({ id: created.id, ...patch });
  assert.deepEqual(subset(updated, patch), patch);

  const deleted = await client.squads.delete({ id: created.id });
  assert.equal(deleted.id, created.id);
  await assertSdk404(() => client.squads.get({ id: created.id }));
});

test("squads: the SDK's `idAny` list filter is accepted", async () => {
  assert.ok(assistantId, "needs the assistant from the first test");
  const a = await client.squads.create({ name: "A", members: [{ assistantId }] });
  const b = await client.squads.create({ name: "B", members: [{ assistantId }] });
  // Vapi's GET /squad takes `idAny` (one id, or the parameter repeated); the SDK sends it as given.
  const one = await client.squads.list({ idAny: a.id });
  assert.deepEqual(
    one.map((s) => s.id),
    [a.id],
  );
  const both = await client.squads.list({ idAny: [a.id, b.id] });
  assert.deepEqual(new Set(both.map((s) => s.id)), new Set([a.id, b.id]));
});

test("calls: list with Vapi's filters and get a missing call", async () => {
  assert.ok(assistantId, "needs the assistant from the first test");
  const calls = await client.calls.list({ assistantId, limit: 10, createdAtGt: "2020-01-01T00:00:00.000Z" });
  assert.deepEqual(calls, []);
  await assertSdk404(() => client.calls.get({ id: "00000000-0000-4000-8000-000000000000" }));
});

test("phone numbers: a Twilio import round-trips and never returns the auth token", async () => {
  assert.ok(assistantId, "needs the assistant from the first test");
  const twilioAuthToken = hex(16);
  const sent = {
    provider: "twilio",
    number: `+1415555${String(1000 + Math.floor(Math.random() * 9000))}`,
    twilioAccountSid,
    twilioAuthToken,
    assistantId,
    name: "Main line",
  } satisfies Vapi.CreatePhoneNumbersRequest.Twilio;
  const { twilioAuthToken: _secret, ...visible } = sent;

  const noToken = (r: object, what: string) => {
    assert.ok(!("twilioAuthToken" in r), `${what} carries twilioAuthToken`);
    assert.ok(!JSON.stringify(r).includes(twilioAuthToken), `${what} leaks the auth token`);
  };

  const created = await client.phoneNumbers.create(sent);
  noToken(created, "create");
  assertResource(created);
  assert.deepEqual(subset(created, visible), visible);

  const got = await client.phoneNumbers.get({ id: created.id });
  noToken(got, "get");
  assert.deepEqual(subset(got, visible), visible);

  const list = await client.phoneNumbers.list();
  for (const item of list) noToken(item, "list");
  const listed = list.find((p) => p.id === created.id);
  assert.ok(listed, "the created number is listed");
  assert.deepEqual(subset(listed, visible), visible);

  const patchBody = {
    provider: "twilio",
    name: "Main line (after hours)",
    twilioAuthToken: hex(16),
  } satisfies Vapi.UpdatePhoneNumbersRequestBody.Twilio;
  const updated = await client.phoneNumbers.update({ id: created.id, body: patchBody });
  noToken(updated, "update");
  assert.ok(!JSON.stringify(updated).includes(patchBody.twilioAuthToken), "update leaks the new token");
  assert.equal(updated.name, patchBody.name);
  assert.equal(updated.number, sent.number);
  assert.equal((updated as { assistantId?: string }).assistantId, assistantId);

  const deleted = await client.phoneNumbers.delete({ id: created.id });
  noToken(deleted, "delete");
  assert.ok(!JSON.stringify(deleted).includes(patchBody.twilioAuthToken), "delete leaks the new token");
  assert.equal(deleted.id, created.id);
  await assertSdk404(() => client.phoneNumbers.get({ id: created.id }));
});

test("credentials (not in the SDK): Vapi-shaped CRUD over fetch never returns a secret", async () => {
  const secrets: string[] = [];
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${org.key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    for (const s of secrets) assert.ok(!text.includes(s), `${method} ${path} leaks a secret: ${text}`);
    assert.ok(!/"(apiKey|authToken)"/.test(text), `${method} ${path} names a secret field: ${text}`);
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };

  const openaiKey = `sk-live-${hex(24)}`;
  const elevenLabsKey = hex(16);
  const twilioToken = hex(16);
  secrets.push(openaiKey, elevenLabsKey, twilioToken);
  const bodies: Record<string, string>[] = [
    { provider: "openai", apiKey: openaiKey, name: "OpenAI prod" },
    { provider: "11labs", apiKey: elevenLabsKey },
    { provider: "twilio", accountSid: `AC${hex(16)}`, authToken: twilioToken },
  ];

  const ids: string[] = [];
  for (const body of bodies) {
    const res = await call("POST", "/credential", body);
    assert.equal(res.status, 201, res.text);
    const cred = res.json();
    assert.match(String(cred.id), /^[0-9a-f-]{36}$/);
    assert.equal(cred.orgId, org.orgId);
    assert.equal(cred.provider, body.provider);
    if (body.name) assert.equal(cred.name, body.name);
    if (body.accountSid) assert.equal(cred.accountSid, body.accountSid);
    ids.push(String(cred.id));
  }

  const list = await call("GET", "/credential");
  assert.equal(list.status, 200, list.text);
  const listed = JSON.parse(list.text) as { id: string }[];
  for (const id of ids)
    assert.ok(
      listed.some((c) => c.id === id),
      `credential ${id} is listed`,
    );

  for (const id of ids) {
    const got = await call("GET", `/credential/${id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json().id, id);

    const patched = await call("PATCH", `/credential/${id}`, { name: "renamed" });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json().name, "renamed");

    const deleted = await call("DELETE", `/credential/${id}`);
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal(deleted.json().id, id);

    const gone = await call("GET", `/credential/${id}`);
    assert.equal(gone.status, 404, gone.text);
  }
});

test("web calls: calls.create with a vapi.websocket transport answers a vapi.websocketCall with its websocketCallUrl", async () => {
  assert.ok(assistantId, "needs the assistant from the first test");
  const created = await client.calls.create({
    assistantId,
    transport: {
      provider: "vapi.websocket",
      // The SDK types `format` as an object (a quirk of its generator); Vapi's spec and docs send
      // the string, and so does the SDK: it passes the body through unchanged.
      audioFormat: {
        format: "pcm_s16le" as unknown as Vapi.AudioFormat["format"],
        container: "raw",
        sampleRate: 16000,
      },
    },
  });
  assert.ok(!("results" in created), "one call, not a batch");
  const call = created as Vapi.Call;
  assertResource(call);
  assert.equal(call.type, "vapi.websocketCall");
  assert.equal(call.status, "queued");
  assert.equal(call.transport?.provider, "vapi.websocket");
  const transport = call.transport as Vapi.CallTransport.VapiWebsocket & { websocketCallUrl?: string };
  assert.deepEqual(transport.audioFormat, { format: "pcm_s16le", container: "raw", sampleRate: 16000 });
  assert.match(String(transport.websocketCallUrl), new RegExp(`^ws://.+/${call.id}/transport\\?token=v1\\.`));

  const got = await client.calls.get({ id: call.id });
  assert.equal(got.type, "vapi.websocketCall");
  assert.equal(got.transport?.provider, "vapi.websocket");

  // A phone number with the websocket transport: the SDK surfaces the 400 and its reason.
  await assert.rejects(
    () =>
      client.calls.create({
        assistantId,
        phoneNumberId: "00000000-0000-4000-8000-000000000000",
        transport: { provider: "vapi.websocket" },
      }),
    (err: unknown) => {
      assert.ok(err instanceof VapiError);
      assert.equal(err.statusCode, 400);
      assert.match(JSON.stringify(err.body), /body.phoneNumberId cannot be used with transport/);
      return true;
    },
  );
});
