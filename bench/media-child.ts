// The media process of `npm run bench:media`, alone in its own node process so its CPU and RSS are
// measured without the load generator: the real `buildMedia` (Postgres, Redis control bus and
// leases, BullMQ on a bench-only prefix, the real provider adapters at the fakes' URLs), configured
// from the environment exactly like `apps/media/src/main.ts`. Tells the parent it is listening over IPC,
// answers "loop" with its event-loop delay, "pacing" with the pacer's sent/late frame counts and "gc"
// with its resident size and V8 heap after a full collection (the memory phase only).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Redis } from "ioredis";
import { buildMedia } from "../apps/media/src/app.ts";
import { loadMediaConfig } from "../apps/media/src/config.ts";
import { BullMqQueue } from "../libs/queue/index.ts";

const config = loadMediaConfig();
if (!config.redisUrl) throw new Error("bench media child: REDIS_URL is required");
const redis = new Redis(config.redisUrl);
const queue = new BullMqQueue(redis, { prefix: process.env.BENCH_QUEUE_PREFIX ?? "switchboard-bench" });
const app = await buildMedia(config, { redis, queue, logger: { level: config.logLevel } });
await app.listen({ port: config.port, host: config.host });
process.send?.({ ready: true });

// Event-loop delay since the last ask, for the parent's report.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
process.on("message", (m) => {
  if (m === "gc") {
    // A full collection (this child runs with --expose-gc), then what the process holds.
    globalThis.gc?.();
    const mem = process.memoryUsage();
    // Resident size less the V8 heap pages committed but empty (V8 gives them back lazily, so
    // they would make the figure depend on when the last collection ran).
    process.send?.({ memory: { rss: mem.rss - (mem.heapTotal - mem.heapUsed), heap: mem.heapUsed } });
    return;
  }
  if (m === "pacing") {
    // Frames this process sent and how many left more than 40 ms behind schedule (the pacer counts).
    process.send?.({ pacing: { ...app.pacer.stats } });
    // The worst lateness is per ask (the parent asks before and after each timed round).
    app.pacer.stats.maxLateMs = 0;
    return;
  }
  if (m !== "loop") return;
  process.send?.({ loop: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 } });
  loopDelay.reset();
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await app.close();
  await queue.close();
  redis.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());
