import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import dockerignoreModule from "@balena/dockerignore";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import type { FastifyInstance } from "fastify";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, PersistentVolumeClaim, Service } from "kubernetes-models/v1";
import ts from "typescript";
import YAML from "yaml";
import { buildApi } from "../../apps/api/src/app.ts";
import { loadApiConfig } from "../../apps/api/src/config.ts";
import { buildMedia } from "../../apps/media/src/app.ts";
import { loadMediaConfig } from "../../apps/media/src/config.ts";
import { MEDIA_NODE_FLAGS } from "../../apps/media/src/node-flags.ts";
import { buildWorker } from "../../apps/worker/src/app.ts";
import { loadWorkerConfig } from "../../apps/worker/src/config.ts";
import { type CommonConfig, EnvSchema, parseEnv, requireVar } from "../../libs/config/index.ts";
import { SHUTDOWN_MARGIN_MS } from "../../libs/media/call-registry.ts";
import { registry } from "../../libs/metrics/index.ts";
import { STOP_DEADLINE_MS } from "../../libs/runtime/index.ts";
import { CreateAssistantDTO } from "../../libs/vapi/assistant.ts";
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

/**
 * `node [flags] <file> …` as the image runs it: the file is compiled into the image from a source
 * that exists, and node's flags are its app's production flags (the media process's: MEDIA_NODE_FLAGS;
 * none for the others).
 */
function imageCommand(command: unknown): { file: string; runs: (typeof ENTRY)[string]; args: string[] } {
  assert.ok(Array.isArray(command), `exec form, no shell: ${JSON.stringify(command)}`);
  const [node, ...rest] = command as string[];
  assert.equal(node, "node", `node itself is the process: ${JSON.stringify(command)}`);
  const at = rest.findIndex((x) => !x.startsWith("--"));
  const flags = rest.slice(0, Math.max(0, at));
  const [file, ...args] = rest.slice(Math.max(0, at));
  assert.ok(file && BUILT.has(file), `${file} is compiled into the image (tsconfig.build.json)`);
  assert.ok(existsSync(path.join(ROOT, file.replace(/\.js$/, ".ts"))), `${file}'s source exists`);
  const runs = ENTRY[file];
  assert.ok(runs, `${file} is an entry point this test knows`);
  assert.deepEqual(
    flags,
    runs === "media" ? [...MEDIA_NODE_FLAGS] : [],
    `${file} runs with its production node flags (apps/media/src/node-flags.ts)`,
  );
  return { file, runs, args };
}

const LOADERS: Record<AppName, (env: Record<string, string>) => CommonConfig & { port: number }> = {
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
  listen: boolean;
  webCall: boolean;
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
      listen: app.hasRoute({ method: "GET", url: "/call/:id/monitor/listen" }),
      webCall: app.hasRoute({ method: "GET", url: "/:callId/transport" }),
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
    assert.ok(routes.media.listen);
    assert.match(conf, /location \/call\/ \{/);
    assert.ok(routes.media.webCall);
    assert.ok(
      new RegExp(/location ~ "(.+)" \{/.exec(conf)?.[1] ?? "^$").test(`/${randomUUID()}/transport`),
      "the proxy routes web calls (/<callId>/transport)",
    );
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

// ------------------------------------------------------------------ infra/k8s (kustomize)

type Json = Record<string, unknown>;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Json;
  data?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  restartPolicy?: string;
  volumes?: { name: string; emptyDir?: Json; persistentVolumeClaim?: { claimName: string } }[];
}
interface Workload extends K8sObject {
  spec: {
    selector?: { matchLabels: Record<string, string> };
    template: { metadata: K8sObject["metadata"]; spec: PodSpec };
  };
}

/** The schema check of each kind: kubernetes-models (and its KEDA package) validate like the API server's OpenAPI schemas. */
function validator<T>(Model: new (data: T) => { validate(): void }): (o: unknown) => void {
  return (o) => new Model(o as T).validate();
}
const SCHEMAS: Record<string, (o: unknown) => void> = {
  "v1/Namespace": validator(Namespace),
  "v1/ConfigMap": validator(ConfigMap),
  "v1/Service": validator(Service),
  "v1/PersistentVolumeClaim": validator(PersistentVolumeClaim),
  "apps/v1/Deployment": validator(Deployment),
  "batch/v1/Job": validator(Job),
  "policy/v1/PodDisruptionBudget": validator(PodDisruptionBudget),
  "networking.k8s.io/v1/Ingress": validator(Ingress),
  "autoscaling/v2/HorizontalPodAutoscaler": validator(HorizontalPodAutoscaler),
  "keda.sh/v1alpha1/ScaledObject": validator(ScaledObject),
};

function kustomize(dir: string): K8sObject[] {
  // kubectl's built-in kustomize renders offline (no cluster is contacted).
  let out: string;
  try {
    out = execFileSync("kubectl", ["kustomize", path.join(ROOT, dir)], { encoding: "utf8" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(
        "kubectl (with its built-in kustomize) renders infra/k8s: install it (apt-get install kubectl)",
      );
    }
    throw err;
  }
  return YAML.parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

/** An overlay of `resources` with `components`, rendered from a scratch directory (as an operator's own overlay would be). */
function kustomizeWith(resources: string, components: string[]): K8sObject[] {
  const dir = mkdtempSync(path.join(tmpdir(), "overlay-"));
  try {
    // kustomize takes only relative paths.
    const rel = (p: string) => path.relative(dir, path.join(ROOT, p));
    writeFileSync(
      path.join(dir, "kustomization.yaml"),
      YAML.stringify({ resources: [rel(resources)], components: components.map(rel) }),
    );
    const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
    return YAML.parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cpuMillis(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000;
}
function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  assert.ok(m, `a memory quantity: ${q}`);
  return Number(m[1]) * { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, "": 1 }[m[2] ?? ""]!;
}

/** Variables that are secrets: never a literal value or a ConfigMap entry, always a Secret reference. */
const SECRET_VARIABLES = Object.keys(EnvSchema.properties).filter((k) =>
  /KEY|TOKEN|SECRET|^DATABASE_URL$|^REDIS_URL$/.test(k),
);
const SECRET_NAME = "switchboard-secrets";
/** Stand-ins for what the operator's Secret holds, valid for the configuration. */
const SECRET_VALUES: Record<string, string> = {
  DATABASE_URL: "postgresql://switchboard:pw@postgres.example.internal:5432/switchboard",
  REDIS_URL: "redis://redis.example.internal:6379",
  ...SECRETS,
};
/** The longest call an assistant may ask for (Vapi's maxDurationSeconds maximum). */
const LONGEST_CALL_S = (CreateAssistantDTO.properties.maxDurationSeconds as { maximum: number }).maximum;
const COMPONENT = "app.kubernetes.io/component";

describe("Kubernetes manifests (infra/k8s: kustomize base and production overlay) against the code", () => {
  let database: TestDatabase;
  let routes: Record<AppName, Routes>;
  const rendered: Record<string, K8sObject[]> = {};
  const apiPaths = Object.keys((YAML.parse(read("openapi.yaml")) as { paths: Json }).paths);

  before(async () => {
    database = await createTestDatabase();
    routes = await appRoutes(database);
    rendered.base = kustomize("infra/k8s/base");
    rendered.production = kustomize("infra/k8s/overlays/production");
    rendered["production + shared-recordings"] = kustomizeWith("infra/k8s/overlays/production", [
      "infra/k8s/components/shared-recordings",
    ]);
  });
  after(async () => {
    await database.drop();
  });

  const find = (objects: K8sObject[], kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name);
  const workloads = (objects: K8sObject[]) =>
    objects.filter((o): o is Workload => o.kind === "Deployment" || o.kind === "Job");

  /** A container's environment as the app would see it; checks every reference on the way. */
  function containerEnv(objects: K8sObject[], c: Container): Record<string, string> {
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) {
      assert.equal(from.secretRef, undefined, `${c.name}: secrets by key, not wholesale`);
      const cm = find(objects, "ConfigMap", from.configMapRef?.name ?? "");
      assert.ok(cm, `${c.name}: ConfigMap ${from.configMapRef?.name} exists`);
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        assert.ok(!SECRET_VARIABLES.includes(k), `${k} is a secret: not in a ConfigMap`);
        env[k] = v;
      }
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (SECRET_VARIABLES.includes(e.name)) assert.ok(ref, `${c.name}: ${e.name} comes from the Secret`);
      if (ref) {
        assert.equal(ref.name, SECRET_NAME, `${c.name}: ${e.name} from the one Secret`);
        assert.equal(ref.key, e.name, `${c.name}: the Secret's key is the variable's name`);
        // Optional keys are left out: the required ones alone must make a valid configuration.
        if (!ref.optional) {
          assert.ok(SECRET_VALUES[e.name], `${e.name}: a required secret this test knows`);
          env[e.name] = SECRET_VALUES[e.name] ?? "";
        }
      } else env[e.name] = e.value ?? "";
    }
    return env;
  }

  for (const which of ["base", "production", "production + shared-recordings"]) {
    describe(which, () => {
      const objects = () => rendered[which] ?? [];

      it("every object is valid against its Kubernetes (or KEDA) schema; no Secret is rendered", () => {
        const kinds = new Set<string>();
        for (const o of objects()) {
          const key = `${o.apiVersion}/${o.kind}`;
          const validate = SCHEMAS[key];
          assert.ok(validate, `${key} (${o.metadata.name}) is a kind this test validates`);
          assert.doesNotThrow(() => validate(o), `${key} ${o.metadata.name}`);
          kinds.add(o.kind);
        }
        assert.ok(!kinds.has("Secret"), "secrets are referenced, never inlined");
        for (const k of ["Deployment", "Job", "Service", "Ingress", "PodDisruptionBudget", "ScaledObject"]) {
          assert.ok(kinds.has(k), `renders a ${k}`);
        }
      });

      it("every container runs a file of the image through tini, with known variables and every required one set", () => {
        const images = new Set<string>();
        const runs: Record<string, string> = {};
        for (const w of workloads(objects())) {
          const pod = w.spec.template.spec;
          for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
            images.add(c.image);
            assert.equal(
              c.command,
              undefined,
              `${c.name}: args, so the image's ENTRYPOINT (tini) stays PID 1`,
            );
            const { runs: app, args } = imageCommand(c.args);
            const env = containerEnv(objects(), c);
            if (pod.initContainers?.includes(c)) {
              assert.deepEqual([app, args], ["migrate", ["--wait"]], `${c.name} waits for the migrations`);
            } else runs[w.metadata.name] = app;
            appConfig(app as AppName | "migrate", env);
          }
        }
        assert.equal(images.size, 1, `one image for everything: ${[...images].join(", ")}`);
        assert.deepEqual(runs, {
          "switchboard-api": "api",
          "switchboard-media": "media",
          "switchboard-worker": "worker",
          "switchboard-migrate": "migrate",
        });
        // Each app Deployment waits for the migrations; the Job applies them.
        for (const name of ["switchboard-api", "switchboard-media", "switchboard-worker"]) {
          const d = find(objects(), "Deployment", name) as Workload;
          assert.equal(d.spec.template.spec.initContainers?.length, 1, name);
        }
      });

      it("ports, probes and scrape annotations name the port each app listens on and paths it serves", () => {
        for (const d of objects().filter((o): o is Workload => o.kind === "Deployment")) {
          const app = d.metadata.labels?.[COMPONENT] as AppName;
          const c = d.spec.template.spec.containers[0] as Container;
          const config = appConfig(app, containerEnv(objects(), c));
          const http = c.ports?.find((p) => p.name === "http");
          assert.equal(http?.containerPort, config?.port, `${app}: containerPort is the app's port`);
          for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
            assert.ok(probe, `${app} has startup, readiness and liveness probes`);
            const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
            assert.equal(port, "http", app);
            if (probe.httpGet) assert.ok(probe.httpGet.path === "/health" && routes[app].health, app);
          }
          assert.equal(
            c.readinessProbe?.httpGet?.path,
            "/health",
            `${app} is ready when its dependencies are`,
          );
          const a = d.spec.template.metadata.annotations ?? {};
          assert.equal(a["prometheus.io/scrape"], "true", app);
          assert.equal(Number(a["prometheus.io/port"]), config?.port, app);
          assert.equal(a["prometheus.io/path"], "/metrics", app);
          assert.ok(routes[app].metrics, `${app} serves GET /metrics`);
        }
      });

      it("Services, Ingresses, PDBs and autoscalers reach what exists", () => {
        const deployments = objects().filter((o): o is Workload => o.kind === "Deployment");
        const selects = (selector: Record<string, string> | undefined) =>
          deployments.filter((d) =>
            Object.entries(selector ?? {}).every(([k, v]) => d.spec.template.metadata.labels?.[k] === v),
          );
        for (const s of objects().filter((o) => o.kind === "Service")) {
          const spec = s.spec as {
            selector: Record<string, string>;
            ports: { name: string; targetPort: string }[];
          };
          const [d, ...more] = selects(spec.selector);
          assert.ok(d && more.length === 0, `Service ${s.metadata.name} selects one Deployment`);
          for (const p of spec.ports) {
            assert.ok(d.spec.template.spec.containers[0]?.ports?.some((cp) => cp.name === p.targetPort));
          }
        }
        for (const p of objects().filter((o) => o.kind === "PodDisruptionBudget")) {
          const sel = (p.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
          assert.equal(selects(sel).length, 1, `PDB ${p.metadata.name} covers one Deployment`);
        }
        for (const i of objects().filter((o) => o.kind === "Ingress")) {
          const rules = (
            i.spec as {
              rules: {
                http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] };
              }[];
            }
          ).rules;
          for (const p of rules.flatMap((r) => r.http.paths)) {
            const svc = find(objects(), "Service", p.backend.service.name);
            const ports = (svc?.spec as { ports: { name: string }[] } | undefined)?.ports ?? [];
            assert.ok(
              ports.some((sp) => sp.name === p.backend.service.port.name),
              `${i.metadata.name} → ${p.backend.service.name}`,
            );
          }
        }
        const targets = objects()
          .filter((o) => o.kind === "ScaledObject" || o.kind === "HorizontalPodAutoscaler")
          .map((o) => (o.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef);
        for (const t of targets) assert.ok(find(objects(), t.kind, t.name), `${t.kind} ${t.name} exists`);
        assert.equal(
          new Set(targets.map((t) => t.name)).size,
          targets.length,
          "one autoscaler per Deployment",
        );
      });

      it("the API's Ingress routes its paths and never /metrics; media's routes the stream with timeouts beyond the longest call", () => {
        const config = appConfig(
          "api",
          containerEnv(
            objects(),
            (find(objects(), "Deployment", "switchboard-api") as Workload).spec.template.spec
              .containers[0] as Container,
          ),
        );
        const publicUrl = new URL(config?.publicUrl ?? "");
        const mediaUrl = new URL(config?.mediaPublicUrl ?? "");
        const rule = (name: string) => {
          const i = find(objects(), "Ingress", name);
          const spec = i?.spec as {
            rules: { host: string; http: { paths: { path: string; pathType: string }[] } }[];
          };
          return {
            annotations: i?.metadata.annotations ?? {},
            host: spec.rules[0]?.host,
            paths: spec.rules[0]?.http.paths ?? [],
          };
        };
        const api = rule("switchboard-api");
        assert.equal(api.host, publicUrl.hostname, "PUBLIC_URL's host (Twilio signs webhooks against it)");
        const routed = api.paths.map((p) => p.path);
        const needed = new Set([...apiPaths.map((p) => `/${p.split("/")[1]}`), "/docs", "/dashboard"]);
        assert.deepEqual(new Set(routed), needed, "every API path, nothing else");
        assert.ok(routes.api.health && !routed.includes("/") && !routed.includes("/metrics"));

        const media = rule("switchboard-media");
        assert.equal(media.host, mediaUrl.hostname, "MEDIA_PUBLIC_URL's host");
        assert.equal(mediaUrl.protocol, which === "production" ? "wss:" : mediaUrl.protocol);
        assert.deepEqual(
          media.paths.map((p) => [p.path, p.pathType]),
          [
            ["/twilio/stream", "Exact"],
            ["/call", "Prefix"],
            ["/[0-9a-fA-F-]{36}/transport", "ImplementationSpecific"],
          ],
        );
        assert.equal(media.annotations["nginx.ingress.kubernetes.io/use-regex"], "true");
        assert.ok(routes.media.webCall, "the media app serves /:callId/transport");
        assert.ok(routes.media.stream, "the media app serves /twilio/stream");
        assert.ok(routes.media.listen, "the media app serves /call/:id/monitor/listen");
        for (const t of ["proxy-read-timeout", "proxy-send-timeout"]) {
          const s = Number(media.annotations[`nginx.ingress.kubernetes.io/${t}`]);
          assert.ok(s > LONGEST_CALL_S, `${t} ${s} s > the longest call, ${LONGEST_CALL_S} s`);
        }
      });

      it("media pods stop gracefully: preStop, then the drain, within the grace period; api and worker within theirs", () => {
        for (const d of objects().filter((o): o is Workload => o.kind === "Deployment")) {
          const pod = d.spec.template.spec;
          const c = pod.containers[0] as Container;
          const graceMs = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
          if (d.metadata.name !== "switchboard-media") {
            assert.ok(
              graceMs > STOP_DEADLINE_MS,
              `${d.metadata.name}: grace beyond the process's own deadline`,
            );
            continue;
          }
          const config = loadMediaConfig(containerEnv(objects(), c));
          const preStopMs = (c.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
          assert.ok(preStopMs > 0, "a preStop pause while endpoints drop the pod");
          assert.ok(
            graceMs > preStopMs + config.drainMs + SHUTDOWN_MARGIN_MS,
            `grace ${graceMs} ms > preStop ${preStopMs} + drain ${config.drainMs} + ${SHUTDOWN_MARGIN_MS} ms`,
          );
          // The base lets calls of the default length finish; production, the longest Vapi allows.
          const covered = which === "base" ? 600 : LONGEST_CALL_S;
          assert.ok(
            config.drainMs >= covered * 1000,
            `MEDIA_DRAIN_MS ${config.drainMs} covers ${covered} s calls`,
          );
        }
      });

      it("every container has CPU and memory requests and limits; pods run as non-root without privilege escalation", () => {
        for (const w of workloads(objects())) {
          const pod = w.spec.template.spec;
          assert.equal(pod.securityContext?.runAsNonRoot, true, w.metadata.name);
          for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
            const { requests = {}, limits = {} } = c.resources ?? {};
            assert.ok(
              requests.cpu && limits.cpu && requests.memory && limits.memory,
              `${w.metadata.name}/${c.name}`,
            );
            assert.ok(cpuMillis(requests.cpu) <= cpuMillis(limits.cpu), `${c.name} cpu`);
            assert.ok(bytes(requests.memory) <= bytes(limits.memory), `${c.name} memory`);
            assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
          }
        }
      });

      it("autoscaling: media on active calls per pod, worker on waiting jobs (metrics the apps export), api on CPU", () => {
        const trigger = (name: string) => {
          const so = find(objects(), "ScaledObject", name)?.spec as {
            triggers: { type: string; metricType?: string; metadata: { query: string; threshold: string } }[];
          };
          assert.equal(so.triggers.length, 1);
          return so.triggers[0] as (typeof so.triggers)[0];
        };
        const media = trigger("switchboard-media");
        assert.equal(media.type, "prometheus");
        assert.equal(media.metricType, "AverageValue", "calls per pod");
        assert.equal(media.metadata.query, "sum(switchboard_media_active_calls)");
        assert.ok(registry.getSingleMetric("switchboard_media_active_calls"), "the media app exports it");
        const worker = trigger("switchboard-worker");
        assert.match(worker.metadata.query, /\bswitchboard_queue_waiting_jobs\b/);
        assert.ok(registry.getSingleMetric("switchboard_queue_waiting_jobs"), "the worker exports it");
        const hpa = find(objects(), "HorizontalPodAutoscaler", "switchboard-api")?.spec as {
          metrics: { type: string; resource?: { name: string } }[];
        };
        assert.deepEqual(
          hpa.metrics.map((m) => [m.type, m.resource?.name]),
          [["Resource", "cpu"]],
        );

        // The documented alternative without KEDA: a plain HPA on the same metric and target.
        const alt = YAML.parse(read("infra/k8s/alternatives/media-hpa.yaml")) as K8sObject;
        assert.doesNotThrow(() => SCHEMAS["autoscaling/v2/HorizontalPodAutoscaler"]?.(alt));
        const spec = alt.spec as {
          scaleTargetRef: { name: string };
          metrics: { pods: { metric: { name: string }; target: { averageValue: string } } }[];
        };
        assert.equal(spec.scaleTargetRef.name, "switchboard-media");
        assert.equal(spec.metrics[0]?.pods.metric.name, "switchboard_media_active_calls");
        assert.equal(spec.metrics[0]?.pods.target.averageValue, media.metadata.threshold);
      });
    });
  }

  it("recordings' spools: an emptyDir per media pod in the base; with shared-recordings, one ReadWriteMany claim that media, worker and API mount at RECORDINGS_DIR", () => {
    /** Per Deployment: what its app's RECORDINGS_DIR is backed by. */
    const spoolVolumes = (objects: K8sObject[]) => {
      const out: Record<string, NonNullable<PodSpec["volumes"]>[number] | undefined> = {};
      for (const d of objects.filter((o): o is Workload => o.kind === "Deployment")) {
        const pod = d.spec.template.spec;
        const c = pod.containers[0] as Container;
        const dir = containerEnv(objects, c).RECORDINGS_DIR;
        assert.ok(dir, `${d.metadata.name}: RECORDINGS_DIR set`);
        const mount = c.volumeMounts?.find((m) => m.mountPath === dir);
        out[d.metadata.name] = mount && pod.volumes?.find((v) => v.name === mount.name);
      }
      return out;
    };
    const base = spoolVolumes(rendered.base ?? []);
    assert.ok(base["switchboard-media"]?.emptyDir, "the base: each media pod's own emptyDir");
    assert.equal(base["switchboard-worker"], undefined, "the worker sees no spool");
    assert.equal(base["switchboard-api"], undefined, "the API sees no spool");
    const shared = rendered["production + shared-recordings"] ?? [];
    const volumes = spoolVolumes(shared);
    for (const name of ["switchboard-media", "switchboard-worker", "switchboard-api"]) {
      const v = volumes[name];
      assert.equal(v?.emptyDir, undefined, `${name}: not an emptyDir`);
      const claim = find(shared, "PersistentVolumeClaim", v?.persistentVolumeClaim?.claimName ?? "");
      assert.ok(claim, `${name}: mounts the claim the component renders`);
      assert.deepEqual((claim.spec as { accessModes: string[] }).accessModes, ["ReadWriteMany"]);
      // The image's user can write there.
      const pod = (find(shared, "Deployment", name) as Workload).spec.template.spec;
      assert.equal((pod.securityContext as { fsGroup?: number }).fsGroup, 1000);
    }
  });
});
