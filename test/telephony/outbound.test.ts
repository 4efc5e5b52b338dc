import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { consumeMediaToken } from "../../libs/telephony/media-token.ts";
import { parseTwiml } from "../fakes/twilio.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  createAssistant,
  importNumber,
  startTelephony,
  type TelephonyEnv,
  waitFor,
} from "./setup.ts";

let env: TelephonyEnv;
let assistantId: string;
let phoneNumberId: string;
let fromNumber: string;

before(async () => {
  env = await startTelephony();
  assistantId = await createAssistant(env);
  ({ id: phoneNumberId, number: fromNumber } = await importNumber(env));
});
after(async () => {
  await env.close();
});

function post(payload: object) {
  return env.t.request({ method: "POST", url: "/call", key: env.org.key, payload });
}

function ended(id: string) {
  return waitFor(async () => {
    const c = await env.t.db.call.findUnique({ where: { id } });
    return c?.status === "ended" ? c : undefined;
  });
}

describe("POST /call (outbound)", () => {
  test("dials through Twilio with the stream TwiML and status callbacks; progress is tracked", async () => {
    // The stand-in media endpoint takes the stream the way the media plane does.
    env.onStreamStart = async (s) => {
      const r = await consumeMediaToken(
        env.t.db,
        env.t.config.secretsKey,
        s.customParameters.token ?? "",
        s.customParameters.callId ?? "",
      );
      assert.equal(r.ok, true);
    };
    const nextCall = env.twilio.nextCall();
    const res = await post({
      assistantId,
      phoneNumberId,
      customer: { number: "+14155550140" },
      assistantOverrides: { firstMessage: "Hi Ada", variableValues: { name: "Ada" } },
      name: "Follow-up",
      metadata: { crm: "42" },
    });
    assert.equal(res.statusCode, 201, res.body);
    const call = res.json();
    assert.equal(call.type, "outboundPhoneCall");
    assert.equal(call.status, "queued");
    assert.equal(call.assistantId, assistantId);
    assert.equal(call.phoneNumberId, phoneNumberId);
    assert.equal(call.assistant.firstMessage, "Hi Ada");
    assert.deepEqual(call.customer, { number: "+14155550140" });
    assert.match(call.phoneCallProviderId, /^CA[0-9a-f]{32}$/);

    const create = env.twilio.requests.find((r) => r.method === "POST" && r.path.endsWith("/Calls.json"));
    assert.ok(create);
    assert.equal(create.authUser, ACCOUNT_SID);
    assert.equal(create.params.From, fromNumber);
    assert.equal(create.params.To, "+14155550140");
    assert.equal(create.params.StatusCallback, `${env.publicUrl}/twilio/status?callId=${call.id}`);
    assert.deepEqual(create.params.StatusCallbackEvent, ["initiated", "ringing", "answered", "completed"]);
    const stream = parseTwiml(String(create.params.Twiml)).children[0]?.children[0];
    assert.equal(stream?.attrs.url, `${env.t.config.mediaPublicUrl}/twilio/stream`);

    const sim = await nextCall;
    await sim.waitForStreamStart();
    assert.equal(sim.customParameters.callId, call.id);
    await waitFor(
      async () => (await env.t.db.call.findUnique({ where: { id: call.id } }))?.status === "in-progress",
    );
    const statuses = sim.statusCallbacks.map((c) => c.params.CallStatus);
    assert.deepEqual(statuses.slice(0, 3), ["initiated", "ringing", "in-progress"]);

    // The media session owns a connected call: Twilio's `completed` does not end it here.
    await sim.hangup();
    await waitFor(async () => sim.statusCallbacks.at(-1)?.responseStatus === 200);
    const row = await env.t.db.call.findUnique({ where: { id: call.id } });
    assert.equal(row?.status, "in-progress");
    assert.equal(row?.endedReason, null);
    env.onStreamStart = undefined;
  });

  for (const [outcome, reason] of [
    ["busy", "customer-busy"],
    ["no-answer", "customer-did-not-answer"],
    ["failed", "twilio-failed-to-connect-call"],
  ] as const) {
    test(`Twilio's ${outcome} ends the call with ${reason}`, async () => {
      env.twilio.outboundOutcome = () => outcome;
      try {
        const res = await post({ assistantId, phoneNumberId, customer: { number: "+14155550141" } });
        assert.equal(res.statusCode, 201, res.body);
        const row = await ended(res.json().id);
        assert.equal(row.endedReason, reason);
        assert.ok(row.endedAt);
        assert.equal(row.streamConnectedAt, null);
        // Never reached a media session: priced at zero usage (five zero lines), cost 0 on the call.
        const priced = await waitFor(async () => {
          const c = await env.t.db.call.findUnique({ where: { id: row.id } });
          return c?.finalizedAt ? c : undefined;
        });
        assert.equal(priced.cost?.toFixed(6), "0.000000");
        const lines = await env.t.db.usageLine.findMany({ where: { callId: row.id } });
        assert.equal(lines.length, 5);
        assert.ok(lines.every((l) => l.amountMicros === 0n));
        const view = await env.t.request({ method: "GET", url: `/call/${row.id}`, key: env.org.key });
        assert.equal(view.statusCode, 200, view.body);
        assert.equal(view.json().cost, 0);
        assert.equal(view.json().costBreakdown.total, 0);
      } finally {
        env.twilio.outboundOutcome = () => "answer";
      }
    });
  }

  test("Twilio's answer lost after the call connected: the call is answered as live, not ended", async () => {
    // The stand-in media endpoint claims the stream the way the media plane does (in progress).
    env.onStreamStart = async (s) => {
      await consumeMediaToken(
        env.t.db,
        env.t.config.secretsKey,
        s.customParameters.token ?? "",
        s.customParameters.callId ?? "",
        Date.now(),
        {
          status: "in-progress",
          startedAt: new Date(),
          mediaProcessId: "media-test",
          heartbeatAt: new Date(),
        },
      );
    };
    env.twilio.loseCreateCallAnswerAfterMs = 200;
    try {
      const res = await post({ assistantId, phoneNumberId, customer: { number: "+14155550144" } });
      assert.equal(res.statusCode, 201, res.body);
      const call = res.json();
      assert.equal(call.status, "in-progress");
      const row = await env.t.db.call.findUniqueOrThrow({ where: { id: call.id } });
      assert.equal(row.status, "in-progress");
      assert.equal(row.endedReason, null);
      assert.ok(row.streamConnectedAt);
      // What the media process would write when the call ends, so the org's slot is given back.
      await env.t.db.call.update({ where: { id: call.id }, data: { status: "ended" } });
    } finally {
      env.twilio.loseCreateCallAnswerAfterMs = undefined;
      env.onStreamStart = undefined;
    }
  });

  test("Twilio refusing the call: 400 with Twilio's reason, and the call ends twilio-failed-to-connect-call", async () => {
    const account = env.twilio.accounts.get(ACCOUNT_SID);
    assert.ok(account);
    account.authToken = "rotated-at-twilio";
    try {
      const res = await post({ assistantId, phoneNumberId, customer: { number: "+14155550142" } });
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json().message, /Authenticate/);
      assert.match(res.json().message, /20003/);
      const row = await env.t.db.call.findFirst({
        where: { orgId: env.org.orgId, customer: { equals: { number: "+14155550142" } } },
      });
      assert.equal(row?.status, "ended");
      assert.equal(row?.endedReason, "twilio-failed-to-connect-call");
    } finally {
      account.authToken = AUTH_TOKEN;
    }
  });

  test("bad bodies are refused with the field named", async () => {
    const squad = await env.t.request({
      method: "POST",
      url: "/squad",
      key: env.org.key,
      payload: { members: [{ assistantId }] },
    });
    const cases: [object, RegExp][] = [
      [{ phoneNumberId, customer: { number: "+14155550143" } }, /one of body\.assistantId/],
      [
        { assistantId, squadId: squad.json().id, phoneNumberId, customer: { number: "+14155550143" } },
        /body\.assistantId and body\.squadId/,
      ],
      [{ assistantId, customer: { number: "+14155550143" } }, /body\.phoneNumberId is required/],
      [{ assistantId, phoneNumberId }, /body\.customer\.number is required/],
      [{ assistantId, phoneNumberId, customer: { number: "555" } }, /body\.customer\.number/],
      [
        {
          assistantId,
          phoneNumberId: "00000000-0000-4000-8000-000000000000",
          customer: { number: "+14155550143" },
        },
        /body\.phoneNumberId refers to phone number/,
      ],
      [{ assistantId, phoneNumberId, customer: { number: "+14155550143" }, dial: true }, /body\.dial/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      assert.equal(res.statusCode, 400, `${message}: ${res.body}`);
      assert.match(res.json().message, message);
    }
  });

  test("a squad call runs its first member", async () => {
    const squad = await env.t.request({
      method: "POST",
      url: "/squad",
      key: env.org.key,
      payload: { members: [{ assistantId, assistantOverrides: { firstMessage: "Squad hello" } }] },
    });
    const res = await post({ squadId: squad.json().id, phoneNumberId, customer: { number: "+14155550144" } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().squadId, squad.json().id);
    assert.equal(res.json().assistantId, assistantId);
    assert.equal(res.json().assistant.firstMessage, "Squad hello");
  });
});

describe("PATCH and DELETE /call/:id", () => {
  test("name and metadata change; delete hangs up an active call and removes it", async () => {
    env.twilio.ringMs = 3000;
    try {
      const nextCall = env.twilio.nextCall();
      const res = await post({ assistantId, phoneNumberId, customer: { number: "+14155550145" } });
      assert.equal(res.statusCode, 201, res.body);
      const id = res.json().id as string;
      const sim = await nextCall;

      const patched = await env.t.request({
        method: "PATCH",
        url: `/call/${id}`,
        key: env.org.key,
        payload: { name: "Renamed", metadata: { a: 1 } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json().name, "Renamed");
      assert.deepEqual(patched.json().metadata, { a: 1 });
      const bad = await env.t.request({
        method: "PATCH",
        url: `/call/${id}`,
        key: env.org.key,
        payload: { status: "ended" },
      });
      assert.equal(bad.statusCode, 400);

      const other = await env.t.createOrg("Other");
      const foreign = await env.t.request({ method: "DELETE", url: `/call/${id}`, key: other.key });
      assert.equal(foreign.statusCode, 404);

      const del = await env.t.request({ method: "DELETE", url: `/call/${id}`, key: env.org.key });
      assert.equal(del.statusCode, 200, del.body);
      assert.equal(del.json().id, id);
      await sim.waitForEnd();
      assert.equal(sim.status, "canceled");
      assert.equal(
        (await env.t.request({ method: "GET", url: `/call/${id}`, key: env.org.key })).statusCode,
        404,
      );
    } finally {
      env.twilio.ringMs = 20;
    }
  });
});
