import { applyMigrations } from "../../../libs/db/index.ts";
import { loadOrExit, onShutdown } from "../../../libs/runtime/process.ts";
import { buildApi } from "./app.ts";
import { loadApiConfig } from "./config.ts";

const config = loadOrExit(() => loadApiConfig());
if (process.env.MIGRATE_ON_START !== "false") await applyMigrations(config.databaseUrl);
const app = await buildApi(config);
await app.listen({ port: config.port, host: config.host });
onShutdown(async () => {
  await app.close();
});
