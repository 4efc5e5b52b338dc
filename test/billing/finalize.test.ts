import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  buildPriceCatalog,
  CallNotBillableError,
  insertUsageLines,
  parsePriceTableFile,
  priceCallLedger,
  recordCallCost,
} from "../../libs/billing/index.ts";
import type { CallUsage } from "../../libs/billing/usage.ts";
import { finalizeEndedCall } from "../../libs/media/finalize.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { CALL_TOTAL_MICROS, callUsage, insertEndedCall } from "./fixtures.ts";

let t: TestApi;
let org: TestOrg;
before(async () => {
  t = await startTestApi();
  org = await t.createOrg();
});
after(async () => {
  await t.close();
});

/** The ledger lines pricing would offer for `call` with `usage` (the org's own prices, none overridden). */
function ledgerLinesOf(call: { id: string; startedAt: Date | null; createdAt: Date }, usage: CallUsage) {
  return priceCallLedger({
    callId: call.id,
    orgId: org.orgId,
    assistantId: null,
    phoneNumberId: null,
    occurredAt: call.startedAt ?? call.createdAt,
    org: {},
    usage,
  }).newLines;
}

describe("recordCallCost", () => {
  test("prices an ended call into five lines and writes cost, costBreakdown, costs and finalizedAt", async () => {
    const callId = await insertEndedCall(t.db, { orgId: org.orgId });
    const r = await recordCallCost(t.db, callId);
    assert.equal(r.created, true);
    assert.equal(r.totalMicros, CALL_TOTAL_MICROS);
    assert.deepEqual(
      r.lines.map((l) => [l.category, l.amountMicros, l.billedBy]),
      [
        ["transport", 17_850n, "platform"],
        ["stt", 15_528n, "platform"],
        ["llm", 33_000n, "platform"],
        ["tts", 75_000n, "platform"],
        ["platform", 105_000n, "platform"],
      ],
    );
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    assert.equal(call.cost?.toFixed(6), "0.246378");
    assert.deepEqual(call.costBreakdown, r.costBreakdown);
    assert.deepEqual(call.costs, r.costs);
    assert.ok(call.finalizedAt);
    const line = r.lines[0];
    assert.equal(line?.orgId, org.orgId);
    assert.equal(line?.occurredAt.getTime(), call.startedAt?.getTime());
  });

  test("finalising twice bills once and returns the same cost", async () => {
    const callId = await insertEndedCall(t.db, { orgId: org.orgId });
    const first = await recordCallCost(t.db, callId);
    const second = await recordCallCost(t.db, callId);
    assert.equal(second.created, false);
    assert.equal(second.cost, first.cost);
    assert.deepEqual(second.costBreakdown, first.costBreakdown);
    assert.deepEqual(second.costs, first.costs);
    assert.deepEqual(
      second.lines.map((l) => l.id),
      first.lines.map((l) => l.id),
    );
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  });

  test("concurrent finalisations (retry, sweeper, second process) never duplicate lines", async () => {
    const callId = await insertEndedCall(t.db, { orgId: org.orgId });
    const results = await Promise.all([1, 2, 3, 4].map(() => recordCallCost(t.db, callId)));
    assert.equal(results.filter((r) => r.created).length, 1);
    for (const r of results) assert.equal(r.totalMicros, CALL_TOTAL_MICROS);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  });

  test("a call that ended by failure is priced with whatever usage was recorded", async () => {
    const usage = callUsage();
    usage.durationSeconds = 4.2;
    usage.transport.seconds = 4.2;
    usage.stt.audioSeconds = 0;
    usage.llm = { ...usage.llm, promptTokens: 0, cachedPromptTokens: 0, completionTokens: 0 };
    usage.tts.characters = 0;
    const callId = await insertEndedCall(t.db, {
      orgId: org.orgId,
      usage,
      endedReason: "pipeline-error-openai-llm-failed",
    });
    const r = await recordCallCost(t.db, callId);
    // 5 s: transport 5 × 0.0085 / 60 = 708.33 → 708 micros; platform 5 × 0.05 / 60 = 4166.67 → 4167.
    assert.deepEqual(
      r.lines.map((l) => [l.category, l.amountMicros]),
      [
        ["transport", 708n],
        ["stt", 0n],
        ["llm", 0n],
        ["tts", 0n],
        ["platform", 4_167n],
      ],
    );
    assert.equal(r.cost, 0.004875);
  });

  test("BYO: provider lines are passthrough in the ledger; cost still includes them", async () => {
    const callId = await insertEndedCall(t.db, {
      orgId: org.orgId,
      usage: callUsage({ stt: true, llm: true, tts: true }),
    });
    const r = await recordCallCost(t.db, callId);
    assert.equal(r.totalMicros, CALL_TOTAL_MICROS);
    assert.equal(r.billedMicros, 122_850n);
    assert.equal(r.passthroughMicros, 123_528n);
    assert.deepEqual(
      r.lines.map((l) => l.billedBy),
      ["platform", "passthrough", "passthrough", "passthrough", "platform"],
    );
  });

  test("two voices, one on the platform's key and one on the org's own: a tts line each, billed as what it was, written once", async () => {
    // ElevenLabs (platform key), then Cartesia (the org's key), then ElevenLabs again: 400 + 200
    // characters on one line, 900 on the other; both at $0.05 / 1,000 characters.
    const usage = callUsage();
    usage.earlier = {
      tts: [
        { provider: "11labs", model: "eleven_flash_v2_5", characters: 400, byo: false },
        { provider: "cartesia", model: "sonic-3", characters: 900, byo: true },
      ],
    };
    usage.tts = { provider: "elevenlabs", model: "eleven_flash_v2_5", characters: 200, byo: false };
    const callId = await insertEndedCall(t.db, { orgId: org.orgId, usage });
    const r = await recordCallCost(t.db, callId);
    assert.deepEqual(
      r.lines.map((l) => [l.category, l.provider, l.model, l.quantity.toFixed(), l.amountMicros, l.billedBy]),
      [
        ["transport", "twilio", "", "2.1", 17_850n, "platform"],
        ["stt", "deepgram", "nova-3", "2.016667", 15_528n, "platform"],
        ["llm", "openai", "gpt-4o", "12800", 33_000n, "platform"],
        ["tts", "11labs", "eleven_flash_v2_5", "600", 30_000n, "platform"],
        ["tts", "cartesia", "sonic-3", "900", 45_000n, "passthrough"],
        ["platform", "switchboard", "", "2.1", 105_000n, "platform"],
      ],
    );
    // The platform charges the ElevenLabs part; the Cartesia part is the org's own, at cost.
    assert.equal(r.billedMicros, CALL_TOTAL_MICROS - 45_000n);
    assert.equal(r.passthroughMicros, 45_000n);
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    const voices = (call.costs as { type: string }[]).filter((c) => c.type === "voice");
    assert.deepEqual(voices, [
      {
        type: "voice",
        voice: { provider: "11labs", model: "eleven_flash_v2_5" },
        characters: 600,
        cost: 0.03,
        billedBy: "platform",
      },
      {
        type: "voice",
        voice: { provider: "cartesia", model: "sonic-3" },
        characters: 900,
        cost: 0.045,
        billedBy: "passthrough",
      },
    ]);
    const breakdown = call.costBreakdown as { tts: number; ttsCharacters: number; total: number };
    assert.equal(breakdown.tts, 0.075);
    assert.equal(breakdown.ttsCharacters, 1_500);
    assert.equal(call.cost?.toFixed(6), "0.246378");

    // Priced again (a retried job), and its lines offered to the ledger again: nothing new.
    const again = await recordCallCost(t.db, callId);
    assert.equal(again.created, false);
    assert.deepEqual(again.costs, r.costs);
    assert.deepEqual(
      again.lines.map((l) => l.id),
      r.lines.map((l) => l.id),
    );
    const newLines = ledgerLinesOf(call, usage);
    assert.equal(newLines.length, 6);
    assert.equal(await insertUsageLines(t.db, newLines), 0);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 6);
  });

  test("a call priced before a category could hold several lines keeps its one line per category", async () => {
    // Two voices, written the old way: one tts line for both, named after the last voice.
    const usage = callUsage();
    usage.earlier = {
      tts: [{ provider: "11labs", model: "eleven_flash_v2_5", characters: 600, byo: false }],
    };
    usage.tts = { provider: "cartesia", model: "sonic-3", characters: 900, byo: true };
    const callId = await insertEndedCall(t.db, { orgId: org.orgId, usage });
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    const newLines = ledgerLinesOf(call, callUsage());
    const old = newLines.map((l) =>
      l.category === "tts"
        ? { ...l, provider: "cartesia", model: "sonic-3", billedBy: "passthrough" as const }
        : l,
    );
    assert.equal(await insertUsageLines(t.db, old), 5);
    const r = await recordCallCost(t.db, callId);
    assert.equal(r.created, false);
    assert.equal(r.totalMicros, CALL_TOTAL_MICROS);
    assert.deepEqual(
      r.costs.filter((c) => c.type === "voice"),
      [
        {
          type: "voice",
          voice: { provider: "cartesia", model: "sonic-3" },
          characters: 1_500,
          cost: 0.075,
          billedBy: "passthrough",
        },
      ],
    );
    assert.equal(r.costBreakdown.tts, 0.075);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  });

  test("the price version is the one in force when the call started; org overrides and increment apply", async () => {
    const catalog = buildPriceCatalog({
      file: parsePriceTableFile(
        JSON.stringify({
          versions: [{ version: "2026-01", effectiveFrom: "2026-01-01", platformFeePerMinuteUsd: "0.07" }],
        }),
        "test",
      ),
    });
    const old = await insertEndedCall(t.db, {
      orgId: org.orgId,
      startedAt: new Date("2025-12-31T23:59:00Z"),
    });
    const recent = await insertEndedCall(t.db, {
      orgId: org.orgId,
      startedAt: new Date("2026-01-01T00:00:05Z"),
    });
    const a = await recordCallCost(t.db, old, { catalog });
    const b = await recordCallCost(t.db, recent, { catalog });
    assert.equal(a.lines.find((l) => l.category === "platform")?.amountMicros, 105_000n);
    assert.equal(a.lines[0]?.priceVersion, "2025-06-01");
    assert.equal(b.lines.find((l) => l.category === "platform")?.amountMicros, 147_000n);
    assert.equal(b.lines[0]?.priceVersion, "2026-01");

    const other = await t.createOrg("Plan customer");
    await t.db.org.update({
      where: { id: other.orgId },
      data: { pricingOverrides: { platformFeePerMinuteUsd: "0.03" }, billingIncrement: "minute" },
    });
    const c = await recordCallCost(t.db, await insertEndedCall(t.db, { orgId: other.orgId }));
    // 3 started minutes × $0.03 = $0.09; transport 3 × 0.0085 = 0.0255.
    assert.equal(c.lines.find((l) => l.category === "platform")?.amountMicros, 90_000n);
    assert.equal(c.lines.find((l) => l.category === "transport")?.amountMicros, 25_500n);
  });

  test("a call that ended with no usage (never reached a media session) is priced at zero", async () => {
    const callId = await insertEndedCall(t.db, {
      orgId: org.orgId,
      usage: null,
      endedReason: "customer-did-not-answer",
    });
    const r = await recordCallCost(t.db, callId);
    assert.equal(r.created, true);
    assert.equal(r.cost, 0);
    assert.equal(r.totalMicros, 0n);
    assert.deepEqual(
      r.lines.map((l) => [l.category, l.amountMicros, l.quantity.toFixed()]),
      [
        ["transport", 0n, "0"],
        ["stt", 0n, "0"],
        ["llm", 0n, "0"],
        ["tts", 0n, "0"],
        ["platform", 0n, "0"],
      ],
    );
    // The customer's own Twilio account carries the (zero) transport, as on connected calls.
    assert.equal(r.lines[0]?.billedBy, "passthrough");
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    assert.equal(call.cost?.toFixed(6), "0.000000");
    assert.equal(call.costBreakdown && (call.costBreakdown as { total?: number }).total, 0);
    assert.ok(call.finalizedAt);
    const again = await recordCallCost(t.db, callId);
    assert.equal(again.created, false);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  });

  test("a call not ended yet, or with a malformed usage record, cannot be priced", async () => {
    const live = await insertEndedCall(t.db, { orgId: org.orgId, status: "in-progress" });
    await assert.rejects(recordCallCost(t.db, live), CallNotBillableError);
    const malformed = await insertEndedCall(t.db, { orgId: org.orgId });
    await t.db.call.update({ where: { id: malformed }, data: { usage: { durationSeconds: "long" } } });
    await assert.rejects(recordCallCost(t.db, malformed), CallNotBillableError);
    assert.equal(await t.db.usageLine.count({ where: { callId: { in: [live, malformed] } } }), 0);
  });
});

describe("finalizeEndedCall (the media plane's end of call)", () => {
  async function liveCall(startedAt = new Date()): Promise<string> {
    const call = await t.db.call.create({
      data: { orgId: org.orgId, type: "inboundPhoneCall", status: "in-progress", startedAt },
    });
    return call.id;
  }
  const record = (callId: string, startedAt: Date) => ({
    callId,
    orgId: org.orgId,
    endedReason: "customer-ended-call",
    startedAt,
    endedAt: new Date(startedAt.getTime() + 125_400),
    transcript: "AI: Hi\nUser: Bye",
    messages: [{ role: "bot", message: "Hi", time: startedAt.getTime(), secondsFromStart: 0 }],
    artifact: { transcript: "AI: Hi\nUser: Bye", performanceMetrics: { turnLatencies: [] } },
    usage: callUsage(),
    billing: { org: {}, assistantId: null, phoneNumberId: null },
  });

  test("writes the record, its cost and its five ledger lines at once, exactly as recordCallCost prices them", async () => {
    const startedAt = new Date();
    const callId = await liveCall(startedAt);
    assert.equal(await finalizeEndedCall({ db: t.db }, record(callId, startedAt)), true);
    const call = await t.db.call.findUniqueOrThrow({ where: { id: callId } });
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "customer-ended-call");
    assert.equal(call.transcript, "AI: Hi\nUser: Bye");
    assert.equal(call.cost?.toFixed(6), "0.246378");
    assert.ok(call.finalizedAt);
    const lines = await t.db.usageLine.findMany({ where: { callId }, orderBy: { category: "asc" } });
    assert.equal(lines.length, 5);
    assert.equal(
      lines.reduce((n, l) => n + l.amountMicros, 0n),
      CALL_TOTAL_MICROS,
    );
    // The pricing path that locks and re-reads the row agrees line for line (and writes nothing).
    const again = await recordCallCost(t.db, callId);
    assert.equal(again.created, false);
    assert.equal(again.totalMicros, CALL_TOTAL_MICROS);
    assert.deepEqual(call.costBreakdown, again.costBreakdown);
    assert.deepEqual(call.costs, again.costs);
    // The daily rollup counted the five lines once.
    const daily = await t.db.usageDaily.aggregate({
      where: { orgId: org.orgId, day: new Date(`${startedAt.toISOString().slice(0, 10)}T00:00:00Z`) },
      _sum: { lines: true },
    });
    assert.ok((daily._sum.lines ?? 0) >= 5);
  });

  test("a call something else already ended is left alone and billed once", async () => {
    const startedAt = new Date();
    const callId = await liveCall(startedAt);
    const before = await t.db.usageDaily.aggregate({ where: { orgId: org.orgId }, _sum: { lines: true } });
    const results = await Promise.all(
      [1, 2, 3].map(() => finalizeEndedCall({ db: t.db }, record(callId, startedAt))),
    );
    assert.deepEqual(results.filter(Boolean).length, 1);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
    const after = await t.db.usageDaily.aggregate({ where: { orgId: org.orgId }, _sum: { lines: true } });
    assert.equal((after._sum.lines ?? 0) - (before._sum.lines ?? 0), 5);
    assert.equal(await finalizeEndedCall({ db: t.db }, record(callId, startedAt)), false);
    assert.equal(await t.db.usageLine.count({ where: { callId } }), 5);
  });

  test("the organisation's overrides loaded at call start apply", async () => {
    const startedAt = new Date();
    const callId = await liveCall(startedAt);
    const r = record(callId, startedAt);
    await finalizeEndedCall(
      { db: t.db },
      { ...r, billing: { ...r.billing, org: { pricingOverrides: { platformFeePerMinuteUsd: "0.10" } } } },
    );
    const platform = await t.db.usageLine.findFirstOrThrow({ where: { callId, category: "platform" } });
    // 126 s × $0.10/min = $0.21
    assert.equal(platform.amountMicros, 210_000n);
  });
});
