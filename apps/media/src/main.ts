import { loadOrExit, onShutdown } from "../../../libs/runtime/process.ts";
import { buildMedia } from "./app.ts";
import { loadMediaConfig } from "./config.ts";

const config = loadOrExit(() => loadMediaConfig());
const app = await buildMedia(config);
await app.listen({ port: config.port, host: config.host });
onShutdown(async () => {
  await app.close();
});
