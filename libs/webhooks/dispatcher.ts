import { randomUUID } from "node:crypto";
import type { SecretBox } from "../crypto/index.ts";
import type { JobPayload, JobQueue } from "../queue/index.ts";
import { postOnce, WebhookError } from "./http.ts";
import {
  baseHeaders,
  IDEMPOTENCY_HEADER,
  type ServerTarget,
  serverTimeoutMs,
  signatureHeaders,
} from "./server.ts";

// Fire-and-forget server messages (status-update, transcript, conversation-update, speech-update,
// user-interrupted, hang, end-of-call-report) go through the job queue: at least once, retried with
// exponential backoff (attempts and base delay in the `webhook.deliver` catalogue entry). Each
// delivery has a deterministic id, sent as `x-vapi-idempotency-key` on every attempt and used as
// the job id, so enqueueing the same delivery twice is a no-op and the customer can de-duplicate.
// The server's secret and headers (bearer tokens, X-Vapi-Secret) are sealed with the SecretBox into
// `sealed` before the job is queued; the worker opens them (`openDelivery`) just before sending.

export type WebhookDeliverJob = JobPayload<"webhook.deliver">;

export interface WebhookLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const silent: WebhookLogger = { info() {}, warn() {} };

/** Messages that happen once per call (or once per status) get a natural id; the rest need `seq`. */
export function deliveryIdFor(
  callId: string,
  message: { type: string; status?: unknown },
  seq?: number | string,
): string {
  if (seq !== undefined) return `${callId}.${message.type}.${seq}`;
  if (message.type === "end-of-call-report") return `${callId}.end-of-call-report`;
  if (message.type === "status-update" && typeof message.status === "string") {
    return `${callId}.status-update.${message.status}`;
  }
  return `${callId}.${message.type}.${randomUUID()}`;
}

export interface EnqueueWebhookOptions {
  /** Per-call sequence number of this message (the media session's counter): makes the id deterministic. */
  seq?: number | string;
  /** Overrides the computed delivery id entirely. */
  deliveryId?: string;
  /** The caller's logger (a job's), else the dispatcher's. */
  logger?: WebhookLogger;
}

export class WebhookDispatcher {
  constructor(
    private readonly queue: JobQueue,
    private readonly options: { logger?: WebhookLogger; secrets: SecretBox },
  ) {}

  /**
   * Queues `body` (`{message: {type, …}}`) for `server`. Returns the delivery id (= idempotency key).
   * The caller decides whether to send at all (`shouldSend`).
   */
  async enqueue(
    orgId: string,
    callId: string | undefined,
    server: ServerTarget,
    body: { message: { type: string; status?: unknown } },
    opts: EnqueueWebhookOptions = {},
  ): Promise<string> {
    const deliveryId =
      opts.deliveryId ??
      (callId
        ? deliveryIdFor(callId, body.message, opts.seq)
        : `${orgId}.${body.message.type}.${randomUUID()}`);
    const payload: WebhookDeliverJob = {
      deliveryId,
      orgId,
      ...(callId ? { callId } : {}),
      url: server.url,
      headers: {},
      body: JSON.stringify(body),
      timeoutMs: serverTimeoutMs(server),
      sealed: this.options.secrets.seal(
        JSON.stringify({
          headers: baseHeaders(server),
          ...(server.secret ? { secret: server.secret } : {}),
        } satisfies SealedDelivery),
      ),
      messageType: body.message.type,
    };
    await this.queue.enqueue("webhook.deliver", payload, { jobId: `webhook.${deliveryId}` });
    (opts.logger ?? this.options.logger)?.info(
      { deliveryId, orgId, callId, type: body.message.type },
      "webhook queued",
    );
    return deliveryId;
  }
}

/** What `sealed` holds once opened. */
interface SealedDelivery {
  headers: Record<string, string>;
  secret?: string;
}

/**
 * The payload with its sealed secret and headers opened, ready for `deliverWebhook`. Jobs queued
 * before sealing (clear `headers`/`secret`, no `sealed`) are returned as they are.
 */
export function openDelivery(payload: WebhookDeliverJob, secrets: SecretBox): WebhookDeliverJob {
  const { sealed, ...rest } = payload;
  if (!sealed) return payload;
  const opened = JSON.parse(secrets.open(sealed)) as SealedDelivery;
  return {
    ...rest,
    headers: { ...rest.headers, ...opened.headers },
    ...(opened.secret ? { secret: opened.secret } : {}),
  };
}

export type DeliveryOutcome =
  | { outcome: "delivered"; status: number }
  | { outcome: "rejected"; status?: number; reason: string };

/** Thrown for failures worth retrying (408, 429, 5xx, timeouts, network): the queue retries the job. */
export class RetryableDeliveryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "RetryableDeliveryError";
  }
}

function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * The `webhook.deliver` job: one POST, signed afresh, same body and idempotency key on every
 * attempt. 2xx → delivered. Other 4xx/3xx and URLs the SSRF guard refuses → rejected (logged, not
 * retried). 408/429/5xx/timeout/network → throws RetryableDeliveryError. `logger` is the job's: its
 * lines already carry the organisation, call and attempt.
 */
export async function deliverWebhook(
  payload: WebhookDeliverJob,
  options: { allowPrivate: boolean; logger?: WebhookLogger },
): Promise<DeliveryOutcome> {
  const log = options.logger ?? silent;
  const headers = {
    ...payload.headers,
    ...signatureHeaders(payload.secret, payload.body),
    [IDEMPOTENCY_HEADER]: payload.deliveryId,
  };
  const meta = { deliveryId: payload.deliveryId, type: payload.messageType };
  try {
    const res = await postOnce(payload.url, payload.body, headers, {
      timeoutMs: payload.timeoutMs,
      allowPrivate: options.allowPrivate,
    });
    if (res.status >= 200 && res.status < 300) {
      log.info({ ...meta, status: res.status }, "webhook delivered");
      return { outcome: "delivered", status: res.status };
    }
    if (retryableStatus(res.status)) {
      throw new RetryableDeliveryError(`${payload.url} answered ${res.status}`, res.status);
    }
    const reason = `${payload.url} answered ${res.status}; not retried`;
    log.warn({ ...meta, status: res.status, body: res.body.slice(0, 200) }, `webhook rejected: ${reason}`);
    return { outcome: "rejected", status: res.status, reason };
  } catch (err) {
    if (err instanceof WebhookError) {
      if (err.kind === "unsafe-url") {
        log.warn({ ...meta }, `webhook not sent: ${err.message}`);
        return { outcome: "rejected", reason: err.message };
      }
      throw new RetryableDeliveryError(err.message);
    }
    throw err;
  }
}
