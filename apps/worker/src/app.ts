import Fastify, { type FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import { SpendControls } from "../../../libs/billing/spend-controls.ts";
import { SecretBox } from "../../../libs/crypto/index.ts";
import { createDb, type Db } from "../../../libs/db/index.ts";
import {
  installErrorHandler,
  installRequestId,
  loggingOptions,
  registerHealthRoute,
} from "../../../libs/http/index.ts";
import { leaseTimings } from "../../../libs/media/lease.ts";
import { startSweeper } from "../../../libs/media/sweeper.ts";
import { installMetrics, instrumentJobs, trackQueueDepth } from "../../../libs/metrics/index.ts";
import { BullMqQueue, InProcessQueue, type JobHandlers, type JobQueue } from "../../../libs/queue/index.ts";
import { CallRecordings, RecordingStores } from "../../../libs/recordings/index.ts";
import { connectRedis } from "../../../libs/redis/index.ts";
import { WebhookDispatcher } from "../../../libs/webhooks/index.ts";
import type { WorkerConfig } from "./config.ts";
import { buildJobHandlers } from "./jobs/index.ts";
import { schedulePeriodicJobs } from "./schedule.ts";

export interface BuildWorkerOptions {
  db?: Db;
  redis?: Redis;
  logger?: boolean | object;
  /**
   * Share one queue with the api and media builds (the single-process `npm start`, tests). The caller
   * then closes it after the apps; otherwise the worker builds its own (BullMQ when Redis is
   * configured, else in-process) and closes it on shutdown.
   */
  queue?: JobQueue;
  /** Extra or replacement processors (merged over the built-in ones). */
  handlers?: JobHandlers;
  /** Periodic jobs (daily billing reconciliation); on by default. */
  schedule?: boolean;
  /** How often calls whose media process died are swept (default: a fifth of CALL_LEASE_MS; 0: off). */
  sweepIntervalMs?: number;
}

export type WorkerApp = FastifyInstance & { queue: JobQueue };

/**
 * The jobs plane: webhook delivery, post-call reports (and usage to Stripe). On close it stops
 * fetching jobs and waits for running ones (BullMQ `worker.close()`).
 */
export async function buildWorker(
  config: WorkerConfig,
  options: BuildWorkerOptions = {},
): Promise<WorkerApp> {
  const app = Fastify(loggingOptions("worker", config.logLevel, options.logger));
  installRequestId(app);
  installMetrics(app, { app: "worker", token: config.metricsToken });
  installErrorHandler(app);
  const db = options.db ?? createDb(config.databaseUrl, { applicationName: "switchboard-worker" });
  // Its failures (and those of BullMQ's worker connections) are logged once per outage.
  const redis =
    options.redis ?? (config.redisUrl ? connectRedis(config.redisUrl, "worker", app.log) : undefined);
  const queue: JobQueue =
    options.queue ?? (redis ? new BullMqQueue(redis, { lockMs: config.jobLockMs }) : new InProcessQueue());
  const log = app.log;
  const secrets = new SecretBox(config.secretsKey, config.previousSecretsKeys);
  const dispatcher = new WebhookDispatcher(queue, { logger: log, secrets });
  queue.process(
    instrumentJobs({
      ...buildJobHandlers({ config, db, queue, dispatcher, log, secrets, redis }),
      ...options.handlers,
    }),
    // Each job writes through a child of this: its name, id, attempt and the payload's ids.
    { log },
  );
  const jobCounts = queue.jobCounts?.bind(queue);
  const untrackQueue = jobCounts ? trackQueueDepth(jobCounts) : undefined;
  const stopSchedule =
    options.schedule === false
      ? () => {}
      : schedulePeriodicJobs(queue, {
          onError: (err) => log.warn({ err }, "periodic job not queued"),
        });
  // Calls whose media process died are ended wherever a worker runs, even with no media process left.
  const lease = leaseTimings(config.callLeaseMs);
  const sweepMs = options.sweepIntervalMs ?? lease.sweepIntervalMs;
  // A dead media process's recording is stored by the sweep when its spool is on this disk.
  const recordings = new CallRecordings(
    new RecordingStores(config.recordings, db, secrets),
    config.publicUrl,
  );
  const stopSweeper =
    sweepMs > 0
      ? startSweeper(
          {
            db,
            queue,
            spend: new SpendControls(db, redis),
            catalog: config.priceCatalog,
            recordings,
            logger: log,
          },
          // With a RECORDINGS_DIR shared with the media processes, dead ones' spools are stored here too.
          { intervalMs: sweepMs, staleMs: lease.staleAfterMs, spools: { logger: log } },
        )
      : undefined;
  app.addHook("onClose", async () => {
    stopSweeper?.();
    untrackQueue?.();
    stopSchedule();
    if (!options.queue) await queue.close();
    if (!options.redis) redis?.disconnect();
    if (!options.db) await db.$disconnect();
    recordings.stores.close();
  });
  registerHealthRoute(app, () => ({ db, redis }));
  await app.ready();
  const worker: WorkerApp = Object.assign(app, { queue });
  return worker;
}
