import { loadOrExit, onShutdown } from "../../../libs/runtime/process.ts";
import { buildWorker } from "./app.ts";
import { loadWorkerConfig } from "./config.ts";

const config = loadOrExit(() => loadWorkerConfig());
const app = await buildWorker(config);
await app.listen({ port: config.port, host: config.host });
onShutdown(async () => {
  await app.close();
});
