import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type AppProcess,
  type RedisServer,
  startApp,
  startRedisServer,
  startTcpProxy,
  type TcpProxy,
} from "../helpers/fault-processes.ts";
import { waitForSpoken, waitUntil } from "../media/harness.ts";
import { type FaultPlatform, startFaultPlatform } from "./platform.ts";

// Redis unreachable for 5 s in the middle of a call (every connection to it cut, new ones refused;
// Redis itself keeps its data, as after a network partition or a failover). A real media process and
// a real worker run as production runs them; the API, the fakes and the customer's server run here.

const OUTAGE_MS = 5000;

interface Health {
  status: number;
  body: { status: string; database: string; redis: string };
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as Health["body"] };
}

describe("Redis unreachable for 5 s during a call", () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let p: FaultPlatform;
  let media: AppProcess;
  let worker: AppProcess;
  let apiUrl: string;

  before(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy(redis.port);
    p = await startFaultPlatform({ redisUrl: proxy.url });
    apiUrl = p.appEnv.PUBLIC_URL ?? "";
    [media, worker] = await Promise.all([startApp("media", p.appEnv), startApp("worker", p.appEnv)]);
  });

  after(async () => {
    await Promise.all([media.kill("SIGKILL"), worker.kill("SIGKILL")]);
    await p.close();
    await proxy.close();
    await redis.close();
  });

  it("the call keeps talking, what was queued meanwhile is delivered after, and /health reports the outage and recovers", async (tc) => {
    const { sim, callId } = await p.callWithOneTurn({
      serverMessages: ["conversation-update", "end-of-call-report"],
    });
    for (const url of [apiUrl, media.url, worker.url]) assert.equal((await health(url)).status, 200);

    await proxy.cut();
    const cutAt = Date.now();
    // The caller speaks while Redis is unreachable, and hears the answer.
    const turn = await sim.say("Do you open on Sundays?");
    const during = await Promise.all([apiUrl, media.url, worker.url].map(health));
    for (const h of during) {
      assert.equal(h.status, 503);
      assert.deepEqual(
        { redis: h.body.redis, database: h.body.database },
        { redis: "unreachable", database: "ok" },
      );
    }
    await waitForSpoken(sim, 3, OUTAGE_MS);
    assert.ok(turn.firstHeardAt, "the caller heard the answer");
    assert.ok(turn.firstHeardAt < cutAt + OUTAGE_MS, "while Redis was unreachable");
    tc.diagnostic(`answer heard ${turn.latencyMs} ms after the caller stopped speaking, Redis unreachable`);

    await new Promise((r) => setTimeout(r, cutAt + OUTAGE_MS - Date.now()));
    await proxy.restore();
    const restoredAt = Date.now();
    await waitUntil(
      async () =>
        (await Promise.all([apiUrl, media.url, worker.url].map(health))).every((h) => h.status === 200),
      10_000,
      "/health to recover",
    );
    tc.diagnostic(`/health 200 everywhere ${Date.now() - restoredAt} ms after Redis was back`);

    // The conversation update queued during the outage reaches the customer's server.
    await waitUntil(
      () =>
        p.customer.received.some(
          (r) =>
            r.json.message?.type === "conversation-update" &&
            JSON.stringify(r.json.message.messages ?? []).includes("You said: Do you open on Sundays?"),
        ),
      15_000,
      "the conversation update queued during the outage",
    );
    tc.diagnostic(`queued during the outage, delivered ${Date.now() - restoredAt} ms after Redis was back`);

    await sim.hangup();
    const report = await waitUntil(
      () =>
        p.customer.received.find(
          (r) =>
            r.json.message?.type === "end-of-call-report" &&
            (r.json.message.call as { id?: string } | undefined)?.id === callId,
        ),
      15_000,
      "the end-of-call report",
    );
    assert.equal(report.json.message?.endedReason, "customer-ended-call");
    const call = await p.getCall(callId);
    assert.equal(call.status, "ended");
    assert.match(
      call.transcript ?? "",
      /User: Do you open on Sundays\?\nAI: You said: Do you open on Sundays\?\./,
    );
    assert.ok(call.cost !== undefined, "billed");
  });
});
