import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import dockerignoreModule from "@balena/dockerignore";
import type { FastifyInstance } from "fastify";
import ts from "typescript";
import YAML from "yaml";
import { buildApi } from "../../apps/api/src/app.ts";
import { loadApiConfig } from "../../apps/api/src/config.ts";
import { buildMedia } from "../../apps/media/src/app.ts";
import { loadMediaConfig } from "../../apps/media/src/config.ts";
import { buildWorker } from "../../apps/worker/src/app.ts";
import { loadWorkerConfig } from "../../apps/worker/src/config.ts";
import { EnvSchema, parseEnv, requireVar } from "../../libs/config/index.ts";
import { SHUTDOWN_MARGIN_MS } from "../../libs/media/call-registry.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

// No Docker engine or cluster runs here, so the deployment files are checked against the code:
// every command runs a file the image has, every variable is one the configuration knows (and the
// required ones are set), ports, health and metrics paths are the ones the apps serve.

// A CommonJS module whose typings declare an ES default export (it sets `factory.default = factory`).
const dockerignore = dockerignoreModule.default;

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

// ------------------------------------------------------------------ what the code says

/** The files `npm run build` compiles (tsconfig.build.json), as the image holds them (`.js`). */
const BUILT = (() => {
  const parsed = ts.parseConfigFileTextToJson("tsconfig.build.json", read("tsconfig.build.json"));
  const include = (parsed.config as { include: string[] }).include;
  return new Set(include.map((f) => f.replace(/\.ts$/, ".js")));
})();

type AppName = "api" | "media" | "worker";

const ENTRY: Record<string, AppName | "migrate" | "healthcheck"> = {
  "apps/api/src/main.js": "api",
  "apps/media/src/main.js": "media",
  "apps/worker/src/main.js": "worker",
  "scripts/db-migrate.js": "migrate",
  "scripts/healthcheck.js": "healthcheck",
};

/** `node <file> …` as the image runs it: the file is compiled into the image from a source that exists. */
function imageCommand(command: unknown): { file: string; runs: (typeof ENTRY)[string]; args: string[] } {
  assert.ok(Array.isArray(command), `exec form, no shell: ${JSON.stringify(command)}`);
  const [node, file, ...args] = command as string[];
  assert.equal(node, "node", `node itself is the process: ${JSON.stringify(command)}`);
  assert.ok(file && BUILT.has(file), `${file} is compiled into the image (tsconfig.build.json)`);
  assert.ok(existsSync(path.join(ROOT, file.replace(/\.js$/, ".ts"))), `${file}'s source exists`);
  const runs = ENTRY[file];
  assert.ok(runs, `${file} is an entry point this test knows`);
  return { file, runs, args };
}

const LOADERS: Record<AppName, (env: Record<string, string>) => { port: number }> = {
  api: loadApiConfig,
  media: loadMediaConfig,
  worker: loadWorkerConfig,
};

/** Runs the variables through the app's own configuration: unknown, invalid or missing ones throw. */
function appConfig(app: AppName | "migrate", env: Record<string, string>) {
  for (const name of Object.keys(env)) {
    assert.ok(
      name in EnvSchema.properties,
      `${name} is a variable the configuration knows (libs/config/env.ts)`,
    );
  }
  const parsed = parseEnv(env);
  if (app === "migrate") {
    requireVar(parsed, "DATABASE_URL", "the database to migrate");
    return undefined;
  }
  return LOADERS[app](env);
}

const SECRETS = {
  SECRETS_KEY: randomBytes(32).toString("base64"),
  ADMIN_TOKEN: randomBytes(24).toString("hex"),
};

interface Routes {
  health: boolean;
  metrics: boolean;
  stream: boolean;
}

/** The routes each app really registers (built, not listening). */
async function appRoutes(database: TestDatabase): Promise<Record<AppName, Routes>> {
  const env = { DATABASE_URL: database.url, ...SECRETS, LOG_LEVEL: "silent" };
  const built: Record<AppName, FastifyInstance> = {
    api: await buildApi(loadApiConfig(env), { logger: false }),
    media: await buildMedia(loadMediaConfig(env), { logger: false, sweepIntervalMs: 0 }),
    worker: await buildWorker(loadWorkerConfig(env), { logger: false, schedule: false }),
  };
  const out = {} as Record<AppName, Routes>;
  for (const [name, app] of Object.entries(built) as [AppName, FastifyInstance][]) {
    out[name] = {
      health: app.hasRoute({ method: "GET", url: "/health" }),
      metrics: app.hasRoute({ method: "GET", url: "/metrics" }),
      stream: app.hasRoute({ method: "GET", url: "/twilio/stream" }),
    };
    await app.close();
  }
  return out;
}

// ------------------------------------------------------------------ docker-compose.yml

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
function interpolate(value: string, vars: Record<string, string>, required: Set<string>): string {
  return value.replace(
    /\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g,
    (_m, name: string, op?: string, arg?: string) => {
      const v = vars[name];
      const missing = v === undefined || (op?.startsWith(":") && v === "");
      if (op?.endsWith("?")) {
        required.add(name);
        assert.ok(!missing, `compose requires ${name}: ${arg}`);
      }
      if (missing && op?.endsWith("-")) return arg ?? "";
      return v ?? "";
    },
  );
}

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: unknown;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  deploy?: { replicas?: number };
  volumes?: string[];
}

function seconds(duration: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(duration);
  assert.ok(m, `a duration: ${duration}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}

describe("docker-compose.yml against the code", () => {
  let database: TestDatabase;
  let routes: Record<AppName, Routes>;
  const compose = YAML.parse(read("docker-compose.yml"), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const services = compose.services;
  const required = new Set<string>();
  // The variables an operator sets in the shell (the file's header says how).
  const shell = { ...SECRETS };
  const envOf = (s: ComposeService) =>
    Object.fromEntries(
      Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), shell, required)]),
    );
  const appServices = Object.entries(services).filter(([, s]) => s.build !== undefined);

  before(async () => {
    database = await createTestDatabase();
    routes = await appRoutes(database);
  });
  after(async () => {
    await database.drop();
  });

  it("the image's services run node on a compiled entry point, with every variable known and every required one set", () => {
    const runs = new Map<string, string>();
    for (const [name, s] of appServices) {
      const { runs: app } = imageCommand(s.command);
      runs.set(name, app);
      assert.notEqual(app, "healthcheck");
      appConfig(app as AppName | "migrate", envOf(s));
    }
    assert.deepEqual(Object.fromEntries(runs), {
      migrate: "migrate",
      api: "api",
      media: "media",
      worker: "worker",
    });
    // Only the secrets come from the operator's shell; everything else has a value here.
    assert.deepEqual([...required].sort(), ["ADMIN_TOKEN", "SECRETS_KEY"]);
  });

  it("the database and Redis the apps are given are the compose services, with the same credentials", () => {
    const pg = services.postgres?.environment ?? {};
    for (const [name, s] of appServices) {
      const env = envOf(s);
      const db = new URL(env.DATABASE_URL ?? "");
      assert.equal(db.hostname, "postgres", name);
      assert.deepEqual(
        [db.username, db.password, db.pathname.slice(1)],
        [pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB],
        name,
      );
      if (name !== "migrate") assert.equal(new URL(env.REDIS_URL ?? "").hostname, "redis", name);
    }
  });

  it("migrate runs once after Postgres is healthy; every app starts after it completed and does not migrate itself", () => {
    assert.equal(services.migrate?.depends_on?.postgres?.condition, "service_healthy");
    assert.equal(services.migrate?.healthcheck?.disable, true, "a one-shot job has no health");
    for (const [name, s] of appServices) {
      if (name === "migrate") continue;
      assert.equal(s.depends_on?.migrate?.condition, "service_completed_successfully", name);
      assert.equal(envOf(s).MIGRATE_ON_START, "false", name);
    }
  });

  it("Redis keeps every key (noeviction, which BullMQ needs) and persists append-only", () => {
    const command = (services.redis as { command?: string[] }).command ?? [];
    const flag = (f: string) => command[command.indexOf(f) + 1];
    assert.equal(flag("--maxmemory-policy"), "noeviction");
    assert.equal(flag("--appendonly"), "yes");
    assert.ok(
      services.redis?.volumes?.some((v) => v.endsWith(":/data")),
      "its data on a volume",
    );
  });

  it("each app's health check asks the port it listens on, at a path it serves; published ports are its own", () => {
    for (const [name, s] of appServices) {
      if (name === "migrate") continue;
      const app = name as AppName;
      const config = appConfig(app, envOf(s));
      const check = s.healthcheck?.test ?? [];
      assert.equal(check[0], "CMD", name);
      const { runs, args } = imageCommand(check.slice(1));
      assert.equal(runs, "healthcheck", name);
      assert.deepEqual(args, [String(config?.port)], `${name} checks its own port`);
      assert.ok(routes[app].health, `${name} serves GET /health (what scripts/healthcheck.ts asks)`);
      for (const p of s.ports ?? []) assert.equal(Number(p.split(":").pop()), config?.port, name);
    }
    assert.match(read("scripts/healthcheck.ts"), /const HEALTH_PATH = "\/health";/);
  });

  it("two media replicas behind one websocket URL, stopped with more grace than their drain", () => {
    const media = services.media as ComposeService;
    assert.equal(media.deploy?.replicas, 2);
    const config = loadMediaConfig(envOf(media)) as ReturnType<typeof loadMediaConfig>;
    const grace = seconds(media.stop_grace_period ?? "10s") * 1000;
    assert.ok(
      grace > config.drainMs + SHUTDOWN_MARGIN_MS,
      `stop_grace_period ${grace} ms > MEDIA_DRAIN_MS ${config.drainMs} + ${SHUTDOWN_MARGIN_MS} ms`,
    );
    const proxy = services["media-proxy"] as ComposeService;
    const mount = proxy.volumes?.[0]?.split(":") ?? [];
    assert.ok(existsSync(path.join(ROOT, mount[0] ?? "")), `${mount[0]} exists`);
    const conf = read(mount[0] ?? "");
    assert.match(conf, new RegExp(`server media:${config.port} resolve;`));
    assert.ok(routes.media.stream);
    assert.match(conf, /location = \/twilio\/stream \{/);
    const published = proxy.ports?.map((p) => Number(p.split(":").pop()));
    assert.deepEqual(published, [Number(/listen (\d+);/.exec(conf)?.[1])]);
    assert.equal(
      new URL(envOf(media).MEDIA_PUBLIC_URL ?? "").port,
      String(published?.[0]),
      "MEDIA_PUBLIC_URL is the proxy",
    );
    const timeout = Number(/proxy_read_timeout (\d+)s;/.exec(conf)?.[1]);
    assert.ok(timeout > 43_200, "the proxy never cuts a call shorter than the longest (43200 s)");
  });
});

// ------------------------------------------------------------------ infra/Dockerfile

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions per stage (continuation lines joined, comments dropped). */
function dockerfileStages(text: string): { from: string; name?: string; lines: Instruction[] }[] {
  const joined = text.replace(/\\\n/g, " ");
  const stages: { from: string; name?: string; lines: Instruction[] }[] = [];
  for (const raw of joined.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [op = "", ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (op.toUpperCase() === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: m?.[1] ?? args, name: m?.[2], lines: [] });
    } else stages.at(-1)?.lines.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** Every file under the checkout (without node_modules and .git, which must be ignored themselves). */
function contextFiles(dir = "", out: string[] = []): string[] {
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (rel === "node_modules" || rel === ".git") continue;
    if (e.isDirectory()) contextFiles(rel, out);
    else out.push(rel);
  }
  return out;
}

describe("infra/Dockerfile and .dockerignore", () => {
  const stages = dockerfileStages(read("infra/Dockerfile"));
  const build = stages[0];
  const runtime = stages.at(-1);
  const ops = (s: typeof runtime, op: string) => s?.lines.filter((l) => l.op === op).map((l) => l.args) ?? [];

  it("builds in one stage (npm ci, Prisma client, compiled JavaScript, production dependencies pruned)", () => {
    assert.equal(stages.length, 2);
    const runs = ops(build, "RUN").join("\n");
    assert.match(runs, /npm ci\b/);
    assert.match(runs, /npm run -s build\b/);
    assert.match(runs, /npm prune --omit=dev\b/);
    assert.match(
      JSON.parse(read("package.json")).scripts.build as string,
      /^npm run -s db:generate && /,
      "npm run build generates the Prisma client first",
    );
  });

  it("runs on the slim Node 20 image as an unprivileged user, tini as PID 1, node as the command, with a HEALTHCHECK", () => {
    assert.equal(runtime?.from, "node:20-bookworm-slim");
    assert.equal(ops(runtime, "USER").at(-1), "node");
    assert.match(ops(runtime, "RUN").join("\n"), /apt-get install -y --no-install-recommends tini/);
    assert.deepEqual(JSON.parse(ops(runtime, "ENTRYPOINT")[0] ?? "[]"), ["/usr/bin/tini", "--"]);
    assert.equal(imageCommand(JSON.parse(ops(runtime, "CMD")[0] ?? "[]")).runs, "api");
    const health = ops(runtime, "HEALTHCHECK")[0] ?? "";
    const cmd = /CMD (\[.*\])$/.exec(health)?.[1];
    assert.equal(imageCommand(JSON.parse(cmd ?? "[]")).runs, "healthcheck");
  });

  it("the runtime stage takes only the build's output and production dependencies", () => {
    const copies = ops(runtime, "COPY");
    assert.ok(copies.length > 0);
    for (const c of copies) assert.match(c, new RegExp(`^--from=${build?.name} `), c);
    assert.deepEqual(copies.map((c) => c.split(/\s+/).slice(-2)[0]).sort(), [
      "/app/dist",
      "/app/node_modules",
    ]);
  });

  it("no .env file, test or benchmark can reach the image: the build copies named folders, and .dockerignore drops the rest", () => {
    const ignore = dockerignore().add(read(".dockerignore"));
    const sources = ops(build, "COPY").flatMap((c) => c.split(/\s+/).slice(0, -1));
    assert.ok(!sources.includes("."), "never the whole context");
    const copied = contextFiles()
      .filter((f) => !ignore.ignores(f))
      .filter((f) => sources.some((s) => f === s || f.startsWith(`${s.replace(/\/$/, "")}/`)));
    assert.ok(copied.includes("apps/api/src/main.ts") && copied.includes("prisma/schema.prisma"));
    for (const f of copied) {
      assert.doesNotMatch(f, /(^|\/)\.env/, `${f} would be in the image`);
      assert.doesNotMatch(f, /(^test\/|\.test\.ts$|^bench\/)/, `${f} would be in the image`);
    }
    for (const f of [
      ".env",
      ".env.production",
      "apps/api/.env.local",
      "test/api/auth.test.ts",
      ".git/config",
    ]) {
      assert.ok(ignore.ignores(f), `.dockerignore drops ${f}`);
    }
    assert.ok(ignore.ignores("node_modules/x/index.js"), "the host's node_modules never overrides npm ci");
  });
});
