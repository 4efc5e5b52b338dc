// What bench/media.ts asks its server and fake child processes over IPC, answered the same way by
// each: "loop" → event-loop delay since the last ask (p99, max in ms); "gc" → a full collection
// (the child runs with --expose-gc), then its resident size less the V8 heap pages committed but
// empty (V8 gives those back lazily, so they would make the figure depend on when the last
// collection ran) and the V8 heap in use; "pacing" → frames sent and how many left more than 40 ms
// behind schedule, with the worst lateness since the last ask (the parent asks before and after
// each timed round). "loop" also carries the garbage-collection pauses since the last ask.
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import type { PacingStats } from "../libs/media/pacer.ts";
import type { GcPauses } from "./media-script.ts";

export function answerParent(pacing?: PacingStats): void {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  // Garbage-collection pauses on the main thread since the last "loop" ask.
  const none = (): GcPauses => ({ minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0, maxMs: 0 });
  const gc = none();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minorCount++;
        gc.minorMs += e.duration;
      } else {
        gc.majorCount++;
        gc.majorMs += e.duration;
      }
      if (e.duration > gc.maxMs) gc.maxMs = e.duration;
    }
  }).observe({ entryTypes: ["gc"] });
  process.on("message", (m) => {
    if (m === "loop") {
      process.send?.({
        loop: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6, gc: { ...gc } },
      });
      loopDelay.reset();
      Object.assign(gc, none());
    } else if (m === "gc") {
      globalThis.gc?.();
      const mem = process.memoryUsage();
      process.send?.({ memory: { rss: mem.rss - (mem.heapTotal - mem.heapUsed), heap: mem.heapUsed } });
    } else if (m === "pacing" && pacing) {
      process.send?.({ pacing: { ...pacing } });
      pacing.maxLateMs = 0;
    }
  });
}
