import { probeDatabase } from "../../../libs/db/index.ts";
import {
  listenOrFail,
  loadOrExit,
  onShutdown,
  STOP_DEADLINE_MS,
  startOrExit,
} from "../../../libs/runtime/index.ts";
import { buildWorker } from "./app.ts";
import { loadWorkerConfig } from "./config.ts";

// Production entry point: `node apps/worker/src/main.js` in the image (compiled), or
// `node --import tsx apps/worker/src/main.ts` from a checkout.
const config = loadOrExit(() => loadWorkerConfig());
const app = await startOrExit("worker", async () => {
  await probeDatabase(config.databaseUrl);
  const app = await buildWorker(config);
  await listenOrFail(app, { port: config.port, host: config.host, portVariable: "WORKER_PORT" });
  return app;
});
app.log.info({ startupMs: Math.round(process.uptime() * 1000) }, "ready");
// No new jobs are fetched; running ones finish (BullMQ's close). A job cut off by the deadline is
// picked up again by another worker once BullMQ sees it stalled.
onShutdown(() => app.close(), { deadlineMs: STOP_DEADLINE_MS });
