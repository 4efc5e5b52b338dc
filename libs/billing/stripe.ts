import type { Redis } from "ioredis";
import Stripe from "stripe";
import type { ProviderConfig } from "../config/platform.ts";
import type { UsageLine } from "../db/generated/client.ts";
import type { Db } from "../db/index.ts";
import { ForbiddenError, NotFoundError, UpstreamError } from "../errors/index.ts";
import { Decimal, dec } from "./money.ts";
import { DEFAULT_PRICE_CATALOG, type PriceCatalog } from "./prices.ts";
import { effectivePricing } from "./pricing.ts";
import { applyStripeEvent, type WebhookOutcome } from "./stripe-webhooks.ts";

export type { StripeEventOutcome, WebhookOutcome } from "./stripe-webhooks.ts";

// The Stripe half of billing: every organisation gets a Stripe customer and a subscription to two
// metered prices, each attached to a Billing Meter, and each platform-billed usage line becomes one
// meter event.
//
// Meter / value scheme (one meter event per UsageLine with billedBy = "platform"):
// - `voice_minutes` (STRIPE_METER_VOICE_MINUTES): the platform line (category "platform", unit
//   "minute"); value = the line's billed minutes as a decimal string (the ledger keeps 6 decimals:
//   exact for per-minute billing, seconds / 60 at 6 places for per-second billing). Its price is the
//   organisation's platform fee per minute (`unit_amount_decimal` in cents, e.g. "5" for $0.05).
// - `provider_usage` (STRIPE_METER_PROVIDER_USAGE): every other platform-billed line (transport,
//   stt, llm, tts, and the post-call analysis tokens, when the platform's own provider keys paid);
//   value = the line's amountMicros
//   (integer micro-dollars); price $0.000001 per unit (`unit_amount_decimal` "0.0001" cents), so
//   Stripe's amount equals our ledger to the micro-dollar before Stripe's rounding to cents.
// Passthrough lines (the organisation's own provider key) are never reported.
// `identifier` = the line id (Stripe de-duplicates; a 400 "already exists with identifier" is taken
// as proof of delivery), `timestamp` = occurredAt clamped into Stripe's window (past 35 days, here
// with an hour of margin). `reportedAt` is set only after Stripe accepted the event, with
// `WHERE reportedAt IS NULL`, and only unreported lines are ever sent. No fixed Idempotency-Key is
// used for meter events: Stripe replays a cached 500 for a reused key, which would defeat retries;
// the identifier is the de-duplication key.
//
// Where the Stripe objects are remembered: in Stripe itself. Meters are found by `event_name`
// (list, status=active) and created once otherwise; prices are found by `lookup_key`
// (`switchboard_<event>_usd_<fee>` per distinct platform fee, `switchboard_<event>_micro_usd`) and
// created once otherwise, unless STRIPE_PRICE_VOICE_MINUTES / STRIPE_PRICE_PROVIDER_USAGE name
// existing prices. Creation uses deterministic Idempotency-Keys so racing processes converge; results
// are cached per process. The customer and subscription ids live on Org.

export interface BillingLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error?(obj: object, msg?: string): void;
}

const silentLogger: BillingLogger = { info() {}, warn() {}, error() {} };

export interface StripeBillingConfig {
  apiUrl: string;
  secretKey?: string;
  webhookSecret?: string;
  meterVoiceMinutes: string;
  meterProviderUsage: string;
  priceVoiceMinutes?: string;
  priceProviderUsage?: string;
}

export function stripeBillingConfig(providers: ProviderConfig): StripeBillingConfig {
  return {
    apiUrl: providers.stripeApiUrl,
    secretKey: providers.stripeSecretKey,
    webhookSecret: providers.stripeWebhookSecret,
    meterVoiceMinutes: providers.stripeMeterVoiceMinutes,
    meterProviderUsage: providers.stripeMeterProviderUsage,
    priceVoiceMinutes: providers.stripePriceVoiceMinutes,
    priceProviderUsage: providers.stripePriceProviderUsage,
  };
}

/** The official SDK pointed at `apiUrl` (a fake in tests). Our jobs retry, so the SDK does not. */
export function createStripeClient(apiUrl: string, secretKey: string): Stripe {
  const u = new URL(apiUrl);
  const protocol = u.protocol === "http:" ? "http" : "https";
  return new Stripe(secretKey, {
    host: u.hostname,
    port: u.port || (protocol === "http" ? 80 : 443),
    protocol,
    maxNetworkRetries: 0,
    telemetry: false,
    timeout: 20_000,
  });
}

export interface StripeBillingOptions {
  logger?: BillingLogger;
  /** Where reconciliation results are kept for operators (`switchboard:billing:reconciliation:<orgId>`). */
  redis?: Redis;
  /** Prices the platform fee of the voice-minutes price (the deployment's table + org overrides). */
  catalog?: PriceCatalog;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export interface StripeAccount {
  customerId: string;
  subscriptionId: string;
}

export interface Meters {
  voiceMinutes: Stripe.Billing.Meter;
  providerUsage: Stripe.Billing.Meter;
}

export interface ReportResult {
  /** False when Stripe is not configured: nothing was sent or marked. */
  configured: boolean;
  /** Lines Stripe accepted now (incl. ones it already had under the same identifier). */
  reported: number;
  /** Zero-valued lines marked reported without an event. */
  skippedZero: number;
  /** Platform lines of the call that were already reported before this run. */
  alreadyReported: number;
}

export interface MeterComparison {
  /** "voice_minutes" | "provider_usage" (the configured event names). */
  eventName: string;
  meterId: string;
  /** voice minutes as a decimal, provider usage in micro-dollars, as decimal strings. */
  ours: string;
  stripe: string;
  /** stripe − ours. */
  difference: string;
  match: boolean;
}

export interface ReconciliationResult {
  orgId: string;
  customerId: string;
  /** ISO, aligned down/up to whole minutes (Stripe's summary granularity). */
  periodStart: string;
  periodEnd: string;
  checkedAt: string;
  ok: boolean;
  meters: MeterComparison[];
  /** Platform lines in the period not yet reported (pending, not a difference). */
  unreportedLines: number;
}

export interface InvoiceSummary {
  id: string | null;
  number: string | null;
  status: string | null;
  amount_due: number;
  amount_paid: number;
  currency: string;
  period_start: number;
  period_end: number;
  hosted_invoice_url: string | null;
  created: number;
}

export interface InvoiceList {
  data: InvoiceSummary[];
  upcoming: InvoiceSummary | null;
}

const DAY_MS = 86_400_000;
/** Stripe accepts meter events up to 35 days old; keep an hour of margin for clock skew. */
const MAX_EVENT_AGE_MS = 35 * DAY_MS - 3_600_000;
const RECONCILIATION_TTL_S = 90 * 86_400;

export function reconciliationKey(orgId: string): string {
  return `switchboard:billing:reconciliation:${orgId}`;
}

function isDuplicateIdentifier(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.StripeError &&
    err.statusCode === 400 &&
    (err.code === "duplicate_meter_event" || /already exists with identifier/i.test(err.message))
  );
}

function summarise(inv: Stripe.Invoice): InvoiceSummary {
  return {
    id: inv.id ?? null,
    number: inv.number ?? null,
    status: inv.status ?? null,
    amount_due: inv.amount_due,
    amount_paid: inv.amount_paid,
    currency: inv.currency,
    period_start: inv.period_start,
    period_end: inv.period_end,
    hosted_invoice_url: inv.hosted_invoice_url ?? null,
    created: inv.created,
  };
}

export class StripeBilling {
  readonly config: StripeBillingConfig;
  readonly #db: Db;
  readonly #logger: BillingLogger;
  readonly #redis?: Redis;
  readonly #catalog: PriceCatalog;
  readonly #now: () => number;
  #client?: Stripe;
  #meters?: Promise<Meters>;
  readonly #prices = new Map<string, Promise<string>>();
  #warnedUnconfigured = false;

  constructor(db: Db, config: StripeBillingConfig, options: StripeBillingOptions = {}) {
    this.#db = db;
    this.config = config;
    this.#logger = options.logger ?? silentLogger;
    this.#redis = options.redis;
    this.#catalog = options.catalog ?? DEFAULT_PRICE_CATALOG;
    this.#now = options.now ?? Date.now;
  }

  /** True when STRIPE_SECRET_KEY is set: usage is reported and invoices are read from Stripe. */
  get enabled(): boolean {
    return Boolean(this.config.secretKey);
  }

  get stripe(): Stripe {
    if (!this.config.secretKey) throw new Error("Stripe is not configured (STRIPE_SECRET_KEY)");
    this.#client ??= createStripeClient(this.config.apiUrl, this.config.secretKey);
    return this.#client;
  }

  #noteUnconfigured(what: string, log: BillingLogger): void {
    if (this.#warnedUnconfigured) return;
    this.#warnedUnconfigured = true;
    log.warn(
      { what },
      "STRIPE_SECRET_KEY is not set: usage is not reported to Stripe (lines stay unreported; the billing dashboard still works)",
    );
  }

  /** The two billing meters, found by event name or created once. */
  ensureMeters(): Promise<Meters> {
    this.#meters ??= this.#loadMeters().catch((err: unknown) => {
      this.#meters = undefined;
      throw err;
    });
    return this.#meters;
  }

  async #loadMeters(): Promise<Meters> {
    const existing = await this.stripe.billing.meters
      .list({ status: "active", limit: 100 })
      .autoPagingToArray({
        limit: 10_000,
      });
    const find = async (eventName: string, displayName: string): Promise<Stripe.Billing.Meter> => {
      const found = existing.find((m) => m.event_name === eventName);
      if (found) return found;
      return this.stripe.billing.meters.create(
        {
          display_name: displayName,
          event_name: eventName,
          default_aggregation: { formula: "sum" },
          customer_mapping: { type: "by_id", event_payload_key: "stripe_customer_id" },
          value_settings: { event_payload_key: "value" },
        },
        { idempotencyKey: `switchboard-meter-${eventName}` },
      );
    };
    return {
      voiceMinutes: await find(this.config.meterVoiceMinutes, "Voice minutes"),
      providerUsage: await find(this.config.meterProviderUsage, "Provider usage (micro-dollars)"),
    };
  }

  /** A metered price found by lookup key or created once. */
  #ensurePrice(lookupKey: string, create: () => Stripe.PriceCreateParams): Promise<string> {
    let p = this.#prices.get(lookupKey);
    if (!p) {
      p = (async () => {
        const found = await this.stripe.prices.list({ lookup_keys: [lookupKey], active: true, limit: 1 });
        if (found.data[0]) return found.data[0].id;
        try {
          const price = await this.stripe.prices.create(
            { ...create(), lookup_key: lookupKey },
            { idempotencyKey: `switchboard-price-${lookupKey}` },
          );
          return price.id;
        } catch (err) {
          // Another process created it first.
          const again = await this.stripe.prices.list({ lookup_keys: [lookupKey], active: true, limit: 1 });
          if (again.data[0]) return again.data[0].id;
          throw err;
        }
      })().catch((err: unknown) => {
        this.#prices.delete(lookupKey);
        throw err;
      });
      this.#prices.set(lookupKey, p);
    }
    return p;
  }

  /**
   * Price ids an organisation's subscription uses: [voice minutes, provider usage]. The minute price
   * is the platform fee per minute the ledger charged (`feePerMinuteUsd`, the platform line's unit
   * price) or, without one, the catalogue's current fee with the organisation's overrides.
   */
  async pricesFor(
    org: { pricingOverrides: unknown; billingIncrement: string },
    feePerMinuteUsd?: string,
  ): Promise<[string, string]> {
    const meters = await this.ensureMeters();
    const { meterVoiceMinutes: voice, meterProviderUsage: provider } = this.config;
    const feeUsd =
      feePerMinuteUsd ??
      effectivePricing(this.#catalog.tableAt(new Date(this.#now())), org).platformFeePerMinuteUsd;
    const feeCents = dec(feeUsd).times(100).toFixed();
    const voicePrice =
      this.config.priceVoiceMinutes ??
      (await this.#ensurePrice(`switchboard_${voice}_usd_${dec(feeUsd).toFixed()}`, () => ({
        currency: "usd",
        unit_amount_decimal: Stripe.Decimal.from(feeCents),
        nickname: `Voice minutes at $${dec(feeUsd).toFixed()}/min`,
        product_data: { name: "Voice minutes" },
        recurring: { interval: "month", usage_type: "metered", meter: meters.voiceMinutes.id },
      })));
    const providerPrice =
      this.config.priceProviderUsage ??
      (await this.#ensurePrice(`switchboard_${provider}_micro_usd`, () => ({
        currency: "usd",
        unit_amount_decimal: Stripe.Decimal.from("0.0001"),
        nickname: "Provider usage per micro-dollar",
        product_data: { name: "Provider usage" },
        recurring: { interval: "month", usage_type: "metered", meter: meters.providerUsage.id },
      })));
    return [voicePrice, providerPrice];
  }

  /**
   * The organisation's Stripe customer and subscription, created on first need. Concurrent callers
   * (two report jobs, two processes) serialise on a Postgres advisory lock per organisation, so
   * exactly one customer and one subscription are created; creation also carries deterministic
   * Idempotency-Keys in case a process dies between Stripe's answer and our commit.
   */
  async ensureCustomer(
    orgId: string,
    opts: { usageSince?: Date; feePerMinuteUsd?: string; log?: BillingLogger } = {},
  ): Promise<StripeAccount> {
    const log = opts.log ?? this.#logger;
    const org = await this.#db.org.findUnique({ where: { id: orgId } });
    if (!org) throw new NotFoundError("Org", orgId);
    if (org.stripeCustomerId && org.stripeSubscriptionId) {
      return { customerId: org.stripeCustomerId, subscriptionId: org.stripeSubscriptionId };
    }
    const [voicePrice, providerPrice] = await this.pricesFor(org, opts.feePerMinuteUsd);
    return this.#db.$transaction(
      async (tx) => {
        const lockKey = `switchboard:stripe-customer:${orgId}`;
        await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended(${lockKey}, 0))`;
        const current = await tx.org.findUniqueOrThrow({ where: { id: orgId } });
        let customerId = current.stripeCustomerId;
        if (!customerId) {
          const customer = await this.stripe.customers.create(
            { name: current.name, metadata: { org_id: orgId } },
            { idempotencyKey: `switchboard-customer-${orgId}` },
          );
          customerId = customer.id;
          await tx.org.update({ where: { id: orgId }, data: { stripeCustomerId: customerId } });
          log.info({ orgId, customerId }, "created Stripe customer");
        }
        let subscriptionId = current.stripeSubscriptionId;
        if (!subscriptionId) {
          const sub = await this.stripe.subscriptions.create(
            {
              customer: customerId,
              items: [{ price: voicePrice }, { price: providerPrice }],
              metadata: { org_id: orgId },
              // Stripe bills meter events inside the subscription's period: start it no later than
              // the usage that created it (within the window Stripe accepts events for).
              ...(opts.usageSince
                ? { backdate_start_date: this.#eventTimestamp(opts.usageSince, this.#now()) }
                : {}),
            },
            { idempotencyKey: `switchboard-subscription-${orgId}-${customerId}` },
          );
          subscriptionId = sub.id;
          await tx.org.update({ where: { id: orgId }, data: { stripeSubscriptionId: subscriptionId } });
          log.info({ orgId, customerId, subscriptionId }, "created Stripe subscription");
        }
        return { customerId, subscriptionId };
      },
      { maxWait: 30_000, timeout: 60_000 },
    );
  }

  /** The meter event value of a line (see the scheme at the top of this file). */
  eventFor(line: Pick<UsageLine, "category" | "unit" | "quantity" | "amountMicros">): {
    eventName: string;
    value: string;
  } {
    if (line.category === "platform") {
      if (line.unit !== "minute" && line.unit !== "second") {
        throw new Error(`platform line has unit ${line.unit}; expected minute`);
      }
      const q = dec(line.quantity.toString());
      const minutes = line.unit === "second" ? q.div(60) : q;
      return {
        eventName: this.config.meterVoiceMinutes,
        value: minutes.toDecimalPlaces(6, Decimal.ROUND_HALF_UP).toFixed(),
      };
    }
    return { eventName: this.config.meterProviderUsage, value: line.amountMicros.toString() };
  }

  #eventTimestamp(occurredAt: Date, at: number): number {
    const t = Math.min(Math.max(occurredAt.getTime(), at - MAX_EVENT_AGE_MS), at);
    return Math.floor(t / 1000);
  }

  /**
   * Reports a call's unreported platform-billed lines as meter events and marks them reported.
   * Throws on the first failure (the job retries; lines Stripe accepted stay marked). `log`: the
   * caller's (a job's) logger, else the one given at construction.
   */
  async reportCallUsage(callId: string, log: BillingLogger = this.#logger): Promise<ReportResult> {
    const result: ReportResult = {
      configured: this.enabled,
      reported: 0,
      skippedZero: 0,
      alreadyReported: 0,
    };
    if (!this.enabled) {
      this.#noteUnconfigured("billing.report-usage", log);
      return result;
    }
    const lines = await this.#db.usageLine.findMany({
      where: { callId, billedBy: "platform" },
      orderBy: { category: "asc" },
    });
    const pending = lines.filter((l) => l.reportedAt === null);
    result.alreadyReported = lines.length - pending.length;
    if (pending.length === 0) return result;
    const orgId = (pending[0] as UsageLine).orgId;
    const usageSince = new Date(Math.min(...pending.map((l) => l.occurredAt.getTime())));
    const platformLine = lines.find((l) => l.category === "platform" && l.unit === "minute");
    const { customerId } = await this.ensureCustomer(orgId, {
      usageSince,
      feePerMinuteUsd: platformLine?.unitPrice.toFixed(),
      log,
    });
    await this.ensureMeters();
    for (const line of pending) {
      const { eventName, value } = this.eventFor(line);
      if (dec(value).isZero()) {
        await this.#markReported(line.id);
        result.skippedZero += 1;
        continue;
      }
      try {
        await this.stripe.billing.meterEvents.create({
          event_name: eventName,
          identifier: line.id,
          timestamp: this.#eventTimestamp(line.occurredAt, this.#now()),
          payload: { stripe_customer_id: customerId, value },
        });
      } catch (err) {
        if (!isDuplicateIdentifier(err)) {
          log.warn(
            { callId, lineId: line.id, eventName, err: (err as Error).message },
            "Stripe refused a meter event; the job will retry",
          );
          throw err;
        }
      }
      await this.#markReported(line.id);
      result.reported += 1;
    }
    return result;
  }

  async #markReported(lineId: string): Promise<void> {
    await this.#db.usageLine.updateMany({
      where: { id: lineId, reportedAt: null },
      data: { reportedAt: new Date(this.#now()) },
    });
  }

  /** Call ids with platform lines still unreported (for a sweeper), oldest first. */
  async pendingCallIds(orgId?: string, limit = 500): Promise<string[]> {
    const rows = await this.#db.usageLine.findMany({
      where: { billedBy: "platform", reportedAt: null, ...(orgId ? { orgId } : {}) },
      select: { callId: true },
      distinct: ["callId"],
      orderBy: { callId: "asc" },
      take: limit,
    });
    return rows.map((r) => r.callId);
  }

  /**
   * Compares our reported totals per customer and meter with Stripe's meter event summaries for a
   * period. Differences are logged at warn and every result is kept in Redis (latest per org, 90
   * days) when Redis is configured; `GET /billing/reconciliation` runs the same comparison live.
   */
  async reconcile(input: {
    orgId?: string;
    periodStart: Date;
    periodEnd: Date;
    persist?: boolean;
    log?: BillingLogger;
  }): Promise<ReconciliationResult[]> {
    const log = input.log ?? this.#logger;
    if (!this.enabled) {
      this.#noteUnconfigured("billing.reconcile", log);
      return [];
    }
    const start = Math.floor(input.periodStart.getTime() / 60_000) * 60_000;
    const end = Math.ceil(input.periodEnd.getTime() / 60_000) * 60_000;
    if (!(end > start)) throw new Error("reconcile: periodEnd must be after periodStart");
    const orgs = await this.#db.org.findMany({
      where: { stripeCustomerId: { not: null }, ...(input.orgId ? { id: input.orgId } : {}) },
      select: { id: true, stripeCustomerId: true },
    });
    const meters = await this.ensureMeters();
    const out: ReconciliationResult[] = [];
    for (const org of orgs) {
      const customerId = org.stripeCustomerId as string;
      // An event's timestamp lies between the line's occurredAt and its reportedAt (clamping).
      const lines = await this.#db.usageLine.findMany({
        where: {
          orgId: org.id,
          billedBy: "platform",
          occurredAt: { lt: new Date(end) },
          OR: [{ reportedAt: null }, { reportedAt: { gte: new Date(start) } }],
        },
        select: {
          category: true,
          unit: true,
          quantity: true,
          amountMicros: true,
          occurredAt: true,
          reportedAt: true,
        },
      });
      let voice = dec(0);
      let provider = dec(0);
      let unreported = 0;
      for (const l of lines) {
        if (!l.reportedAt) {
          if (l.occurredAt.getTime() >= start) unreported += 1;
          continue;
        }
        const ts = this.#eventTimestamp(l.occurredAt, l.reportedAt.getTime()) * 1000;
        if (ts < start || ts >= end) continue;
        const { value } = this.eventFor(l);
        if (l.category === "platform") voice = voice.plus(value);
        else provider = provider.plus(value);
      }
      const compare = async (meter: Stripe.Billing.Meter, ours: Decimal): Promise<MeterComparison> => {
        const summaries = await this.stripe.billing.meters
          .listEventSummaries(meter.id, {
            customer: customerId,
            start_time: start / 1000,
            end_time: end / 1000,
          })
          .autoPagingToArray({ limit: 10_000 });
        let theirs = dec(0);
        for (const s of summaries) theirs = theirs.plus(dec(String(s.aggregated_value)));
        // Stripe aggregates in floating point; compare at the ledger's precision.
        const diff = theirs.minus(ours).toDecimalPlaces(6, Decimal.ROUND_HALF_UP);
        return {
          eventName: meter.event_name,
          meterId: meter.id,
          ours: ours.toFixed(),
          stripe: theirs.toDecimalPlaces(6, Decimal.ROUND_HALF_UP).toFixed(),
          difference: diff.toFixed(),
          match: diff.isZero(),
        };
      };
      const comparisons = [
        await compare(meters.voiceMinutes, voice),
        await compare(meters.providerUsage, provider),
      ];
      const result: ReconciliationResult = {
        orgId: org.id,
        customerId,
        periodStart: new Date(start).toISOString(),
        periodEnd: new Date(end).toISOString(),
        checkedAt: new Date(this.#now()).toISOString(),
        ok: comparisons.every((c) => c.match),
        meters: comparisons,
        unreportedLines: unreported,
      };
      if (!result.ok) {
        log.warn(
          {
            orgId: org.id,
            customerId,
            periodStart: result.periodStart,
            periodEnd: result.periodEnd,
            differences: comparisons.filter((c) => !c.match),
          },
          "billing reconciliation: Stripe's meter totals differ from ours",
        );
      }
      if (input.persist !== false && this.#redis) {
        await this.#redis.set(reconciliationKey(org.id), JSON.stringify(result), "EX", RECONCILIATION_TTL_S);
      }
      out.push(result);
    }
    return out;
  }

  /** The latest stored reconciliation result of an organisation (null when none or no Redis). */
  async lastReconciliation(orgId: string): Promise<ReconciliationResult | null> {
    if (!this.#redis) return null;
    const raw = await this.#redis.get(reconciliationKey(orgId));
    return raw ? (JSON.parse(raw) as ReconciliationResult) : null;
  }

  /** The organisation's invoices (newest first) and the upcoming one; empty before its first usage. */
  async listInvoices(orgId: string, log: BillingLogger = this.#logger): Promise<InvoiceList> {
    const org = await this.#db.org.findUnique({
      where: { id: orgId },
      select: { stripeCustomerId: true, stripeSubscriptionId: true },
    });
    if (!org?.stripeCustomerId || !this.enabled) return { data: [], upcoming: null };
    let data: InvoiceSummary[];
    try {
      const list = await this.stripe.invoices.list({ customer: org.stripeCustomerId, limit: 24 });
      data = list.data.map(summarise);
    } catch (err) {
      log.warn({ orgId, err: (err as Error).message }, "listing Stripe invoices failed");
      throw new UpstreamError("Stripe did not answer the invoice list; try again shortly");
    }
    let upcoming: InvoiceSummary | null = null;
    if (org.stripeSubscriptionId) {
      try {
        upcoming = summarise(
          await this.stripe.invoices.createPreview({
            customer: org.stripeCustomerId,
            subscription: org.stripeSubscriptionId,
          }),
        );
      } catch (err) {
        log.info({ orgId, err: (err as Error).message }, "no upcoming invoice preview");
      }
    }
    return { data, upcoming };
  }

  /**
   * Verifies a webhook (`Stripe-Signature` over the raw body, 300 s tolerance) and applies it at
   * most once and in order (see stripe-webhooks.ts): invoice.paid → active,
   * invoice.payment_failed → past_due, customer.subscription.deleted → canceled (the
   * organisation's current subscription only; a canceled organisation stays canceled).
   * Throws ForbiddenError (nothing changed) when the signature does not verify, UpstreamError
   * (nothing changed; Stripe redelivers) when a tie needs Stripe's answer and Stripe gives none.
   * `log`: the request's logger, else the one given at construction.
   */
  async handleWebhook(
    rawBody: string,
    signature: string | undefined,
    log: BillingLogger = this.#logger,
  ): Promise<WebhookOutcome> {
    const secret = this.config.webhookSecret;
    if (!secret) throw new ForbiddenError("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)");
    if (!signature) throw new ForbiddenError("Missing Stripe-Signature header");
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(rawBody, signature, secret);
    } catch (err) {
      throw new ForbiddenError(`Invalid Stripe-Signature: ${(err as Error).message}`);
    }
    return applyStripeEvent(
      {
        db: this.#db,
        logger: log,
        invoiceStatus: async (invoiceId) => {
          if (!this.enabled) return null;
          try {
            return (await this.stripe.invoices.retrieve(invoiceId)).status ?? null;
          } catch (err) {
            log.warn(
              { eventId: event.id, invoiceId, err: (err as Error).message },
              "Stripe did not answer an invoice a webhook depends on; Stripe will redeliver",
            );
            throw new UpstreamError("Stripe did not answer the invoice this event depends on; redeliver it");
          }
        },
      },
      event,
    );
  }
}
