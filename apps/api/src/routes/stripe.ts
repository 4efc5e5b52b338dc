import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { StripeBilling } from "../../../../libs/billing/stripe.ts";
import { AppError, UpstreamError, ValidationError } from "../../../../libs/errors/index.ts";
import { StringEnum } from "../../../../libs/vapi/index.ts";
import { EARLIEST_INSTANT_MS } from "../services/common.ts";
import { errors } from "./shared.ts";

// Stripe: the signed webhook (billing state follows invoices and the subscription), the
// organisation's invoices, and a live reconciliation of our reported usage with Stripe's meters.

export interface StripeRoutesOptions {
  billing: StripeBilling;
}

const Invoice = Type.Object(
  {
    id: Type.Union([Type.String(), Type.Null()]),
    number: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.String(), Type.Null()], {
      description: "draft | open | paid | uncollectible | void",
    }),
    amount_due: Type.Integer({ description: "In the smallest currency unit (cents)" }),
    amount_paid: Type.Integer({ description: "In the smallest currency unit (cents)" }),
    currency: Type.String(),
    period_start: Type.Integer({ description: "Unix seconds" }),
    period_end: Type.Integer({ description: "Unix seconds" }),
    hosted_invoice_url: Type.Union([Type.String(), Type.Null()]),
    created: Type.Integer({ description: "Unix seconds" }),
  },
  { title: "BillingInvoice" },
);

const InvoiceList = Type.Object(
  {
    data: Type.Array(Invoice, { description: "Finalized invoices, newest first" }),
    upcoming: Type.Union([Invoice, Type.Null()], {
      description: "Preview of the invoice for the current period (usage so far)",
    }),
  },
  { title: "BillingInvoiceList" },
);

const MeterComparison = Type.Object({
  eventName: Type.String({ description: "voice_minutes (minutes) or provider_usage (micro-dollars)" }),
  meterId: Type.String(),
  ours: Type.String({ description: "Our reported total, decimal string" }),
  stripe: Type.String({ description: "Stripe's meter event summary total, decimal string" }),
  difference: Type.String({ description: "stripe − ours" }),
  match: Type.Boolean(),
});

const Reconciliation = Type.Object(
  {
    configured: Type.Boolean({ description: "False when the platform has no Stripe key" }),
    result: Type.Union([
      Type.Object({
        orgId: Type.String(),
        customerId: Type.String(),
        periodStart: Type.String({ format: "date-time" }),
        periodEnd: Type.String({ format: "date-time" }),
        checkedAt: Type.String({ format: "date-time" }),
        ok: Type.Boolean(),
        meters: Type.Array(MeterComparison),
        unreportedLines: Type.Integer({
          description: "Usage lines not yet reported (pending, not a difference)",
        }),
      }),
      Type.Null(),
    ]),
  },
  { title: "BillingReconciliation" },
);

const ReconciliationQuery = Type.Object(
  {
    start: Type.Optional(
      Type.String({ format: "date-time", description: "Default: start of the current UTC month" }),
    ),
    end: Type.Optional(Type.String({ format: "date-time", description: "Default: now" })),
  },
  { additionalProperties: false },
);

const WebhookAck = Type.Object(
  {
    received: Type.Boolean(),
    handled: Type.Boolean({ description: "True when this delivery set the organisation's billing state" }),
    type: Type.String(),
    outcome: StringEnum(["applied", "duplicate", "stale", "ignored"] as const, {
      description:
        "applied: the billing state follows the event; duplicate: this event id was received before, nothing changed; stale: older than the event that last set the billing state, recorded and not applied; ignored: not an event we act on, an unknown customer, another subscription, or a canceled organisation",
    }),
  },
  { title: "StripeWebhookAck" },
);

export async function stripeRoutes(app: FastifyInstance, opts: StripeRoutesOptions): Promise<void> {
  const { billing } = opts;

  // The webhook needs the exact bytes Stripe signed: its own scope keeps JSON bodies as raw text.
  await app.register(async (scope) => {
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
      done(null, String(body));
    });
    scope.post(
      "/stripe/webhook",
      {
        config: { auth: "none", addressLimit: "webhook" },
        schema: {
          operationId: "StripeController_webhook",
          tags: ["Billing"],
          summary: "Stripe webhook: invoice.paid, invoice.payment_failed, customer.subscription.deleted",
          description:
            "Verifies Stripe-Signature (HMAC-SHA256 with STRIPE_WEBHOOK_SECRET over the raw body, 5-minute tolerance); a bad, missing or stale signature answers 403 and changes nothing. The organisation's billing state follows: paid → active, payment failed → past_due, subscription deleted → canceled. Other events are acknowledged and ignored. Each event is applied at most once (a redelivered event id answers 200 `duplicate`) and in order per organisation: an event created before the one that last set the billing state answers 200 `stale` and changes nothing. On a tie (same second), a payment failure stands only while its invoice is unpaid, which Stripe is asked; if Stripe does not answer, 502 and Stripe redelivers.",
          security: [],
          response: { 200: WebhookAck, ...errors(403, 502) },
        },
      },
      async (req) => {
        const h = req.headers["stripe-signature"];
        const signature = Array.isArray(h) ? h[0] : h;
        const raw = typeof req.body === "string" ? req.body : "";
        const outcome = await billing.handleWebhook(raw, signature, req.log);
        return { received: true, handled: outcome.handled, type: outcome.type, outcome: outcome.outcome };
      },
    );
  });

  app.get(
    "/billing/invoices",
    {
      schema: {
        operationId: "BillingController_invoices",
        tags: ["Billing"],
        summary: "The organisation's Stripe invoices and the upcoming invoice",
        description: "Empty until the organisation's first billed usage creates its Stripe customer.",
        response: { 200: InvoiceList, ...errors(401, 403, 502) },
      },
    },
    async (req) => billing.listInvoices(req.auth.orgId, req.log),
  );

  app.get<{ Querystring: Static<typeof ReconciliationQuery> }>(
    "/billing/reconciliation",
    {
      schema: {
        operationId: "BillingController_reconciliation",
        tags: ["Billing"],
        summary: "Compare the usage reported to Stripe with Stripe's meter totals for a period",
        description:
          "Per meter: our total of reported usage (voice_minutes in minutes, provider_usage in micro-dollars) and Stripe's meter event summary, the difference and whether they match. Periods are aligned to whole minutes. `result` is null before the organisation has a Stripe customer.",
        querystring: ReconciliationQuery,
        response: { 200: Reconciliation, ...errors(400, 401, 403, 502) },
      },
    },
    async (req) => {
      const now = new Date();
      const start = req.query.start
        ? new Date(req.query.start)
        : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const end = req.query.end ? new Date(req.query.end) : now;
      if (start.getTime() < EARLIEST_INSTANT_MS) {
        throw new ValidationError("querystring.start must be at or after the start of year 0001 (UTC)");
      }
      if (!(end.getTime() > start.getTime())) throw new ValidationError("end must be after start");
      if (!billing.enabled) return { configured: false, result: null };
      try {
        const [result] = await billing.reconcile({
          orgId: req.auth.orgId,
          periodStart: start,
          periodEnd: end,
          persist: false,
          log: req.log,
        });
        return { configured: true, result: result ?? null };
      } catch (err) {
        if (err instanceof AppError) throw err;
        req.log.warn({ err }, "reconciliation against Stripe failed");
        throw new UpstreamError("Stripe did not answer the meter summaries; try again shortly");
      }
    },
  );
}
