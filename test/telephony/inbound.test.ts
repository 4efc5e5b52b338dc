import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import twilio from "twilio";
import { Prisma } from "../../libs/db/index.ts";
import { parseTwiml, type TwilioCallSimulator } from "../fakes/twilio.ts";
import { assistantBody } from "../helpers/bodies.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  callSid,
  createAssistant,
  importNumber,
  postSigned,
  startTelephony,
  type TelephonyEnv,
  waitFor,
} from "./setup.ts";

let env: TelephonyEnv;

before(async () => {
  env = await startTelephony();
});
after(async () => {
  await env.close();
});

function streamOf(twiml: string): { url: string; params: Record<string, string> } {
  const root = parseTwiml(twiml);
  const connect = root.children.find((c) => c.name === "Connect");
  const stream = connect?.children.find((c) => c.name === "Stream");
  assert.ok(stream, `no <Connect><Stream> in ${twiml}`);
  const params: Record<string, string> = {};
  for (const p of stream.children) if (p.attrs.name) params[p.attrs.name] = p.attrs.value ?? "";
  return { url: stream.attrs.url ?? "", params };
}

/** The caller hangs up and Twilio's `completed` callback has been answered (the slot is free again). */
async function hangUp(sim: TwilioCallSimulator): Promise<void> {
  await sim.hangup();
  await waitFor(async () => sim.statusCallbacks.at(-1)?.responseStatus !== undefined);
}

function callBySid(sid: string) {
  return env.t.db.call.findUnique({ where: { providerCallId: sid } });
}

/** Caller hears `<Say>` then `<Hangup/>`. */
function sayHangup(twiml: string): string {
  const root = parseTwiml(twiml);
  assert.deepEqual(
    root.children.map((c) => c.name),
    root.children.some((c) => c.name === "Say") ? ["Say", "Hangup"] : ["Hangup"],
    twiml,
  );
  return root.children.find((c) => c.name === "Say")?.text.trim() ?? "";
}

async function serve(handler: (body: unknown) => Promise<{ status: number; body: unknown }>) {
  const received: unknown[] = [];
  const headers: Record<string, string | string[] | undefined>[] = [];
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", async () => {
      const body = JSON.parse(raw) as unknown;
      received.push(body);
      headers.push(req.headers);
      const out = await handler(body);
      res.writeHead(out.status, { "content-type": "application/json" });
      res.end(JSON.stringify(out.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vapi`;
  return { url, received, headers, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("POST /twilio/inbound", () => {
  test("a signed call to an imported number gets <Connect><Stream> with callId and token, and a ringing Call", async () => {
    const assistantId = await createAssistant(env);
    const { id: phoneNumberId, number } = await importNumber(env, { assistantId });
    const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550123" });
    await sim.waitForStreamStart();

    const hook = sim.webhooks[0];
    assert.ok(hook);
    assert.equal(hook.url, `${env.publicUrl}/twilio/inbound`);
    assert.equal(hook.responseStatus, 200);
    const { url, params } = streamOf(hook.twiml);
    assert.equal(url, `${env.t.config.mediaPublicUrl}/twilio/stream`);
    assert.match(params.token ?? "", /^v1\./);
    assert.deepEqual(sim.customParameters, params);

    const call = await callBySid(sim.callSid);
    assert.ok(call);
    assert.equal(call.id, params.callId);
    assert.equal(call.orgId, env.org.orgId);
    assert.equal(call.type, "inboundPhoneCall");
    assert.equal(call.status, "ringing");
    assert.equal(call.phoneNumberId, phoneNumberId);
    assert.equal(call.assistantId, assistantId);
    assert.deepEqual(call.customer, { number: "+14155550123" });
    assert.equal(
      (call.assistant as { firstMessage?: string }).firstMessage,
      "Hi, this is Riley from Acme. How can I help?",
    );

    // The customer sees it through the API.
    const got = await env.t.request({ method: "GET", url: `/call/${call.id}`, key: env.org.key });
    assert.equal(got.json().status, "ringing");
    assert.equal(got.json().phoneCallProviderId, sim.callSid);

    // Twilio retrying the webhook for the same CallSid gets the same call and a fresh token.
    const retry = await postSigned(`${env.publicUrl}/twilio/inbound`, hook.params, AUTH_TOKEN);
    assert.equal(retry.status, 200);
    const again = streamOf(retry.body);
    assert.equal(again.params.callId, call.id);
    assert.notEqual(again.params.token, params.token);
    assert.equal(await env.t.db.call.count({ where: { providerCallId: sim.callSid } }), 1);

    // The caller hangs up before any media session took the call: ended by the status callback.
    await hangUp(sim);
    const ended = await waitFor(async () => {
      const c = await callBySid(sim.callSid);
      return c?.status === "ended" ? c : undefined;
    });
    assert.equal(ended.endedReason, "customer-ended-call");
    assert.ok(ended.endedAt);
  });

  test("a forged or missing signature answers 403 and creates nothing; an unknown number the same 403", async () => {
    const assistantId = await createAssistant(env);
    const { number } = await importNumber(env, { assistantId });
    const params = {
      AccountSid: `AC${"0".repeat(32)}`,
      CallSid: callSid(),
      CallStatus: "ringing",
      From: "+14155550124",
      To: number,
      Direction: "inbound",
    };
    const url = `${env.publicUrl}/twilio/inbound`;
    const forged = await postSigned(url, params, "not-the-auth-token");
    assert.equal(forged.status, 403);
    const missing = await postSigned(url, params, undefined);
    assert.equal(missing.status, 403);
    // A genuine signature for another URL (a replay from elsewhere) does not pass either.
    const replayed = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio.getExpectedTwilioSignature(
          AUTH_TOKEN,
          "https://elsewhere.example/twilio/inbound",
          params,
        ),
      },
      body: new URLSearchParams(params).toString(),
    });
    assert.equal(replayed.status, 403);
    assert.equal(await env.t.db.call.count({ where: { providerCallId: params.CallSid } }), 0);

    // No existence oracle: a number nobody imported answers exactly like a bad signature.
    const unknown = await postSigned(url, { ...params, To: "+19995550000", CallSid: callSid() }, AUTH_TOKEN);
    assert.deepEqual(unknown, forged);
    assert.deepEqual(unknown, {
      status: 403,
      body: "invalid Twilio signature",
      contentType: forged.contentType,
    });
    assert.equal(
      await env.t.db.call.count({ where: { customer: { equals: { number: "+14155550124" } } } }),
      0,
    );
  });

  test("malformed parameters answer 400 naming the field before any lookup, signed or not, never 500", async () => {
    const assistantId = await createAssistant(env);
    const { number } = await importNumber(env, { assistantId });
    const url = `${env.publicUrl}/twilio/inbound`;
    const post = async (body: string, contentType = "application/x-www-form-urlencoded") => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": contentType, "x-twilio-signature": "c2lnbmF0dXJl" },
        body,
      });
      return { status: res.status, body: (await res.json()) as { statusCode: number; message: string } };
    };
    // The request from the issue: a NUL in To and CallSid (it used to reach Postgres and answer 500).
    const nul = await post("To=%00&CallSid=%00");
    assert.equal(nul.status, 400);
    assert.match(nul.body.message, /^body\.(CallSid|AccountSid|From|To) /);

    const good = {
      AccountSid: ACCOUNT_SID,
      CallSid: callSid(),
      CallStatus: "ringing",
      From: "+14155550130",
      To: number,
      Direction: "inbound",
    };
    const cases: [Record<string, string>, RegExp][] = [
      [{ CallSid: "CA123" }, /^body\.CallSid has an invalid format \(must match \^CA\[0-9a-f\]\{32\}\$\)/],
      [{ CallSid: `CA${"G".repeat(32)}` }, /^body\.CallSid has an invalid format/],
      [{ AccountSid: `AC${"z".repeat(32)}` }, /^body\.AccountSid has an invalid format/],
      [{ From: "+1415555\u0000" }, /^body\.From /],
      [{ From: `+1${"5".repeat(2000)}` }, /^body\.From must NOT have more than 1030 characters/],
      [{ To: "+1 415 555 0100" }, /^body\.To has an invalid format/],
      [{ To: `${number}\r\n` }, /^body\.To has an invalid format/],
      [{ CallerName: "x".repeat(9000) }, /^body\.CallerName must NOT have more than 8192 characters/],
    ];
    for (const [change, message] of cases) {
      const params = { ...good, ...change };
      // Signed with the number's real token: well-formedness is checked before the signature.
      const res = await postSigned(url, params, AUTH_TOKEN);
      assert.equal(res.status, 400, `${JSON.stringify(change).slice(0, 80)}: ${res.body.slice(0, 200)}`);
      assert.match((JSON.parse(res.body) as { message: string }).message, message);
    }
    for (const missing of ["CallSid", "AccountSid", "From", "To"] as const) {
      const { [missing]: _gone, ...params } = good;
      const res = await postSigned(url, params, AUTH_TOKEN);
      assert.equal(res.status, 400);
      assert.match(
        (JSON.parse(res.body) as { message: string }).message,
        new RegExp(`body\\.${missing} is required`),
      );
    }
    const crowd = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`P${i}`, "x"]));
    assert.match(
      (await post(new URLSearchParams({ ...good, ...crowd }).toString())).body.message,
      /more than 200 properties/,
    );
    assert.equal((await post(JSON.stringify({ ...good, CallSid: 5 }), "application/json")).status, 400);
    assert.equal((await post("")).status, 400);
    assert.equal(await env.t.db.call.count({ where: { providerCallId: good.CallSid } }), 0);
  });

  test("status callbacks: malformed fields 400, an unknown call and number the same 403 as a bad signature", async () => {
    const url = `${env.publicUrl}/twilio/status`;
    const params = {
      AccountSid: ACCOUNT_SID,
      CallSid: callSid(),
      CallStatus: "completed",
      From: "+19995550001",
      To: "+19995550002",
    };
    const unknown = await postSigned(url, params, AUTH_TOKEN);
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body, "invalid Twilio signature");

    const cases: [string, Record<string, string>, RegExp][] = [
      [url, { ...params, CallSid: "CA%00" }, /^body\.CallSid has an invalid format/],
      [url, { ...params, CallStatus: "completed'; DROP TABLE" }, /^body\.CallStatus has an invalid format/],
      [url, { ...params, AccountSid: "" }, /^body\.AccountSid has an invalid format/],
      [`${url}?callId=${"-".repeat(36)}`, params, /^querystring\.callId must match format "uuid"/],
    ];
    for (const [target, body, message] of cases) {
      const res = await postSigned(target, body, AUTH_TOKEN);
      assert.equal(res.status, 400, res.body);
      assert.match((JSON.parse(res.body) as { message: string }).message, message);
    }
    const raw = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "CallSid=%00&To=%00",
    });
    assert.equal(raw.status, 400);
  });

  test("callers Twilio documents are accepted: withheld numbers, Voice SDK clients, SIP URIs", async () => {
    const assistantId = await createAssistant(env);
    const { number } = await importNumber(env, { assistantId });
    const url = `${env.publicUrl}/twilio/inbound`;
    for (const from of [
      "+266696687",
      "+7378742833",
      "Anonymous",
      "client:alice_01",
      "sip:alice@example.com",
    ]) {
      const params = {
        AccountSid: ACCOUNT_SID,
        CallSid: callSid(),
        CallStatus: "ringing",
        From: from,
        To: number,
      };
      const res = await postSigned(url, params, AUTH_TOKEN);
      assert.equal(res.status, 200, `${from}: ${res.body}`);
      const call = await callBySid(params.CallSid);
      assert.deepEqual(call?.customer, { number: from });
      // Twilio's status callback for the same call ends it (the slot is freed).
      const done = await postSigned(
        `${env.publicUrl}/twilio/status`,
        { ...params, CallStatus: "completed" },
        AUTH_TOKEN,
      );
      assert.equal(done.status, 200);
      assert.equal((await callBySid(params.CallSid))?.status, "ended");
    }
  });

  test("assistant-request answers are checked like saved assistants: foreign ids or unsafe servers end the call", async () => {
    const other = await env.t.createOrg("Other");
    const foreignTool = await env.t.request({
      method: "POST",
      url: "/tool",
      key: other.key,
      payload: { type: "endCall" },
    });
    assert.equal(foreignTool.statusCode, 201);
    const answers: unknown[] = [
      {
        assistant: {
          name: "Dyn",
          model: { provider: "openai", model: "gpt-4o", toolIds: [foreignTool.json().id] },
        },
      },
      { assistant: { name: "Dyn", server: { url: "file:///etc/passwd" } } },
      {
        assistant: { name: "Dyn" },
        assistantOverrides: { server: { url: "https://hooks.example.com/", headers: { Host: "internal" } } },
      },
      {
        squad: {
          members: [{ assistant: { name: "Dyn", credentialIds: ["00000000-0000-4000-8000-000000000000"] } }],
        },
      },
    ];
    const server = await serve(async () => ({ status: 200, body: answers.shift() }));
    try {
      const { number } = await importNumber(env, { server: { url: server.url } });
      for (let i = 0; i < 4; i++) {
        const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550131" });
        await sim.waitForEnd();
        const call = await callBySid(sim.callSid);
        assert.equal(call?.endedReason, "assistant-request-returned-invalid-assistant", `answer ${i}`);
      }
      assert.equal(server.received.length, 4);

      // Full assistants (enums, formats, the organisation's own ids) and saved ones by id pass.
      const ownTool = await env.t.request({
        method: "POST",
        url: "/tool",
        key: env.org.key,
        payload: { type: "endCall" },
      });
      const model = { provider: "openai", model: "gpt-4o", toolIds: [ownTool.json().id] };
      answers.push({ assistant: assistantBody({ model }) }, { assistantId: await createAssistant(env) });
      for (const i of [4, 5]) {
        const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550132" });
        await sim.waitForStreamStart();
        const call = await callBySid(sim.callSid);
        assert.equal(call?.status, "ringing", `answer ${i}`);
        await hangUp(sim);
      }
    } finally {
      await server.close();
    }
  });

  test("assistant-request answers with text that cannot be stored end the call like any invalid answer", async () => {
    let deep: unknown = "deep";
    for (let i = 0; i < 100; i++) deep = { x: deep };
    const answers: unknown[] = [
      { assistant: { name: "Dyn\u0000" } },
      { assistant: { name: "Dyn", firstMessage: "Hello \ud800" } },
      { assistant: { name: "Dyn", metadata: deep } },
      { assistant: { name: "Dyn" }, assistantOverrides: { variableValues: { "a\u0000": "b" } } },
    ];
    const count = answers.length;
    const server = await serve(async () => ({ status: 200, body: answers.shift() }));
    try {
      const { number } = await importNumber(env, { server: { url: server.url } });
      for (let i = 0; i < count; i++) {
        const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550133" });
        await sim.waitForEnd();
        assert.equal(sim.webhooks[0]?.responseStatus, 200, `answer ${i}: the webhook answered`);
        sayHangup(sim.webhooks[0]?.twiml ?? "");
        const call = await callBySid(sim.callSid);
        assert.equal(call?.endedReason, "assistant-request-returned-invalid-assistant", `answer ${i}`);
      }
    } finally {
      await server.close();
    }
  });

  test("assistant-request: an {assistant} answer runs that assistant with its overrides", async () => {
    const server = await serve(async () => ({
      status: 200,
      body: {
        assistant: { name: "Dynamic", firstMessage: "Hello from the server" },
        assistantOverrides: { variableValues: { name: "Ada" } },
      },
    }));
    try {
      const { id: phoneNumberId, number } = await importNumber(env, {
        server: { url: server.url, secret: "s3cret" },
      });
      const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550125" });
      await sim.waitForStreamStart();
      const msg = server.received[0] as { message: Record<string, unknown> };
      assert.equal(msg.message.type, "assistant-request");
      assert.deepEqual(msg.message.customer, { number: "+14155550125" });
      assert.equal((msg.message.phoneNumber as { id: string }).id, phoneNumberId);
      assert.equal((msg.message.call as { phoneNumberId: string }).phoneNumberId, phoneNumberId);
      assert.ok(!JSON.stringify(msg).includes(AUTH_TOKEN), "the auth token never leaves");
      assert.equal(server.headers[0]?.["x-vapi-secret"], "s3cret");

      const call = await callBySid(sim.callSid);
      assert.ok(call);
      assert.equal(call.status, "ringing");
      assert.equal((call.assistant as { firstMessage?: string }).firstMessage, "Hello from the server");
      assert.deepEqual(call.assistantOverrides, { variableValues: { name: "Ada" } });
      assert.equal(streamOf(sim.webhooks[0]?.twiml ?? "").params.callId, call.id);
      await hangUp(sim);
    } finally {
      await server.close();
    }
  });

  test("assistant-request: {error} is spoken, then the call ends with assistant-request-returned-error", async () => {
    const server = await serve(async () => ({ status: 200, body: { error: "Sorry, we are closed today." } }));
    try {
      const { number } = await importNumber(env, { server: { url: server.url } });
      const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550126" });
      await sim.waitForEnd();
      assert.equal(sayHangup(sim.webhooks[0]?.twiml ?? ""), "Sorry, we are closed today.");
      assert.deepEqual(sim.said, ["Sorry, we are closed today."]);
      const call = await callBySid(sim.callSid);
      assert.equal(call?.status, "ended");
      assert.equal(call?.endedReason, "assistant-request-returned-error");
      assert.deepEqual(call?.customer, { number: "+14155550126" });
    } finally {
      await server.close();
    }
  });

  test("no assistant and no server: call-start-error-neither-assistant-nor-server-set", async () => {
    const { number } = await importNumber(env);
    const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550127" });
    await sim.waitForEnd();
    sayHangup(sim.webhooks[0]?.twiml ?? "");
    const call = await callBySid(sim.callSid);
    assert.equal(call?.endedReason, "call-start-error-neither-assistant-nor-server-set");
  });

  test("the organisation's server is used when the number has none; too slow → assistant-request-failed", async () => {
    const server = await serve(
      () =>
        new Promise((r) => setTimeout(() => r({ status: 200, body: { assistant: { name: "Late" } } }), 9000)),
    );
    try {
      await env.t.db.org.update({ where: { id: env.org.orgId }, data: { server: { url: server.url } } });
      const { number } = await importNumber(env);
      const started = Date.now();
      const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550128" });
      await sim.waitForEnd();
      const waited = Date.now() - started;
      assert.ok(waited >= 7400 && waited < 9000, `answered after ${waited} ms`);
      assert.equal(server.received.length, 1);
      const call = await callBySid(sim.callSid);
      assert.equal(call?.endedReason, "assistant-request-failed");
    } finally {
      await env.t.db.org
        .update({ where: { id: env.org.orgId }, data: { server: Prisma.DbNull } })
        .catch(() => {});
      await server.close();
    }
  });

  test("billing refusals: a past-due organisation and one at its concurrency limit hear a notice", async () => {
    const assistantId = await createAssistant(env);
    const { number } = await importNumber(env, { assistantId });

    await env.t.db.org.update({ where: { id: env.org.orgId }, data: { billingState: "past_due" } });
    const frozen = await env.twilio.placeInboundCall({ to: number, from: "+14155550129" });
    await frozen.waitForEnd();
    assert.ok(sayHangup(frozen.webhooks[0]?.twiml ?? "").length > 0, "a spoken notice");
    const frozenCall = await callBySid(frozen.callSid);
    assert.equal(frozenCall?.status, "ended");
    assert.equal(frozenCall?.endedReason, "call.start.error-subscription-frozen");
    assert.equal(frozenCall?.assistantId, assistantId);

    await env.t.db.org.update({
      where: { id: env.org.orgId },
      data: { billingState: "active", concurrencyLimit: 1 },
    });
    const first = await env.twilio.placeInboundCall({ to: number, from: "+14155550130" });
    await first.waitForStreamStart();
    const second = await env.twilio.placeInboundCall({ to: number, from: "+14155550131" });
    await second.waitForEnd();
    assert.ok(sayHangup(second.webhooks[0]?.twiml ?? "").length > 0);
    const refused = await callBySid(second.callSid);
    assert.equal(refused?.endedReason, "call.start.error-subscription-concurrency-limit-reached");
    const listed = await env.t.request({ method: "GET", url: `/call?id=${refused?.id}`, key: env.org.key });
    assert.equal(listed.json()[0].endedReason, "call.start.error-subscription-concurrency-limit-reached");

    // The first call ending (before any media session) releases its slot.
    await hangUp(first);
    assert.equal((await callBySid(first.callSid))?.status, "ended");
    const third = await env.twilio.placeInboundCall({ to: number, from: "+14155550132" });
    await third.waitForStreamStart();
    assert.equal((await callBySid(third.callSid))?.status, "ringing");
    await hangUp(third);
    await env.t.db.org.update({ where: { id: env.org.orgId }, data: { concurrencyLimit: 10 } });
  });
});
