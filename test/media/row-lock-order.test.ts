import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { appendCallLogChunk } from "../../libs/call-logs/store.ts";
import { touchCalls } from "../../libs/media/call-registry.ts";
import { CheckpointWriter } from "../../libs/media/checkpoint-writer.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// A media process writes many calls' rows in one statement twice over: the checkpoint batch (each
// call's conversation after a turn) and the heartbeat (every live call, every 10 s). Two such
// statements that lock the same rows in different orders deadlock, and Postgres aborts one: a
// checkpoint or a heartbeat lost (seen in bench:media with 100 phone calls). Both lock in id order,
// with the lock an update takes anyway, so the call-log batches' foreign-key checks (which lock the
// same rows for key share, in their own order) pass them too.

let t: TestApi;
let orgId: string;

before(async () => {
  t = await startTestApi();
  orgId = (await t.createOrg("Row locks")).orgId;
});
after(async () => {
  await t.close();
});

test("checkpoint batches, heartbeats and call-log batches over the same calls, at the same time, never deadlock", async () => {
  const calls = await t.db.call.createManyAndReturn({
    data: Array.from({ length: 60 }, () => ({ orgId, type: "inboundPhoneCall", status: "in-progress" })),
  });
  const ids = calls.map((c) => c.id);
  const failures: string[] = [];
  for (let round = 0; round < 25; round++) {
    const writer = new CheckpointWriter(t.db, 60_000);
    // The batch in one order (as turns completed), the heartbeat in another.
    const order = round % 2 === 0 ? [...ids].reverse() : [...ids].sort(() => Math.random() - 0.5);
    for (const id of order)
      writer.submit(
        id,
        () => ({
          transcript: `round ${round}`,
          messages: [{ role: "user", message: `r${round}` }],
          usage: {},
        }),
        (err) => failures.push(`checkpoint: ${err instanceof Error ? err.message : String(err)}`),
      );
    const beats = Array.from({ length: 3 }, (_, k) =>
      touchCalls(t.db, k === 1 ? [...ids].reverse() : ids, Date.now()).catch((err: unknown) =>
        failures.push(`heartbeat: ${err instanceof Error ? err.message : String(err)}`),
      ),
    );
    const logs = [...order].reverse().map((callId) =>
      appendCallLogChunk(t.db, {
        callId,
        orgId,
        entries: [
          {
            time: "2026-12-07T00:00:00.000Z",
            secondsFromStart: round,
            level: "info",
            category: "turn",
            message: `round ${round}`,
          },
        ],
        count: 1,
        bytes: 64,
      }).catch((err: unknown) =>
        failures.push(`call log: ${err instanceof Error ? err.message : String(err)}`),
      ),
    );
    await Promise.all([writer.flush(), ...beats, ...logs]);
  }
  assert.deepEqual(failures, []);
  const rows = await t.db.call.findMany({ where: { id: { in: ids } } });
  assert.ok(rows.every((r) => r.transcript === "round 24" && r.heartbeatAt !== null));
  assert.equal(await t.db.callLog.count({ where: { callId: { in: ids } } }), 25 * ids.length);
});
