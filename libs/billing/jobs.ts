import type { JobHandler, JobHandlers } from "../queue/index.ts";
import type { BillingLogger, StripeBilling } from "./stripe.ts";

// Job processors of the Stripe half of billing, registered by the worker:
// - `billing.report-usage` {callId}: enqueued by the media plane after finalisation (jobId
//   `usage.<callId>`), and again by `call.post-process` once it has written a platform-billed
//   analysis line (jobId `usage-analysis.<callId>`: that line may come after the first report ran);
//   reports the call's unreported platform lines as meter events. A failure
//   throws, so the queue retries with backoff (10 attempts); lines Stripe already accepted stay
//   marked and are never sent again. Without STRIPE_SECRET_KEY it does nothing (logged once).
// - `billing.reconcile` {orgId?, periodStart, periodEnd}: first reports what is still pending in
//   the period (usage left behind by exhausted retries or a key configured later), then compares
//   our totals with Stripe's meter event summaries; differences are logged at warn and the result
//   is stored in Redis (see StripeBilling.reconcile, GET /billing/reconciliation).

export interface BillingJobDeps {
  billing: StripeBilling;
  logger?: BillingLogger;
  /** Records the call's cost first if the media plane could not (idempotent). */
  ensureCost?: (callId: string) => Promise<void>;
}

export type BillingJobHandlers = Required<Pick<JobHandlers, "billing.report-usage" | "billing.reconcile">>;

export function billingJobHandlers(deps: BillingJobDeps): BillingJobHandlers {
  const { billing, logger } = deps;

  const reportUsage: JobHandler<"billing.report-usage"> = async ({ callId }, ctx) => {
    try {
      await deps.ensureCost?.(callId);
      const result = await billing.reportCallUsage(callId);
      if (result.reported > 0) logger?.info({ callId, ...result }, "usage reported to Stripe");
    } catch (err) {
      if (ctx.attempt >= ctx.maxAttempts) {
        const fields = { callId, attempt: ctx.attempt, err: (err as Error).message };
        const msg =
          "usage could not be reported to Stripe; the lines stay unreported until the next reconciliation";
        if (logger?.error) logger.error(fields, msg);
        else logger?.warn(fields, msg);
      }
      throw err;
    }
  };

  const reconcile: JobHandler<"billing.reconcile"> = async (payload) => {
    const pending = billing.enabled ? await billing.pendingCallIds(payload.orgId) : [];
    for (const callId of pending) {
      try {
        await billing.reportCallUsage(callId);
      } catch (err) {
        logger?.warn({ callId, err: (err as Error).message }, "pending usage still not reported");
      }
    }
    const results = await billing.reconcile({
      orgId: payload.orgId,
      periodStart: new Date(payload.periodStart),
      periodEnd: new Date(payload.periodEnd),
    });
    const mismatched = results.filter((r) => !r.ok).length;
    logger?.info(
      { periodStart: payload.periodStart, periodEnd: payload.periodEnd, orgs: results.length, mismatched },
      "billing reconciliation finished",
    );
  };

  return { "billing.report-usage": reportUsage, "billing.reconcile": reconcile };
}
