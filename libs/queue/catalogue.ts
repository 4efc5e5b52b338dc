import { type Static, Type } from "@sinclair/typebox";

// One typed catalogue of jobs, shared by producers (api, media) and the consumer (worker): queue
// names, payload schemas, attempts and backoff. Deterministic job ids (`usage.<callId>`) make a
// duplicate enqueue harmless.

export const WebhookDeliverPayload = Type.Object({
  /** Idempotency id sent to the customer's server (`x-vapi-idempotency-key`), stable across retries. */
  deliveryId: Type.String(),
  orgId: Type.String(),
  callId: Type.Optional(Type.String()),
  url: Type.String(),
  /**
   * Header names → values. Empty when `sealed` is set (new jobs); jobs queued before sealing carry
   * the custom headers and X-Vapi-Secret here in clear.
   */
  headers: Type.Record(Type.String(), Type.String()),
  /** The JSON body exactly as it is signed and sent. */
  body: Type.String(),
  timeoutMs: Type.Integer(),
  /** HMAC-SHA256 secret in clear: only in jobs queued before sealing (new jobs use `sealed`). */
  secret: Type.Optional(Type.String()),
  /**
   * `{secret?, headers}` (JSON) sealed with the SecretBox (AES-256-GCM, SECRETS_KEY): the customer's
   * HMAC secret and headers (bearer tokens, X-Vapi-Secret) are never stored in clear in the queue.
   */
  sealed: Type.Optional(Type.Object({ ciphertext: Type.String(), keyId: Type.String() })),
  /** The server message type (`end-of-call-report` …), for logs. */
  messageType: Type.Optional(Type.String()),
});

export const CallIdPayload = Type.Object({ callId: Type.String() });

export const ReconcilePayload = Type.Object({
  orgId: Type.Optional(Type.String()),
  /** ISO start and end of the period to compare. */
  periodStart: Type.String(),
  periodEnd: Type.String(),
});

export const JOBS = {
  /** A server message (status-update, transcript, end-of-call-report …) POSTed to a customer's server URL. */
  "webhook.deliver": {
    queue: "webhooks",
    attempts: 8,
    backoffMs: 1000,
    payload: WebhookDeliverPayload,
  },
  /** After a call is finalised: end-of-call report, analysis. */
  "call.post-process": {
    queue: "calls",
    attempts: 5,
    backoffMs: 2000,
    payload: CallIdPayload,
  },
  /**
   * Report a call's unreported platform-billed usage lines to Stripe as meter events (`usage.<callId>`
   * after finalisation; `usage-analysis.<callId>` for the analysis line written later).
   */
  "billing.report-usage": {
    queue: "billing",
    attempts: 10,
    backoffMs: 2000,
    payload: CallIdPayload,
  },
  /** Compare our totals with Stripe's meter event summaries for a period. */
  "billing.reconcile": {
    queue: "billing",
    attempts: 3,
    backoffMs: 10_000,
    payload: ReconcilePayload,
  },
} as const;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = Static<(typeof JOBS)[N]["payload"]>;

/** The slice of pino a job writes through. */
export interface JobLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): JobLogger;
}

const SILENT: JobLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => SILENT,
};

export interface JobContext {
  jobId: string;
  /** 1 on the first run. */
  attempt: number;
  maxAttempts: number;
  /**
   * The consumer's logger with this attempt's `job`, `jobId` and `attempt` (and the payload's
   * `callId` and `orgId`) on every line; silent when the consumer gave none.
   */
  log: JobLogger;
}

export interface ProcessOptions {
  /** The logger each job's own is a child of (the worker's). */
  log?: JobLogger;
}

/** The logger of one attempt of a job (see `JobContext.log`). */
export function jobLogger(
  base: JobLogger | undefined,
  job: { name: JobName; jobId: string; attempt: number },
  payload: unknown,
): JobLogger {
  if (!base) return SILENT;
  const p = (typeof payload === "object" && payload !== null ? payload : {}) as Record<string, unknown>;
  return base.child({
    job: job.name,
    jobId: job.jobId,
    attempt: job.attempt,
    ...(typeof p.callId === "string" ? { callId: p.callId } : {}),
    ...(typeof p.orgId === "string" ? { orgId: p.orgId } : {}),
  });
}

export type JobHandler<N extends JobName> = (payload: JobPayload<N>, ctx: JobContext) => Promise<void>;
export type JobHandlers = { [N in JobName]?: JobHandler<N> };

export interface EnqueueOptions {
  /** Deterministic id: a second enqueue with the same id while the first exists is a no-op. */
  jobId?: string;
  delayMs?: number;
}

/**
 * The one seam where the backing service differs: BullMQ on Redis in production, an in-process
 * runner with the same retry semantics when nothing is configured (`npm start`).
 */
export interface JobQueue {
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>, opts?: EnqueueOptions): Promise<void>;
  /**
   * Starts consuming with these handlers (the worker app). Each failed attempt is logged at warn on
   * the job's logger.
   */
  process(handlers: JobHandlers, options?: ProcessOptions): void;
  /** Stops fetching new jobs and waits for running ones. */
  close(): Promise<void>;
  /** Jobs by queue and state, where the backing service keeps them (BullMQ); for metrics. */
  jobCounts?(): Promise<Record<string, JobCounts>>;
}

export interface JobCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** Every queue name of the catalogue. */
export const QUEUE_NAMES: readonly string[] = [...new Set(Object.values(JOBS).map((j) => j.queue))];

/** Exponential backoff with full jitter, capped. */
export function backoffDelay(baseMs: number, attempt: number, capMs = 5 * 60_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/** BullMQ rejects ':' in custom ids; keep ids readable and legal. */
export function safeJobId(id: string): string {
  return id.replace(/:/g, ".");
}
