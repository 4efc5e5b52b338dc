import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { callAssistant, finalizedCall, type MediaEnv, startMediaEnv, waitUntil } from "./harness.ts";

// A caller who hangs up while the call is still starting (token check, database, transcriber
// connect) ends the call at once: it is recorded as the caller's ending, priced, and never left
// (or set back to) in-progress.

let env: MediaEnv;
before(async () => {
  env = await startMediaEnv();
});
after(async () => {
  await env.close();
});

it("a hang-up during call setup ends the call as customer-ended-call, never in-progress", async () => {
  const calls = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const { sim } = await callAssistant(env);
      await sim.hangup();
      return sim;
    }),
  );
  for (const sim of calls) {
    const call = await finalizedCall(env, sim.callSid, 10_000);
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "customer-ended-call");
    assert.ok(call.finalizedAt);
  }
  // Nothing set a call back to in-progress after it ended.
  await new Promise((r) => setTimeout(r, 1500));
  const stillActive = await env.t.db.call.count({
    where: { orgId: env.org.orgId, status: { not: "ended" } },
  });
  assert.equal(stillActive, 0);
  // The concurrency slots were released.
  await waitUntil(
    async () =>
      (await env.t.request({ method: "GET", url: "/billing/summary", key: env.org.key })).json()
        .activeCalls === 0,
    5000,
    "slots released",
  );
});
