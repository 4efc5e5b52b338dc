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

// Prices one call's usage into its lines, one per category (transport, stt, llm, tts, platform),
// plus analysis once the post-call analysis has run, and Vapi's cost shapes. stt, llm and tts have a
// line per provider the call used in them (see `usedProviders`): a call that switched voice, or a
// squad whose members speak with different voices or keys, has a voice line for each. Rules (see
// money.ts for the rounding rule):
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
//   is always billed by the platform. The same provider and model used once with the platform's key
//   and once with the org's own are two lines, so each is billed as what it was.
// - `costs[]` has one item per line (one AnalysisCost per step for the analysis line).
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
      billedByOf(usage.transport.byo),
      !tPrice,
    ),
  );

  // stt, llm, tts: a line per provider, model and key the call used (usage.earlier included)
  const used = usedProviders(usage);
  lines.push(...used.stt.map((u) => sttLine(u, p)));
  lines.push(...used.llm.map((u) => llmLine(u, p)));
  lines.push(...used.tts.map((u) => ttsLine(u, p)));

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

function billedByOf(byo: boolean): BilledBy {
  return byo ? "passthrough" : "platform";
}

/** What tells two lines of one category apart: the provider, its model, and whose key paid it. */
export interface LineKey {
  provider: string;
  model: string | null;
  billedBy: string;
}

/** One string per distinct line of a category ("" and null models alike: the ledger stores ""). */
function lineKey(l: LineKey): string {
  return `${l.provider}\u0000${l.model ?? ""}\u0000${l.billedBy}`;
}

type KeyedLine = LineKey & { category: string };

function usageKey(u: { provider: string; model: string; byo: boolean }): string {
  return lineKey({ provider: normaliseProvider(u.provider), model: u.model, billedBy: billedByOf(u.byo) });
}

/** The transcribers, models and voices a call used, each once: what each of their lines prices. */
interface UsedProviders {
  stt: CallUsage["stt"][];
  llm: CallUsage["llm"][];
  tts: CallUsage["tts"][];
}

/**
 * The providers a call used in each category, in the order it first used them (the ones it switched
 * away from, by a fallback plan or a squad hand-off, then the one it ended with). Uses of the same
 * provider, model and key ownership are added together: they are one line.
 */
function usedProviders(usage: CallUsage): UsedProviders {
  const earlier = usage.earlier ?? {};
  return {
    stt: distinct([...(earlier.stt ?? []), usage.stt], (a, b) => ({
      ...a,
      audioSeconds: a.audioSeconds + b.audioSeconds,
    })),
    llm: distinct([...(earlier.llm ?? []), usage.llm], (a, b) => ({
      ...a,
      promptTokens: a.promptTokens + b.promptTokens,
      cachedPromptTokens: a.cachedPromptTokens + b.cachedPromptTokens,
      completionTokens: a.completionTokens + b.completionTokens,
    })),
    tts: distinct([...(earlier.tts ?? []), usage.tts], (a, b) => ({
      ...a,
      characters: a.characters + b.characters,
    })),
  };
}

function distinct<U extends { provider: string; model: string; byo: boolean }>(
  uses: U[],
  add: (a: U, b: U) => U,
): U[] {
  const out = new Map<string, U>();
  for (const u of uses) {
    const k = usageKey(u);
    const seen = out.get(k);
    out.set(k, seen ? add(seen, u) : u);
  }
  return [...out.values()];
}

/**
 * Orders a call's lines (priced or as stored) the way `costs[]` lists them: by category, and within
 * one by when the call first used the provider. Lines its usage does not name come last, by key.
 */
export function lineOrder(usage: CallUsage): (a: KeyedLine, b: KeyedLine) => number {
  const used = usedProviders(usage);
  const rank = new Map<string, number>();
  for (const c of ["stt", "llm", "tts"] as const) {
    for (const [i, u] of used[c].entries()) rank.set(`${c}\u0000${usageKey(u)}`, i);
  }
  const category = (l: { category: string }) => (CATEGORIES as readonly string[]).indexOf(l.category);
  const use = (l: KeyedLine) => rank.get(`${l.category}\u0000${lineKey(l)}`) ?? Number.MAX_SAFE_INTEGER;
  return (a, b) => category(a) - category(b) || use(a) - use(b) || lineKey(a).localeCompare(lineKey(b));
}

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
 * The analysis line: the post-call analysis tokens (every step), priced with the LLM prices of the
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
 * The usage a tokens line priced, for its item's token counts: its own provider's, or the whole
 * category's when the line is the category's only one (a call priced before a category could hold
 * several lines has one line for every provider it used).
 */
function usageOfLine<U extends { provider: string; model: string; byo: boolean }>(
  line: PricedLine,
  ofCategory: readonly PricedLine[],
  used: readonly U[],
): U[] {
  if (ofCategory.length === 1) return [...used];
  return used.filter((u) => usageKey(u) === lineKey(line));
}

/**
 * Builds Vapi's `cost`, `costBreakdown` and `costs[]` from priced lines (and the raw usage counts).
 * `pricing` (the prices the lines were made with) only serves to share the analysis line out between
 * its steps in proportion to their exact amounts; without it the shares follow the steps' tokens.
 */
export function assemble(lines: PricedLine[], usage: CallUsage, pricing?: EffectivePricing): PricedCall {
  const of = (c: Category): PricedLine[] => {
    const ls = lines.filter((x) => x.category === c);
    if (ls.length === 0) throw new Error(`usage line ${c} missing`);
    return ls;
  };
  const t = of("transport");
  const s = of("stt");
  const l = of("llm");
  const v = of("tts");
  const f = of("platform");
  const totalMicros = sum(lines);
  const common = (x: PricedLine) => ({
    cost: microsToUsdNumber(x.amountMicros),
    billedBy: x.billedBy,
    ...(x.fallback ? { priceFallback: true } : {}),
  });
  const named = (x: PricedLine) => ({ provider: x.provider, model: x.model ?? "" });
  const mins = (x: PricedLine) => Number(x.quantity);
  const used = usedProviders(usage);
  const tokens = (x: PricedLine) => {
    const u = usageOfLine(x, l, used.llm);
    return {
      promptTokens: u.reduce((n, y) => n + y.promptTokens, 0),
      completionTokens: u.reduce((n, y) => n + y.completionTokens, 0),
      cachedPromptTokens: u.reduce((n, y) => n + y.cachedPromptTokens, 0),
    };
  };
  const costs: CostItem[] = [
    ...t.map((x): CostItem => ({ type: "transport", provider: x.provider, minutes: mins(x), ...common(x) })),
    ...s.map(
      (x): CostItem => ({ type: "transcriber", transcriber: named(x), minutes: mins(x), ...common(x) }),
    ),
    ...l.map((x): CostItem => ({ type: "model", model: named(x), ...tokens(x), ...common(x) })),
    ...v.map(
      (x): CostItem => ({ type: "voice", voice: named(x), characters: Number(x.quantity), ...common(x) }),
    ),
    ...f.map((x): CostItem => ({ type: "vapi", subType: "normal", minutes: mins(x), ...common(x) })),
  ];
  const usd = (ls: readonly PricedLine[]) => microsToUsdNumber(sum(ls));
  const costBreakdown: CostBreakdown = {
    transport: usd(t),
    stt: usd(s),
    llm: usd(l),
    tts: usd(v),
    vapi: usd(f),
    total: microsToUsdNumber(totalMicros),
    llmPromptTokens: used.llm.reduce((n, u) => n + u.promptTokens, 0),
    llmCompletionTokens: used.llm.reduce((n, u) => n + u.completionTokens, 0),
    llmCachedPromptTokens: used.llm.reduce((n, u) => n + u.cachedPromptTokens, 0),
    ttsCharacters: used.tts.reduce((n, u) => n + u.characters, 0),
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
        model: named(a),
        promptTokens: u.promptTokens,
        completionTokens: u.completionTokens,
        cachedPromptTokens: u.cachedPromptTokens,
        ...common(a),
        cost,
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
