import { readFileSync } from "node:fs";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ConfigError, type Env } from "../config/env.ts";
import { DECIMAL_STRING } from "./money.ts";

// The versioned price table. Every price is a decimal string in USD (never a float):
//   transport: per provider, USD per minute inbound / outbound (Twilio voice minutes);
//   stt:       per provider and model, USD per audio minute (Deepgram streaming);
//   llm:       per provider and model, USD per 1M prompt / cached prompt / completion tokens;
//   tts:       per provider and model, USD per 1,000 characters;
//   platformFeePerMinuteUsd: the platform's own fee per call minute (Vapi's: $0.05).
// A version applies from its `effectiveFrom` (UTC midnight of that date) until the next version;
// a call is priced with the version in force when it started (`Call.startedAt ?? createdAt`).
// Calls older than the first version use the first version.
//
// Model lookup: the exact model name, else the longest listed model that prefixes it at a "-"
// boundary (dated snapshots: "gpt-4o-2024-08-06" → "gpt-4o", "gpt-4o-mini-2024-07-18" →
// "gpt-4o-mini"), else the provider's "*" entry (custom-llm: any model, priced at zero). A provider
// or model that is not listed is priced with the version's `fallback`
// price for that category and flagged (`fallback: true` on the priced line, `priceFallback` in
// `costs[]`, and `priceVersion` suffixed "#fallback" in the ledger) so operators can extend the table.
//
// Deployment configuration (see `.env.example`):
//   PRICE_TABLE_PATH=/etc/switchboard/prices.json  — `{ "replace"?: boolean, "versions": [...] }`.
//     Each version there is merged over the version in force just before its `effectiveFrom`
//     (so it only needs the prices that change), unless `replace` is true, in which case the file's
//     versions replace the built-in table entirely (its first version must then be complete). A file
//     version with the same `version` id as a built-in one replaces that built-in version.
//   PLATFORM_FEE_PER_MINUTE_USD=0.05 — replaces the platform fee of every version.
// Per organisation, `Org.pricingOverrides` = `{ platformFeePerMinuteUsd?: "0.04", prices?: {…same
// shape as a version's prices…} }` is merged over the version in force and wins over both.

const Price = Type.String({ pattern: DECIMAL_STRING.source });
const DateOnly = Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}$" });

export const TransportPrice = Type.Object(
  { inboundPerMinuteUsd: Price, outboundPerMinuteUsd: Price },
  { additionalProperties: false },
);
export const SttPrice = Type.Object({ perMinuteUsd: Price }, { additionalProperties: false });
export const LlmPrice = Type.Object(
  { promptPer1MTokensUsd: Price, cachedPromptPer1MTokensUsd: Price, completionPer1MTokensUsd: Price },
  { additionalProperties: false },
);
export const TtsPrice = Type.Object({ per1KCharactersUsd: Price }, { additionalProperties: false });

export const PriceEntries = Type.Object(
  {
    transport: Type.Optional(Type.Record(Type.String(), TransportPrice)),
    stt: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), SttPrice))),
    llm: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), LlmPrice))),
    tts: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), TtsPrice))),
  },
  { additionalProperties: false },
);
export type PriceEntries = Static<typeof PriceEntries>;

export const FallbackPrices = Type.Object(
  { transport: TransportPrice, stt: SttPrice, llm: LlmPrice, tts: TtsPrice },
  { additionalProperties: false },
);
export type FallbackPrices = Static<typeof FallbackPrices>;

export const PriceTableVersionInput = Type.Object(
  {
    version: Type.String({ minLength: 1, maxLength: 60 }),
    effectiveFrom: DateOnly,
    platformFeePerMinuteUsd: Type.Optional(Price),
    prices: Type.Optional(PriceEntries),
    fallback: Type.Optional(Type.Partial(FallbackPrices)),
  },
  { additionalProperties: false },
);
export type PriceTableVersionInput = Static<typeof PriceTableVersionInput>;

export const PriceTableFile = Type.Object(
  { replace: Type.Optional(Type.Boolean()), versions: Type.Array(PriceTableVersionInput, { minItems: 1 }) },
  { additionalProperties: false },
);
export type PriceTableFile = Static<typeof PriceTableFile>;

/** `Org.pricingOverrides`. `platformFeePerMinuteMicros` is accepted too (integer micro-dollars). */
export const PricingOverrides = Type.Object(
  {
    platformFeePerMinuteUsd: Type.Optional(Price),
    platformFeePerMinuteMicros: Type.Optional(Type.Integer({ minimum: 0 })),
    prices: Type.Optional(PriceEntries),
  },
  { additionalProperties: false },
);
export type PricingOverrides = Static<typeof PricingOverrides>;

/** A complete, resolved version of the table. */
export interface PriceTable {
  version: string;
  effectiveFrom: string;
  /** UTC midnight of `effectiveFrom`, ms. */
  effectiveFromMs: number;
  platformFeePerMinuteUsd: string;
  prices: Required<PriceEntries>;
  fallback: FallbackPrices;
}

/**
 * Built-in list prices (USD, public pay-as-you-go list prices as of mid 2025).
 * Twilio: US local voice. Deepgram and AssemblyAI: streaming (a voice agent streams). OpenAI: standard tier.
 * ElevenLabs: API characters. Web/WebSocket transports carry no telephony cost.
 */
export const BUILTIN_PRICE_TABLE: PriceTableVersionInput[] = [
  {
    version: "2025-06-01",
    effectiveFrom: "2025-01-01",
    platformFeePerMinuteUsd: "0.05",
    prices: {
      transport: {
        twilio: { inboundPerMinuteUsd: "0.0085", outboundPerMinuteUsd: "0.014" },
        "vapi.websocket": { inboundPerMinuteUsd: "0", outboundPerMinuteUsd: "0" },
        websocket: { inboundPerMinuteUsd: "0", outboundPerMinuteUsd: "0" },
        web: { inboundPerMinuteUsd: "0", outboundPerMinuteUsd: "0" },
        daily: { inboundPerMinuteUsd: "0", outboundPerMinuteUsd: "0" },
      },
      stt: {
        deepgram: {
          "nova-3": { perMinuteUsd: "0.0077" },
          "nova-3-general": { perMinuteUsd: "0.0077" },
          "nova-3-multilingual": { perMinuteUsd: "0.0092" },
          "nova-3-medical": { perMinuteUsd: "0.0077" },
          "nova-2": { perMinuteUsd: "0.0058" },
          nova: { perMinuteUsd: "0.0058" },
          flux: { perMinuteUsd: "0.0077" },
          enhanced: { perMinuteUsd: "0.0165" },
          base: { perMinuteUsd: "0.0145" },
        },
        // AssemblyAI bills a streaming session's open time: $0.15/hr Universal-Streaming (English and
        // multilingual), $0.45/hr the U3 Pro realtime family.
        "assembly-ai": {
          "universal-streaming-english": { perMinuteUsd: "0.0025" },
          "universal-streaming-multilingual": { perMinuteUsd: "0.0025" },
          "universal-3-5-pro": { perMinuteUsd: "0.0075" },
        },
        // OpenAI's published per-minute estimates of its transcription models.
        openai: {
          "gpt-4o-transcribe": { perMinuteUsd: "0.006" },
          "gpt-4o-mini-transcribe": { perMinuteUsd: "0.003" },
        },
      },
      llm: {
        openai: {
          "gpt-4o": {
            promptPer1MTokensUsd: "2.50",
            cachedPromptPer1MTokensUsd: "1.25",
            completionPer1MTokensUsd: "10.00",
          },
          "gpt-4o-mini": {
            promptPer1MTokensUsd: "0.15",
            cachedPromptPer1MTokensUsd: "0.075",
            completionPer1MTokensUsd: "0.60",
          },
          "gpt-4.1": {
            promptPer1MTokensUsd: "2.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "8.00",
          },
          "gpt-4.1-mini": {
            promptPer1MTokensUsd: "0.40",
            cachedPromptPer1MTokensUsd: "0.10",
            completionPer1MTokensUsd: "1.60",
          },
          "gpt-4.1-nano": {
            promptPer1MTokensUsd: "0.10",
            cachedPromptPer1MTokensUsd: "0.025",
            completionPer1MTokensUsd: "0.40",
          },
          "gpt-5": {
            promptPer1MTokensUsd: "1.25",
            cachedPromptPer1MTokensUsd: "0.125",
            completionPer1MTokensUsd: "10.00",
          },
          "gpt-5-mini": {
            promptPer1MTokensUsd: "0.25",
            cachedPromptPer1MTokensUsd: "0.025",
            completionPer1MTokensUsd: "2.00",
          },
          "gpt-5-nano": {
            promptPer1MTokensUsd: "0.05",
            cachedPromptPer1MTokensUsd: "0.005",
            completionPer1MTokensUsd: "0.40",
          },
          "gpt-5.1": {
            promptPer1MTokensUsd: "1.25",
            cachedPromptPer1MTokensUsd: "0.125",
            completionPer1MTokensUsd: "10.00",
          },
          "gpt-4-turbo": {
            promptPer1MTokensUsd: "10.00",
            cachedPromptPer1MTokensUsd: "10.00",
            completionPer1MTokensUsd: "30.00",
          },
          "gpt-4": {
            promptPer1MTokensUsd: "30.00",
            cachedPromptPer1MTokensUsd: "30.00",
            completionPer1MTokensUsd: "60.00",
          },
          "gpt-3.5-turbo": {
            promptPer1MTokensUsd: "0.50",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "1.50",
          },
          o3: {
            promptPer1MTokensUsd: "2.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "8.00",
          },
          "o4-mini": {
            promptPer1MTokensUsd: "1.10",
            cachedPromptPer1MTokensUsd: "0.275",
            completionPer1MTokensUsd: "4.40",
          },
        },
        // Anthropic: list prices per MTok (platform.claude.com/docs/en/about-claude/pricing, checked
        // 2026-12): base input, cache hits (`cache_read_input_tokens`), output. Cache writes
        // (`cache_creation_input_tokens`, 1.25× input for 5 minutes) are priced as base input.
        // Haiku 5.5's rate is for prompts up to 100K tokens (5× above).
        anthropic: {
          "claude-opus-4-5": {
            promptPer1MTokensUsd: "5.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "25.00",
          },
          "claude-opus-4-6": {
            promptPer1MTokensUsd: "5.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "25.00",
          },
          "claude-opus-4-7": {
            promptPer1MTokensUsd: "5.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "25.00",
          },
          "claude-opus-4-8": {
            promptPer1MTokensUsd: "5.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "25.00",
          },
          "claude-opus-5": {
            promptPer1MTokensUsd: "5.00",
            cachedPromptPer1MTokensUsd: "0.50",
            completionPer1MTokensUsd: "25.00",
          },
          "claude-opus-5-5": {
            promptPer1MTokensUsd: "4.00",
            cachedPromptPer1MTokensUsd: "0.20",
            completionPer1MTokensUsd: "20.00",
          },
          "claude-sonnet-4-6": {
            promptPer1MTokensUsd: "3.00",
            cachedPromptPer1MTokensUsd: "0.30",
            completionPer1MTokensUsd: "15.00",
          },
          "claude-sonnet-5": {
            promptPer1MTokensUsd: "2.00",
            cachedPromptPer1MTokensUsd: "0.20",
            completionPer1MTokensUsd: "10.00",
          },
          "claude-sonnet-5-5": {
            promptPer1MTokensUsd: "2.00",
            cachedPromptPer1MTokensUsd: "0.10",
            completionPer1MTokensUsd: "10.00",
          },
          "claude-haiku-4-5": {
            promptPer1MTokensUsd: "1.00",
            cachedPromptPer1MTokensUsd: "0.10",
            completionPer1MTokensUsd: "5.00",
          },
          "claude-haiku-5-5": {
            promptPer1MTokensUsd: "0.10",
            cachedPromptPer1MTokensUsd: "0.01",
            completionPer1MTokensUsd: "0.50",
          },
          "claude-fable-5": {
            promptPer1MTokensUsd: "10.00",
            cachedPromptPer1MTokensUsd: "1.00",
            completionPer1MTokensUsd: "50.00",
          },
          "claude-fable-5-1": {
            promptPer1MTokensUsd: "10.00",
            cachedPromptPer1MTokensUsd: "0.25",
            completionPer1MTokensUsd: "50.00",
          },
          "claude-fable-5-2": {
            promptPer1MTokensUsd: "8.00",
            cachedPromptPer1MTokensUsd: "0.20",
            completionPer1MTokensUsd: "40.00",
          },
          "claude-mythos-5": {
            promptPer1MTokensUsd: "10.00",
            cachedPromptPer1MTokensUsd: "1.00",
            completionPer1MTokensUsd: "50.00",
          },
          "claude-mythos-5-1": {
            promptPer1MTokensUsd: "10.00",
            cachedPromptPer1MTokensUsd: "0.25",
            completionPer1MTokensUsd: "50.00",
          },
          "claude-mythos-5-2": {
            promptPer1MTokensUsd: "8.00",
            cachedPromptPer1MTokensUsd: "0.20",
            completionPer1MTokensUsd: "40.00",
          },
        },
        // A customer's own LLM server: the customer pays for it, the platform charges nothing.
        "custom-llm": {
          "*": { promptPer1MTokensUsd: "0", cachedPromptPer1MTokensUsd: "0", completionPer1MTokensUsd: "0" },
        },
      },
      tts: {
        "11labs": {
          eleven_flash_v2_5: { per1KCharactersUsd: "0.05" },
          eleven_flash_v2: { per1KCharactersUsd: "0.05" },
          eleven_turbo_v2_5: { per1KCharactersUsd: "0.05" },
          eleven_turbo_v2: { per1KCharactersUsd: "0.05" },
          eleven_multilingual_v2: { per1KCharactersUsd: "0.10" },
          eleven_v3: { per1KCharactersUsd: "0.10" },
          eleven_monolingual_v1: { per1KCharactersUsd: "0.10" },
        },
        openai: {
          "tts-1": { per1KCharactersUsd: "0.015" },
          "tts-1-hd": { per1KCharactersUsd: "0.030" },
          // Billed in tokens; OpenAI's own estimate is $0.015 per minute of speech (~1,000 characters).
          "gpt-4o-mini-tts": { per1KCharactersUsd: "0.015" },
        },
        // ~1 credit per character; the Pro plan's credits ($5 for 100,000).
        cartesia: {
          "sonic-3.5": { per1KCharactersUsd: "0.05" },
          "sonic-3": { per1KCharactersUsd: "0.05" },
          "sonic-2": { per1KCharactersUsd: "0.05" },
        },
        deepgram: {
          "aura-2": { per1KCharactersUsd: "0.030" },
          aura: { per1KCharactersUsd: "0.015" },
        },
      },
    },
    // Unknown provider or model: the priciest common choice of each category, flagged.
    fallback: {
      transport: { inboundPerMinuteUsd: "0.0085", outboundPerMinuteUsd: "0.014" },
      stt: { perMinuteUsd: "0.0077" },
      llm: {
        promptPer1MTokensUsd: "2.50",
        cachedPromptPer1MTokensUsd: "1.25",
        completionPer1MTokensUsd: "10.00",
      },
      tts: { per1KCharactersUsd: "0.10" },
    },
  },
];

/** Provider names as the media plane may record them → the table's key. */
const PROVIDER_ALIASES: Record<string, string> = { elevenlabs: "11labs", "eleven-labs": "11labs" };

export function normaliseProvider(provider: string): string {
  const p = provider.trim().toLowerCase();
  return PROVIDER_ALIASES[p] ?? p;
}

function utcMs(date: string): number {
  return Date.parse(`${date}T00:00:00.000Z`);
}

type Mergeable = Record<string, unknown>;
function isPlainObject(v: unknown): v is Mergeable {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
/** Deep merge of plain objects; `over` wins. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Mergeable = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

function complete(v: PriceTableVersionInput, base: PriceTable | undefined, where: string): PriceTable {
  const fee = v.platformFeePerMinuteUsd ?? base?.platformFeePerMinuteUsd;
  const fallback = deepMerge(base?.fallback ?? {}, v.fallback ?? {}) as Partial<FallbackPrices>;
  if (fee === undefined)
    throw new ConfigError(`${where}: version ${v.version} needs platformFeePerMinuteUsd`);
  for (const k of ["transport", "stt", "llm", "tts"] as const) {
    if (!fallback[k]) throw new ConfigError(`${where}: version ${v.version} needs fallback.${k}`);
  }
  const empty: Required<PriceEntries> = { transport: {}, stt: {}, llm: {}, tts: {} };
  const prices = deepMerge<Required<PriceEntries>>(base?.prices ?? empty, v.prices ?? {});
  return {
    version: v.version,
    effectiveFrom: v.effectiveFrom,
    effectiveFromMs: utcMs(v.effectiveFrom),
    platformFeePerMinuteUsd: fee,
    prices,
    fallback: fallback as FallbackPrices,
  };
}

/** The resolved versions of the price table, oldest first. */
export class PriceCatalog {
  readonly versions: readonly PriceTable[];

  constructor(versions: PriceTable[]) {
    if (versions.length === 0) throw new ConfigError("price table: at least one version is required");
    this.versions = [...versions].sort((a, b) => a.effectiveFromMs - b.effectiveFromMs);
  }

  /** The version in force at `at` (the first version for anything older). */
  tableAt(at: Date): PriceTable {
    const t = at.getTime();
    let found = this.versions[0] as PriceTable;
    for (const v of this.versions) if (v.effectiveFromMs <= t) found = v;
    return found;
  }

  byVersion(version: string): PriceTable | undefined {
    return this.versions.find((v) => v.version === version);
  }
}

export interface PriceCatalogOptions {
  /** Deployment table (the parsed PRICE_TABLE_PATH file). */
  file?: PriceTableFile;
  /** Deployment platform fee (PLATFORM_FEE_PER_MINUTE_USD), replacing every version's fee. */
  platformFeePerMinuteUsd?: string;
}

export function buildPriceCatalog(options: PriceCatalogOptions = {}, where = "price table"): PriceCatalog {
  const fileVersions = options.file?.versions ?? [];
  const fileIds = new Set(fileVersions.map((v) => v.version));
  const builtins = options.file?.replace ? [] : BUILTIN_PRICE_TABLE.filter((v) => !fileIds.has(v.version));
  const all = [
    ...builtins.map((v) => ({ v, fromFile: false })),
    ...fileVersions.map((v) => ({ v, fromFile: true })),
  ].sort((a, b) => utcMs(a.v.effectiveFrom) - utcMs(b.v.effectiveFrom));
  const seen = new Set<string>();
  const resolved: PriceTable[] = [];
  for (const { v, fromFile } of all) {
    if (seen.has(v.version)) throw new ConfigError(`${where}: version ${v.version} appears twice`);
    seen.add(v.version);
    // Each version inherits from the one before it (built-in versions are complete already).
    const base = fromFile || resolved.length > 0 ? resolved[resolved.length - 1] : undefined;
    const table = complete(v, base, where);
    if (options.platformFeePerMinuteUsd !== undefined)
      table.platformFeePerMinuteUsd = options.platformFeePerMinuteUsd;
    resolved.push(table);
  }
  return new PriceCatalog(resolved);
}

/** Parses and validates a price table file's JSON text. */
export function parsePriceTableFile(text: string, where: string): PriceTableFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const errors = [...Value.Errors(PriceTableFile as TSchema, json)];
  if (errors.length > 0) {
    const lines = errors.slice(0, 10).map((e) => `${e.path || "/"}: ${e.message}`);
    throw new ConfigError(`${where}: invalid price table:\n  ${lines.join("\n  ")}`);
  }
  return json as PriceTableFile;
}

export function loadPriceCatalog(options: {
  priceTablePath?: string;
  platformFeePerMinuteUsd?: string;
}): PriceCatalog {
  let file: PriceTableFile | undefined;
  if (options.priceTablePath) {
    const where = `PRICE_TABLE_PATH (${options.priceTablePath})`;
    let text: string;
    try {
      text = readFileSync(options.priceTablePath, "utf8");
    } catch (e) {
      throw new ConfigError(`${where}: cannot read (${(e as Error).message})`);
    }
    file = parsePriceTableFile(text, where);
  }
  return buildPriceCatalog(
    { file, platformFeePerMinuteUsd: options.platformFeePerMinuteUsd },
    options.priceTablePath ? `PRICE_TABLE_PATH (${options.priceTablePath})` : "price table",
  );
}

/** The deployment's price catalogue, from PRICE_TABLE_PATH and PLATFORM_FEE_PER_MINUTE_USD. */
export function priceCatalogFromEnv(env: Env): PriceCatalog {
  return loadPriceCatalog({
    priceTablePath: env.PRICE_TABLE_PATH,
    platformFeePerMinuteUsd: env.PLATFORM_FEE_PER_MINUTE_USD,
  });
}

/** The built-in table with no deployment configuration. */
export const DEFAULT_PRICE_CATALOG: PriceCatalog = buildPriceCatalog();

/**
 * Exact model, else the longest listed model prefixing it at a "-" boundary, else the provider's
 * `"*"` entry (any model: a customer's own LLM, whatever it is called).
 */
export function lookupModel<T>(models: Record<string, T> | undefined, model: string): T | undefined {
  if (!models) return undefined;
  const m = model.trim().toLowerCase();
  const exact = models[m];
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(models)) {
    if (key === "*") continue;
    if (m.startsWith(`${key.toLowerCase()}-`) && (!best || key.length > best.length)) best = key;
  }
  return best === undefined ? models["*"] : models[best];
}
