import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  allocateMicros,
  billedSeconds,
  buildPriceCatalog,
  type CallUsage,
  DEFAULT_PRICE_CATALOG,
  effectivePricing,
  microsToUsdNumber,
  microsToUsdString,
  type PricedCall,
  parsePriceTableFile,
  priceCall,
  usdStringToMicros,
  usdToMicros,
} from "../../libs/billing/index.ts";
import { ConfigError } from "../../libs/config/index.ts";
import { Prisma } from "../../libs/db/index.ts";
import { CALL_TOTAL_MICROS, callUsage } from "./fixtures.ts";

const JUNE_2025 = new Date("2025-06-15T12:00:00Z");
const table = DEFAULT_PRICE_CATALOG.tableAt(JUNE_2025);

function amounts(p: PricedCall): Record<string, bigint> {
  return Object.fromEntries(p.lines.map((l) => [l.category, l.amountMicros]));
}

/** Vapi's invariant: cost = costBreakdown.total = Σ costs[].cost = Σ lines, at 6 decimals. */
function assertConsistent(p: PricedCall): void {
  const lines = p.lines.reduce((a, l) => a + l.amountMicros, 0n);
  assert.equal(p.totalMicros, lines);
  assert.equal(p.cost, microsToUsdNumber(lines));
  assert.equal(p.costBreakdown.total, p.cost);
  const costs = p.costs.reduce((a, c) => a + c.cost, 0);
  assert.equal(Math.round(costs * 1e6), Number(lines));
  // Vapi's costBreakdown has no top-level analysis figure: its steps are in analysisCostBreakdown.
  const parts = ["transport", "stt", "llm", "tts", "vapi"] as const;
  const a = p.costBreakdown.analysisCostBreakdown ?? {};
  const analysis = (a.summary ?? 0) + (a.structuredData ?? 0) + (a.successEvaluation ?? 0);
  assert.equal(
    Math.round((parts.reduce((x, k) => x + (p.costBreakdown[k] ?? 0), 0) + analysis) * 1e6),
    Number(lines),
  );
}

describe("money", () => {
  test("rounds half up to the micro-dollar and formats exactly", () => {
    assert.equal(usdToMicros(new Prisma.Decimal("0.0000045")), 5n);
    assert.equal(usdToMicros(new Prisma.Decimal("0.0000044999")), 4n);
    assert.equal(usdToMicros(new Prisma.Decimal("0.0000025")), 3n); // half up, not half even
    assert.equal(microsToUsdString(246_378n), "0.246378");
    assert.equal(microsToUsdString(12_345_678_901n), "12345.678901");
    assert.equal(usdStringToMicros("99.5", "x"), 99_500_000n);
    assert.equal(usdStringToMicros("250", "x"), 250_000_000n);
  });

  test("billed seconds: per started second, or per started minute", () => {
    assert.equal(billedSeconds(125.4, "second"), 126n);
    assert.equal(billedSeconds(125, "second"), 125n);
    assert.equal(billedSeconds(0.001, "second"), 1n);
    assert.equal(billedSeconds(0, "second"), 0n);
    assert.equal(billedSeconds(125.4, "minute"), 180n);
    assert.equal(billedSeconds(60, "minute"), 60n);
    assert.equal(billedSeconds(60.001, "minute"), 120n);
  });
});

describe("priceCall", () => {
  test("a known call, to the micro-dollar", () => {
    const p = priceCall(callUsage(), effectivePricing(table));
    assert.deepEqual(amounts(p), {
      transport: 17_850n,
      stt: 15_528n,
      llm: 33_000n,
      tts: 75_000n,
      platform: 105_000n,
    });
    assert.equal(p.totalMicros, CALL_TOTAL_MICROS);
    assert.equal(p.cost, 0.246378);
    assert.equal(p.billedMicros, CALL_TOTAL_MICROS);
    assert.equal(p.passthroughMicros, 0n);
    const byCat = Object.fromEntries(p.lines.map((l) => [l.category, l]));
    assert.deepEqual(
      { q: byCat.transport?.quantity, u: byCat.transport?.unit, p: byCat.transport?.unitPrice },
      { q: "2.1", u: "minute", p: "0.0085" },
    );
    assert.equal(byCat.stt?.quantity, "2.016667");
    assert.equal(byCat.llm?.quantity, "12800");
    assert.equal(byCat.llm?.unit, "token");
    assert.equal(byCat.tts?.unitPrice, "0.00005");
    assert.equal(byCat.platform?.unitPrice, "0.05");
    for (const l of p.lines) assert.equal(l.priceVersion, "2025-06-01");
    assert.deepEqual(p.costBreakdown, {
      transport: 0.01785,
      stt: 0.015528,
      llm: 0.033,
      tts: 0.075,
      vapi: 0.105,
      total: 0.246378,
      llmPromptTokens: 12_000,
      llmCompletionTokens: 800,
      llmCachedPromptTokens: 4_000,
      ttsCharacters: 1_500,
    });
    assert.deepEqual(
      p.costs.map((c) => [c.type, c.cost, c.billedBy]),
      [
        ["transport", 0.01785, "platform"],
        ["transcriber", 0.015528, "platform"],
        ["model", 0.033, "platform"],
        ["voice", 0.075, "platform"],
        ["vapi", 0.105, "platform"],
      ],
    );
    assertConsistent(p);
  });

  test("an exact half micro-dollar rounds up", () => {
    const usage = callUsage();
    usage.llm = {
      provider: "openai",
      model: "gpt-4o-mini",
      promptTokens: 30,
      cachedPromptTokens: 0,
      completionTokens: 0,
      byo: false,
    };
    // 30 × $0.15 / 1M = $0.0000045 → 5 micros (half even would give 4).
    assert.equal(amounts(priceCall(usage, effectivePricing(table))).llm, 5n);
  });

  test("outbound transport, dated model snapshots and aliases", () => {
    const usage = callUsage();
    usage.transport.direction = "outbound";
    usage.llm.model = "gpt-4o-mini-2024-07-18";
    usage.tts.provider = "elevenlabs";
    const p = priceCall(usage, effectivePricing(table));
    // 126 s × $0.014 / 60 = $0.0294; gpt-4o-mini: 8000×0.15 + 4000×0.075 + 800×0.60 = 1980 micros.
    assert.equal(amounts(p).transport, 29_400n);
    assert.equal(amounts(p).llm, 1_980n);
    assert.equal(amounts(p).tts, 75_000n);
    assert.ok(p.lines.every((l) => !l.fallback));
  });

  test("BYO keys: provider lines become passthrough, still priced; the platform fee is unchanged", () => {
    const plain = priceCall(callUsage(), effectivePricing(table));
    const byo = priceCall(callUsage({ stt: true, llm: true, tts: true }), effectivePricing(table));
    assert.deepEqual(amounts(byo), amounts(plain));
    assert.equal(byo.cost, plain.cost);
    const billedBy = Object.fromEntries(byo.lines.map((l) => [l.category, l.billedBy]));
    assert.deepEqual(billedBy, {
      transport: "platform",
      stt: "passthrough",
      llm: "passthrough",
      tts: "passthrough",
      platform: "platform",
    });
    assert.equal(byo.billedMicros, 17_850n + 105_000n);
    assert.equal(byo.passthroughMicros, 15_528n + 33_000n + 75_000n);
    assert.deepEqual(
      byo.costs.map((c) => c.billedBy),
      ["platform", "passthrough", "passthrough", "passthrough", "platform"],
    );
    assertConsistent(byo);
  });

  test("a squad whose members share a model, one on the platform's key and one on the org's own: two llm lines", () => {
    const usage = callUsage();
    usage.earlier = {
      llm: [{ ...usage.llm, promptTokens: 4_000, cachedPromptTokens: 0, completionTokens: 200, byo: false }],
    };
    usage.llm = {
      ...usage.llm,
      promptTokens: 8_000,
      cachedPromptTokens: 4_000,
      completionTokens: 600,
      byo: true,
    };
    const p = priceCall(usage, effectivePricing(table));
    // 4,000 × $2.50 + 200 × $10.00 per 1M = $0.012; 4,000 × $2.50 + 4,000 × $1.25 + 600 × $10.00 = $0.021.
    assert.deepEqual(
      p.lines
        .filter((l) => l.category === "llm")
        .map((l) => [l.model, l.quantity, l.amountMicros, l.billedBy]),
      [
        ["gpt-4o", "4200", 12_000n, "platform"],
        ["gpt-4o", "8600", 21_000n, "passthrough"],
      ],
    );
    assert.deepEqual(
      p.costs.filter((c) => c.type === "model").map((c) => [c.promptTokens, c.cachedPromptTokens, c.cost]),
      [
        [4_000, 0, 0.012],
        [8_000, 4_000, 0.021],
      ],
    );
    assert.equal(p.costBreakdown.llm, 0.033);
    assert.equal(p.costBreakdown.llmPromptTokens, 12_000);
    assert.equal(p.billedMicros, 17_850n + 15_528n + 12_000n + 75_000n + 105_000n);
    assertConsistent(p);
  });

  test("per started minute increment applies to transport, stt and platform", () => {
    const p = priceCall(callUsage(), effectivePricing(table, { billingIncrement: "minute" }));
    // 3 started minutes: 3 × 0.0085, 3 × 0.0077, 3 × 0.05; llm and tts unchanged.
    assert.deepEqual(amounts(p), {
      transport: 25_500n,
      stt: 23_100n,
      llm: 33_000n,
      tts: 75_000n,
      platform: 150_000n,
    });
    assert.equal(p.lines.find((l) => l.category === "platform")?.quantity, "3");
    assertConsistent(p);
  });

  test("organisation overrides win over the table", () => {
    const p = priceCall(
      callUsage(),
      effectivePricing(table, {
        pricingOverrides: {
          platformFeePerMinuteUsd: "0.03",
          prices: { tts: { "11labs": { eleven_flash_v2_5: { per1KCharactersUsd: "0.04" } } } },
        },
      }),
    );
    // platform 126 s × 0.03 / 60 = 0.063; tts 1500 × 0.04 / 1000 = 0.06; the rest from the table.
    assert.equal(amounts(p).platform, 63_000n);
    assert.equal(amounts(p).tts, 60_000n);
    assert.equal(amounts(p).llm, 33_000n);
  });

  test("an unknown model falls back to the documented default price and is flagged", () => {
    const usage = callUsage();
    usage.llm.model = "my-private-llm";
    const p = priceCall(usage, effectivePricing(table));
    const llm = p.lines.find((l) => l.category === "llm");
    assert.equal(llm?.fallback, true);
    assert.equal(llm?.priceVersion, "2025-06-01#fallback");
    assert.equal(llm?.amountMicros, 33_000n); // fallback = gpt-4o list prices
    const item = p.costs.find((c) => c.type === "model");
    assert.equal(item?.priceFallback, true);
  });

  test("an empty call costs nothing but still has five lines", () => {
    const p = priceCall(
      {
        durationSeconds: 0,
        transport: { provider: "twilio", direction: "inbound", seconds: 0, byo: false },
        stt: { provider: "deepgram", model: "nova-3", audioSeconds: 0, byo: false },
        llm: {
          provider: "openai",
          model: "gpt-4o",
          promptTokens: 0,
          cachedPromptTokens: 0,
          completionTokens: 0,
          byo: false,
        },
        tts: { provider: "11labs", model: "eleven_flash_v2_5", characters: 0, byo: false },
      },
      effectivePricing(table),
    );
    assert.equal(p.lines.length, 5);
    assert.equal(p.totalMicros, 0n);
    assert.equal(p.cost, 0);
  });
});

describe("price table versions and deployment configuration", () => {
  const catalog = buildPriceCatalog({
    file: parsePriceTableFile(
      JSON.stringify({
        versions: [
          {
            version: "2026-01",
            effectiveFrom: "2026-01-01",
            platformFeePerMinuteUsd: "0.07",
            prices: {
              llm: {
                openai: {
                  "gpt-4o": {
                    promptPer1MTokensUsd: "2",
                    cachedPromptPer1MTokensUsd: "1",
                    completionPer1MTokensUsd: "8",
                  },
                },
              },
            },
          },
        ],
      }),
      "test",
    ),
  });

  test("a call is priced with the version in force when it started", () => {
    const before = catalog.tableAt(new Date("2025-12-31T23:59:59.999Z"));
    const after = catalog.tableAt(new Date("2026-01-01T00:00:00.000Z"));
    assert.equal(before.version, "2025-06-01");
    assert.equal(after.version, "2026-01");
    const p = priceCall(callUsage(), effectivePricing(after));
    // platform 126 × 0.07 / 60 = 0.147; llm 8000×2 + 4000×1 + 800×8 = 26400 micros; rest inherited.
    assert.deepEqual(amounts(p), {
      transport: 17_850n,
      stt: 15_528n,
      llm: 26_400n,
      tts: 75_000n,
      platform: 147_000n,
    });
    assert.ok(p.lines.every((l) => l.priceVersion === "2026-01"));
  });

  test("PLATFORM_FEE_PER_MINUTE_USD replaces every version's fee", () => {
    const c = buildPriceCatalog({ platformFeePerMinuteUsd: "0.1" });
    const p = priceCall(callUsage(), effectivePricing(c.tableAt(JUNE_2025)));
    assert.equal(amounts(p).platform, 210_000n);
  });

  test("a malformed price file is refused naming the problem", () => {
    assert.throws(
      () =>
        parsePriceTableFile(
          JSON.stringify({
            versions: [{ version: "x", effectiveFrom: "2026-01-01", platformFeePerMinuteUsd: 0.05 }],
          }),
          "PRICE_TABLE_PATH",
        ),
      (e: unknown) => e instanceof ConfigError && /platformFeePerMinuteUsd/.test(e.message),
    );
    assert.throws(() => parsePriceTableFile("{", "PRICE_TABLE_PATH"), ConfigError);
  });
});

describe("the analysis line (post-call analysis tokens)", () => {
  function withAnalysis(analysis: CallUsage["analysis"]): CallUsage {
    return { ...callUsage(), analysis };
  }

  test("a sixth line priced at the analysis model's LLM prices; one AnalysisCost per step; cost = Σ six lines", () => {
    const p = priceCall(
      withAnalysis({
        provider: "openai",
        model: "gpt-4o",
        byo: false,
        summary: { promptTokens: 1_000, cachedPromptTokens: 0, completionTokens: 40 },
        structuredData: { promptTokens: 1_100, cachedPromptTokens: 0, completionTokens: 25 },
        successEvaluation: { promptTokens: 1_200, cachedPromptTokens: 200, completionTokens: 2 },
      }),
      effectivePricing(table),
    );
    // gpt-4o: summary 1000×2.50 + 40×10 = 2900 µ$; structured data 1100×2.50 + 25×10 = 3000 µ$;
    // evaluation 1000×2.50 + 200×1.25 + 2×10 = 2770 µ$ → 8670 µ$.
    assert.equal(amounts(p).analysis, 8_670n);
    const line = p.lines.find((l) => l.category === "analysis");
    assert.equal(line?.quantity, String(1_040 + 1_125 + 1_202));
    assert.equal(line?.unit, "token");
    assert.equal(line?.billedBy, "platform");
    assert.equal(line?.fallback, false);
    assert.equal(p.totalMicros, CALL_TOTAL_MICROS + 8_670n);
    assertConsistent(p);
    assert.deepEqual(
      p.costs.filter((c) => c.type === "analysis"),
      [
        {
          type: "analysis",
          analysisType: "summary",
          model: { provider: "openai", model: "gpt-4o" },
          promptTokens: 1_000,
          completionTokens: 40,
          cachedPromptTokens: 0,
          cost: 0.0029,
          billedBy: "platform",
        },
        {
          type: "analysis",
          analysisType: "structuredData",
          model: { provider: "openai", model: "gpt-4o" },
          promptTokens: 1_100,
          completionTokens: 25,
          cachedPromptTokens: 0,
          cost: 0.003,
          billedBy: "platform",
        },
        {
          type: "analysis",
          analysisType: "successEvaluation",
          model: { provider: "openai", model: "gpt-4o" },
          promptTokens: 1_200,
          completionTokens: 2,
          cachedPromptTokens: 200,
          cost: 0.00277,
          billedBy: "platform",
        },
      ],
    );
    assert.deepEqual(p.costBreakdown.analysisCostBreakdown, {
      summary: 0.0029,
      summaryPromptTokens: 1_000,
      summaryCompletionTokens: 40,
      summaryCachedPromptTokens: 0,
      structuredData: 0.003,
      structuredDataPromptTokens: 1_100,
      structuredDataCompletionTokens: 25,
      structuredDataCachedPromptTokens: 0,
      successEvaluation: 0.00277,
      successEvaluationPromptTokens: 1_200,
      successEvaluationCompletionTokens: 2,
      successEvaluationCachedPromptTokens: 200,
    });
  });

  test("rounded once per line; the steps share it exactly (largest remainder); BYO is passthrough", () => {
    const p = priceCall(
      withAnalysis({
        provider: "openai",
        model: "gpt-4o-mini",
        byo: true,
        summary: { promptTokens: 333, cachedPromptTokens: 0, completionTokens: 7 },
        successEvaluation: { promptTokens: 101, cachedPromptTokens: 0, completionTokens: 1 },
      }),
      effectivePricing(table),
    );
    // gpt-4o-mini: 333×0.15 + 7×0.60 = 54.15 µ$; 101×0.15 + 1×0.60 = 15.75 µ$; 69.9 µ$ → 70 µ$,
    // shared 54.23 / 15.77 → 54 + 16.
    assert.equal(amounts(p).analysis, 70n);
    assert.equal(p.lines.find((l) => l.category === "analysis")?.billedBy, "passthrough");
    assert.deepEqual(
      p.costs.filter((c) => c.type === "analysis").map((c) => [c.analysisType, c.cost, c.billedBy]),
      [
        ["summary", 0.000054, "passthrough"],
        ["successEvaluation", 0.000016, "passthrough"],
      ],
    );
    assert.equal(p.passthroughMicros, 70n);
    assertConsistent(p);
  });

  test("an analysis model missing from the table is priced at the fallback and flagged", () => {
    const p = priceCall(
      withAnalysis({
        provider: "openai",
        model: "gpt-unlisted",
        byo: false,
        summary: { promptTokens: 10, cachedPromptTokens: 0, completionTokens: 10 },
      }),
      effectivePricing(table),
    );
    const line = p.lines.find((l) => l.category === "analysis");
    assert.equal(line?.fallback, true);
    assert.match(line?.priceVersion ?? "", /#fallback$/);
    assert.equal(p.costs.find((c) => c.type === "analysis")?.priceFallback, true);
    assertConsistent(p);
  });

  test("allocateMicros always sums to the total", () => {
    const d = (v: string) => new Prisma.Decimal(v);
    assert.deepEqual(allocateMicros(70n, [d("54.15"), d("15.75")]), [54n, 16n]);
    assert.deepEqual(allocateMicros(10n, [d("1"), d("1"), d("1")]), [4n, 3n, 3n]);
    assert.deepEqual(allocateMicros(5n, [d("0"), d("0")]), [5n, 0n]);
    assert.deepEqual(allocateMicros(0n, [d("3"), d("1")]), [0n, 0n]);
  });
});
