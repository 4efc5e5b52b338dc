import { ensureCallCost } from "../../../../libs/billing/ensure-cost.ts";
import type { PriceCatalog } from "../../../../libs/billing/prices.ts";
import type { Db } from "../../../../libs/db/index.ts";
import type { JobHandler } from "../../../../libs/queue/index.ts";
import type { Server } from "../../../../libs/vapi/common.ts";
import {
  endOfCallReportFromCall,
  resolveServer,
  shouldSend,
  type WebhookDispatcher,
  type WebhookLogger,
} from "../../../../libs/webhooks/index.ts";

type Json = Record<string, unknown>;

function asJson(v: unknown): Json | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function asServer(v: unknown): Server | undefined {
  const s = asJson(v);
  return s && typeof s.url === "string" ? (s as Server) : undefined;
}

export class CallNotFinalizedError extends Error {
  constructor(callId: string) {
    super(`call ${callId} is not finalised yet`);
    this.name = "CallNotFinalizedError";
  }
}

/**
 * `call.post-process`: after the media plane finalised a call, send the `end-of-call-report` built
 * from the stored call to the assistant's server (else the phone number's, else the org's) when the
 * assistant subscribes to it. A call not yet finalised is retried (the job's backoff); on the last
 * attempt an ended call is reported anyway. Analysis is what the call row holds (`call.analysis`).
 */
export function callPostProcessJob(deps: {
  db: Db;
  dispatcher: WebhookDispatcher;
  log: WebhookLogger;
  catalog?: PriceCatalog;
}): JobHandler<"call.post-process"> {
  return async ({ callId }, ctx) => {
    // A cost the media plane failed to record is recorded here (retried with the job).
    await ensureCallCost(deps.db, callId, deps.catalog);
    const call = await deps.db.call.findUnique({ where: { id: callId } });
    if (!call) {
      deps.log.warn({ callId }, "post-process: call not found");
      return;
    }
    const lastAttempt = ctx.attempt >= ctx.maxAttempts;
    if (call.status !== "ended" || (!call.finalizedAt && !lastAttempt))
      throw new CallNotFinalizedError(callId);

    const assistant = asJson(call.assistant);
    const serverMessages = Array.isArray(assistant?.serverMessages)
      ? (assistant.serverMessages as unknown[]).filter((m): m is string => typeof m === "string")
      : undefined;
    if (!shouldSend("end-of-call-report", serverMessages)) return;

    const [phoneNumber, org] = await Promise.all([
      call.phoneNumberId ? deps.db.phoneNumber.findUnique({ where: { id: call.phoneNumberId } }) : null,
      deps.db.org.findUnique({ where: { id: call.orgId }, select: { server: true } }),
    ]);
    const phoneConfig = asJson(phoneNumber?.config);
    const server = resolveServer({
      assistant: { server: asServer(assistant?.server) },
      phoneNumber: { server: asServer(phoneConfig?.server) },
      org: { server: asServer(org?.server) },
    });
    if (!server) return;

    const report = endOfCallReportFromCall(call, {
      phoneNumber: phoneNumber
        ? {
            id: phoneNumber.id,
            orgId: phoneNumber.orgId,
            provider: phoneNumber.provider,
            number: phoneNumber.number,
            ...(phoneNumber.name ? { name: phoneNumber.name } : {}),
            ...(phoneNumber.assistantId ? { assistantId: phoneNumber.assistantId } : {}),
            ...(phoneNumber.squadId ? { squadId: phoneNumber.squadId } : {}),
          }
        : undefined,
    });
    await deps.dispatcher.enqueue(call.orgId, call.id, server, report);
  };
}
