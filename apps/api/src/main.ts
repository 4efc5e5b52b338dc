import { migrateForStart, probeDatabase } from "../../../libs/db/index.ts";
import {
  listenOrFail,
  loadOrExit,
  onShutdown,
  STOP_DEADLINE_MS,
  startOrExit,
} from "../../../libs/runtime/index.ts";
import { buildApi } from "./app.ts";
import { loadApiConfig } from "./config.ts";

// Production entry point: `node apps/api/src/main.js` in the image (compiled), or
// `node --import tsx apps/api/src/main.ts` from a checkout.
const config = loadOrExit(() => loadApiConfig());
const app = await startOrExit("api", async () => {
  if (process.env.MIGRATE_ON_START !== "false") await migrateForStart(config.databaseUrl);
  else await probeDatabase(config.databaseUrl);
  const app = await buildApi(config);
  await listenOrFail(app, { port: config.port, host: config.host, portVariable: "API_PORT" });
  return app;
});
app.log.info({ startupMs: Math.round(process.uptime() * 1000) }, "ready");
// In-flight requests finish (Fastify's close), within STOP_DEADLINE_MS.
onShutdown(() => app.close(), { deadlineMs: STOP_DEADLINE_MS });
