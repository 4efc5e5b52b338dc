import type { JobHandler, JobHandlers } from "../queue/index.ts";
import type { StripeBilling } from "./stripe.ts";

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
// Each writes through its job's logger (`ctx.log`: job, jobId, attempt and the payload's ids).

export interface BillingJobDeps {
  billing: StripeBilling;
  /** Records the call's cost first if the media plane could not (idempotent). */
  ensureCost?: (callId: string) => Promise<void>;
}

export type BillingJobHandlers = Required<Pick<JobHandlers, "billing.report-usage" | "billing.reconcile">>;

export function billingJobHandlers(deps: BillingJobDeps): BillingJobHandlers {
  const { billing } = deps;

  const reportUsage: JobHandler<"billing.report-usage"> = async ({ callId }, ctx) => {
    try {
      await deps.ensureCost?.(callId);
      const result = await billing.reportCallUsage(callId, ctx.log);
      if (result.reported > 0) ctx.log.info({ ...result }, "usage reported to Stripe");
    } catch (err) {
      if (ctx.attempt >= ctx.maxAttempts) {
        ctx.log.error(
          { err: (err as Error).message },
          "usage could not be reported to Stripe; the lines stay unreported until the next reconciliation",
        );
      }
      throw err;
    }
  };

  const reconcile: JobHandler<"billing.reconcile"> = async (payload, ctx) => {
    const pending = billing.enabled ? await billing.pendingCallIds(payload.orgId) : [];
    for (const callId of pending) {
      try {
        await billing.reportCallUsage(callId, ctx.log);
      } catch (err) {
        ctx.log.warn({ callId, err: (err as Error).message }, "pending usage still not reported");
      }
    }
    const results = await billing.reconcile({
      orgId: payload.orgId,
      periodStart: new Date(payload.periodStart),
      periodEnd: new Date(payload.periodEnd),
      log: ctx.log,
    });
    const mismatched = results.filter((r) => !r.ok).length;
    ctx.log.info(
      { periodStart: payload.periodStart, periodEnd: payload.periodEnd, orgs: results.length, mismatched },
      "billing reconciliation finished",
    );
  };

  return { "billing.report-usage": reportUsage, "billing.reconcile": reconcile };
}
