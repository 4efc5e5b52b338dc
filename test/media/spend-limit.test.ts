import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { recordCallCost } from "../../libs/billing/finalize.ts";
import { ENDED_REASON_SPEND_LIMIT_REACHED } from "../../libs/billing/spend-controls.ts";
import { insertEndedCall } from "../billing/fixtures.ts";
import { callAssistant, finalizedCall, type MediaEnv, startMediaEnv, waitForSpoken } from "./harness.ts";

// A call in progress when the organisation's monthly spend limit is crossed finishes the turn it
// is in (the caller hears the whole answer), then ends with a specific endedReason.

let env: MediaEnv;
before(async () => {
  env = await startMediaEnv();
});
after(async () => {
  await env.close();
});

it("crossing the spend limit mid-call lets the turn finish, then ends the call", async () => {
  // Earlier usage this month: $0.246378 billed by the platform (no limit yet, so the call is admitted).
  const earlier = await insertEndedCall(env.t.db, { orgId: env.org.orgId });
  await recordCallCost(env.t.db, earlier);

  const { sim } = await callAssistant(env);
  await waitForSpoken(sim, 1);
  const patched = await env.t.request({
    method: "PATCH",
    url: "/billing/settings",
    key: env.org.key,
    payload: { monthlySpendLimitUsd: "0.10" },
  });
  assert.equal(patched.statusCode, 200, patched.body);
  // Spend figures are cached for up to 5 s in each process.
  await new Promise((r) => setTimeout(r, 5500));

  await sim.say("What are your opening hours?");
  await sim.waitForEnd(15_000);
  const call = await finalizedCall(env, sim.callSid);
  assert.equal(call.endedReason, ENDED_REASON_SPEND_LIMIT_REACHED);
  assert.match(
    call.transcript ?? "",
    /User: What are your opening hours\?\nAI: You said: What are your opening hours\?/,
  );
  assert.equal(call.status, "ended");
  assert.ok(call.finalizedAt, "the call is still priced");

  // And the next call is refused before it starts.
  const next = await callAssistant(env);
  await next.sim.waitForEnd(10_000);
  const refused = await env.t.db.call.findFirstOrThrow({ where: { providerCallId: next.sim.callSid } });
  assert.equal(refused.endedReason, "call.start.error-subscription-insufficient-credits");
});
