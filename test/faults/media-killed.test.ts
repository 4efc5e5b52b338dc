import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import type { TwilioCallSimulator } from "../fakes/index.ts";
import { testEnv } from "../helpers/api.ts";
import { type AppProcess, type RedisServer, startApp, startRedisServer } from "../helpers/fault-processes.ts";
import { waitUntil } from "../media/harness.ts";
import { type CallRecord, type FaultPlatform, startFaultPlatform } from "./platform.ts";

// A media process killed mid-call (SIGKILL: no drain, no last write). A real media process runs
// as production runs it; the API, the worker (with its sweeper) and the provider fakes run here.
// Within the lease the call is ended with worker-died, keeps the turn it completed, frees its
// concurrency slot, and is billed once for the duration Twilio reports.

const LEASE_MS = 4000;
const WORKER_DIED = "call.in-progress.error-vapifault-worker-died";

describe("a media process killed mid-call", () => {
  let redis: RedisServer;
  let p: FaultPlatform;
  let worker: WorkerApp;
  const children: AppProcess[] = [];

  before(async () => {
    redis = await startRedisServer();
    p = await startFaultPlatform({ redisUrl: redis.url, env: { CALL_LEASE_MS: String(LEASE_MS) } });
    worker = await buildWorker(workerConfigFromEnv(testEnv(p.appEnv)), {
      db: p.t.db,
      logger: false,
      schedule: false,
    });
    // One call at a time: a slot the dead call kept would refuse the next one.
    await p.t.db.org.update({ where: { id: p.org.orgId }, data: { concurrencyLimit: 1 } });
  });

  after(async () => {
    for (const c of children) await c.kill("SIGKILL");
    await worker.close();
    await p.close();
    await redis.close();
  });

  /** A call answered by a fresh media process, with one completed turn (first message, question, answer). */
  async function callWithOneTurn() {
    const media = await startApp("media", p.appEnv);
    children.push(media);
    return { media, ...(await p.callWithOneTurn()) };
  }

  function twilioDuration(sim: TwilioCallSimulator): number {
    const report = sim.statusCallbacks.find((r) => r.params.CallStatus === "completed");
    assert.ok(report?.params.CallDuration, "Twilio reported the call's duration");
    return Number(report.params.CallDuration);
  }

  function assertKeptTheTurn(call: CallRecord): void {
    assert.equal(call.endedReason, WORKER_DIED);
    assert.match(
      call.transcript ?? "",
      /^AI: Hi, this is Riley from Acme\. How can I help\?\nUser: What are your opening hours\?\nAI: You said: What are your opening hours\?\./,
    );
    assert.deepEqual(
      call.messages?.map((m) => m.role),
      ["system", "bot", "user", "bot"],
    );
  }

  async function assertBilledOnce(callId: string, seconds: number): Promise<void> {
    // The end-of-call report goes out once the call is billed and analysed.
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
    assert.equal(report.json.message?.endedReason, WORKER_DIED);
    const call = await p.getCall(callId);
    assert.ok(call.cost !== undefined, "the call's cost");
    const byType = new Map(call.costs?.map((c) => [c.type, c]));
    assert.ok(
      Math.abs((byType.get("transport")?.minutes ?? 0) * 60 - seconds) < 0.01,
      `transport billed for Twilio's ${seconds} s`,
    );
    assert.ok((byType.get("model")?.promptTokens ?? 0) > 0, "the completed turn's LLM tokens are billed");
    assert.ok((byType.get("voice")?.characters ?? 0) > 40, "the completed turn's TTS characters are billed");
    const ledger = async () => {
      const lines = await p.t.db.usageLine.findMany({ where: { callId } });
      return lines.map((l) => `${l.category} ${l.amountMicros}`).sort();
    };
    const lines = await ledger();
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      ["analysis", "llm", "platform", "stt", "transport", "tts"],
      "one ledger line per category",
    );
    const total = lines.reduce((sum, l) => sum + BigInt(l.split(" ")[1] ?? "0"), 0n);
    assert.equal(Number(total) / 1e6, call.cost);
    // Sweeps keep running in the worker: nothing is billed again.
    await new Promise((r) => setTimeout(r, LEASE_MS));
    assert.deepEqual(await ledger(), lines);
    assert.equal((await p.getCall(callId)).cost, call.cost);
  }

  it("Twilio's completed callback ends the call at once: worker-died, its completed turn kept, billed once for Twilio's CallDuration", async (tc) => {
    const { media, sim, callId } = await callWithOneTurn();
    const killedAt = Date.now();
    assert.equal((await media.kill("SIGKILL")).signal, "SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await p.getCall(callId);
        return c.status === "ended" ? c : undefined;
      },
      2 * LEASE_MS,
      "the call to end",
    );
    const endedInMs = Date.now() - killedAt;
    tc.diagnostic(`SIGKILL to the call ended in the record: ${endedInMs} ms (Twilio's callback)`);
    assert.ok(endedInMs < LEASE_MS, `ended within the lease (${endedInMs} ms)`);
    assertKeptTheTurn(ended);
    await assertBilledOnce(callId, twilioDuration(sim));
  });

  it("with Twilio's callback late, the sweeper ends the call within the lease and frees its slot; the callback then sets the duration it is billed for, once", async (tc) => {
    // Admitted at the org's limit of one call: the slot of the call killed before is free.
    const { media, sim, callId, phoneNumberId, assistantId } = await callWithOneTurn();
    sim.holdStatusCallbacks = true;
    const killedAt = Date.now();
    await media.kill("SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await p.getCall(callId);
        return c.status === "ended" ? c : undefined;
      },
      3 * LEASE_MS,
      "the sweeper to end the call",
    );
    const endedInMs = Date.now() - killedAt;
    tc.diagnostic(`SIGKILL to the call ended in the record: ${endedInMs} ms (the worker's sweeper)`);
    assert.ok(endedInMs <= LEASE_MS + 1000, `ended within the lease (${endedInMs} ms)`);
    assertKeptTheTurn(ended);
    assert.equal(ended.cost, undefined, "not billed before Twilio reports the duration");
    assert.equal(await p.t.db.usageLine.count({ where: { callId } }), 0);

    // Its concurrency slot is free: a new call is admitted (Twilio reports it unanswered).
    p.twilio.outboundOutcome = () => "no-answer";
    const next = await p.t.request({
      method: "POST",
      url: "/call",
      key: p.org.key,
      payload: { assistantId, phoneNumberId, customer: { number: "+14155550199" } },
    });
    assert.equal(next.statusCode, 201, next.body);
    await waitUntil(
      async () => (await p.getCall(next.json().id as string)).status === "ended",
      5000,
      "no answer",
    );

    sim.releaseStatusCallbacks();
    await assertBilledOnce(callId, twilioDuration(sim));
  });
});
