import { probeDatabase } from "../../../libs/db/index.ts";
import { SHUTDOWN_MARGIN_MS } from "../../../libs/media/call-registry.ts";
import { listenOrFail, loadOrExit, onShutdown, startOrExit } from "../../../libs/runtime/index.ts";
import { buildMedia } from "./app.ts";
import { loadMediaConfig } from "./config.ts";

// Production entry point: `node apps/media/src/main.js` in the image (compiled), or
// `node --import tsx apps/media/src/main.ts` from a checkout.
const config = loadOrExit(() => loadMediaConfig());
const app = await startOrExit("media", async () => {
  await probeDatabase(config.databaseUrl);
  const app = await buildMedia(config);
  await listenOrFail(app, { port: config.port, host: config.host, portVariable: "MEDIA_PORT" });
  return app;
});
app.log.info({ startupMs: Math.round(process.uptime() * 1000) }, "ready");
// SIGTERM: new streams are refused and live calls run for up to MEDIA_DRAIN_MS, then end with
// `worker-shutdown`; a second SIGTERM ends them at once. Either way the process exits 0.
onShutdown(() => app.close(), {
  hurry: () => app.calls.hurry(),
  deadlineMs: config.drainMs + SHUTDOWN_MARGIN_MS,
});
