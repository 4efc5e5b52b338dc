import type Stripe from "stripe";
import type { Db, Prisma } from "../db/index.ts";
import type { BillingLogger } from "./stripe.ts";

// Stripe webhook events, applied at most once and in order per organisation.
//
// Stripe delivers each event at least once and in no guaranteed order, and retries an event we did
// not acknowledge for up to three days: an `invoice.payment_failed` can arrive after the
// `invoice.paid` that settled its invoice. Stripe's advice is to log the ids of processed events
// and skip those already logged, and not to rely on delivery order but on the objects' state
// (fetched from the API when in doubt). Here:
// - At most once: one transaction inserts the event id into StripeEvent first (primary key; a
//   concurrent delivery of the same event waits on that row and then finds it), then locks the
//   organisation's row and changes its state. A redelivery finds the id ("duplicate", nothing
//   changes). Anything failing rolls the insert back with it, so Stripe's retry applies the event.
// - In order: Org.billingEventCreatedAt is the `created` of the newest event applied to the billing
//   state; an invoice event created earlier is recorded "stale" and not applied.
// - Ties (`created` has whole seconds) between events that disagree: for one invoice, paid wins (a
//   paid invoice stays paid); for two invoices, the failure stands while its invoice is still
//   unpaid, which Stripe is asked (GET /v1/invoices/:id, outside the transaction). If Stripe does
//   not answer, the delivery fails (502) and Stripe redelivers it.
// - customer.subscription.deleted is a subscription's last event: it applies whatever its age (to
//   the organisation's current subscription), and a canceled organisation stays canceled.
// Event types we do not act on are acknowledged and not recorded.

export type StripeEventOutcome = "applied" | "duplicate" | "stale" | "ignored";

export interface WebhookOutcome {
  type: string;
  outcome: StripeEventOutcome;
  /** True when this delivery set the organisation's billing state. */
  handled: boolean;
  orgId: string | null;
  billingState: string | null;
}

type BillingState = "active" | "past_due" | "canceled";

interface Target {
  state: BillingState;
  customerId: string;
  /** The invoice or subscription id. */
  objectId: string;
}

export interface StripeWebhookDeps {
  db: Db;
  logger: BillingLogger;
  /**
   * The invoice's current status at Stripe (draft | open | paid | uncollectible | void), or null
   * when Stripe cannot be asked (no API key). Throws when Stripe does not answer.
   */
  invoiceStatus(invoiceId: string): Promise<string | null>;
}

/** Statuses of an invoice that still wants paying: a payment failure of it stands. */
const UNPAID: ReadonlySet<string> = new Set(["draft", "open", "uncollectible"]);

function idOf(v: string | { id: string } | null | undefined): string | null {
  if (!v) return null;
  return typeof v === "string" ? v : v.id;
}

function targetOf(event: Stripe.Event): Target | null {
  const target = (state: BillingState, customer: string | null, objectId: string): Target | null =>
    customer && objectId ? { state, customerId: customer, objectId } : null;
  switch (event.type) {
    case "invoice.paid":
      return target("active", idOf(event.data.object.customer), event.data.object.id ?? "");
    case "invoice.payment_failed":
      return target("past_due", idOf(event.data.object.customer), event.data.object.id ?? "");
    case "customer.subscription.deleted":
      return target("canceled", idOf(event.data.object.customer), event.data.object.id);
    default:
      return null;
  }
}

/** Rolls a pass back when a tie needs an invoice's status from Stripe first. */
class NeedsInvoiceStatus extends Error {
  constructor(readonly invoiceId: string) {
    super(`the status of invoice ${invoiceId} is needed`);
  }
}

interface LockedOrg {
  id: string;
  billingState: string;
  stripeSubscriptionId: string | null;
  billingEventCreatedAt: Date | null;
  billingEventId: string | null;
}

/** Applies a verified Stripe event (see the rules at the top of this file). */
export async function applyStripeEvent(
  deps: StripeWebhookDeps,
  event: Stripe.Event,
): Promise<WebhookOutcome> {
  const target = targetOf(event);
  if (!target)
    return { type: event.type, outcome: "ignored", handled: false, orgId: null, billingState: null };
  const statuses = new Map<string, string | null>();
  // A pass that needs an invoice's status rolls back, asks Stripe outside the transaction, and runs
  // again; a concurrent event can change which invoice is in question, hence a few passes.
  for (let pass = 1; ; pass += 1) {
    try {
      const result = await deps.db.$transaction((tx) => applyOnce(tx, event, target, statuses), {
        maxWait: 10_000,
        timeout: 15_000,
      });
      const fields = {
        orgId: result.orgId,
        eventId: event.id,
        event: event.type,
        outcome: result.outcome,
        billingState: result.billingState,
      };
      deps.logger.info(fields, result.handled ? "Stripe webhook applied" : "Stripe webhook not applied");
      return result;
    } catch (err) {
      if (!(err instanceof NeedsInvoiceStatus) || pass >= 3) throw err;
      statuses.set(err.invoiceId, await deps.invoiceStatus(err.invoiceId));
    }
  }
}

async function applyOnce(
  tx: Prisma.TransactionClient,
  event: Stripe.Event,
  target: Target,
  statuses: ReadonlyMap<string, string | null>,
): Promise<WebhookOutcome> {
  const created = new Date(event.created * 1000);
  const inserted = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO "StripeEvent" ("id", "type", "objectId", "created", "outcome")
    VALUES (${event.id}, ${event.type}, ${target.objectId}, ${created}::timestamptz, 'received')
    ON CONFLICT ("id") DO NOTHING
    RETURNING "id"`;
  if (inserted.length === 0) {
    const seen = await tx.stripeEvent.findUnique({ where: { id: event.id }, select: { orgId: true } });
    return {
      type: event.type,
      outcome: "duplicate",
      handled: false,
      orgId: seen?.orgId ?? null,
      billingState: null,
    };
  }
  const [org] = await tx.$queryRaw<LockedOrg[]>`
    SELECT "id", "billingState", "stripeSubscriptionId", "billingEventCreatedAt", "billingEventId"
    FROM "Org" WHERE "stripeCustomerId" = ${target.customerId}
    LIMIT 1 FOR UPDATE`;
  const outcome = org ? await decide(tx, org, target, created, statuses) : "ignored";
  let billingState = org?.billingState ?? null;
  if (org && outcome === "applied") {
    billingState = target.state;
    const newest =
      org.billingEventCreatedAt && org.billingEventCreatedAt > created ? org.billingEventCreatedAt : created;
    await tx.org.update({
      where: { id: org.id },
      data: { billingState, billingEventCreatedAt: newest, billingEventId: event.id },
    });
  }
  await tx.stripeEvent.update({
    where: { id: event.id },
    data: { outcome, orgId: org?.id ?? null, billingState },
  });
  return { type: event.type, outcome, handled: outcome === "applied", orgId: org?.id ?? null, billingState };
}

async function decide(
  tx: Prisma.TransactionClient,
  org: LockedOrg,
  target: Target,
  created: Date,
  statuses: ReadonlyMap<string, string | null>,
): Promise<"applied" | "stale" | "ignored"> {
  if (target.state === "canceled") {
    const current = org.stripeSubscriptionId === null || org.stripeSubscriptionId === target.objectId;
    return current ? "applied" : "ignored";
  }
  if (org.billingState === "canceled") return "ignored";
  const last = org.billingEventCreatedAt?.getTime();
  const at = created.getTime();
  if (last === undefined || at > last) return "applied";
  if (at < last) return "stale";
  if (org.billingState === target.state) return "applied";
  // A tie with the event that set the current, different state.
  const previous = org.billingEventId
    ? await tx.stripeEvent.findUnique({ where: { id: org.billingEventId }, select: { objectId: true } })
    : null;
  const failed = target.state === "past_due" ? target.objectId : previous?.objectId;
  const paid = target.state === "active" ? target.objectId : previous?.objectId;
  let failureStands: boolean;
  if (!failed || failed === paid) {
    failureStands = false;
  } else {
    if (!statuses.has(failed)) throw new NeedsInvoiceStatus(failed);
    const status = statuses.get(failed);
    // Stripe could not be asked: the later delivery applies.
    failureStands = status == null ? target.state === "past_due" : UNPAID.has(status);
  }
  return failureStands === (target.state === "past_due") ? "applied" : "stale";
}
