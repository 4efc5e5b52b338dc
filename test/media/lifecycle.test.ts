import assert from "node:assert/strict";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { sweepStaleCalls } from "../../libs/media/sweeper.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

describe("media process lifecycle", () => {
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv({ env: { MEDIA_DRAIN_MS: "300" } });
  });
  after(async () => {
    await env.close();
  });

  it("the sweeper ends a call whose media process stopped heart-beating (worker-died) and bills it", async () => {
    const startedAt = new Date(Date.now() - 5 * 60_000);
    const heartbeatAt = new Date(Date.now() - 2 * 60_000);
    const row = await env.t.db.call.create({
      data: {
        orgId: env.org.orgId,
        type: "inboundPhoneCall",
        status: "in-progress",
        startedAt,
        heartbeatAt,
        mediaProcessId: "media-gone",
        assistant: { model: { provider: "openai", model: "gpt-4o" } },
      },
    });
    const fresh = await env.t.db.call.create({
      data: {
        orgId: env.org.orgId,
        type: "inboundPhoneCall",
        status: "in-progress",
        startedAt,
        heartbeatAt: new Date(),
      },
    });
    const ended = await sweepStaleCalls({ db: env.t.db, queue: env.worker.queue });
    assert.ok(ended >= 1);
    const swept = await env.t.db.call.findUniqueOrThrow({ where: { id: row.id } });
    assert.equal(swept.status, "ended");
    assert.equal(swept.endedReason, "call.in-progress.error-vapifault-worker-died");
    assert.equal(swept.endedAt?.getTime(), heartbeatAt.getTime());
    assert.ok(swept.finalizedAt, "cost recorded");
    assert.equal((swept.usage as { durationSeconds: number }).durationSeconds, 180);
    const alive = await env.t.db.call.findUniqueOrThrow({ where: { id: fresh.id } });
    assert.equal(alive.status, "in-progress", "a call with a recent heartbeat is left alone");
    await env.t.db.call.update({ where: { id: fresh.id }, data: { status: "ended" } });
  });

  it("on shutdown the media process refuses new streams (1013), drains, then ends live calls with worker-shutdown", async () => {
    const { sim } = await callAssistant(env);
    await waitForSpoken(sim, 1);
    const closing = env.media.close();
    await new Promise((r) => setTimeout(r, 50));
    const ws = new WebSocket(sim.streamUrl ?? "");
    const code = await new Promise<number>((resolve) => {
      ws.once("close", (c) => resolve(c));
      ws.once("error", () => resolve(-1));
    });
    assert.equal(code, 1013);
    await closing;
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "worker-shutdown");
    assert.ok(call.usage && call.artifact && call.transcript);
  });
});

describe("a call still starting", () => {
  // A transcriber that accepts the connection and never answers the upgrade: the call stays in its
  // setup (in progress in the database since the stream claim) until the caller hangs up.
  let env: MediaEnv;
  let silent: Server;
  const held = new Set<Socket>();
  before(async () => {
    silent = createServer((socket) => {
      held.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => held.delete(socket));
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const { port } = silent.address() as AddressInfo;
    env = await startMediaEnv({ env: { DEEPGRAM_API_URL: `ws://127.0.0.1:${port}` } });
  });
  after(async () => {
    await env.close();
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it("keeps its heartbeat: the sweeper does not take it for an orphan however long setup takes", async () => {
    const { sim } = await callAssistant(env);
    const claimed = await waitUntil(
      () =>
        env.t.db.call.findFirst({
          where: { providerCallId: sim.callSid, status: "in-progress", streamConnectedAt: { not: null } },
        }),
      5000,
      "the stream claim",
    );
    // The claim is written before setup loads the call and dials the transcriber: wait for the dial.
    await waitUntil(
      () => held.size === 1,
      5000,
      "the transcriber connection (pending: the call is still starting)",
    );
    // As if setup had been stuck for two minutes: the media process's heartbeat renews it.
    await env.t.db.call.update({
      where: { id: claimed.id },
      data: { heartbeatAt: new Date(Date.now() - 2 * 60_000) },
    });
    await env.media.calls.heartbeat();
    await sweepStaleCalls({ db: env.t.db, queue: env.worker.queue });
    const row = await env.t.db.call.findUniqueOrThrow({ where: { id: claimed.id } });
    assert.equal(row.status, "in-progress");
    assert.ok((row.heartbeatAt?.getTime() ?? 0) > Date.now() - 10_000, "heartbeat renewed");
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
  });
});
