import assert from "node:assert/strict";
import { test } from "node:test";
import { previousUtcDay, schedulePeriodicJobs } from "../../apps/worker/src/schedule.ts";
import { InProcessQueue, type JobPayload } from "../../libs/queue/index.ts";

test("the worker asks for yesterday's reconciliation once per day, whatever the number of ticks", async () => {
  assert.deepEqual(previousUtcDay(new Date("2026-11-25T08:30:00Z")), {
    label: "2026-11-24",
    periodStart: "2026-11-24T00:00:00.000Z",
    periodEnd: "2026-11-25T00:00:00.000Z",
  });
  const queue = new InProcessQueue();
  const seen: JobPayload<"billing.reconcile">[] = [];
  queue.process({
    "billing.reconcile": async (p) => {
      seen.push(p);
    },
  });
  let now = new Date("2026-11-25T08:30:00Z");
  const stop = schedulePeriodicJobs(queue, { intervalMs: 5, now: () => now });
  await new Promise((r) => setTimeout(r, 40));
  now = new Date("2026-11-26T00:10:00Z");
  await new Promise((r) => setTimeout(r, 40));
  stop();
  await queue.idle();
  await queue.close();
  assert.deepEqual(
    seen.map((p) => p.periodStart),
    ["2026-11-24T00:00:00.000Z", "2026-11-25T00:00:00.000Z"],
  );
});
