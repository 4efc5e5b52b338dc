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
  secrets: SecretBox;
}): JobHandler<"webhook.deliver"> {
  return async (payload, ctx) => {
    try {
      const { outcome } = await deliverWebhook(openDelivery(payload, deps.secrets), {
        allowPrivate: deps.allowPrivate,
        logger: ctx.log,
      });
      webhookDeliveries.inc({ outcome });
    } catch (err) {
      const last = ctx.attempt >= ctx.maxAttempts;
      webhookDeliveries.inc({ outcome: last ? "abandoned" : "retrying" });
      if (last) {
        ctx.log.warn({ deliveryId: payload.deliveryId, err }, "webhook delivery abandoned: no attempts left");
      }
      throw err;
    }
  };
}
