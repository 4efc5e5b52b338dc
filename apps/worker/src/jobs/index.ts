import type { Redis } from "ioredis";
import { ensureCallCost } from "../../../../libs/billing/ensure-cost.ts";
import { billingJobHandlers } from "../../../../libs/billing/jobs.ts";
import { StripeBilling, stripeBillingConfig } from "../../../../libs/billing/stripe.ts";
import type { SecretBox } from "../../../../libs/crypto/index.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { OpenAiLlm } from "../../../../libs/providers/openai.ts";
import type { JobHandlers, JobQueue } from "../../../../libs/queue/index.ts";
import type { WebhookDispatcher, WebhookLogger } from "../../../../libs/webhooks/index.ts";
import type { WorkerConfig } from "../config.ts";
import { callPostProcessJob } from "./call-post-process.ts";
import { webhookDeliverJob } from "./webhook-deliver.ts";

export interface WorkerDeps {
  config: WorkerConfig;
  db: Db;
  queue: JobQueue;
  dispatcher: WebhookDispatcher;
  log: WebhookLogger;
  /** Opens the sealed secret and headers of queued webhook deliveries. */
  secrets: SecretBox;
  /** Keeps billing reconciliation results for operators (absent in the single-process mode). */
  redis?: Redis;
}

/** Every job the worker runs. Add a processor with one line here (its file in this folder). */
export function buildJobHandlers(deps: WorkerDeps): JobHandlers {
  return {
    "webhook.deliver": webhookDeliverJob({
      allowPrivate: deps.config.allowPrivateWebhookUrls,
      callLogs: {
        db: deps.db,
        limits: deps.config.callLogs,
        onError: (err) => deps.log.warn({ err }, "server message delivery not written to the call log"),
      },
      secrets: deps.secrets,
    }),
    "call.post-process": callPostProcessJob({
      ...deps,
      catalog: deps.config.priceCatalog,
      recordingLinks: deps.config,
      analysis: {
        llm: new OpenAiLlm({ baseUrl: deps.config.providers.openaiBaseUrl }),
        platformKey: deps.config.providers.openaiApiKey,
        secrets: deps.secrets,
      },
    }),
    ...billingJobHandlers({
      billing: new StripeBilling(deps.db, stripeBillingConfig(deps.config.providers), {
        logger: deps.log,
        redis: deps.redis,
      }),
      ensureCost: (callId) => ensureCallCost(deps.db, callId, deps.config.priceCatalog),
    }),
  };
}
