import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { buildWorker } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { InProcessQueue } from "../../libs/queue/index.ts";
import { startTestApi, type TestApi, testEnv } from "../helpers/api.ts";
import { CALL_TOTAL_MICROS, insertEndedCall } from "./fixtures.ts";

// When the media plane could not record a call's cost (a database timeout as many calls end at
// once), the post-call jobs record it: nothing is lost and nothing is billed twice.

let t: TestApi;
before(async () => {
  t = await startTestApi();
});
after(async () => {
  await t.close();
});

test("an ended call whose cost was not recorded is priced by its post-call job, once", async () => {
  const org = await t.createOrg();
  const callId = await insertEndedCall(t.db, { orgId: org.orgId });
  assert.equal((await t.db.call.findUniqueOrThrow({ where: { id: callId } })).finalizedAt, null);

  const queue = new InProcessQueue();
  const worker = await buildWorker(workerConfigFromEnv(testEnv({ DATABASE_URL: t.database.url })), {
    db: t.db,
    redis: t.redis,
    queue,
    logger: false,
  });
  try {
    await queue.enqueue("call.post-process", { callId }, { jobId: `post.${callId}` });
    await queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
    await queue.idle();
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    assert.ok(call.finalizedAt, "the cost was recorded");
    const lines = await t.db.usageLine.findMany({ where: { callId } });
    assert.equal(lines.length, 5);
    assert.equal(
      lines.reduce((sum, l) => sum + l.amountMicros, 0n),
      CALL_TOTAL_MICROS,
    );
    assert.equal(Number(call.cost?.toString()), Number(CALL_TOTAL_MICROS) / 1e6);

    // Running the jobs again changes nothing.
    await queue.enqueue("call.post-process", { callId }, { jobId: `post2.${callId}` });
    await queue.idle();
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  } finally {
    await worker.close();
    await queue.close();
  }
});

test("deleting a call removes its record but never what was billed; live or unpriced calls are refused", async () => {
  const org = await t.createOrg();
  const priced = await insertEndedCall(t.db, { orgId: org.orgId });
  const unpriced = await insertEndedCall(t.db, { orgId: org.orgId });
  const { recordCallCost } = await import("../../libs/billing/finalize.ts");
  await recordCallCost(t.db, priced);
  const live = await t.db.call.create({
    data: {
      orgId: org.orgId,
      type: "inboundPhoneCall",
      status: "in-progress",
      streamConnectedAt: new Date(),
    },
  });
  const before = (await t.request({ method: "GET", url: "/billing/summary", key: org.key })).json();

  const refusedLive = await t.request({ method: "DELETE", url: `/call/${live.id}`, key: org.key });
  assert.equal(refusedLive.statusCode, 409);
  assert.match(refusedLive.json().message, /in progress: end it first/);
  const refusedUnpriced = await t.request({ method: "DELETE", url: `/call/${unpriced}`, key: org.key });
  assert.equal(refusedUnpriced.statusCode, 409);
  assert.match(refusedUnpriced.json().message, /cost is still being recorded/);

  const deleted = await t.request({ method: "DELETE", url: `/call/${priced}`, key: org.key });
  assert.equal(deleted.statusCode, 200);
  assert.equal((await t.request({ method: "GET", url: `/call/${priced}`, key: org.key })).statusCode, 404);
  assert.equal(await t.db.usageLine.count({ where: { callId: priced } }), 5);
  const after = (await t.request({ method: "GET", url: "/billing/summary", key: org.key })).json();
  assert.equal(after.billedMicros, before.billedMicros);
  assert.equal(after.totalMicros, before.totalMicros);
});
