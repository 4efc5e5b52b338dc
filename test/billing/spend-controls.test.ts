import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  ENDED_REASON_CONCURRENCY_LIMIT,
  ENDED_REASON_INSUFFICIENT_CREDITS,
  ENDED_REASON_SUBSCRIPTION_FROZEN,
  InProcessLeaseStore,
  recordCallCost,
  SpendControls,
} from "../../libs/billing/index.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";
import { callUsage, insertEndedCall } from "./fixtures.ts";

let t: TestApi;
before(async () => {
  t = await startTestApi();
});
after(async () => {
  await t.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("spend controls: payment state and monthly limit", () => {
  test("a frozen organisation (past_due, canceled) is refused with 402 subscription-frozen", async () => {
    const org = await t.createOrg();
    const controls = new SpendControls(t.db, t.redis, {
      keyPrefix: `sbtest:${randomBytes(4).toString("hex")}:`,
    });
    for (const state of ["past_due", "canceled"]) {
      await t.db.org.update({ where: { id: org.orgId }, data: { billingState: state } });
      const r = await controls.admitCall(org.orgId, randomUUID());
      assert.deepEqual(
        { ...r, message: undefined },
        {
          ok: false,
          statusCode: 402,
          endedReason: ENDED_REASON_SUBSCRIPTION_FROZEN,
          message: undefined,
        },
      );
      assert.ok(!r.ok && /payment/.test(r.message));
    }
    await t.db.org.update({ where: { id: org.orgId }, data: { billingState: "active" } });
    assert.deepEqual(await controls.admitCall(org.orgId, randomUUID()), { ok: true });
    assert.equal(await controls.activeCalls(org.orgId), 1);
  });

  test("the monthly limit counts platform-billed spend only, and refuses with 402 insufficient-credits", async () => {
    const org = await t.createOrg();
    const controls = new SpendControls(t.db, t.redis, {
      keyPrefix: `sbtest:${randomBytes(4).toString("hex")}:`,
      spendCacheMs: 0,
    });
    // A BYO call: total $0.246378 but the platform billed only $0.122850.
    await recordCallCost(
      t.db,
      await insertEndedCall(t.db, {
        orgId: org.orgId,
        usage: callUsage({ stt: true, llm: true, tts: true }),
      }),
    );
    // Last month's spend does not count.
    const lastMonth = new Date();
    lastMonth.setUTCDate(0);
    await recordCallCost(t.db, await insertEndedCall(t.db, { orgId: org.orgId, startedAt: lastMonth }));
    assert.equal(await controls.monthToDateBilledMicros(org.orgId), 122_850n);

    await t.db.org.update({ where: { id: org.orgId }, data: { monthlySpendLimitMicros: 200_000n } });
    assert.deepEqual(await controls.admitCall(org.orgId, randomUUID()), { ok: true });
    assert.equal(await controls.isOverSpendLimit(org.orgId), false);

    await t.db.org.update({ where: { id: org.orgId }, data: { monthlySpendLimitMicros: 122_850n } });
    const r = await controls.admitCall(org.orgId, randomUUID());
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.statusCode === 402 && r.endedReason === ENDED_REASON_INSUFFICIENT_CREDITS);
    assert.ok(!r.ok && /spend limit/.test(r.message));
    assert.equal(await controls.isOverSpendLimit(org.orgId), true);

    await t.db.org.update({ where: { id: org.orgId }, data: { monthlySpendLimitMicros: null } });
    assert.equal(await controls.isOverSpendLimit(org.orgId), false);
  });
});

for (const backend of ["redis", "in-process"] as const) {
  describe(`concurrency leases (${backend})`, () => {
    const make = (leaseMs: number) =>
      backend === "redis"
        ? new SpendControls(t.db, t.redis, {
            leaseMs,
            keyPrefix: `sbtest:${randomBytes(4).toString("hex")}:`,
          })
        : new SpendControls(t.db, undefined, { leaseMs, store: new InProcessLeaseStore() });

    test("refuses over the limit with 429 concurrency-limit-reached; release frees a slot", async () => {
      const org = await t.createOrg();
      await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 2 } });
      const controls = make(60_000);
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      assert.deepEqual(await controls.admitCall(org.orgId, a), { ok: true });
      assert.deepEqual(await controls.admitCall(org.orgId, b), { ok: true });
      // Admitting a call that already holds a lease is harmless.
      assert.deepEqual(await controls.admitCall(org.orgId, a), { ok: true });
      const refused = await controls.admitCall(org.orgId, c);
      assert.equal(refused.ok, false);
      assert.ok(
        !refused.ok && refused.statusCode === 429 && refused.endedReason === ENDED_REASON_CONCURRENCY_LIMIT,
      );
      assert.equal(await controls.activeCalls(org.orgId), 2);
      await controls.releaseCall(org.orgId, a);
      assert.deepEqual(await controls.admitCall(org.orgId, c), { ok: true });
    });

    test("concurrent admissions never exceed the limit", async () => {
      const org = await t.createOrg();
      await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 3 } });
      const controls = make(60_000);
      const results = await Promise.all(
        Array.from({ length: 12 }, () => controls.admitCall(org.orgId, randomUUID())),
      );
      assert.equal(results.filter((r) => r.ok).length, 3);
      assert.equal(await controls.activeCalls(org.orgId), 3);
    });

    test("an expired lease (crashed media process) frees its slot; a renewed one keeps it", async () => {
      const org = await t.createOrg();
      await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: 1 } });
      const controls = make(400);
      const [a, b] = [randomUUID(), randomUUID()];
      assert.deepEqual(await controls.admitCall(org.orgId, a), { ok: true });
      await sleep(250);
      assert.equal(await controls.renewLease(org.orgId, a), true);
      await sleep(250); // 500 ms after admission: alive only thanks to the renewal
      assert.equal((await controls.admitCall(org.orgId, b)).ok, false);
      await sleep(300); // a stops renewing (its process died)
      assert.deepEqual(await controls.admitCall(org.orgId, b), { ok: true });
      assert.equal(await controls.renewLease(org.orgId, a), false);
      assert.equal(await controls.activeCalls(org.orgId), 1);
    });
  });
}
