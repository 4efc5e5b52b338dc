import { type DeliveryLogTarget, deliveryFailure, recordDelivery } from "../../../../libs/call-logs/index.ts";
import type { SecretBox } from "../../../../libs/crypto/index.ts";
import { webhookDeliveries } from "../../../../libs/metrics/index.ts";
import type { JobHandler } from "../../../../libs/queue/index.ts";
import { deliverWebhook, openDelivery } from "../../../../libs/webhooks/index.ts";

/**
 * `webhook.deliver`: POST a queued server message; throws (→ retry with backoff) only for retryable
 * failures. The sealed secret and headers are opened here, just before signing and sending.
 */
export function webhookDeliverJob(deps: {
  allowPrivate: boolean;
  /** Each delivery's outcome joins its call's log (when the call keeps one). */
  callLogs?: DeliveryLogTarget;
  secrets: SecretBox;
}): JobHandler<"webhook.deliver"> {
  return async (payload, ctx) => {
    const started = Date.now();
    const delivery = () => ({ ...payload, attempt: ctx.attempt, durationMs: Date.now() - started });
    try {
      const result = await deliverWebhook(openDelivery(payload, deps.secrets), {
        allowPrivate: deps.allowPrivate,
        logger: ctx.log,
      });
      const { outcome } = result;
      webhookDeliveries.inc({ outcome });
      await recordDelivery(deps.callLogs, delivery(), result);
    } catch (err) {
      const last = ctx.attempt >= ctx.maxAttempts;
      webhookDeliveries.inc({ outcome: last ? "abandoned" : "retrying" });
      await recordDelivery(deps.callLogs, delivery(), deliveryFailure(err, last));
      if (last) {
        ctx.log.warn({ deliveryId: payload.deliveryId, err }, "webhook delivery abandoned: no attempts left");
      }
      throw err;
    }
  };
}
