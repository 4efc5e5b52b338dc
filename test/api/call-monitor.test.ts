import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { monitorToken } from "../../libs/calls/monitor.ts";
import { loggableUrl } from "../../libs/http/logging.ts";
import { type CallControlMessage, RedisControlBus } from "../../libs/telephony/control-bus.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

// A call's `monitor`: the URLs its assistant's monitorPlan enables, and `monitor.controlUrl` taking
// Vapi's control messages with the call's token instead of an API key. (Listening is the media
// plane's: test/media/monitor.test.ts.)

let t: TestApi;
let org: TestOrg;
let bus: RedisControlBus;

before(async () => {
  t = await startTestApi({
    PUBLIC_URL: "https://api.switchboard.test",
    MEDIA_PUBLIC_URL: "https://media.switchboard.test",
  });
  org = await t.createOrg("Monitor");
  // What a media process holding a call does: subscribe to its control channel.
  bus = new RedisControlBus(t.redis);
});
after(async () => {
  await bus.close();
  await t.close();
});

async function liveCall(monitorPlan?: Record<string, boolean>, orgId = org.orgId) {
  return t.db.call.create({
    data: {
      orgId,
      type: "inboundPhoneCall",
      status: "in-progress",
      assistant: assistantBody(monitorPlan ? { monitorPlan } : {}),
    },
  });
}

interface Monitor {
  listenUrl?: string;
  controlUrl?: string;
}

async function monitorOf(id: string): Promise<Monitor | undefined> {
  const res = await t.request({ method: "GET", url: `/call/${id}`, key: org.key });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().monitor;
}

/** POSTs to a control URL as a client would: its path and query, no API key unless given. */
function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const u = new URL(url);
  return t.request({ method: "POST", url: u.pathname + u.search, payload: payload as object, headers });
}

async function received(got: CallControlMessage[], n: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe("call.monitor URLs", () => {
  test("by default a call has both: a wss listenUrl on the media plane and an https controlUrl on the API, each with its own token", async () => {
    const call = await liveCall();
    const monitor = await monitorOf(call.id);
    assert.ok(monitor?.listenUrl && monitor.controlUrl, JSON.stringify(monitor));
    const listen = new URL(monitor.listenUrl);
    const control = new URL(monitor.controlUrl);
    assert.equal(listen.origin, "wss://media.switchboard.test");
    assert.equal(listen.pathname, `/call/${call.id}/monitor/listen`);
    assert.equal(control.origin, "https://api.switchboard.test");
    assert.equal(control.pathname, `/call/${call.id}/monitor/control`);
    const listenToken = listen.searchParams.get("token") ?? "";
    const controlToken = control.searchParams.get("token") ?? "";
    assert.match(listenToken, /^[A-Za-z0-9_-]{43}$/);
    assert.match(controlToken, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(listenToken, controlToken);
    // The same URLs in the list, and another call has other tokens.
    const list = await t.request({ method: "GET", url: `/call?id=${call.id}`, key: org.key });
    assert.deepEqual(list.json()[0].monitor, monitor);
    const other = await monitorOf((await liveCall()).id);
    assert.notEqual(new URL(other?.controlUrl ?? "").searchParams.get("token"), controlToken);
  });

  test("monitorPlan decides which URLs exist", async () => {
    const noListen = await monitorOf((await liveCall({ listenEnabled: false })).id);
    assert.equal(noListen?.listenUrl, undefined);
    assert.ok(noListen?.controlUrl);
    const noControl = await monitorOf((await liveCall({ controlEnabled: false })).id);
    assert.ok(noControl?.listenUrl);
    assert.equal(noControl?.controlUrl, undefined);
    const neither = await monitorOf((await liveCall({ listenEnabled: false, controlEnabled: false })).id);
    assert.equal(neither, undefined);
    // Authentication does not hide a URL; it guards it.
    const guarded = await monitorOf(
      (await liveCall({ listenAuthenticationEnabled: true, controlAuthenticationEnabled: true })).id,
    );
    assert.ok(guarded?.listenUrl && guarded.controlUrl);
  });

  test("tokens are never logged: the request line's token is redacted", () => {
    assert.equal(
      loggableUrl("/call/7420f27a/monitor/control?token=abc_DEF-123&x=1"),
      "/call/7420f27a/monitor/control?token=[redacted]&x=1",
    );
    assert.equal(
      loggableUrl("/call/1/monitor/listen?a=1&TOKEN=s3cret"),
      "/call/1/monitor/listen?a=1&TOKEN=[redacted]",
    );
  });
});

describe("POST monitor.controlUrl", () => {
  test("with the call's token and no API key, every control message reaches the media process holding the call", async () => {
    const call = await liveCall();
    const { controlUrl } = (await monitorOf(call.id)) ?? {};
    assert.ok(controlUrl);
    const nobody = await post(controlUrl, { type: "end-call" });
    assert.equal(nobody.statusCode, 409, nobody.body);
    assert.match(nobody.json().message, /not active on any media process/);

    const got: CallControlMessage[] = [];
    const unsubscribe = await bus.subscribe(call.id, (m) => got.push(m));
    const messages: CallControlMessage[] = [
      { type: "say", content: "A supervisor joined the call.", endCallAfterSpoken: false },
      {
        type: "add-message",
        message: { role: "system", content: "Offer a refund." },
        triggerResponseEnabled: true,
      },
      { type: "transfer", destination: { type: "number", number: "+14155550199" }, content: "One moment." },
      { type: "end-call" },
    ];
    for (const m of messages) {
      const res = await post(controlUrl, m);
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual(res.json(), { ok: true });
    }
    await received(got, messages.length);
    assert.deepEqual(got, messages);
    await unsubscribe();
  });

  test("a wrong, missing or listen token is 403 before anything is read; a malformed message 400; an ended call 409", async () => {
    const call = await liveCall();
    const monitor = (await monitorOf(call.id)) ?? {};
    const controlUrl = new URL(monitor.controlUrl ?? "");
    const listenToken = new URL(monitor.listenUrl ?? "").searchParams.get("token") ?? "";
    const otherCall = await liveCall();
    const otherToken = new URL((await monitorOf(otherCall.id))?.controlUrl ?? "").searchParams.get("token");
    const base = `${controlUrl.origin}${controlUrl.pathname}`;
    for (const url of [
      base,
      `${base}?token=`,
      `${base}?token=${randomBytes(32).toString("base64url")}`,
      `${base}?token=${listenToken}`,
      `${base}?token=${otherToken}`,
      // A token for a call that does not exist is as wrong as any other.
      `https://api.switchboard.test/call/00000000-0000-4000-8000-000000000000/monitor/control?token=${controlUrl.searchParams.get("token")}`,
    ]) {
      const res = await post(url, { type: "end-call" });
      assert.equal(res.statusCode, 403, url);
      assert.match(res.json().message, /Invalid control token/);
    }
    for (const body of [{ type: "say" }, { type: "shout", content: "x" }, { type: "end-call", extra: 1 }]) {
      const res = await post(controlUrl.href, body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
    }
    const tooBig = await post(controlUrl.href, { type: "say", content: "x".repeat(200_000) });
    assert.equal(tooBig.statusCode, 413);
    await t.db.call.update({ where: { id: call.id }, data: { status: "ended" } });
    const ended = await post(controlUrl.href, { type: "end-call" });
    assert.equal(ended.statusCode, 409);
    assert.match(ended.json().message, /has ended/);
  });

  test("controlAuthenticationEnabled: also needs an API key of the call's organisation (public or private)", async () => {
    const call = await liveCall({ controlAuthenticationEnabled: true });
    const { controlUrl } = (await monitorOf(call.id)) ?? {};
    assert.ok(controlUrl);
    const got: CallControlMessage[] = [];
    const unsubscribe = await bus.subscribe(call.id, (m) => got.push(m));
    const other = await t.createOrg("Other");
    for (const authorization of [undefined, "Bearer not-a-key", `Bearer ${other.key}`]) {
      const res = await post(controlUrl, { type: "end-call" }, authorization ? { authorization } : {});
      assert.equal(res.statusCode, 401, String(authorization));
      assert.match(res.json().message, /controlAuthenticationEnabled/);
    }
    const pub = (
      await t.request({ method: "POST", url: "/token", key: org.key, payload: { tag: "public" } })
    ).json().value as string;
    for (const key of [pub, org.key]) {
      const res = await post(controlUrl, { type: "end-call" }, { authorization: `Bearer ${key}` });
      assert.equal(res.statusCode, 202, res.body);
    }
    await received(got, 2);
    assert.equal(got.length, 2);
    await unsubscribe();
    assert.equal(got.length, 2, "nothing reached the call without the key");
  });

  test("controlEnabled false: even the call's own token is refused (403)", async () => {
    const call = await liveCall({ controlEnabled: false });
    // The URL the call would have had, had its plan enabled control.
    const token = monitorToken(t.config.secretsKey, "control", call.id);
    const res = await post(`https://api.switchboard.test/call/${call.id}/monitor/control?token=${token}`, {
      type: "end-call",
    });
    assert.equal(res.statusCode, 403);
    assert.match(res.json().message, /Live control is off for this call/);
  });

  test("unauthenticated: it draws on the per-address budget", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "3" });
    try {
      const o = await limited.createOrg();
      const call = await limited.db.call.create({
        data: { orgId: o.orgId, type: "inboundPhoneCall", status: "ended", assistant: assistantBody() },
      });
      const res = await limited.request({
        method: "GET",
        url: `/call/${call.id}`,
        key: o.key,
        headers: { "x-forwarded-for": `2001:db8:${randomBytes(2).toString("hex")}::1` },
      });
      const url = new URL(res.json().monitor.controlUrl);
      const from = `2001:db8:${randomBytes(2).toString("hex")}:1::1`;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await limited.request({
          method: "POST",
          url: url.pathname + url.search,
          headers: { "x-forwarded-for": from },
          payload: { type: "end-call" },
        });
        statuses.push(r.statusCode);
      }
      assert.deepEqual(statuses, [409, 409, 409, 429]);
    } finally {
      await limited.close();
    }
  });
});
