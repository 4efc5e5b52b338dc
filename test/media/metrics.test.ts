import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { parsePrometheus, type Sample, sampleValue } from "../helpers/prometheus.ts";
import {
  callAssistant,
  finalizedCall,
  importNumber,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// Real calls through the real API, media app and worker (one process, so one registry: each app's
// /metrics shows the same figures); assertions are on differences between scrapes.

async function scrape(app: MediaEnv["media"] | MediaEnv["worker"] | MediaEnv["t"]["app"]): Promise<Sample[]> {
  const res = await app.inject({ method: "GET", url: "/metrics" });
  assert.equal(res.statusCode, 200);
  return parsePrometheus(res.body);
}

describe("metrics and logs of real calls", () => {
  let env: MediaEnv;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    env = await startMediaEnv({ media: { logger: { level: "info", stream } } });
    env.openai.respond = (req) => {
      const prompt = String(req.messages[0]?.content ?? "");
      if (prompt.startsWith("TEST fail."))
        return { error: { status: 500, message: "The server had an error" } };
      return { text: "Our opening hours are nine to five." };
    };
  });
  after(async () => {
    await env.close();
  });

  it("a call: active calls 1 → 0, started and ended by endedReason, per-turn latencies, webhook deliveries; its log lines carry callId and orgId", async () => {
    const before = await scrape(env.media);
    assert.equal(sampleValue(before, "switchboard_media_active_calls"), 0);

    const { sim } = await callAssistant(env, {
      model: {
        provider: "openai",
        model: "gpt-4o",
        messages: [{ role: "system", content: "TEST hours." }],
      },
    });
    await waitForSpoken(sim, 1);
    const during = await scrape(env.media);
    assert.equal(sampleValue(during, "switchboard_media_active_calls"), 1);
    assert.equal(sampleValue(during, "switchboard_media_websocket_connections", { state: "active" }), 1);
    assert.equal(sampleValue(during, "switchboard_media_websocket_connections", { state: "pending" }), 0);

    const turn = await sim.say("What are your opening hours?");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");

    const afterCall = await waitUntil(
      async () => {
        const s = await scrape(env.media);
        return sampleValue(s, "switchboard_media_active_calls") === 0 ? s : undefined;
      },
      5000,
      "active calls back to 0",
    );
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sampleValue(afterCall, name, labels) - sampleValue(before, name, labels);
    assert.equal(delta("switchboard_calls_started_total"), 1);
    assert.equal(delta("switchboard_calls_ended_total", { ended_reason: "customer-ended-call" }), 1);
    assert.equal(delta("switchboard_calls_ended_total"), 1, "no other reason moved");
    for (const stage of ["endpointing", "transcriber", "model", "voice", "turn", "provider", "platform"]) {
      assert.equal(delta("switchboard_turn_latency_seconds_count", { stage }), 1, stage);
    }
    assert.ok(delta("switchboard_turn_latency_seconds_sum", { stage: "turn" }) > 0);
    // The call's own record agrees with what was observed.
    const artifact = call.artifact as {
      performanceMetrics: { turnLatencies: Array<{ turnLatency: number }> };
    };
    const turnMs = artifact.performanceMetrics.turnLatencies[0]?.turnLatency ?? -1;
    assert.ok(
      Math.abs(delta("switchboard_turn_latency_seconds_sum", { stage: "turn" }) * 1000 - turnMs) <= 1,
    );

    // The worker delivered the status updates to the customer's server.
    const worker = await waitUntil(
      async () => {
        const s = await scrape(env.worker);
        const delivered =
          sampleValue(s, "switchboard_webhook_deliveries_total", { outcome: "delivered" }) -
          sampleValue(before, "switchboard_webhook_deliveries_total", { outcome: "delivered" });
        return delivered > 0 ? s : undefined;
      },
      5000,
      "webhook deliveries",
    );
    assert.ok(
      sampleValue(worker, "switchboard_job_duration_seconds_count", {
        queue: "webhooks",
        job: "webhook.deliver",
      }) > 0,
    );

    // The media app's lines: each names the app; the call's carry its ids without passing them by hand.
    const mediaLines = lines.filter((l) => l.msg === "call started" || l.msg === "call ended");
    assert.equal(mediaLines.length, 2);
    for (const l of mediaLines) {
      assert.equal(l.app, "media");
      assert.equal(l.callId, call.id);
      assert.equal(l.orgId, env.org.orgId);
    }
    for (const l of lines) assert.equal(l.app, "media");
  });

  it("a call that never reaches the media plane is counted by the API that ends it", async () => {
    const before = await scrape(env.t.app);
    const number = await importNumber(env, {});
    const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550101" });
    await sim.waitForEnd();
    const afterCall = await scrape(env.t.app);
    const reason = { ended_reason: "call-start-error-neither-assistant-nor-server-set" };
    assert.equal(
      sampleValue(afterCall, "switchboard_calls_ended_total", reason) -
        sampleValue(before, "switchboard_calls_ended_total", reason),
      1,
    );
    assert.equal(
      sampleValue(afterCall, "switchboard_calls_started_total") -
        sampleValue(before, "switchboard_calls_started_total"),
      0,
    );
  });

  it("a provider failure is counted by provider and kind, and the call's end by its reason", async () => {
    const before = await scrape(env.t.app);
    const { sim } = await callAssistant(env, {
      model: { provider: "openai", model: "gpt-4o", messages: [{ role: "system", content: "TEST fail." }] },
    });
    await waitForSpoken(sim, 1);
    await sim.say("Hello?");
    await sim.waitForEnd(10_000);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "pipeline-error-openai-500-server-error");
    const afterCall = await scrape(env.t.app);
    const delta = (name: string, labels: Record<string, string>) =>
      sampleValue(afterCall, name, labels) - sampleValue(before, name, labels);
    // Retried twice (a 500 is retryable), then the call ended.
    assert.equal(
      delta("switchboard_provider_errors_total", { provider: "openai", kind: "llm", outcome: "retried" }),
      2,
    );
    assert.equal(
      delta("switchboard_provider_errors_total", { provider: "openai", kind: "llm", outcome: "ended" }),
      1,
    );
    assert.equal(
      delta("switchboard_calls_ended_total", { ended_reason: "pipeline-error-openai-500-server-error" }),
      1,
    );
  });
});
