// `npm start`: the whole platform in one process. With DATABASE_URL unset it runs on an embedded
// Postgres (PGlite, persisted in DATA_DIR); with REDIS_URL unset jobs run in-process. Development
// secrets (SECRETS_KEY, ADMIN_TOKEN) and a development API key are generated once into DATA_DIR
// when not configured, so a fresh machine needs no setup. One process owns DATA_DIR at a time (a
// lock file naming it). Production runs each app on its own (`node apps/api/src/main.js`, …; see
// the README's "Deploying") with every secret configured.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { EmbeddedPostgres } from "../libs/db/embedded.ts";
import type { JobQueue } from "../libs/queue/index.ts";
import { listenOrFail, loadOrExit, lockDataDir, onShutdown, startOrExit } from "../libs/runtime/index.ts";

interface DevState {
  secretsKey: string;
  adminToken: string;
  devOrgId?: string;
  devApiKey?: string;
}

const raw = { ...process.env };
const dataDir = path.resolve(raw.DATA_DIR || ".data");
await mkdir(dataDir, { recursive: true });
const lock = await startOrExit("switchboard", async () => lockDataDir(dataDir));
// Loaded after the lock, so a second start on the same DATA_DIR refuses before loading the platform.
const [
  { buildApi },
  { apiConfigFromEnv },
  { OrgService },
  { buildMedia },
  { mediaConfigFromEnv },
  { buildWorker },
  { workerConfigFromEnv },
  { parseEnv },
  { startEmbeddedPostgres },
  { createDb, migrateForStart },
  { BullMqQueue, InProcessQueue },
] = await Promise.all([
  import("../apps/api/src/app.ts"),
  import("../apps/api/src/config.ts"),
  import("../apps/api/src/services/org-service.ts"),
  import("../apps/media/src/app.ts"),
  import("../apps/media/src/config.ts"),
  import("../apps/worker/src/app.ts"),
  import("../apps/worker/src/config.ts"),
  import("../libs/config/index.ts"),
  import("../libs/db/embedded.ts"),
  import("../libs/db/index.ts"),
  import("../libs/queue/index.ts"),
]);
const statePath = path.join(dataDir, "dev-state.json");
const state: DevState = existsSync(statePath)
  ? (JSON.parse(await readFile(statePath, "utf8")) as DevState)
  : { secretsKey: randomBytes(32).toString("base64"), adminToken: randomBytes(24).toString("base64url") };
raw.SECRETS_KEY ??= state.secretsKey;
raw.ADMIN_TOKEN ??= state.adminToken;

let embedded: EmbeddedPostgres | undefined;
if (!raw.DATABASE_URL) {
  embedded = await startEmbeddedPostgres(path.join(dataDir, "pg"));
  raw.DATABASE_URL = embedded.url;
}

const env = loadOrExit(() => parseEnv(raw));
const apiConfig = loadOrExit(() => apiConfigFromEnv(env));
if (env.MIGRATE_ON_START !== "false") {
  const applied = await startOrExit("switchboard", () => migrateForStart(apiConfig.databaseUrl));
  if (applied.length) console.log(`switchboard: applied migrations ${applied.join(", ")}`);
}

// PGlite is one Postgres session; a single connection keeps transactions from interleaving.
const db = createDb(apiConfig.databaseUrl, { max: embedded ? 1 : 10, applicationName: "switchboard" });

const orgs = new OrgService(db);
const devOrgExists = state.devOrgId ? (await db.org.count({ where: { id: state.devOrgId } })) > 0 : false;
if (!devOrgExists) {
  const { org, apiKey } = await orgs.createOrg("Development");
  state.devOrgId = org.id;
  state.devApiKey = apiKey.value;
}
await writeFile(statePath, JSON.stringify(state, null, 2), { mode: 0o600 });

const api = await buildApi(apiConfig, { db });
// One job queue for all three apps: BullMQ when Redis is configured, else in-process (jobs enqueued by
// the media plane run in this process's worker, which logs each failed attempt on the job's logger).
const queue: JobQueue = api.deps.redis ? new BullMqQueue(api.deps.redis) : new InProcessQueue();
const media = await buildMedia(mediaConfigFromEnv(env), { db, redis: api.deps.redis, queue });
const worker = await buildWorker(workerConfigFromEnv(env), { db, redis: api.deps.redis, queue });
const host = env.HOST ?? "127.0.0.1";
await startOrExit("switchboard", async () => {
  await listenOrFail(api, { port: apiConfig.port, host, portVariable: "API_PORT" });
  await listenOrFail(media, { port: env.MEDIA_PORT ?? 3001, host, portVariable: "MEDIA_PORT" });
  await listenOrFail(worker, { port: env.WORKER_PORT ?? 3002, host, portVariable: "WORKER_PORT" });
});

const mode = [embedded ? "embedded Postgres" : "", api.deps.redis ? "" : "in-process jobs"].filter(Boolean);
console.log(`
Switchboard is running${mode.length ? ` (${mode.join(", ")})` : ""}
  API          ${apiConfig.publicUrl}
  API docs     ${apiConfig.publicUrl}/docs
  Dashboard    ${apiConfig.publicUrl}/dashboard/
  Talk         ${apiConfig.publicUrl}/dashboard/talk.html (call an assistant from the browser)
  Media        ${mediaConfigFromEnv(env).mediaPublicUrl}
  Dev API key  ${state.devApiKey}
  Admin token  ${env.ADMIN_TOKEN === state.adminToken ? `${state.adminToken} (generated; set ADMIN_TOKEN to choose)` : "(from ADMIN_TOKEN)"}

Try: curl -H "Authorization: Bearer ${state.devApiKey}" ${apiConfig.publicUrl}/assistant
`);

onShutdown(
  async () => {
    await api.close();
    await media.close();
    await worker.close();
    await queue.close();
    await db.$disconnect();
    await embedded?.stop();
    lock.release();
  },
  { hurry: () => media.calls.hurry() },
);
