// The image's HEALTHCHECK (the slim image has no curl): `node scripts/healthcheck.js [port]`.
// Healthy when the app's `GET /health` answers 200; unhealthy on a 503 (its database or Redis is
// down) or no answer. Without a port (the image's default, which runs any of the three apps) it
// asks each app's port on loopback and judges by the ones that answer.
import { parseEnv } from "../libs/config/index.ts";
import { loadOrExit } from "../libs/runtime/process.ts";

const HEALTH_PATH = "/health";

const env = loadOrExit(() => parseEnv(process.env));
const ports = process.argv[2]
  ? [Number(process.argv[2])]
  : [env.API_PORT ?? 3000, env.MEDIA_PORT ?? 3001, env.WORKER_PORT ?? 3002];

async function status(port: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${HEALTH_PATH}`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return undefined;
  }
}

const answers = (await Promise.all(ports.map(status))).filter((s) => s !== undefined);
process.exit(answers.length > 0 && answers.every((s) => s === 200) ? 0 : 1);
