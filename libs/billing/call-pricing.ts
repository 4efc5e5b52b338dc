import type { CostBreakdown } from "../vapi/call.ts";
import type { LedgerLineInput } from "./ledger.ts";
import { microsToUsdString } from "./money.ts";
import { DEFAULT_PRICE_CATALOG, type PriceCatalog } from "./prices.ts";
import {
  assemble,
  type CostItem,
  type EffectivePricing,
  effectivePricing,
  lineOrder,
  type OrgPricingInput,
  type PricedCall,
  type PricedLine,
  priceCall,
} from "./pricing.ts";
import type { CallUsage } from "./usage.ts";

// Pricing a call into its ledger lines and its cost, in one place. Every writer of a call's cost
// goes through `priceCallLedger`: the media plane's one-statement end of call, `recordCallCost`
// (general path, retries, sweeper, calls that never connected) and `recordCallAnalysis` (the
// analysis line). It picks the price table in force when the call started and lays the
// organisation's overrides over it, prices the usage, attributes the new lines to the call (org,
// assistant, phone number, instant), and builds Vapi's `cost`, `costBreakdown` and `costs` from ALL
// the call's lines: the ones already in the ledger (given as `existing`, kept as they were priced)
// and the new ones, in `costs[]` order (`lineOrder`). So `cost` = Σ lines holds whichever writer
// ran, and a line already written is never re-priced.

export interface CallToPrice {
  callId: string;
  orgId: string;
  assistantId: string | null;
  phoneNumberId: string | null;
  /** When the call started (`startedAt ?? createdAt`): picks the price table, dates the lines. */
  occurredAt: Date;
  /** The organisation's pricing overrides and billing increment. */
  org: OrgPricingInput;
  /** Everything the call used, `analysis` included once the post-call analysis has run. */
  usage: CallUsage;
}

/** The Call columns that carry its cost, ready to write (`cost` as an exact decimal string). */
export interface CallCostColumns {
  cost: string;
  costBreakdown: CostBreakdown;
  costs: CostItem[];
}

export interface CallLedgerPricing {
  pricing: EffectivePricing;
  /** All the call's lines (existing and new) and Vapi's cost shapes built from them. */
  priced: PricedCall;
  /** The lines to insert: those of the categories the ledger has none of, attributed to the call. */
  newLines: LedgerLineInput[];
  columns: CallCostColumns;
}

export interface PriceCallLedgerOptions {
  /** The deployment's price catalogue (`priceCatalogFromEnv(env)`); the built-in table otherwise. */
  catalog?: PriceCatalog;
  /** The call's lines already in the ledger; their categories are not priced again. */
  existing?: readonly PricedLine[];
}

/** Prices a call's usage into the ledger lines it still lacks and the cost of all its lines. Pure. */
export function priceCallLedger(call: CallToPrice, options: PriceCallLedgerOptions = {}): CallLedgerPricing {
  const catalog = options.catalog ?? DEFAULT_PRICE_CATALOG;
  const existing = options.existing ?? [];
  const pricing = effectivePricing(catalog.tableAt(call.occurredAt), call.org);
  const held = new Set(existing.map((l) => l.category));
  const fresh = priceCall(call.usage, pricing).lines.filter((l) => !held.has(l.category));
  const lines = [...existing, ...fresh].sort(lineOrder(call.usage));
  const priced = assemble(lines, call.usage, pricing);
  return {
    pricing,
    priced,
    newLines: fresh.map((l) => ({
      ...l,
      orgId: call.orgId,
      callId: call.callId,
      assistantId: call.assistantId,
      phoneNumberId: call.phoneNumberId,
      occurredAt: call.occurredAt,
    })),
    columns: {
      cost: microsToUsdString(priced.totalMicros),
      costBreakdown: priced.costBreakdown,
      costs: priced.costs,
    },
  };
}
