import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { CallLogEntry } from "../../libs/call-logs/index.ts";
import { appendCallLogChunk, DEFAULT_CALL_LOG_LIMITS, readCallLog } from "../../libs/call-logs/index.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// The media plane's call-log chunks are inserted together, several calls' in one statement
// (libs/call-logs/store.ts); test/media/call-logs.test.ts has the log as a call makes it.

let t: TestApi;
let orgId: string;

before(async () => {
  t = await startTestApi();
  orgId = (await t.createOrg("Call log batches")).orgId;
});
after(async () => {
  await t.close();
});

async function liveCall(): Promise<string> {
  return (await t.db.call.create({ data: { orgId, type: "inboundPhoneCall", status: "in-progress" } })).id;
}

function entries(callId: string, n: number): CallLogEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    time: new Date(1_796_640_000_000 + i * 1000).toISOString(),
    secondsFromStart: i,
    level: "info" as const,
    category: "call",
    message: `step ${i} of ${callId.slice(0, 8)} — "quoted", ünïcödé`,
    data: { i },
  }));
}

function chunk(callId: string, list: CallLogEntry[]) {
  return { callId, orgId, entries: list, count: list.length, bytes: Buffer.byteLength(JSON.stringify(list)) };
}

describe("call log chunks", () => {
  it("of several calls appended at once are each stored whole, readable per call", async () => {
    const calls = await Promise.all([liveCall(), liveCall(), liveCall()]);
    await Promise.all(calls.map((id, k) => appendCallLogChunk(t.db, chunk(id, entries(id, k + 2)))));
    for (const [k, id] of calls.entries()) {
      const stored = await readCallLog(t.db, id, DEFAULT_CALL_LOG_LIMITS);
      assert.deepEqual(stored, entries(id, k + 2));
    }
    const rows = await t.db.callLog.findMany({ where: { callId: { in: calls } } });
    assert.deepEqual(rows.map((r) => r.count).sort(), [2, 3, 4]);
  });

  it("of a call that is gone fail alone: the other calls' chunks of the same batch are stored", async () => {
    const [a, b] = [await liveCall(), await liveCall()];
    const gone = randomUUID();
    const results = await Promise.allSettled([
      appendCallLogChunk(t.db, chunk(a, entries(a, 1))),
      appendCallLogChunk(t.db, chunk(gone, entries(gone, 1))),
      appendCallLogChunk(t.db, chunk(b, entries(b, 2))),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["fulfilled", "rejected", "fulfilled"],
    );
    assert.deepEqual(await readCallLog(t.db, a, DEFAULT_CALL_LOG_LIMITS), entries(a, 1));
    assert.deepEqual(await readCallLog(t.db, b, DEFAULT_CALL_LOG_LIMITS), entries(b, 2));
    assert.equal(await t.db.callLog.count({ where: { callId: gone } }), 0);
  });
});
