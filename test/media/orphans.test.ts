import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { CallUsage } from "../../libs/billing/usage.ts";
import { createDb, type Db } from "../../libs/db/index.ts";
import { applyProviderEnd, PROVIDER_REPORT_GRACE_MS } from "../../libs/media/orphans.ts";
import { sweepStaleCalls } from "../../libs/media/sweeper.ts";
import { InProcessQueue } from "../../libs/queue/index.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// Calls whose media process died, as the database holds them (a checkpoint of the completed turns,
// a heartbeat that stopped): several sweepers at once, Twilio's report before or after the sweep,
// and no report at all. (test/faults/media-killed.test.ts kills a real media process.)

const WORKER_DIED = "call.in-progress.error-vapifault-worker-died";
const STALE_MS = 1800;

function checkpoint(seconds: number): CallUsage {
  return {
    durationSeconds: seconds,
    transport: { provider: "twilio", direction: "inbound", seconds, byo: true },
    stt: { provider: "deepgram", model: "nova-3", audioSeconds: seconds, byo: false },
    llm: {
      provider: "openai",
      model: "gpt-4o",
      promptTokens: 900,
      cachedPromptTokens: 0,
      completionTokens: 40,
      byo: false,
    },
    tts: { provider: "11labs", model: "eleven_turbo_v2_5", characters: 120, byo: false },
  };
}

describe("calls whose media process died", () => {
  let t: TestApi;
  let orgId: string;
  const queues: InProcessQueue[] = [];
  const released: string[] = [];
  const spend = {
    async releaseCall(_orgId: string, callId: string) {
      released.push(callId);
    },
  };
  function deps(db: Db) {
    const queue = new InProcessQueue();
    queues.push(queue);
    return { db, queue, spend };
  }

  before(async () => {
    t = await startTestApi();
    orgId = (await t.createOrg("Orphans")).orgId;
  });
  after(async () => {
    for (const q of queues) await q.close();
    await t.close();
  });

  async function orphan(opts: { phone?: boolean; heartbeatAgoMs?: number } = {}) {
    const now = Date.now();
    const startedAt = new Date(now - 60_000);
    return t.db.call.create({
      data: {
        orgId,
        type: "inboundPhoneCall",
        status: "in-progress",
        startedAt,
        streamConnectedAt: startedAt,
        heartbeatAt: new Date(now - (opts.heartbeatAgoMs ?? 10_000)),
        mediaProcessId: "media-gone",
        providerCallId: opts.phone ? `CA${randomUUID().replace(/-/g, "")}` : null,
        transcript: "AI: Hello.\nUser: Hi.\nAI: How can I help?",
        messages: [
          { role: "bot", message: "Hello." },
          { role: "user", message: "Hi." },
          { role: "bot", message: "How can I help?" },
        ],
        usage: checkpoint(42),
      },
    });
  }

  it("several processes sweeping at once end each call once and bill it once", async () => {
    const calls = await Promise.all([orphan(), orphan(), orphan(), orphan()]);
    // Four processes: each its own database pool, as separate workers and media processes have.
    const dbs = [t.db, createDb(t.database.url), createDb(t.database.url), createDb(t.database.url)];
    try {
      const ended = await Promise.all(dbs.map((db) => sweepStaleCalls(deps(db), { staleMs: STALE_MS })));
      assert.equal(
        ended.reduce((a, b) => a + b, 0),
        calls.length,
        "each call ended by exactly one sweeper",
      );
    } finally {
      for (const db of dbs.slice(1)) await db.$disconnect();
    }
    for (const c of calls) {
      const row = await t.db.call.findUniqueOrThrow({ where: { id: c.id } });
      assert.equal(row.status, "ended");
      assert.equal(row.endedReason, WORKER_DIED);
      assert.equal(row.transcript, c.transcript, "the checkpoint's transcript is kept");
      assert.ok(row.finalizedAt, "billed");
      const lines = await t.db.usageLine.findMany({ where: { callId: c.id } });
      assert.equal(lines.length, 5);
      const llm = lines.find((l) => l.category === "llm");
      assert.equal(llm?.quantity.toString(), "940", "the checkpoint's LLM tokens are billed");
      // Its last sign of life: the heartbeat 10 s ago (50 s after the start), past the checkpoint's 42 s.
      assert.equal((row.usage as CallUsage).durationSeconds, 50);
      assert.ok(released.includes(c.id), "its concurrency slot is released");
    }
  });

  it("a swept phone call waits for Twilio's report; with none, it is billed at its last sign of life once the grace period is over", async () => {
    const call = await orphan({ phone: true });
    assert.equal(await sweepStaleCalls(deps(t.db), { staleMs: STALE_MS }), 1);
    let row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.equal(row.status, "ended");
    assert.equal(row.finalizedAt, null, "not billed: Twilio's duration is expected");
    assert.ok(released.includes(call.id), "but its slot is free at once");

    await sweepStaleCalls(deps(t.db), { staleMs: STALE_MS });
    assert.equal(await t.db.usageLine.count({ where: { callId: call.id } }), 0, "still waiting");

    await sweepStaleCalls(deps(t.db), {
      staleMs: STALE_MS,
      now: Date.now() + PROVIDER_REPORT_GRACE_MS + 1000,
    });
    row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.ok(row.finalizedAt, "billed after the grace period");
    assert.equal((row.usage as CallUsage).durationSeconds, 50);
    assert.equal(await t.db.usageLine.count({ where: { callId: call.id } }), 5);

    // A report arriving after that changes nothing: the bill stands.
    const outcome = await applyProviderEnd(
      deps(t.db),
      call.id,
      { endedAt: new Date(), durationSeconds: 61 },
      { staleAfterMs: STALE_MS },
    );
    assert.equal(outcome, "ignored");
    assert.equal(
      (await t.db.call.findUniqueOrThrow({ where: { id: call.id } })).cost?.toString(),
      row.cost?.toString(),
    );
  });

  it("Twilio's report while the media process is alive is left to it; if the process then dies, the sweeper bills the reported duration", async () => {
    const call = await orphan({ phone: true, heartbeatAgoMs: 0 });
    const end = { endedAt: new Date(), durationSeconds: 61 };
    assert.equal(
      await applyProviderEnd(deps(t.db), call.id, end, {
        staleAfterMs: STALE_MS,
        holderAlive: async () => true,
      }),
      "held",
    );
    // Redis unreachable: whether the holder lives cannot be told; a fresh heartbeat says it does.
    assert.equal(
      await applyProviderEnd(deps(t.db), call.id, end, {
        staleAfterMs: STALE_MS,
        holderAlive: () => Promise.reject(new Error("Connection is closed.")),
      }),
      "held",
    );
    let row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.equal(row.status, "in-progress");
    assert.equal(row.providerDurationSeconds, 61, "the report is kept");

    // The heartbeat stops.
    await t.db.call.update({ where: { id: call.id }, data: { heartbeatAt: new Date(Date.now() - 10_000) } });
    assert.equal(await sweepStaleCalls(deps(t.db), { staleMs: STALE_MS }), 1);
    row = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.equal(row.endedReason, WORKER_DIED);
    assert.ok(row.finalizedAt, "billed at once: its duration is known");
    assert.equal((row.usage as CallUsage).durationSeconds, 61);
    const transport = await t.db.usageLine.findFirstOrThrow({
      where: { callId: call.id, category: "transport" },
    });
    assert.equal(transport.unit, "minute");
    assert.ok(Math.abs(Number(transport.quantity) * 60 - 61) < 0.001, "61 s of transport");
  });

  it("a report racing the sweeper: whichever ends the call, it is billed once with Twilio's duration", async () => {
    const calls = await Promise.all([1, 2, 3].map(() => orphan({ phone: true })));
    await Promise.all(
      calls.flatMap((c) => [
        sweepStaleCalls(deps(t.db), { staleMs: STALE_MS }),
        applyProviderEnd(
          deps(createDbOnce()),
          c.id,
          { endedAt: new Date(), durationSeconds: 73 },
          { staleAfterMs: STALE_MS, holderAlive: async () => false },
        ),
      ]),
    );
    for (const c of calls) {
      const row = await t.db.call.findUniqueOrThrow({ where: { id: c.id } });
      assert.equal(row.endedReason, WORKER_DIED);
      assert.ok(row.finalizedAt, "billed");
      assert.equal((row.usage as CallUsage).durationSeconds, 73);
      assert.equal(await t.db.usageLine.count({ where: { callId: c.id } }), 5);
    }
  });

  let second: Db | undefined;
  function createDbOnce(): Db {
    second ??= createDb(t.database.url);
    return second;
  }
  after(async () => {
    await second?.$disconnect();
  });
});
