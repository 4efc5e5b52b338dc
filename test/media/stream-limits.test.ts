import assert from "node:assert/strict";
import { type Socket, connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { addressKey } from "../../libs/http/index.ts";
import { StreamGuard } from "../../libs/media/stream-guard.ts";
import type { TwilioCallSimulator } from "../fakes/index.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";
import { openStream, roundTrip, streamCounts, streamUrl } from "./stream-client.ts";

/** A raw TCP connection that sends `request` and never more; `closed` is everything it received. */
async function rawConnection(
  port: number,
  localAddress: string,
  request: string,
): Promise<{ socket: Socket; received: () => string; closed: Promise<string> }> {
  const socket = tcpConnect({ port, host: "127.0.0.1", localAddress });
  const chunks: Buffer[] = [];
  socket.on("data", (d: Buffer) => chunks.push(d));
  socket.on("error", () => {});
  const received = () => Buffer.concat(chunks).toString("latin1");
  const closed = new Promise<string>((r) => socket.once("close", () => r(received())));
  // A connection the server drops at once may close before the client sees it connect.
  await Promise.race([new Promise((r) => socket.once("connect", r)), closed]);
  if (!socket.destroyed) socket.write(request);
  return { socket, received, closed };
}

describe("media port: start deadline and connection caps", () => {
  const timers = new ManualTimers();
  let env: MediaEnv;
  let url: string;
  let call: TwilioCallSimulator | undefined;

  const health = () => streamCounts(env.media);
  const counted = (pending: number, active: number) =>
    waitUntil(
      async () => {
        const c = await health();
        return c.pending === pending && c.active === active;
      },
      5000,
      `${pending} pending and ${active} active streams`,
    );

  before(async () => {
    env = await startMediaEnv({
      env: { MEDIA_MAX_CONNECTIONS: "6", MEDIA_MAX_PENDING_PER_ADDRESS: "3", MEDIA_DRAIN_MS: "200" },
      media: { schedule: timers.schedule },
    });
    url = streamUrl(env.media);
  });
  after(async () => {
    await env.close();
  });

  it("a websocket that sends no valid start is closed with 1008 once MEDIA_START_TIMEOUT_MS (5000) has passed", async () => {
    const c = await openStream(url, "127.0.0.2");
    c.ws.send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`);
    c.ws.send(`{"event":"media","media":{"payload":"AAAA"}}`);
    c.ws.send(`{"event":"start","st`);
    await roundTrip(c.ws);
    assert.deepEqual(await health(), { pending: 1, active: 0 });

    timers.advance(4999);
    await roundTrip(c.ws);
    assert.equal(c.ws.readyState, WebSocket.OPEN, "still open before the deadline");

    timers.advance(1);
    assert.deepEqual(await c.closed, { code: 1008, reason: "no valid start message within 5000 ms" });
    await counted(0, 0);
  });

  it("a start with a bad token is refused at once (1008); a real call is not touched by the deadline", async () => {
    const bad = await openStream(url);
    bad.ws.send(
      JSON.stringify({
        event: "start",
        start: { callSid: "CA1", customParameters: { callId: "x", token: "v1.x.1.y.z" } },
      }),
    );
    assert.deepEqual(await bad.closed, { code: 1008, reason: "stream refused" });

    const { sim } = await callAssistant(env);
    call = sim;
    await waitForSpoken(sim, 1);
    await counted(0, 1);
    timers.advance(5000);
    const turn = await sim.say("Are you still there?");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await waitForSpoken(sim, 2);
    assert.equal(sim.ended, false);
    await counted(0, 1);
  });

  it("a replayed token followed at once by stop is refused like any bad token (1008), and the call goes on", async () => {
    assert.ok(call);
    const { callId, token } = call.customParameters;
    const replay = await openStream(url, "127.0.0.9");
    // Both frames arrive before the token's check (a database round trip) answers.
    replay.ws.send(JSON.stringify({ event: "start", start: { customParameters: { callId, token } } }));
    replay.ws.send(JSON.stringify({ event: "stop" }));
    assert.deepEqual(await replay.closed, { code: 1008, reason: "stream refused" });
    const turn = await call.say("Still there?");
    await call.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    assert.equal(call.ended, false);
    await counted(0, 1);
  });

  it("one address holds at most MEDIA_MAX_PENDING_PER_ADDRESS unauthenticated streams (1013 beyond); calls do not count", async () => {
    // The live call's stream comes from 127.0.0.1 too: authenticated, it takes none of the three.
    const local = await Promise.all([1, 2, 3].map(() => openStream(url)));
    const refused = await openStream(url);
    assert.deepEqual(await refused.closed, {
      code: 1013,
      reason: "too many unauthenticated streams from this address",
    });
    const other = await openStream(url, "127.0.0.3");
    await roundTrip(other.ws);
    assert.equal(other.ws.readyState, WebSocket.OPEN, "another address is not affected");
    await counted(4, 1);

    local[0]?.ws.close();
    await counted(3, 1);
    const again = await openStream(url);
    await roundTrip(again.ws);
    assert.equal(again.ws.readyState, WebSocket.OPEN, "a freed place can be taken again");

    for (const c of [...local, other, again]) c.ws.close();
    await counted(0, 1);
  });

  it("behind a trusted proxy (TRUST_PROXY: loopback by default) the cap counts the client it names", async () => {
    const via = (client: string) => openStream(url, "127.0.0.1", { "x-forwarded-for": client });
    const first = await Promise.all([1, 2, 3].map(() => via("203.0.113.7")));
    const refused = await via("203.0.113.7");
    assert.deepEqual(await refused.closed, {
      code: 1013,
      reason: "too many unauthenticated streams from this address",
    });
    const another = await via("203.0.113.8");
    await roundTrip(another.ws);
    assert.equal(
      another.ws.readyState,
      WebSocket.OPEN,
      "another client behind the same proxy has its own place",
    );
    for (const c of [...first, another]) c.ws.close();
    await counted(0, 1);
  });

  it("a connection that has not upgraded is cut at the start deadline; one address holds at most MEDIA_MAX_PENDING_PER_ADDRESS of them", async () => {
    // Without this, one address holding the port's whole ceiling of half-sent requests (slowloris:
    // Node waits a minute or more for their headers) kept every call out of the media plane.
    const port = Number(new URL(url).port);
    const slow = await Promise.all(
      [1, 2, 3].map(() => rawConnection(port, "127.0.0.6", "GET /twilio/stream HTTP/1.1\r\nHost: x\r\n")),
    );
    const fourth = await rawConnection(port, "127.0.0.6", "GET /twilio/stream HTTP/1.1\r\n");
    assert.equal(await fourth.closed, "", "a fourth connection from the address is dropped unanswered");
    assert.ok(
      slow.every((c) => !c.socket.destroyed),
      "the first three are still waiting",
    );

    const other = await openStream(url, "127.0.0.7");
    await roundTrip(other.ws);
    assert.equal(other.ws.readyState, WebSocket.OPEN, "another address still reaches the media plane");
    other.ws.close();
    await other.closed;
    await counted(0, 1);

    timers.advance(4999);
    // A request answered on another connection: anything the server did before it has arrived.
    const health = await rawConnection(port, "127.0.0.8", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitUntil(() => health.received().includes("\r\n\r\n"), 5000, "the health answer");
    assert.ok(
      slow.every((c) => !c.socket.destroyed),
      "not cut before the deadline",
    );
    timers.advance(1);
    for (const c of slow) assert.equal(await c.closed, "", "cut at the deadline, unanswered");
    assert.match(health.received(), /^HTTP\/1\.1 200 /, "a request that was answered in time was answered");
    timers.advance(5000);
    assert.match(
      await health.closed,
      /^HTTP\/1\.1 200 /,
      "an idle keep-alive connection goes at its deadline too",
    );

    const again = await openStream(url, "127.0.0.6");
    await roundTrip(again.ws);
    assert.equal(again.ws.readyState, WebSocket.OPEN, "the address can connect again");
    again.ws.close();
    await again.closed;
    await counted(0, 1);
  });

  it("at MEDIA_MAX_CONNECTIONS (calls included) the oldest unauthenticated stream gives its place to a new one", async () => {
    const pending = await Promise.all(
      ["127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"].map((a) => openStream(url, a)),
    );
    await counted(5, 1);
    // Sockets from a few addresses, each under its own cap, cannot keep new calls out.
    const newcomer = await openStream(url, "127.0.0.4");
    assert.deepEqual(await pending[0]?.closed, {
      code: 1013,
      reason: "unauthenticated stream evicted: media process at its connection limit",
    });
    await roundTrip(newcomer.ws);
    assert.equal(newcomer.ws.readyState, WebSocket.OPEN);
    await counted(5, 1);

    // The call ends: its place is free again, with nobody evicted.
    assert.ok(call);
    await call.hangup();
    const row = await finalizedCall(env, call.callSid);
    assert.equal(row.endedReason, "customer-ended-call");
    await counted(5, 0);
    const admitted = await openStream(url, "127.0.0.4");
    await roundTrip(admitted.ws);
    assert.equal(admitted.ws.readyState, WebSocket.OPEN);
    for (const c of pending.slice(1)) assert.equal(c.ws.readyState, WebSocket.OPEN);

    // Everything still unauthenticated goes at its deadline.
    timers.advance(5000);
    for (const c of [...pending.slice(1), newcomer, admitted]) assert.equal((await c.closed).code, 1008);
    await counted(0, 0);
  });

  it("when every stream carries a call, a new one is refused with 1013 (nothing to evict)", () => {
    const own = new ManualTimers();
    const guard = new StreamGuard(
      { startTimeoutMs: 1000, maxConnections: 2, maxPendingPerAddress: 2 },
      own.schedule,
    );
    const expired: string[] = [];
    guard.admit(
      "192.0.2.1",
      () => true,
      (_code, reason) => expired.push(reason),
    );
    guard.admit(
      "192.0.2.2",
      () => true,
      (_code, reason) => expired.push(reason),
    );
    assert.equal(guard.refusal("192.0.2.3"), "media process at its connection limit");
    assert.deepEqual(expired, []);
  });

  it("connections that never upgrade cannot pass the port's hard ceiling (twice MEDIA_MAX_CONNECTIONS)", async () => {
    const port = Number(new URL(url).port);
    const idle: Socket[] = [];
    for (let i = 0; i < 12; i++) {
      // Three per address: no address holds more connections that have not upgraded.
      const s = tcpConnect({ port, host: "127.0.0.1", localAddress: `127.0.0.${2 + (i % 4)}` });
      await new Promise((r) => s.once("connect", r));
      idle.push(s);
    }
    await waitUntil(
      () => new Promise<boolean>((r) => env.media.server.getConnections((_e, n) => r(n === 12))),
      5000,
      "12 idle connections",
    );
    const dropped = tcpConnect({ port, host: "127.0.0.1" });
    dropped.on("error", () => {});
    await new Promise((r) => dropped.once("close", r));
    await assert.rejects(openStream(url), "a stream is dropped too while the port is full");

    for (const s of idle) s.destroy();
    await waitUntil(
      () => new Promise<boolean>((r) => env.media.server.getConnections((_e, n) => r(n === 0))),
      5000,
      "the idle connections gone",
    );
    const c = await openStream(url);
    c.ws.close();
    await c.closed;
  });

  it("a draining process still closes new streams with 1013", async () => {
    // A stream still waiting for its start keeps the drain going (MEDIA_DRAIN_MS) …
    const waiting = await openStream(url);
    const closing = env.media.close();
    await waitUntil(() => env.media.calls.draining, 5000, "the process draining");
    const late = await openStream(url, "127.0.0.5");
    assert.deepEqual(await late.closed, { code: 1013, reason: "media process is shutting down" });
    // … and is refused when it ends.
    assert.deepEqual(await waiting.closed, { code: 1008, reason: "stream refused" });
    await closing;
  });
});

describe("addressKey", () => {
  it("counts IPv4-mapped IPv6 as IPv4 and an IPv6 /64 as one address", () => {
    assert.equal(addressKey("::ffff:127.0.0.2"), "127.0.0.2");
    assert.equal(addressKey("203.0.113.9"), "203.0.113.9");
    assert.equal(addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    assert.notEqual(addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:3::1"));
    assert.equal(addressKey("not an address"), "not an address");
  });
});
