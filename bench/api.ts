// npm run bench:api — throughput and p99 of authenticated API routes against a bare Fastify JSON
// route in the same process and run (real Postgres and Redis). Target: authenticated
// GET /assistant/:id reaches at least 40% of the bare route's requests/s. First, the latency of
// the first POST /call and POST /assistant of the fresh process, sent as it starts listening (its
// shared body schemas are then still being compiled in the background) or
// BENCH_FIRST_REQUEST_DELAY_MS later.

import { spawn } from "node:child_process";
import path from "node:path";
import Fastify from "fastify";
import { startTestApi } from "../test/helpers/api.ts";
import { assistantBody } from "../test/helpers/bodies.ts";

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const FIRST_REQUEST_DELAY_MS = Number(process.env.BENCH_FIRST_REQUEST_DELAY_MS ?? 0);

interface Figures {
  requests: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

/** autocannon in its own process (its CLI, JSON output), so it does not share the server's CPU time slice. */
function load(opts: {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  duration?: number;
}): Promise<Figures> {
  const args = [
    "-j",
    "-c",
    String(CONNECTIONS),
    "-d",
    String(opts.duration ?? DURATION_S),
    "-m",
    opts.method ?? "GET",
  ];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("-H", `${k}=${v}`);
  if (opts.body) args.push("-b", opts.body);
  args.push(opts.url);
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(import.meta.dirname, "../node_modules/.bin/autocannon"), args, {
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("error", reject);
    child.once("close", () => {
      try {
        const r = JSON.parse(out) as {
          requests: { average: number; total: number };
          latency: { p50: number; p99: number };
          errors: number;
          non2xx: number;
        };
        resolve({
          requests: r.requests.average,
          total: r.requests.total,
          p50: r.latency.p50,
          p99: r.latency.p99,
          errors: r.errors,
          non2xx: r.non2xx,
        });
      } catch (err) {
        reject(err);
      }
    });
  });
}

// Platform keys, so that a web call of the benchmark's assistant is admitted.
const api = await startTestApi({
  RATE_LIMIT_PER_MINUTE: "100000000",
  OPENAI_API_KEY: "sk-bench",
  DEEPGRAM_API_KEY: "dg-bench",
  ELEVENLABS_API_KEY: "el-bench",
});
await api.app.listen({ port: 0, host: "127.0.0.1" });
const apiAddr = api.app.server.address();
const apiUrl = `http://127.0.0.1:${typeof apiAddr === "object" && apiAddr ? apiAddr.port : 0}`;

const bare = Fastify({ logger: false });
const payload = assistantBody();
bare.get("/bare/:id", async (req) => ({ ...payload, id: (req.params as { id: string }).id }));
await bare.listen({ port: 0, host: "127.0.0.1" });
const bareAddr = bare.server.address();
const bareUrl = `http://127.0.0.1:${typeof bareAddr === "object" && bareAddr ? bareAddr.port : 0}`;

const org = await api.createOrg("Bench");
const headers = { authorization: `Bearer ${org.key}`, "content-type": "application/json" };

/** One request over HTTP: its status and wall-clock latency. */
async function timedPost(url: string, body: unknown): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${apiUrl}${url}`, { method: "POST", headers, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

// A web call (vapi.websocket transport: no phone provider involved) with a transient assistant,
// then a saved assistant, then the same call again.
await new Promise((resolve) => setTimeout(resolve, FIRST_REQUEST_DELAY_MS));
const webCall = { assistant: payload, transport: { provider: "vapi.websocket" } };
const firsts: [string, { status: number; ms: number }][] = [
  ["first POST /call (transient assistant)", await timedPost("/call", webCall)],
  ["first POST /assistant", await timedPost("/assistant", payload)],
  ["second POST /call", await timedPost("/call", webCall)],
];

const created = await api.request({ method: "POST", url: "/assistant", key: org.key, payload });
const id = (created.json() as { id: string }).id;

// Warm up JIT, pools and caches before measuring.
await load({ url: `${bareUrl}/bare/${id}`, duration: 2 });
await load({ url: `${apiUrl}/assistant/${id}`, headers, duration: 2 });

const rows: [string, Figures][] = [];
rows.push(["bare Fastify JSON route", await load({ url: `${bareUrl}/bare/${id}` })]);
rows.push(["GET /assistant/:id (auth)", await load({ url: `${apiUrl}/assistant/${id}`, headers })]);
rows.push([
  "POST /assistant (auth)",
  await load({ url: `${apiUrl}/assistant`, method: "POST", headers, body: JSON.stringify(payload) }),
]);

const base = rows[0]?.[1].requests ?? 1;
console.log(`\nbench:api — ${DURATION_S}s per route, ${CONNECTIONS} connections, node ${process.version}\n`);
console.log(`| request of a fresh API process (${FIRST_REQUEST_DELAY_MS} ms after listen) | status | ms |`);
console.log("| --- | ---: | ---: |");
for (const [name, r] of firsts) console.log(`| ${name} | ${r.status} | ${r.ms.toFixed(0)} |`);
console.log("");
console.log("| route | req/s | p50 ms | p99 ms | vs bare | errors/non-2xx |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [name, f] of rows) {
  console.log(
    `| ${name} | ${Math.round(f.requests)} | ${f.p50} | ${f.p99} | ${((f.requests / base) * 100).toFixed(0)}% | ${f.errors}/${f.non2xx} |`,
  );
}
const ratio = (rows[1]?.[1].requests ?? 0) / base;
console.log(
  `\nGET /assistant/:id = ${(ratio * 100).toFixed(0)}% of the bare route (target ≥ 40%): ${ratio >= 0.4 ? "PASS" : "FAIL"}`,
);

await bare.close();
await api.close();
process.exit(0);
