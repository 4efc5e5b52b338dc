import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
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

/** BullMQ on Redis: jobs survive restarts and are shared by every worker process. */
export class BullMqQueue implements JobQueue {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];

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
    await this.queue(def.queue).add(name, { name, payload } satisfies Envelope, {
      jobId: safeJobId(opts.jobId ?? randomUUID()),
      delay: opts.delayMs,
      attempts: def.attempts,
      backoff: { type: "switchboard" },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
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
