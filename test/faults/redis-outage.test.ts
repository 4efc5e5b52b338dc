import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { BullMqQueue } from "../../libs/queue/index.ts";
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

// Redis unreachable in the middle of calls (every connection to it cut, new ones refused; Redis
// itself keeps its data, as after a network partition or a failover). A real media process, a real
// worker and a real API process (watched for what it logs) run as production runs them; the API the
// calls go through, the fakes and the customer's server run here.

const OUTAGE_MS = 5000;
/** Longer than ioredis's own reconnection attempts before a command fails (~10.5 s by default). */
const LONG_OUTAGE_MS = 15_000;
/** The endedReason of a call refused because its concurrency lease could not be taken. */
const ADMISSION_UNAVAILABLE = "call.start.error-vapifault-get-subscription";

interface Health {
  status: number;
  body: { status: string; database: string; redis: string };
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as Health["body"] };
}

/** A process's JSON log lines (pino), skipping anything that is not one. */
function logLines(proc: AppProcess): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of proc.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial line
    }
  }
  return out;
}

describe("Redis unreachable for 5 s during a call", () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let p: FaultPlatform;
  let media: AppProcess;
  let worker: AppProcess;
  /** An API process of its own: what an API logs during an outage (calls go through `apiUrl`). */
  let apiProcess: AppProcess;
  let apiUrl: string;
  let outages = 0;

  /** Redis unreachable for `ms`, then back, and every app healthy again. */
  async function outage(ms: number, during: () => Promise<void> = async () => {}): Promise<void> {
    await proxy.cut();
    outages += 1;
    const cutAt = Date.now();
    await during();
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + ms - Date.now())));
    await proxy.restore();
    await waitUntil(
      async () =>
        (await Promise.all([apiUrl, media.url, worker.url, apiProcess.url].map(health))).every(
          (h) => h.status === 200,
        ),
      15_000,
      "/health to recover",
    );
  }

  before(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy(redis.port);
    p = await startFaultPlatform({ redisUrl: proxy.url });
    apiUrl = p.appEnv.PUBLIC_URL ?? "";
    const env = { ...p.appEnv, LOG_LEVEL: "info" };
    [media, worker, apiProcess] = await Promise.all([
      startApp("media", env),
      startApp("worker", env),
      startApp("api", { ...env, MIGRATE_ON_START: "false" }),
    ]);
  });

  after(async () => {
    await Promise.all([media.kill("SIGKILL"), worker.kill("SIGKILL"), apiProcess.kill("SIGKILL")]);
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
    outages += 1;
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
  it("new calls while Redis is unreachable are refused clearly (503 + Retry-After; a spoken notice for a caller) and recorded; once it is back calls start again", async () => {
    const { sim, phoneNumberId, assistantId } = await p.callWithOneTurn();
    await sim.hangup();
    const number = await p.t.db.phoneNumber.findUniqueOrThrow({ where: { id: phoneNumberId } });
    const callsBefore = await p.t.db.call.count({ where: { orgId: p.org.orgId } });

    await outage(OUTAGE_MS, async () => {
      const startedAt = Date.now();
      const res = await p.t.request({
        method: "POST",
        url: "/call",
        key: p.org.key,
        payload: { phoneNumberId, assistantId, customer: { number: "+14155550123" } },
      });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.headers["retry-after"], "5");
      assert.match(res.json().message, /concurrency limit cannot be checked \(Redis is unreachable\)/);
      assert.ok(Date.now() - startedAt < 8000, "answered promptly, not after ioredis gave up (~10 s)");
      assert.equal(
        await p.t.db.call.count({ where: { orgId: p.org.orgId } }),
        callsBefore,
        "no call record for a refused POST /call",
      );

      // A caller dials in: told to try again later, and the call is recorded with why it ended.
      const inbound = await p.twilio.placeInboundCall({ to: number.number, from: "+14155550124" });
      await inbound.waitForEnd(10_000);
      assert.match(
        inbound.webhooks[0]?.twiml ?? "",
        /<Say>We(&apos;|')re sorry, we cannot take your call at the moment\. Please try again in a few minutes\./,
      );
      const refused = await p.t.db.call.findUniqueOrThrow({ where: { providerCallId: inbound.callSid } });
      assert.equal(refused.status, "ended");
      assert.equal(refused.endedReason, ADMISSION_UNAVAILABLE);
    });

    // Redis is back: the next caller is admitted and talks with the assistant as usual (a turn
    // completed is what callWithOneTurn waits for).
    const after = await p.callWithOneTurn();
    await after.sim.hangup();
    await waitUntil(
      async () => (await p.getCall(after.callId)).endedReason === "customer-ended-call",
      10_000,
      "the call after the outage to end normally",
    );
  });

  it(`an outage of ${LONG_OUTAGE_MS / 1000} s (longer than ioredis's own reconnection attempts): the server messages and post-call jobs of a call that ended during it are delivered after`, async (tc) => {
    const { sim, callId } = await p.callWithOneTurn({
      serverMessages: ["conversation-update", "end-of-call-report"],
    });
    let endedDuring = false;
    await outage(LONG_OUTAGE_MS, async () => {
      await sim.say("Is there parking nearby?");
      await waitForSpoken(sim, 3, OUTAGE_MS);
      await sim.hangup();
      await waitUntil(async () => (await p.getCall(callId)).status === "ended", 10_000, "the call to end");
      endedDuring = true;
    });
    assert.ok(endedDuring);
    const restoredAt = Date.now();
    await waitUntil(
      () =>
        p.customer.received.some(
          (r) =>
            r.json.message?.type === "conversation-update" &&
            JSON.stringify(r.json.message.messages ?? []).includes("You said: Is there parking nearby?"),
        ),
      30_000,
      "the conversation update queued during the outage",
    );
    const report = await waitUntil(
      () =>
        p.customer.received.find(
          (r) =>
            r.json.message?.type === "end-of-call-report" &&
            (r.json.message.call as { id?: string } | undefined)?.id === callId,
        ),
      30_000,
      "the end-of-call report (a post-call job queued during the outage)",
    );
    tc.diagnostic(
      `queued during a ${LONG_OUTAGE_MS} ms outage, delivered ${Date.now() - restoredAt} ms after Redis was back`,
    );
    assert.equal(report.json.message?.endedReason, "customer-ended-call");
    assert.match((await p.getCall(callId)).transcript ?? "", /User: Is there parking nearby\?/);
    for (const proc of [media, worker]) {
      assert.ok(
        !logLines(proc).some((l) => typeof l.msg === "string" && /not queued/.test(l.msg)),
        "nothing was dropped",
      );
    }
  });

  it("each process logs an outage once (warn) and its end (info); ioredis prints nothing on stderr", () => {
    assert.ok(outages >= 3);
    for (const [name, proc] of [
      ["media", media],
      ["worker", worker],
      ["api", apiProcess],
    ] as const) {
      const out = proc.output();
      assert.ok(
        !out.includes("Unhandled error event"),
        `${name} printed ioredis's unhandled error:\n${out.slice(0, 2000)}`,
      );
      const lines = logLines(proc);
      const down = lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("Redis unreachable"));
      const up = lines.filter((l) => l.msg === "Redis reachable again");
      assert.equal(down.length, outages, `${name}: one warning per outage`);
      assert.equal(up.length, outages, `${name}: one line per recovery`);
      for (const l of down) {
        assert.equal(l.level, 40);
        assert.equal(l.app, name);
      }
      // How long this process saw Redis gone: from its first failed use (an idle connection notices
      // late, the more so on a loaded machine) to the reconnection.
      for (const l of up) {
        assert.ok(typeof l.outageMs === "number" && l.outageMs > 0, `${name}: outageMs ${l.outageMs}`);
      }
    }
  });
});

describe("an enqueue while Redis is unreachable", () => {
  let redis: RedisServer;
  let client: Redis;
  let queue: BullMqQueue;
  let up = false;
  const stop = async () => {
    await redis.stop();
    up = false;
  };
  const start = async () => {
    await redis.start();
    up = true;
  };

  before(async () => {
    redis = await startRedisServer();
    up = true;
    // Fails a command after one reconnection attempt: what the queue waits out is its own doing.
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    client.on("error", () => {});
    queue = new BullMqQueue(client, {
      prefix: `sbtest-${randomBytes(4).toString("hex")}`,
      enqueueWaitMs: 3000,
    });
    await queue.enqueue("call.post-process", { callId: "before" }, { jobId: "post.before" });
  });
  after(async () => {
    if (!up) await start();
    await queue.close();
    client.disconnect();
    await redis.close();
  });

  it("waits for Redis to come back and is then queued; past its bound it fails (for the caller to log)", async () => {
    await stop();
    const waiting = queue.enqueue("call.post-process", { callId: "during" }, { jobId: "post.during" });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(queue.waitingEnqueues, 1, "held while Redis is down");
    await start();
    await waiting;
    assert.equal(queue.waitingEnqueues, 0);
    assert.equal((await queue.jobCounts()).calls?.waiting, 1, "queued once Redis answered");

    await stop();
    const startedAt = Date.now();
    await assert.rejects(
      queue.enqueue("call.post-process", { callId: "lost" }, { jobId: "post.lost" }),
      (err: Error) => /max retries|Connection is closed|ECONNREFUSED/i.test(err.message),
    );
    const waited = Date.now() - startedAt;
    assert.ok(waited >= 3000 && waited < 8000, `gave up after its 3 s bound (${waited} ms)`);
    assert.equal(queue.waitingEnqueues, 0);
  });
});
