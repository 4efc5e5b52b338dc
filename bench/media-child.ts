// The media process of `npm run bench:media`, alone in its own node process so its CPU and RSS are
// measured without the load generator: the real `buildMedia` (Postgres, Redis control bus and
// leases, BullMQ on a bench-only prefix, the real provider adapters at the fakes' URLs), configured
// from the environment exactly like `apps/media/src/main.ts`. Tells the parent it is listening over IPC
// and answers its questions (bench/child-ipc.ts) with the pacer's counts.
import { Redis } from "ioredis";
import { buildMedia } from "../apps/media/src/app.ts";
import { loadMediaConfig } from "../apps/media/src/config.ts";
import { BullMqQueue } from "../libs/queue/index.ts";
import { answerParent } from "./child-ipc.ts";
import { startAllocationProfile } from "./processes.ts";

const config = loadMediaConfig();
if (!config.redisUrl) throw new Error("bench media child: REDIS_URL is required");
const redis = new Redis(config.redisUrl);
const queue = new BullMqQueue(redis, { prefix: process.env.BENCH_QUEUE_PREFIX ?? "switchboard-bench" });
const app = await buildMedia(config, { redis, queue, logger: { level: config.logLevel } });
await app.listen({ port: config.port, host: config.host });
process.send?.({ ready: true });

answerParent(app.pacer.stats);
const allocations = startAllocationProfile();

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await allocations?.();
  await app.close();
  await queue.close();
  redis.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());
