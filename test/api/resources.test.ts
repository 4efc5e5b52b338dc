import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, functionToolBody, phoneNumberBody, TWILIO_SID } from "../helpers/bodies.ts";

let t: TestApi;
let org: TestOrg;
before(async () => {
  t = await startTestApi();
  org = await t.createOrg();
});
after(async () => {
  await t.close();
});

const req = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, payload?: unknown) =>
  t.request({ method, url, key: org.key, payload: payload as object | undefined });

describe("/assistant", () => {
  test("create, get, list, update (partial) and delete", async () => {
    const body = assistantBody();
    const created = await req("POST", "/assistant", body);
    assert.equal(created.statusCode, 201, created.body);
    const a = created.json();
    assert.match(a.id, /^[0-9a-f-]{36}$/);
    assert.equal(a.orgId, org.orgId);
    for (const [k, v] of Object.entries(body)) assert.deepEqual(a[k], v, k);

    assert.deepEqual((await req("GET", `/assistant/${a.id}`)).json(), a);
    const list = (await req("GET", "/assistant")).json();
    assert.ok(list.some((x: { id: string }) => x.id === a.id));

    const patched = await req("PATCH", `/assistant/${a.id}`, {
      firstMessage: "Hello!",
      voice: { provider: "11labs", voiceId: "EXAVITQu4vr4xnSDxMaL" },
    });
    assert.equal(patched.statusCode, 200);
    const p = patched.json();
    assert.equal(p.firstMessage, "Hello!");
    assert.deepEqual(p.voice, { provider: "11labs", voiceId: "EXAVITQu4vr4xnSDxMaL" });
    assert.deepEqual(p.model, body.model, "fields not in the patch are kept");
    assert.ok(p.updatedAt >= a.updatedAt);

    const deleted = await req("DELETE", `/assistant/${a.id}`);
    assert.equal(deleted.statusCode, 200);
    assert.equal(deleted.json().id, a.id);
    assert.equal((await req("GET", `/assistant/${a.id}`)).statusCode, 404);
  });

  test("validation errors name the field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...assistantBody(), nickname: "x" }, /body\.nickname is not a recognised field/],
      [
        assistantBody({ model: { provider: "openai", model: "gpt-4o", topK: 3 } }),
        /body\.model\.topK is not a recognised field/,
      ],
      [assistantBody({ model: { provider: "groq", model: "llama-3.1-8b" } }), /body\.model\.provider/],
      [
        assistantBody({ model: { provider: "anthropic", model: "claude" } }),
        /body\.model\.model must be one of: claude-/,
      ],
      [
        assistantBody({ model: { provider: "openai", model: "gpt-99" } }),
        /body\.model\.model must be one of/,
      ],
      [assistantBody({ voice: { provider: "playht", voiceId: "x" } }), /body\.voice\.provider/],
      [
        assistantBody({ transcriber: { provider: "deepgram", model: "whisper-9" } }),
        /body\.transcriber\.model/,
      ],
      [assistantBody({ name: 42 }), /body\.name must be string/],
      [assistantBody({ maxDurationSeconds: 5 }), /body\.maxDurationSeconds must be >= 10/],
      [assistantBody({ firstMessageMode: "whenever" }), /body\.firstMessageMode must be one of/],
      [
        assistantBody({ model: { provider: "openai", model: "gpt-4o", temperature: "hot" } }),
        /body\.model\.temperature/,
      ],
    ];
    for (const [body, message] of cases) {
      const res = await req("POST", "/assistant", body);
      assert.equal(res.statusCode, 400, `${message}: ${res.body}`);
      assert.equal(res.json().error, "Bad Request");
      assert.match(res.json().message, message);
    }
    const patch = await req(
      "PATCH",
      `/assistant/${(await req("POST", "/assistant", assistantBody())).json().id}`,
      { bogus: 1 },
    );
    assert.equal(patch.statusCode, 400);
    assert.match(patch.json().message, /body\.bogus/);
  });

  test("toolIds and credentialIds must exist in the organisation", async () => {
    const tool = (await req("POST", "/tool", functionToolBody())).json();
    const ok = await req(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-4o", toolIds: [tool.id] } }),
    );
    assert.equal(ok.statusCode, 201);
    assert.deepEqual(ok.json().model.toolIds, [tool.id]);

    const missing = "00000000-0000-4000-8000-000000000000";
    const bad = await req(
      "POST",
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-4o", toolIds: [tool.id, missing] } }),
    );
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().message, /model\.toolIds\[1\] refers to tool 0{8}-/);

    const cred = await req("POST", "/assistant", assistantBody({ credentialIds: [missing] }));
    assert.equal(cred.statusCode, 400);
    assert.match(cred.json().message, /credentialIds\[0\]/);
  });

  test("lists are newest first, honour limit and date filters", async () => {
    const fresh = await startTestApi();
    try {
      const o = await fresh.createOrg();
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await fresh.request({
          method: "POST",
          url: "/assistant",
          key: o.key,
          payload: { name: `a${i}` },
        });
        ids.push(r.json().id);
        await new Promise((r) => setTimeout(r, 5));
      }
      const all = (await fresh.request({ method: "GET", url: "/assistant", key: o.key })).json();
      assert.deepEqual(
        all.map((a: { id: string }) => a.id),
        [...ids].reverse(),
      );
      const two = (await fresh.request({ method: "GET", url: "/assistant?limit=2", key: o.key })).json();
      assert.equal(two.length, 2);
      const pivot = all[2].createdAt;
      const newer = (
        await fresh.request({ method: "GET", url: `/assistant?createdAtGt=${pivot}`, key: o.key })
      ).json();
      assert.deepEqual(
        newer.map((a: { name: string }) => a.name),
        ["a3", "a2"],
      );
      const upTo = (
        await fresh.request({ method: "GET", url: `/assistant?createdAtLe=${pivot}`, key: o.key })
      ).json();
      assert.deepEqual(
        upTo.map((a: { name: string }) => a.name),
        ["a1", "a0"],
      );
      const bad = await fresh.request({ method: "GET", url: "/assistant?limit=5000", key: o.key });
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json().message, /limit/);
      const badDate = await fresh.request({
        method: "GET",
        url: "/assistant?createdAtGt=yesterday",
        key: o.key,
      });
      assert.equal(badDate.statusCode, 400);
      assert.match(badDate.json().message, /createdAtGt/);
    } finally {
      await fresh.close();
    }
  });

  test("a malformed or unknown id is a 404", async () => {
    for (const id of ["not-a-uuid", "00000000-0000-4000-8000-000000000000"]) {
      const res = await req("GET", `/assistant/${id}`);
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().message, `Assistant ${id} not found`);
    }
  });
});

describe("/tool", () => {
  test("function tools: create, get, list, update and delete", async () => {
    const body = functionToolBody({ async: false });
    const created = await req("POST", "/tool", body);
    assert.equal(created.statusCode, 201, created.body);
    const tool = created.json();
    for (const [k, v] of Object.entries(body)) assert.deepEqual(tool[k], v, k);
    const patched = (await req("PATCH", `/tool/${tool.id}`, { async: true })).json();
    assert.equal(patched.async, true);
    assert.deepEqual(patched.function, body.function);
    assert.ok((await req("GET", "/tool")).json().some((x: { id: string }) => x.id === tool.id));
    assert.equal((await req("DELETE", `/tool/${tool.id}`)).statusCode, 200);
    assert.equal((await req("GET", `/tool/${tool.id}`)).statusCode, 404);
  });

  test("endCall, transferCall and dtmf tools", async () => {
    const bodies = [
      { type: "endCall" },
      {
        type: "transferCall",
        destinations: [
          { type: "number", number: "+14155550100", message: "Transferring you to billing now." },
        ],
      },
      { type: "dtmf" },
    ];
    for (const body of bodies) {
      const res = await req("POST", "/tool", body);
      assert.equal(res.statusCode, 201, res.body);
      const tool = res.json() as Record<string, unknown>;
      for (const [k, v] of Object.entries(body)) assert.deepEqual(tool[k], v, k);
      assert.equal(typeof tool.id, "string");
    }
  });

  test("validation errors name the field of the tool's own type", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: "teleport" }, /body\.type must be one of: function, endCall, transferCall, dtmf/],
      [functionToolBody({ function: { name: "has spaces" } }), /body\.function\.name/],
      [functionToolBody({ speed: 1 }), /body\.speed is not a recognised field/],
      [
        { type: "transferCall", destinations: [{ type: "number", number: "555-0100" }] },
        /body\.destinations\[0\]\.number/,
      ],
      [functionToolBody({ server: { url: "not a url" } }), /body\.server\.url/],
    ];
    for (const [body, message] of cases) {
      const res = await req("POST", "/tool", body);
      assert.equal(res.statusCode, 400, `${message}: ${res.body}`);
      assert.match(res.json().message, message);
    }
    const tool = (await req("POST", "/tool", { type: "endCall" })).json();
    const change = await req("PATCH", `/tool/${tool.id}`, { type: "dtmf" });
    assert.equal(change.statusCode, 400);
    const fn = await req("PATCH", `/tool/${tool.id}`, { function: { name: "x" } });
    assert.equal(fn.statusCode, 400);
    assert.match(fn.json().message, /body\.function is not a recognised field/);
  });

  test("with ALLOW_PRIVATE_WEBHOOK_URLS (this suite) loopback servers are accepted; schemes and headers are still checked", async () => {
    const local = await req(
      "POST",
      "/tool",
      functionToolBody({ server: { url: "http://127.0.0.1:8080/tools" } }),
    );
    assert.equal(local.statusCode, 201, local.body);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ url: "file:///etc/passwd" }, /body\.server\.url must use http or https, not file/],
      [{ url: "http://admin:pw@127.0.0.1/" }, /body\.server\.url must not contain a user name or password/],
      [{ url: "http://127.0.0.1/", headers: { "X-Team": "a\nb" } }, /body\.server\.headers\["X-Team"\]/],
      [
        { url: "http://127.0.0.1/", headers: { Host: "example.com" } },
        /body\.server\.headers\["Host"\] is set by the platform/,
      ],
    ];
    for (const [server, message] of cases) {
      const res = await req("POST", "/tool", functionToolBody({ server }));
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json().message, message);
    }
  });
});

describe("/squad", () => {
  test("members by id or inline, with handoff destinations; members must exist", async () => {
    const a = (await req("POST", "/assistant", assistantBody({ name: "Triage" }))).json();
    const body = {
      name: "Support squad",
      members: [
        {
          assistantId: a.id,
          assistantDestinations: [
            { type: "assistant", assistantName: "Billing", message: "Let me get billing." },
          ],
        },
        { assistant: assistantBody({ name: "Billing" }) },
      ],
      membersOverrides: { firstMessageMode: "assistant-waits-for-user" },
    };
    const created = await req("POST", "/squad", body);
    assert.equal(created.statusCode, 201, created.body);
    const squad = created.json();
    assert.deepEqual(squad.members, body.members);
    assert.deepEqual(squad.membersOverrides, body.membersOverrides);
    const patched = (await req("PATCH", `/squad/${squad.id}`, { name: "Renamed" })).json();
    assert.equal(patched.name, "Renamed");
    assert.deepEqual(patched.members, body.members);

    const missing = await req("POST", "/squad", {
      members: [{ assistantId: "00000000-0000-4000-8000-000000000000" }],
    });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.json().message, /members\[0\]\.assistantId/);
    const empty = await req("POST", "/squad", { members: [] });
    assert.equal(empty.statusCode, 400);
    assert.match(empty.json().message, /body\.members/);

    assert.equal((await req("DELETE", `/squad/${squad.id}`)).statusCode, 200);
    assert.equal((await req("GET", `/squad/${squad.id}`)).statusCode, 404);
  });
});

describe("/phone-number", () => {
  test("Twilio import: create, get, list, update, delete; the auth token never comes back", async () => {
    const a = (await req("POST", "/assistant", assistantBody())).json();
    const body = phoneNumberBody({
      assistantId: a.id,
      server: { url: "https://hooks.example.com/numbers" },
      fallbackDestination: { type: "number", number: "+14155550199", message: "Connecting you to a person." },
    });
    const created = await req("POST", "/phone-number", body);
    assert.equal(created.statusCode, 201, created.body);
    const pn = created.json();
    assert.equal(pn.number, body.number);
    assert.equal(pn.provider, "twilio");
    assert.equal(pn.twilioAccountSid, TWILIO_SID);
    assert.equal(pn.assistantId, a.id);
    assert.deepEqual(pn.server, body.server);
    assert.deepEqual(pn.fallbackDestination, body.fallbackDestination);
    assert.equal(pn.twilioAuthToken, undefined);
    assert.ok(!created.body.includes("twilio-auth-token-very-secret"));

    for (const res of [await req("GET", `/phone-number/${pn.id}`), await req("GET", "/phone-number")]) {
      assert.equal(res.statusCode, 200);
      assert.ok(!res.body.includes("twilio-auth-token-very-secret"));
    }
    const patched = await req("PATCH", `/phone-number/${pn.id}`, {
      name: "Support",
      twilioAuthToken: "rotated-token",
    });
    assert.equal(patched.statusCode, 200);
    assert.equal(patched.json().name, "Support");
    assert.equal(patched.json().assistantId, a.id);
    assert.ok(!patched.body.includes("rotated-token"));

    const dup = await req("POST", "/phone-number", phoneNumberBody({ number: body.number }));
    assert.equal(dup.statusCode, 409);
    assert.match(dup.json().message, /already imported/);

    assert.equal((await req("DELETE", `/phone-number/${pn.id}`)).statusCode, 200);
    assert.equal((await req("GET", `/phone-number/${pn.id}`)).statusCode, 404);
  });

  test("validation: E.164, account SID, provider, references", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [phoneNumberBody({ number: "4155550100" }), /body\.number/],
      [phoneNumberBody({ number: "+1 415 555 0100" }), /body\.number/],
      [phoneNumberBody({ twilioAccountSid: "AC123" }), /body\.twilioAccountSid/],
      [phoneNumberBody({ provider: "vonage" }), /body\.provider/],
      [phoneNumberBody({ twilioAuthToken: undefined }), /body\.twilioAuthToken is required/],
      [
        phoneNumberBody({ assistantId: "00000000-0000-4000-8000-000000000000" }),
        /body\.assistantId refers to assistant/,
      ],
      [phoneNumberBody({ squadId: "00000000-0000-4000-8000-000000000000" }), /body\.squadId refers to squad/],
    ];
    for (const [body, message] of cases) {
      const res = await req("POST", "/phone-number", body);
      assert.equal(res.statusCode, 400, `${message}: ${res.body}`);
      assert.match(res.json().message, message);
    }
  });
});

describe("/credential", () => {
  test("BYO keys: stored encrypted, never returned, resolvable for calls", async () => {
    const created = await req("POST", "/credential", {
      provider: "openai",
      apiKey: "sk-live-openai-secret",
      name: "Prod OpenAI",
    });
    assert.equal(created.statusCode, 201, created.body);
    const cred = created.json();
    assert.deepEqual(
      { provider: cred.provider, name: cred.name },
      { provider: "openai", name: "Prod OpenAI" },
    );
    assert.equal(cred.apiKey, undefined);
    assert.ok(!created.body.includes("sk-live-openai-secret"));

    const twilio = await req("POST", "/credential", {
      provider: "twilio",
      accountSid: TWILIO_SID,
      authToken: "tw-secret-token",
    });
    assert.equal(twilio.statusCode, 201, twilio.body);
    assert.equal(twilio.json().accountSid, TWILIO_SID);
    assert.ok(!twilio.body.includes("tw-secret-token"));

    const list = await req("GET", "/credential");
    assert.ok(!list.body.includes("sk-live-openai-secret") && !list.body.includes("tw-secret-token"));

    // At rest: ciphertext with a key id, never the plaintext.
    const row = await t.db.credential.findUniqueOrThrow({ where: { id: cred.id } });
    assert.ok(!JSON.stringify(row).includes("sk-live-openai-secret"));
    assert.match(row.secret, /^[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
    assert.equal(row.keyId.length, 12);

    const resolved = await t.app.deps.services.credentials.resolve(
      { orgId: org.orgId, log: t.app.log },
      "openai",
    );
    assert.equal(resolved?.secret, "sk-live-openai-secret");

    const rotated = await req("PATCH", `/credential/${cred.id}`, {
      apiKey: "sk-live-rotated",
      name: "Rotated",
    });
    assert.equal(rotated.statusCode, 200);
    assert.equal(rotated.json().name, "Rotated");
    assert.equal(
      (await t.app.deps.services.credentials.resolve({ orgId: org.orgId, log: t.app.log }, "openai"))?.secret,
      "sk-live-rotated",
    );

    assert.equal((await req("DELETE", `/credential/${cred.id}`)).statusCode, 200);
    assert.equal((await req("GET", `/credential/${cred.id}`)).statusCode, 404);
  });

  test("validation: provider, missing key, unknown field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ provider: "groq", apiKey: "x" }, /body\.provider must be one of: openai, deepgram, 11labs, twilio/],
      [{ provider: "openai" }, /body\.apiKey is required/],
      [{ provider: "deepgram", apiKey: "x", region: "eu" }, /body\.region is not a recognised field/],
      [{ provider: "twilio", authToken: "x" }, /body\.accountSid is required/],
    ];
    for (const [body, message] of cases) {
      const res = await req("POST", "/credential", body);
      assert.equal(res.statusCode, 400, `${message}: ${res.body}`);
      assert.match(res.json().message, message);
    }
  });
});

describe("/call", () => {
  test("list with filters and get; create dials out", async () => {
    const a = (await req("POST", "/assistant", assistantBody())).json();
    const pn = (await req("POST", "/phone-number", phoneNumberBody({ assistantId: a.id }))).json();
    const call = await t.db.call.create({
      data: {
        orgId: org.orgId,
        type: "inboundPhoneCall",
        status: "ended",
        endedReason: "customer-ended-call",
        assistantId: a.id,
        phoneNumberId: pn.id,
        customer: { number: "+14155550123" },
        cost: "0.123456",
        costBreakdown: { total: 0.123456, vapi: 0.05 },
      },
    });
    await t.db.call.create({ data: { orgId: org.orgId, type: "outboundPhoneCall", status: "queued" } });

    const got = await req("GET", `/call/${call.id}`);
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().endedReason, "customer-ended-call");
    assert.equal(got.json().cost, 0.123456);
    assert.deepEqual(got.json().customer, { number: "+14155550123" });

    const byAssistant = (await req("GET", `/call?assistantId=${a.id}`)).json();
    assert.deepEqual(
      byAssistant.map((c: { id: string }) => c.id),
      [call.id],
    );
    const byNumber = (await req("GET", `/call?phoneNumberId=${pn.id}`)).json();
    assert.equal(byNumber.length, 1);
    assert.equal((await req("GET", "/call?limit=1")).json().length, 1);
    assert.equal((await req("GET", "/call")).json().length, 2);

    const create = await req("POST", "/call", {
      assistantId: a.id,
      phoneNumberId: pn.id,
      customer: { number: "+14155550100" },
    });
    assert.equal(create.statusCode, 201, create.body);
    assert.equal(create.json().type, "outboundPhoneCall");
    assert.equal(create.json().status, "queued");
    assert.deepEqual(create.json().customer, { number: "+14155550100" });
  });
});
