// Shared setup of the Stripe billing tests: usage lines written straight into the ledger (as the
// finalisation would), and a StripeBilling pointed at a FakeStripe.

import { StripeBilling, type StripeBillingOptions, stripeBillingConfig } from "../../libs/billing/stripe.ts";
import type { ProviderConfig } from "../../libs/config/platform.ts";
import type { Db } from "../../libs/db/index.ts";
import type { FakeStripe } from "../fakes/stripe.ts";

export function stripeEnv(fake: FakeStripe): Record<string, string> {
  return {
    STRIPE_API_URL: fake.baseUrl,
    STRIPE_SECRET_KEY: fake.secretKey,
    STRIPE_WEBHOOK_SECRET: fake.webhookSecret,
  };
}

export function billingFor(
  db: Db,
  providers: ProviderConfig,
  options: StripeBillingOptions = {},
): StripeBilling {
  return new StripeBilling(db, stripeBillingConfig(providers), options);
}

export interface SeedLine {
  category: "transport" | "stt" | "llm" | "tts" | "platform";
  billedBy: "platform" | "passthrough";
  quantity: string;
  unit: string;
  unitPrice: string;
  amountMicros: bigint;
}

/** 2.5 billed minutes: platform fee $0.125, Twilio $0.02125 (platform), STT passthrough, LLM platform, TTS passthrough. */
export const STANDARD_LINES: SeedLine[] = [
  {
    category: "transport",
    billedBy: "platform",
    quantity: "2.5",
    unit: "minute",
    unitPrice: "0.0085",
    amountMicros: 21_250n,
  },
  {
    category: "stt",
    billedBy: "passthrough",
    quantity: "2.5",
    unit: "minute",
    unitPrice: "0.0043",
    amountMicros: 10_750n,
  },
  {
    category: "llm",
    billedBy: "platform",
    quantity: "1500",
    unit: "token",
    unitPrice: "0.000001",
    amountMicros: 1_500n,
  },
  {
    category: "tts",
    billedBy: "passthrough",
    quantity: "800",
    unit: "character",
    unitPrice: "0.00018",
    amountMicros: 144_000n,
  },
  {
    category: "platform",
    billedBy: "platform",
    quantity: "2.5",
    unit: "minute",
    unitPrice: "0.05",
    amountMicros: 125_000n,
  },
];

/** An ended call with its ledger lines, as finalisation leaves it. */
export async function seedCall(
  db: Db,
  orgId: string,
  opts: { startedAt?: Date; lines?: SeedLine[] } = {},
): Promise<{ callId: string; lineIds: Record<string, string> }> {
  const startedAt = opts.startedAt ?? new Date(Date.now() - 10 * 60_000);
  const call = await db.call.create({
    data: {
      orgId,
      type: "outboundPhoneCall",
      status: "ended",
      startedAt,
      endedAt: new Date(startedAt.getTime() + 150_000),
      finalizedAt: new Date(),
    },
  });
  const lineIds: Record<string, string> = {};
  for (const l of opts.lines ?? STANDARD_LINES) {
    const row = await db.usageLine.create({
      data: {
        orgId,
        callId: call.id,
        category: l.category,
        provider: l.category === "platform" ? "vapi" : "test",
        quantity: l.quantity,
        unit: l.unit,
        unitPrice: l.unitPrice,
        amountMicros: l.amountMicros,
        billedBy: l.billedBy,
        priceVersion: "test",
        occurredAt: startedAt,
      },
    });
    lineIds[l.category] = row.id;
  }
  return { callId: call.id, lineIds };
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
