// Post-call analysis on a real call: a caller talks to an assistant over the (fake) Twilio line,
// hangs up, and the customer's server gets an end-of-call-report with Vapi's `analysis`; the API
// answers the same analysis, and the call's cost includes the analysis tokens as a sixth line.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChatRequest } from "../fakes/index.ts";
import { messageOf } from "../webhooks/customer-server.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

const SUMMARY = "The caller asked about opening hours and parking; both were answered.";

function analysisStep(req: ChatRequest): "summary" | "successEvaluation" | undefined {
  const system = String(req.messages[0]?.content ?? "");
  if (system.startsWith("You are an expert note-taker")) return "summary";
  if (system.startsWith("You are an expert call evaluator")) return "successEvaluation";
  return undefined;
}

describe("post-call analysis of a live call", () => {
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv();
    env.openai.respond = (req) => {
      const step = analysisStep(req);
      if (step === "summary") return { text: SUMMARY, usage: { promptTokens: 900, completionTokens: 30 } };
      if (step === "successEvaluation")
        return { text: "True", usage: { promptTokens: 950, completionTokens: 1 } };
      const last = [...req.messages].reverse().find((m) => m.role === "user");
      return { text: last ? `You said: ${String(last.content)}.` : "Hello." };
    };
  });
  after(async () => {
    await env.close();
  });

  it("a call with two turns gets a summary and a success evaluation, in GET /call/:id and in the end-of-call-report", async () => {
    const { sim } = await callAssistant(env, {
      model: {
        provider: "openai",
        model: "gpt-4o",
        messages: [{ role: "system", content: "You are the Acme front desk. Answer questions briefly." }],
      },
    });
    await waitForSpoken(sim, 1);
    await sim.say("When are you open?");
    await waitForSpoken(sim, 2);
    await sim.say("Is there parking?");
    await waitForSpoken(sim, 3);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);

    const report = await waitUntil(
      () =>
        env.customer.received.find(
          (r) =>
            messageOf(r).type === "end-of-call-report" &&
            (messageOf(r).call as { id?: string } | undefined)?.id === call.id,
        ),
      15_000,
      "the end-of-call-report",
    );
    const m = messageOf(report);
    const expected = { summary: SUMMARY, successEvaluation: "true" };
    assert.deepEqual(m.analysis, expected);
    assert.equal(m.summary, SUMMARY);

    const res = await env.t.request({ method: "GET", url: `/call/${call.id}`, key: env.org.key });
    assert.equal(res.statusCode, 200, res.body);
    const view = res.json() as { analysis: unknown; cost: number; costs: Array<{ type: string }> };
    assert.deepEqual(view.analysis, expected);

    // The analysis saw the call's own transcript, on the assistant's model, with the platform key.
    const asked = env.openai.requests.filter((r) => analysisStep(r.body) !== undefined);
    assert.equal(asked.length, 2);
    const stored = await env.t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.match(stored.transcript ?? "", /User: When are you open\?[\s\S]*User: Is there parking\?/);
    for (const r of asked) {
      assert.equal(r.body.model, "gpt-4o");
      assert.equal(r.authorization, "Bearer sk-platform-openai");
      assert.ok(
        r.body.messages.some((x) => String(x.content).includes(stored.transcript ?? "")),
        "the transcript is in the prompt",
      );
    }

    // The call's cost is the sum of its six lines, and the report says the same.
    const lines = await env.t.db.usageLine.findMany({ where: { callId: call.id } });
    assert.equal(lines.length, 6);
    const analysisLine = lines.find((l) => l.category === "analysis");
    // gpt-4o: (900 + 950) × $2.50 + 31 × $10.00 per 1M tokens.
    assert.equal(analysisLine?.amountMicros, 4_625n + 310n);
    const sum = lines.reduce((a, l) => a + l.amountMicros, 0n);
    assert.equal(Math.round(view.cost * 1e6), Number(sum));
    assert.equal(m.cost, view.cost);
    assert.deepEqual(view.costs.filter((c) => c.type === "analysis").length, 2, "one AnalysisCost per step");
  });
});
