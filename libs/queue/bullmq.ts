import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { isRedisUnavailable, outageLogOf } from "../redis/index.ts";
import {
  backoffDelay,
  type EnqueueOptions,
  JOBS,
  type JobCounts,
  type JobHandlers,
  type JobName,
  type JobPayload,
  type JobQueue,
  jobLogger,
  type ProcessOptions,
  QUEUE_NAMES,
  safeJobId,
} from "./catalogue.ts";

interface Envelope {
  name: JobName;
  payload: unknown;
}

/** Default of `enqueueWaitMs`. */
export const ENQUEUE_WAIT_MS = 90_000;
/** Default of `maxWaitingEnqueues`. */
export const MAX_WAITING_ENQUEUES = 10_000;

/**
 * BullMQ on Redis: jobs survive restarts and are shared by every worker process. An enqueue while
 * Redis is unreachable waits for it (up to `enqueueWaitMs`) instead of failing after ioredis's own
 * reconnection attempts (~10 s): a server message or post-call job produced during a failover or a
 * short partition is queued once Redis is back. Retrying is safe: a job's id is fixed before the
 * first attempt, and BullMQ adds a job id once.
 */
export class BullMqQueue implements JobQueue {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private readonly sleepers = new Set<() => void>();
  private waiting = 0;
  private closed = false;

  constructor(
    private readonly connection: Redis,
    private readonly options: {
      prefix?: string;
      concurrency?: number;
      /**
       * How long a running job's lock lasts without renewal (renewed every half of it while the job
       * runs). A worker that dies (SIGKILL, OOM) stops renewing: once the lock has expired, any
       * running worker's stalled-job check (every half of it) puts the job back in the queue, and it
       * runs again, with the same payload (the same idempotency key, the same meter identifiers).
       * Default 30 s.
       */
      lockMs?: number;
      /** How long an enqueue waits for an unreachable Redis before it fails (default 90 s). */
      enqueueWaitMs?: number;
      /** Enqueues that may wait at once; beyond it an enqueue fails at once (default 10,000). */
      maxWaitingEnqueues?: number;
    } = {},
  ) {}

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.options.prefix ?? "switchboard" });
      this.queues.set(name, q);
    }
    return q;
  }

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    opts: EnqueueOptions = {},
  ): Promise<void> {
    const def = JOBS[name];
    const jobId = safeJobId(opts.jobId ?? randomUUID());
    const add = () =>
      this.queue(def.queue).add(name, { name, payload } satisfies Envelope, {
        jobId,
        delay: opts.delayMs,
        attempts: def.attempts,
        backoff: { type: "switchboard" },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      });
    const deadline = Date.now() + (this.options.enqueueWaitMs ?? ENQUEUE_WAIT_MS);
    let counted = false;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await add();
          return;
        } catch (err) {
          if (!isRedisUnavailable(err) || this.closed || Date.now() >= deadline) throw err;
          if (!counted) {
            if (this.waiting >= (this.options.maxWaitingEnqueues ?? MAX_WAITING_ENQUEUES)) throw err;
            this.waiting += 1;
            counted = true;
          }
          await this.pause(Math.min(1000, 100 * attempt));
        }
      }
    } finally {
      if (counted) this.waiting -= 1;
    }
  }

  /** Enqueues waiting for Redis to come back (the spool held in memory). */
  get waitingEnqueues(): number {
    return this.waiting;
  }

  /** A pause between enqueue attempts, cut short by `close`. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  process(handlers: JobHandlers, options: ProcessOptions = {}): void {
    for (const queueName of QUEUE_NAMES) {
      const worker = new Worker(
        queueName,
        async (job) => {
          const env = job.data as Envelope;
          const handler = handlers[env.name] as ((p: unknown, c: object) => Promise<void>) | undefined;
          if (!handler) throw new Error(`no handler for job ${env.name}`);
          const jobId = job.id ?? "";
          const attempt = job.attemptsMade + 1;
          const maxAttempts = JOBS[env.name].attempts;
          const log = jobLogger(options.log, { name: env.name, jobId, attempt }, env.payload);
          try {
            await handler(env.payload, { jobId, attempt, maxAttempts, log });
          } catch (err) {
            log.warn({ err, willRetry: attempt < maxAttempts }, "job attempt failed");
            throw err;
          }
        },
        {
          // Connection options, not a client: BullMQ then owns its blocking connections and closes them
          // in worker.close() (a client passed in is never closed and keeps the process alive).
          connection: { ...this.connection.options, maxRetriesPerRequest: null },
          prefix: this.options.prefix ?? "switchboard",
          concurrency: this.options.concurrency ?? 16,
          lockDuration: this.options.lockMs ?? 30_000,
          stalledInterval: Math.max(500, Math.round((this.options.lockMs ?? 30_000) / 2)),
          // A job is put back after a worker died under it up to 3 times (BullMQ's default is once);
          // a job that keeps killing its worker then fails instead of taking every worker down.
          maxStalledCount: 3,
          settings: {
            backoffStrategy: (
              attemptsMade: number,
              _type?: string,
              _err?: Error,
              job?: { data: unknown },
            ) => {
              const env = job?.data as Envelope | undefined;
              return backoffDelay(env ? JOBS[env.name].backoffMs : 1000, attemptsMade);
            },
          },
        },
      );
      // Errors of the connections BullMQ opens for its workers: an outage is logged once with the
      // rest of the process's connections (when the app watches its Redis), anything else at warn.
      const outages = outageLogOf(this.connection);
      worker.on("error", (err) => {
        if (!isRedisUnavailable(err)) options.log?.warn({ err, queue: queueName }, "job queue error");
        else outages?.failed(`queue-worker:${queueName}`, err);
      });
      this.workers.push(worker);
    }
  }

  async jobCounts(): Promise<Record<string, JobCounts>> {
    const entries = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        const c = await this.queue(name).getJobCounts(
          "waiting",
          "prioritized",
          "active",
          "delayed",
          "failed",
        );
        const counts: JobCounts = {
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
          failed: c.failed ?? 0,
        };
        return [name, counts] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  async close(): Promise<void> {
    // Enqueues still waiting for Redis give up (their callers log what was not queued).
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    // A worker closed while its connections are still initialising leaves BullMQ's init promise to
    // reject after the fact (unhandled); let them finish first (bounded, in case Redis is gone).
    await Promise.race([
      Promise.allSettled(this.workers.map((w) => w.waitUntilReady())),
      new Promise((resolve) => setTimeout(resolve, 2000).unref()),
    ]);
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
