import type { Static } from "@sinclair/typebox";
import type { AnalysisCostBreakdown, CostBreakdown } from "../vapi/call.ts";
import { Decimal, dec, microsToUsdNumber, usdToMicros } from "./money.ts";
import {
  deepMerge,
  type LlmPrice,
  lookupModel,
  normaliseProvider,
  type PriceEntries,
  type PriceTable,
  type PricingOverrides,
  type SttPrice,
  type TransportPrice,
  type TtsPrice,
} from "./prices.ts";
import { ANALYSIS_STEPS, type AnalysisStepUsage, type AnalysisUsage, type CallUsage } from "./usage.ts";

// Prices one call's usage into five lines (transport, stt, llm, tts, platform), plus a sixth
// (analysis) once the post-call analysis has run, and Vapi's cost shapes. Rules (see money.ts for
// the rounding rule):
// - Time-based lines (transport, stt, platform) are billed in whole seconds rounded up (per started
//   second, Vapi's "prorated to the second"), or in whole minutes rounded up when the org's
//   billingIncrement is "minute". Their unit is "minute" and their unit price the per-minute price;
//   the amount is computed from the exact billed seconds (seconds × per-minute price / 60), and
//   `quantity` is the billed minutes (exact for "minute", seconds / 60 at 6 decimals for "second").
//   transport and platform bill `transport.seconds` and `durationSeconds`; stt bills `audioSeconds`.
// - llm: `promptTokens` includes `cachedPromptTokens` (OpenAI's usage semantics); uncached prompt
//   tokens, cached prompt tokens and completion tokens are priced at their per-1M rates and summed
//   into one amount. The line's quantity is prompt + completion tokens and its unitPrice the blended
//   price per token (12 decimals); the components are in `costs[]`.
// - tts: characters at the per-1,000-characters price; unitPrice is per character.
// - analysis (only when `usage.analysis` is present): the tokens of the post-call analysis steps
//   (summary, structuredData, successEvaluation), priced like the llm line with the LLM prices of
//   the analysis model (the call's own model), the steps' exact amounts summed and rounded once.
//   In `costs[]` it is one AnalysisCost per step; the line's amount is shared out between them in
//   proportion to their exact amounts (largest remainder), so the items sum to the line exactly.
// - A provider line is `passthrough` when its usage says `byo` (the org's own credential paid the
//   provider): still computed and shown at cost, but not charged by the platform. The platform fee
//   is always billed by the platform.
// - `cost` = `costBreakdown.total` = Σ costs[].cost = Σ lines: everything the call cost, including
//   passthrough. What the platform charges is `billedMicros` (Σ lines with billedBy = platform).

export const CATEGORIES = ["transport", "stt", "llm", "tts", "platform", "analysis"] as const;
export type Category = (typeof CATEGORIES)[number];
export type BilledBy = "platform" | "passthrough";
export type BillingIncrement = "second" | "minute";

export interface EffectivePricing {
  priceVersion: string;
  platformFeePerMinuteUsd: string;
  prices: Required<PriceEntries>;
  fallback: PriceTable["fallback"];
  increment: BillingIncrement;
}

export interface OrgPricingInput {
  pricingOverrides?: unknown;
  billingIncrement?: string | null;
}

/** Parses `Org.pricingOverrides` leniently: malformed parts are ignored rather than breaking billing. */
export function parsePricingOverrides(raw: unknown): PricingOverrides {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return {};
  const r = raw as Record<string, unknown>;
  const out: PricingOverrides = {};
  if (
    typeof r.platformFeePerMinuteUsd === "string" &&
    /^\d{1,12}(\.\d{1,12})?$/.test(r.platformFeePerMinuteUsd)
  ) {
    out.platformFeePerMinuteUsd = r.platformFeePerMinuteUsd;
  }
  if (typeof r.platformFeePerMinuteMicros === "number" && Number.isInteger(r.platformFeePerMinuteMicros)) {
    out.platformFeePerMinuteMicros = r.platformFeePerMinuteMicros;
  }
  if (r.prices && typeof r.prices === "object" && !Array.isArray(r.prices))
    out.prices = r.prices as PriceEntries;
  return out;
}

/** The prices a call of this org pays: the table version in force, with the org's overrides on top. */
export function effectivePricing(table: PriceTable, org: OrgPricingInput = {}): EffectivePricing {
  const o = parsePricingOverrides(org.pricingOverrides);
  let fee = table.platformFeePerMinuteUsd;
  if (o.platformFeePerMinuteMicros !== undefined)
    fee = dec(o.platformFeePerMinuteMicros).div(1_000_000).toFixed();
  if (o.platformFeePerMinuteUsd !== undefined) fee = o.platformFeePerMinuteUsd;
  return {
    priceVersion: table.version,
    platformFeePerMinuteUsd: fee,
    prices: o.prices ? deepMerge(table.prices, o.prices) : table.prices,
    fallback: table.fallback,
    increment: org.billingIncrement === "minute" ? "minute" : "second",
  };
}

export interface PricedLine {
  category: Category;
  provider: string;
  model: string | null;
  /** Exact decimal string (≤ 6 decimals, the ledger's precision). */
  quantity: string;
  unit: "minute" | "token" | "character";
  /** USD per unit, exact decimal string (≤ 12 decimals). */
  unitPrice: string;
  amountMicros: bigint;
  billedBy: BilledBy;
  /** The table version; "#fallback" is appended when the provider/model was not in the table. */
  priceVersion: string;
  fallback: boolean;
}

interface CostItemBase {
  cost: number;
  billedBy: BilledBy;
  priceFallback?: boolean;
}
export type CostItem =
  | (CostItemBase & { type: "transport"; provider: string; minutes: number })
  | (CostItemBase & {
      type: "transcriber";
      transcriber: { provider: string; model: string };
      minutes: number;
    })
  | (CostItemBase & {
      type: "model";
      model: { provider: string; model: string };
      promptTokens: number;
      completionTokens: number;
      cachedPromptTokens: number;
    })
  | (CostItemBase & { type: "voice"; voice: { provider: string; model: string }; characters: number })
  | (CostItemBase & { type: "vapi"; subType: "normal"; minutes: number })
  | (CostItemBase & {
      type: "analysis";
      analysisType: (typeof ANALYSIS_STEPS)[number];
      model: { provider: string; model: string };
      promptTokens: number;
      completionTokens: number;
      cachedPromptTokens: number;
    });

export interface PricedCall {
  lines: PricedLine[];
  totalMicros: bigint;
  /** Σ lines billed by the platform. */
  billedMicros: bigint;
  /** Σ passthrough lines (paid by the customer to its own providers). */
  passthroughMicros: bigint;
  /** Vapi's `cost`: USD, equal to costBreakdown.total. */
  cost: number;
  costBreakdown: CostBreakdown;
  costs: CostItem[];
}

/** Seconds billed for a duration under the increment: per started second, or per started minute. */
export function billedSeconds(seconds: number, increment: BillingIncrement): bigint {
  if (!Number.isFinite(seconds) || seconds <= 0) return 0n;
  // Usage carries millisecond precision; work in whole milliseconds to avoid float ceil artefacts.
  const ms = BigInt(Math.round(seconds * 1000));
  const unit = increment === "minute" ? 60_000n : 1000n;
  return ((ms + unit - 1n) / unit) * (unit / 1000n);
}

function timeLine(
  category: Category,
  provider: string,
  model: string | null,
  seconds: number,
  perMinuteUsd: string,
  p: EffectivePricing,
  billedBy: BilledBy,
  fallback: boolean,
): PricedLine {
  const secs = billedSeconds(seconds, p.increment);
  const price = dec(perMinuteUsd);
  const minutes = dec(secs).div(60);
  return {
    category,
    provider,
    model,
    quantity: minutes.toDecimalPlaces(6, Decimal.ROUND_HALF_UP).toFixed(),
    unit: "minute",
    unitPrice: price.toFixed(),
    amountMicros: usdToMicros(dec(secs).times(price).div(60)),
    billedBy,
    priceVersion: fallback ? `${p.priceVersion}#fallback` : p.priceVersion,
    fallback,
  };
}

function providerPrices<T>(
  map: Record<string, Record<string, T>>,
  provider: string,
  model: string,
): T | undefined {
  return lookupModel(map[provider], model);
}

/** Prices a call's usage with the given pricing. Pure: no I/O. */
export function priceCall(usage: CallUsage, p: EffectivePricing): PricedCall {
  const lines: PricedLine[] = [];
  const by = (byo: boolean): BilledBy => (byo ? "passthrough" : "platform");

  // transport
  const tProvider = normaliseProvider(usage.transport.provider);
  const tPrice: Static<typeof TransportPrice> | undefined = p.prices.transport[tProvider];
  const tRate = tPrice ?? p.fallback.transport;
  lines.push(
    timeLine(
      "transport",
      tProvider,
      null,
      usage.transport.seconds,
      usage.transport.direction === "inbound" ? tRate.inboundPerMinuteUsd : tRate.outboundPerMinuteUsd,
      p,
      by(usage.transport.byo),
      !tPrice,
    ),
  );

  // stt, llm, tts: one line each, the providers the call switched away from (usage.earlier) included
  const earlier = usage.earlier ?? {};
  lines.push(merged([...(earlier.stt ?? []), usage.stt].map((u) => sttLine(u, p))));
  lines.push(merged([...(earlier.llm ?? []), usage.llm].map((u) => llmLine(u, p))));
  lines.push(merged([...(earlier.tts ?? []), usage.tts].map((u) => ttsLine(u, p))));

  // platform fee: always billed by the platform
  lines.push(
    timeLine(
      "platform",
      "switchboard",
      null,
      usage.durationSeconds,
      p.platformFeePerMinuteUsd,
      p,
      "platform",
      false,
    ),
  );

  if (usage.analysis) lines.push(priceAnalysis(usage.analysis, p));

  return assemble(lines, usage, p);
}

const billedByOf = (byo: boolean): BilledBy => (byo ? "passthrough" : "platform");

function sttLine(u: CallUsage["stt"], p: EffectivePricing): PricedLine {
  const provider = normaliseProvider(u.provider);
  const price: Static<typeof SttPrice> | undefined = providerPrices(p.prices.stt, provider, u.model);
  return timeLine(
    "stt",
    provider,
    u.model,
    u.audioSeconds,
    (price ?? p.fallback.stt).perMinuteUsd,
    p,
    billedByOf(u.byo),
    !price,
  );
}

function llmLine(u: CallUsage["llm"], p: EffectivePricing): PricedLine {
  const provider = normaliseProvider(u.provider);
  const price: Static<typeof LlmPrice> | undefined = providerPrices(p.prices.llm, provider, u.model);
  const rate = price ?? p.fallback.llm;
  const usd = tokensUsd(rate, u);
  const tokens = u.promptTokens + u.completionTokens;
  return {
    category: "llm",
    provider,
    model: u.model,
    quantity: String(tokens),
    unit: "token",
    unitPrice: blended(usd, tokens, dec(rate.promptPer1MTokensUsd).div(1_000_000)),
    amountMicros: usdToMicros(usd),
    billedBy: billedByOf(u.byo),
    priceVersion: price ? p.priceVersion : `${p.priceVersion}#fallback`,
    fallback: !price,
  };
}

function ttsLine(u: CallUsage["tts"], p: EffectivePricing): PricedLine {
  const provider = normaliseProvider(u.provider);
  const price: Static<typeof TtsPrice> | undefined = providerPrices(p.prices.tts, provider, u.model);
  const per1K = dec((price ?? p.fallback.tts).per1KCharactersUsd);
  return {
    category: "tts",
    provider,
    model: u.model,
    quantity: String(u.characters),
    unit: "character",
    unitPrice: per1K.div(1000).toFixed(),
    amountMicros: usdToMicros(dec(u.characters).times(per1K).div(1000)),
    billedBy: billedByOf(u.byo),
    priceVersion: price ? p.priceVersion : `${p.priceVersion}#fallback`,
    fallback: !price,
  };
}

/**
 * One category's line from the lines of each provider the call used in it, oldest first (one,
 * unless a fallback plan switched it): named after the last, the amounts and quantities summed, the
 * unit price blended. The ledger keeps one line per category; `costs[]` shows each provider's share
 * (see `assemble`). It is `platform`-billed only when every provider was: the platform never charges
 * for what the organisation's own key paid.
 */
function merged(parts: PricedLine[]): PricedLine {
  const last = parts[parts.length - 1] as PricedLine;
  if (parts.length === 1) return last;
  const amountMicros = parts.reduce((a, l) => a + l.amountMicros, 0n);
  const quantity = parts.reduce((a, l) => a.plus(l.quantity), dec(0));
  const fallback = parts.some((l) => l.fallback);
  const unitPrice = quantity.isZero()
    ? last.unitPrice
    : dec(amountMicros).div(1_000_000).div(quantity).toDecimalPlaces(12, Decimal.ROUND_HALF_UP).toFixed();
  return {
    ...last,
    quantity: quantity.toDecimalPlaces(6, Decimal.ROUND_HALF_UP).toFixed(),
    unitPrice,
    amountMicros,
    billedBy: parts.every((l) => l.billedBy === "platform") ? "platform" : "passthrough",
    priceVersion: fallback ? `${last.priceVersion.replace(/#fallback$/, "")}#fallback` : last.priceVersion,
    fallback,
  };
}

/** Exact USD of some tokens: uncached prompt, cached prompt and completion tokens at their rates. */
function tokensUsd(
  rate: Static<typeof LlmPrice>,
  t: { promptTokens: number; cachedPromptTokens: number; completionTokens: number },
): Decimal {
  const cached = Math.min(t.cachedPromptTokens, t.promptTokens);
  const uncached = t.promptTokens - cached;
  return dec(uncached)
    .times(rate.promptPer1MTokensUsd)
    .plus(dec(cached).times(rate.cachedPromptPer1MTokensUsd))
    .plus(dec(t.completionTokens).times(rate.completionPer1MTokensUsd))
    .div(1_000_000);
}

/** The LLM prices of the analysis model, and whether the table listed it. */
function analysisRate(
  usage: AnalysisUsage,
  p: EffectivePricing,
): { rate: Static<typeof LlmPrice>; listed: boolean } {
  const price = providerPrices(p.prices.llm, normaliseProvider(usage.provider), usage.model);
  return { rate: price ?? p.fallback.llm, listed: price !== undefined };
}

/** The analysis steps that ran (answered with usage), in Vapi's order. */
function analysisSteps(usage: AnalysisUsage): [(typeof ANALYSIS_STEPS)[number], AnalysisStepUsage][] {
  return ANALYSIS_STEPS.flatMap((s) => {
    const u = usage[s];
    return u ? [[s, u] as [(typeof ANALYSIS_STEPS)[number], AnalysisStepUsage]] : [];
  });
}

/**
 * The sixth line: the post-call analysis tokens (every step), priced with the LLM prices of the
 * analysis model; `passthrough` when the organisation's own OpenAI key paid them.
 */
export function priceAnalysis(usage: AnalysisUsage, p: EffectivePricing): PricedLine {
  const { rate, listed } = analysisRate(usage, p);
  let usd = dec(0);
  let tokens = 0;
  for (const [, u] of analysisSteps(usage)) {
    usd = usd.plus(tokensUsd(rate, u));
    tokens += u.promptTokens + u.completionTokens;
  }
  return {
    category: "analysis",
    provider: normaliseProvider(usage.provider),
    model: usage.model,
    quantity: String(tokens),
    unit: "token",
    unitPrice: blended(usd, tokens, dec(rate.promptPer1MTokensUsd).div(1_000_000)),
    amountMicros: usdToMicros(usd),
    billedBy: usage.byo ? "passthrough" : "platform",
    priceVersion: listed ? p.priceVersion : `${p.priceVersion}#fallback`,
    fallback: !listed,
  };
}

/**
 * Shares `total` micro-dollars out in proportion to `weights` (largest remainder, ties to the
 * earlier): the parts always sum to `total` exactly.
 */
export function allocateMicros(total: bigint, weights: readonly Decimal[]): bigint[] {
  if (weights.length === 0) return [];
  const sum = weights.reduce((a, w) => a.plus(w), dec(0));
  if (sum.isZero()) return weights.map((_, i) => (i === 0 ? total : 0n));
  const exact = weights.map((w) => dec(total).times(w).div(sum));
  const parts = exact.map((e) => BigInt(e.floor().toFixed(0)));
  let left = total - parts.reduce((a, b) => a + b, 0n);
  const order = exact
    .map((e, i) => ({ i, frac: e.minus(e.floor()) }))
    .sort((a, b) => b.frac.comparedTo(a.frac) || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0n) break;
    parts[i] = (parts[i] ?? 0n) + 1n;
    left -= 1n;
  }
  return parts;
}

/** Blended USD per token at 12 decimals (the ledger's precision); the list prompt price when no tokens. */
function blended(amountUsd: Decimal, tokens: number, whenEmpty: Decimal): string {
  const v = tokens > 0 ? amountUsd.div(tokens) : whenEmpty;
  return v.toDecimalPlaces(12, Decimal.ROUND_HALF_UP).toFixed();
}

function sum(lines: readonly PricedLine[], pred: (l: PricedLine) => boolean = () => true): bigint {
  return lines.filter(pred).reduce((a, l) => a + l.amountMicros, 0n);
}

/**
 * The `costs[]` items of one category's line: one per provider the call used in it (a fallback plan
 * may have switched it), the line's amount shared out between them in proportion to what each
 * priced at (by quantity when the prices are not given), so the items sum to the line exactly.
 */
function segmentItems<U extends { provider: string; model: string; byo: boolean }>(
  line: PricedLine,
  used: U[],
  price: ((u: U) => PricedLine) | undefined,
  item: (
    u: U,
    names: { provider: string; model: string },
    priced: PricedLine | undefined,
  ) => DistributiveOmit<CostItem, "cost" | "billedBy" | "priceFallback">,
): CostItem[] {
  if (used.length === 1) {
    const u = used[0] as U;
    return [
      {
        ...item(u, { provider: line.provider, model: line.model ?? "" }, line),
        cost: microsToUsdNumber(line.amountMicros),
        billedBy: line.billedBy,
        ...(line.fallback ? { priceFallback: true } : {}),
      } as CostItem,
    ];
  }
  const priced = used.map((u) => price?.(u));
  const shares = allocateMicros(
    line.amountMicros,
    priced.map((p, i) => (p ? dec(p.amountMicros) : dec(quantityOf(used[i])))),
  );
  return used.map((u, i) => {
    const p = priced[i];
    return {
      ...item(u, { provider: normaliseProvider(u.provider), model: u.model }, p),
      cost: microsToUsdNumber(shares[i] ?? 0n),
      billedBy: u.byo ? "passthrough" : "platform",
      ...((p ?? line).fallback ? { priceFallback: true } : {}),
    } as CostItem;
  });
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A segment's quantity, to share a line out when no prices are given. */
function quantityOf(u: unknown): number {
  const r = u as {
    audioSeconds?: number;
    promptTokens?: number;
    completionTokens?: number;
    characters?: number;
  };
  return (r.audioSeconds ?? 0) + (r.promptTokens ?? 0) + (r.completionTokens ?? 0) + (r.characters ?? 0);
}

/**
 * Builds Vapi's `cost`, `costBreakdown` and `costs[]` from priced lines (and the raw usage counts).
 * `pricing` (the prices the lines were made with) only serves to share the analysis line out between
 * its steps in proportion to their exact amounts; without it the shares follow the steps' tokens.
 */
export function assemble(lines: PricedLine[], usage: CallUsage, pricing?: EffectivePricing): PricedCall {
  const get = (c: Category): PricedLine => {
    const l = lines.find((x) => x.category === c);
    if (!l) throw new Error(`usage line ${c} missing`);
    return l;
  };
  const t = get("transport");
  const s = get("stt");
  const l = get("llm");
  const v = get("tts");
  const f = get("platform");
  const totalMicros = sum(lines);
  const flag = (x: PricedLine) => (x.fallback ? { priceFallback: true } : {});
  const mins = (x: PricedLine) => Number(x.quantity);
  const earlier = usage.earlier ?? {};
  const llmUsed = [...(earlier.llm ?? []), usage.llm];
  const ttsUsed = [...(earlier.tts ?? []), usage.tts];
  const costs: CostItem[] = [
    {
      type: "transport",
      provider: t.provider,
      minutes: mins(t),
      cost: microsToUsdNumber(t.amountMicros),
      billedBy: t.billedBy,
      ...flag(t),
    },
    ...segmentItems(
      s,
      [...(earlier.stt ?? []), usage.stt],
      pricing && ((u) => sttLine(u, pricing)),
      (u, n, x) => ({
        type: "transcriber" as const,
        transcriber: n,
        minutes: x ? Number(x.quantity) : Number(billedSeconds(u.audioSeconds, "second")) / 60,
      }),
    ),
    ...segmentItems(l, llmUsed, pricing && ((u) => llmLine(u, pricing)), (u, n) => ({
      type: "model" as const,
      model: n,
      promptTokens: u.promptTokens,
      completionTokens: u.completionTokens,
      cachedPromptTokens: u.cachedPromptTokens,
    })),
    ...segmentItems(v, ttsUsed, pricing && ((u) => ttsLine(u, pricing)), (u, n) => ({
      type: "voice" as const,
      voice: n,
      characters: u.characters,
    })),
    {
      type: "vapi",
      subType: "normal",
      minutes: mins(f),
      cost: microsToUsdNumber(f.amountMicros),
      billedBy: "platform",
    },
  ];
  const costBreakdown: CostBreakdown = {
    transport: microsToUsdNumber(t.amountMicros),
    stt: microsToUsdNumber(s.amountMicros),
    llm: microsToUsdNumber(l.amountMicros),
    tts: microsToUsdNumber(v.amountMicros),
    vapi: microsToUsdNumber(f.amountMicros),
    total: microsToUsdNumber(totalMicros),
    llmPromptTokens: llmUsed.reduce((n, u) => n + u.promptTokens, 0),
    llmCompletionTokens: llmUsed.reduce((n, u) => n + u.completionTokens, 0),
    llmCachedPromptTokens: llmUsed.reduce((n, u) => n + u.cachedPromptTokens, 0),
    ttsCharacters: ttsUsed.reduce((n, u) => n + u.characters, 0),
  };
  const a = lines.find((x) => x.category === "analysis");
  if (a) {
    if (!usage.analysis) throw new Error("usage line analysis has no analysis usage");
    const au = usage.analysis;
    const steps = analysisSteps(au);
    const rate = pricing ? analysisRate(au, pricing).rate : undefined;
    const shares = allocateMicros(
      a.amountMicros,
      steps.map(([, u]) => (rate ? tokensUsd(rate, u) : dec(u.promptTokens + u.completionTokens))),
    );
    const breakdown: AnalysisCostBreakdown = {};
    steps.forEach(([step, u], i) => {
      const cost = microsToUsdNumber(shares[i] ?? 0n);
      costs.push({
        type: "analysis",
        analysisType: step,
        model: { provider: a.provider, model: a.model ?? "" },
        promptTokens: u.promptTokens,
        completionTokens: u.completionTokens,
        cachedPromptTokens: u.cachedPromptTokens,
        cost,
        billedBy: a.billedBy,
        ...flag(a),
      });
      breakdown[step] = cost;
      breakdown[`${step}PromptTokens`] = u.promptTokens;
      breakdown[`${step}CompletionTokens`] = u.completionTokens;
      breakdown[`${step}CachedPromptTokens`] = u.cachedPromptTokens;
    });
    costBreakdown.analysisCostBreakdown = breakdown;
  }
  return {
    lines,
    totalMicros,
    billedMicros: sum(lines, (x) => x.billedBy === "platform"),
    passthroughMicros: sum(lines, (x) => x.billedBy === "passthrough"),
    cost: microsToUsdNumber(totalMicros),
    costBreakdown,
    costs,
  };
}
