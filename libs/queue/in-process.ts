import { randomUUID } from "node:crypto";
import {
  backoffDelay,
  type EnqueueOptions,
  JOBS,
  type JobHandlers,
  type JobLogger,
  type JobName,
  type JobPayload,
  type JobQueue,
  jobLogger,
  type ProcessOptions,
  safeJobId,
} from "./catalogue.ts";

interface Pending {
  name: JobName;
  payload: unknown;
  jobId: string;
  attempt: number;
}

/**
 * Jobs in the same process, for the zero-configuration start: same catalogue, same retries and
 * backoff, same id de-duplication as BullMQ; nothing survives a restart (which is why production
 * uses Redis).
 */
export class InProcessQueue implements JobQueue {
  private handlers: JobHandlers = {};
  private readonly known = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private readonly backlog: Pending[] = [];
  private log: JobLogger | undefined;
  private closed = false;

  constructor(
    private readonly onError: (
      err: unknown,
      job: { name: string; jobId: string; attempt: number },
    ) => void = () => {},
  ) {}

  async enqueue<N extends JobName>(
    name: N,
    payload: JobPayload<N>,
    opts: EnqueueOptions = {},
  ): Promise<void> {
    if (this.closed) throw new Error("queue is closed");
    const jobId = safeJobId(opts.jobId ?? randomUUID());
    if (this.known.has(jobId)) return;
    this.known.add(jobId);
    this.schedule({ name, payload, jobId, attempt: 1 }, opts.delayMs ?? 0);
  }

  process(handlers: JobHandlers, options: ProcessOptions = {}): void {
    this.handlers = { ...this.handlers, ...handlers };
    if (options.log) this.log = options.log;
    for (const p of this.backlog.splice(0)) this.schedule(p, 0);
  }

  private schedule(job: Pending, delayMs: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.run(job);
    }, delayMs);
    this.timers.add(t);
  }

  private run(job: Pending): void {
    const handler = this.handlers[job.name] as ((p: unknown, c: object) => Promise<void>) | undefined;
    if (!handler) {
      this.backlog.push(job);
      return;
    }
    const def = JOBS[job.name];
    const log = jobLogger(this.log, job, job.payload);
    const p = handler(job.payload, { jobId: job.jobId, attempt: job.attempt, maxAttempts: def.attempts, log })
      .then(() => {
        this.known.delete(job.jobId);
      })
      .catch((err: unknown) => {
        log.warn({ err, willRetry: job.attempt < def.attempts && !this.closed }, "job attempt failed");
        this.onError(err, { name: job.name, jobId: job.jobId, attempt: job.attempt });
        if (job.attempt < def.attempts && !this.closed) {
          this.schedule({ ...job, attempt: job.attempt + 1 }, backoffDelay(def.backoffMs, job.attempt));
        } else {
          this.known.delete(job.jobId);
        }
      })
      .finally(() => {
        this.running.delete(p);
      });
    this.running.add(p);
  }

  /** Resolves when nothing is running or scheduled (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.timers.size > 0) {
      await Promise.race([...this.running, new Promise((r) => setTimeout(r, 10))]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
