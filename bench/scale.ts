// npm run bench:scale — how many calls one media process holds, how many two hold, how a burst of
// calls is taken, and how long a call whose media process is SIGKILLed stays open in the record.
// The same machinery and the same call as `npm run bench:media` (bench/media-platform.ts): the
// simulated callers (bench/media-callers.ts) and the provider fakes with fixed delays
// (bench/media-fakes.ts) each in their own process, every media process alone in its own
// (bench/media-child.ts: buildMedia as in production), the API and the worker in this one.
// Prints a markdown table (README-ready) with PASS/FAIL against the targets.
//
// Phases, one media process (A) and then two (A and B):
//   - warm-up: BENCH_WARMUP_CALLS calls through each new process, unmeasured;
//   - step-up: rounds of N concurrent calls, N = BENCH_STEP_START, + BENCH_STEP, … (always through
//     BENCH_CALLS, the load both configurations are compared at), each call with the full script
//     (first message, BENCH_TURNS caller turns, one a barge-in), all placed within BENCH_RAMP_MS; a
//     step passes when the platform overhead p95 is ≤ 20 ms, no frame left a media process late and
//     every call completed; the step-up stops at the first failing step at or above BENCH_CALLS, or at
//     BENCH_MAX_CALLS per process. Capacity = the largest N of the unbroken run of passing steps.
//     Two processes start at BENCH_CALLS, then from one process's capacity upwards.
//   - burst: BENCH_BURST calls placed within 1 s (0 → N), same script and criteria.
// Then, with A and B up, the crash: BENCH_KILL_CALLS calls across both, B is SIGKILLed once every
// call is up (BENCH_KILL_AFTER_MS later: mid-call), and each of B's calls is polled in the
// database (every 100 ms) until its status is `ended`. Half of B's calls have Twilio's `completed`
// status callback configured (Twilio POSTs it when the stream's socket drops), half have none (as if
// Twilio's report never reached the platform): those are ended by a sweeper (every media and worker
// process runs one) once their heartbeat is older than the lease. CALL_LEASE_MS is BENCH_LEASE_MS
// (default 15000, the platform's default) on every process.
//
// Spreading calls over two media processes. The API writes one stream URL, MEDIA_PUBLIC_URL, into
// every call's TwiML. In production that URL names a balancer (a Kubernetes Service behind the
// media Ingress, or compose's nginx): the stream is authenticated by its single-use media token, not
// by the process it reaches, so any media process can take any call, and the balancer spreads new
// websocket connections over the pods (round robin or random). Here a proxy would sit on every
// 20 ms frame of every call on the same 2 cores it is meant to measure, so the balancing is done
// before the call: two API instances (same database, Redis and configuration, MEDIA_PUBLIC_URL
// naming A and B), and the callers ring them in turn — call i reaches process i mod 2, an even
// round-robin split with no hop in between.
//
// Figures per round: calls held (most streams open at once, as the callers saw it), per process
// and per CPU core (held ÷ the cores the media processes had: a node process runs its JavaScript on
// one); the platform overhead per turn heard by the caller, p50 / p95 (turn latency − provider time
// as the media process saw it: bench/media.ts defines it); frames sent > 40 ms behind schedule by
// the media processes' pacers (and on arrival at the callers); CPU ms of all media processes per
// call-second (utime + stime from /proc over the round ÷ Σ per-call stream-open seconds), each media
// process's CPU as a share of one core, and its peak VmRSS (garbage included); the time from the
// first call placed until every stream was open (the callers report every 250 ms); the machine's CPU
// over the round by process (what limits two processes on two cores).
//
// Placement (BENCH_PIN=0 turns it off): one process has CPU 0 to itself and everything driving it
// (callers, fakes, API/worker, Postgres, Redis) runs on the other CPU, as in bench:media. Two
// processes have one CPU each and the drivers float over both: on this 2-core machine the load
// generator and the databases take their CPU from the media processes, which is what bounds the
// 2 ÷ 1 ratio here (in production media pods do not share their nodes' cores with either).
//
// Knobs: BENCH_CALLS (200), BENCH_TURNS (4), BENCH_STEP_START (100), BENCH_STEP (50),
// BENCH_MAX_CALLS (1000 per process), BENCH_BURST (= BENCH_CALLS), BENCH_RAMP_MS (6000),
// BENCH_WARMUP_CALLS (10), BENCH_KILL_CALLS (20), BENCH_KILL_AFTER_MS (3000), BENCH_LEASE_MS (15000),
// BENCH_PIN (1). BENCH_QUICK=1: a smoke run under 2 minutes (20 calls, 2 turns, steps of 10 up to
// 20 per process, no warm-up, 8 calls killed); its figures show the bench works, not capacity.

import type { ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { type Api, buildApi } from "../apps/api/src/app.ts";
import { apiConfigFromEnv } from "../apps/api/src/config.ts";
import { MEDIA_NODE_FLAGS } from "../apps/media/src/node-flags.ts";
import type { PacingStats } from "../libs/media/pacer.ts";
import { BullMqQueue } from "../libs/queue/index.ts";
import { testEnv } from "../test/helpers/api.ts";
import type { RunRequest, RunResult } from "./media-callers.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  finalisedTurns,
  type Platform,
  startPlatform,
  type TurnFigures,
  turnFigures,
} from "./media-platform.ts";
import { BARGE_AFTER_MS, type LoopDelay, THINK_MS } from "./media-script.ts";
import {
  ask,
  f,
  freePort,
  machineCpu,
  nice,
  niceDatabases,
  PIN,
  pct,
  pin,
  pinDatabases,
  processesCpu,
  processesDelta,
  procSample,
  roleNames,
  sleep,
  startChild,
  stopChild,
} from "./processes.ts";

const QUICK = process.env.BENCH_QUICK === "1";
function knob(name: string, quick: number, full: number, min = 1): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? (QUICK ? quick : full) : Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}, got ${raw}`);
  return Math.round(n);
}
const CALLS = knob("BENCH_CALLS", 20, 200);
const TURNS = knob("BENCH_TURNS", 2, 4, 2);
const BARGE_TURN = Math.min(2, TURNS - 1);
const STEP_START = knob("BENCH_STEP_START", 10, 100);
const STEP = knob("BENCH_STEP", 10, 50);
const MAX_CALLS = Math.max(CALLS, knob("BENCH_MAX_CALLS", 20, 1000));
const BURST = knob("BENCH_BURST", CALLS, CALLS);
const RAMP_WINDOW_MS = knob("BENCH_RAMP_MS", 6000, 6000, 0);
const WARMUP_CALLS = knob("BENCH_WARMUP_CALLS", 0, 10, 0);
const KILL_CALLS = knob("BENCH_KILL_CALLS", 8, 20, 4);
const KILL_AFTER_MS = knob("BENCH_KILL_AFTER_MS", 3000, 3000, 0);
const LEASE_MS = knob("BENCH_LEASE_MS", 15_000, 15_000, 1000);
/** Niceness added to the drivers (callers, fakes, API/worker, Postgres, Redis) in both configurations. */
const DRIVER_NICE = knob("BENCH_DRIVER_NICE", 0, 0, 0);
/** As bench:media: 30 ms between call starts, closer when N calls would take longer than the window. */
const rampFor = (calls: number) => Math.min(30, RAMP_WINDOW_MS / calls);

const TARGET_CALLS = 200;
const TARGET_OVERHEAD_P95 = 20;
const TARGET_RATIO = 1.8;
const TARGET_KILL_S = 15;

const WORKER_DIED = "call.in-progress.error-vapifault-worker-died";

const started = Date.now();
function progress(line: string): void {
  process.stderr.write(`bench:scale: [${Math.round((Date.now() - started) / 1000)} s] ${line}\n`);
}

// ---------------------------------------------------------------- one round

interface MediaServer {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The API that names this process in its TwiML (its /twilio/inbound). */
  voiceUrl: string;
}

interface Round {
  label: string;
  calls: number;
  servers: number;
  held: number;
  run: RunResult;
  turns: TurnFigures;
  /** Frames the media processes sent > 40 ms behind schedule, of all they sent; worst lateness. */
  late: number;
  framesSent: number;
  maxLateMs: number;
  /** Per media process: CPU ms over the round, peak VmRSS (bytes), event-loop delay. */
  cpuMs: number[];
  rss: number[];
  loops: LoopDelay[];
  wallMs: number;
  /** Every process on the machine over the round: CPU ms by bench role or process name. */
  processes: Map<string, number>;
  machineBusyMs: number;
  /** From the first call placed until every stream was open (ms), if they all were at once. */
  allUpMs: number | undefined;
  ok: boolean;
}

const overheadP = (r: Round, p: number) => pct(r.turns.overheads, p);

async function round(
  setup: Platform,
  servers: MediaServer[],
  label: string,
  calls: number,
  rampMs: number,
  fromBase: number,
): Promise<Round> {
  // The previous round's post-call jobs (webhooks, analysis, usage) are that round's work.
  await setup.settle();
  await sleep(500);
  for (const s of servers) await ask<LoopDelay>(s.child, "loop", "loop");
  const pacing0 = await Promise.all(servers.map((s) => ask<PacingStats>(s.child, "pacing", "pacing")));
  const rss = servers.map(() => 0);
  let held = 0;
  let allUpAt: number | undefined;
  const onLive = (m: { live?: number }) => {
    if (typeof m.live !== "number") return;
    held = Math.max(held, m.live);
    if (m.live >= calls && allUpAt === undefined) allUpAt = Date.now();
  };
  setup.callers.on("message", onLive);
  const sampler = setInterval(() => {
    servers.forEach((s, i) => {
      rss[i] = Math.max(rss[i] ?? 0, procSample(s.pid).rss);
    });
  }, 250);
  const cpu0 = servers.map((s) => procSample(s.pid).cpuMs);
  const machine0 = machineCpu();
  const procs0 = processesCpu();
  const t0 = Date.now();
  const request: RunRequest = {
    ...script(setup),
    voiceUrl: servers[0]?.voiceUrl ?? "",
    voiceUrls: servers.map((s) => s.voiceUrl),
    calls,
    turns: TURNS,
    rampMs,
    fromBase,
  };
  const run = await ask<RunResult>(setup.callers, { run: request }, "result");
  // Let the last hang-ups be processed (the call write is part of a call's cost).
  await sleep(1500);
  const cpuMs = servers.map((s, i) => procSample(s.pid).cpuMs - (cpu0[i] ?? 0));
  const machineBusyMs = machineCpu().busyMs - machine0.busyMs;
  const processes = processesDelta(procs0, processesCpu(), roleNames);
  const wallMs = Date.now() - t0;
  clearInterval(sampler);
  setup.callers.off("message", onLive);
  const loops = await Promise.all(servers.map((s) => ask<LoopDelay>(s.child, "loop", "loop")));
  const pacing1 = await Promise.all(servers.map((s) => ask<PacingStats>(s.child, "pacing", "pacing")));
  const serverTurns = await finalisedTurns(
    setup.t.db,
    run.calls.map((c) => c.callSid),
    30_000,
  );
  const turns = turnFigures(run.calls, serverTurns, TURNS);
  const late = pacing1.reduce((n, p, i) => n + p.lateFrames - (pacing0[i]?.lateFrames ?? 0), 0);
  const r: Round = {
    label,
    calls,
    servers: servers.length,
    held,
    run,
    turns,
    late,
    framesSent: pacing1.reduce((n, p, i) => n + p.framesSent - (pacing0[i]?.framesSent ?? 0), 0),
    // Each child resets its worst lateness at every ask: this is the round's own.
    maxLateMs: Math.max(0, ...pacing1.map((p) => p.maxLateMs)),
    cpuMs,
    rss,
    loops,
    wallMs,
    processes,
    machineBusyMs,
    allUpMs: allUpAt === undefined ? undefined : allUpAt - t0,
    ok: false,
  };
  r.ok =
    overheadP(r, 95) <= TARGET_OVERHEAD_P95 &&
    late === 0 &&
    run.errors.length === 0 &&
    turns.missingTurns === 0 &&
    turns.unmatched === 0 &&
    run.calls.length === calls;
  progress(
    `${label}: ${held} held, overhead p95 ${f(overheadP(r, 95))} ms, ${late} late frames, ` +
      `${run.errors.length} errors: ${r.ok ? "pass" : "FAIL"}`,
  );
  return r;
}

function script(setup: Platform) {
  return {
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    to: setup.number,
    bargeTurn: BARGE_TURN,
    bargeAfterMs: BARGE_AFTER_MS,
    thinkMs: THINK_MS,
  };
}

/** Warm-up through each server alone (JIT, Prisma query shapes, pools), unmeasured. */
async function warmUp(setup: Platform, servers: MediaServer[], fromBase: number): Promise<void> {
  if (WARMUP_CALLS === 0) return;
  for (const [i, s] of servers.entries()) {
    await ask<RunResult>(
      setup.callers,
      {
        run: {
          ...script(setup),
          voiceUrl: s.voiceUrl,
          calls: WARMUP_CALLS,
          turns: TURNS,
          rampMs: 30,
          fromBase: fromBase + i * 1000,
        },
      },
      "result",
    );
  }
}

/**
 * Step-up: rounds of more and more calls until one fails at or above BENCH_CALLS (or the cap).
 * Returns every round and the capacity: the largest N of the unbroken run of passing steps.
 */
async function stepUp(
  setup: Platform,
  servers: MediaServer[],
  steps: number[],
  fromBase: number,
): Promise<{ rounds: Round[]; capacity: number; capped: boolean }> {
  const rounds: Round[] = [];
  let capacity = 0;
  let broken = false;
  for (const [i, n] of steps.entries()) {
    const r = await round(
      setup,
      servers,
      `${servers.length} process${servers.length > 1 ? "es" : ""}, ${n} calls`,
      n,
      rampFor(n),
      fromBase + i * 10_000,
    );
    rounds.push(r);
    if (r.ok && !broken) capacity = n;
    if (!r.ok) broken = true;
    if (broken && n >= CALLS) break;
  }
  const last = rounds[rounds.length - 1];
  return { rounds, capacity, capped: !broken && last !== undefined && last.ok };
}

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n += step) out.push(n);
  return out;
}

// ---------------------------------------------------------------- the crash

interface KillResult {
  onKilled: number;
  /** Seconds from SIGKILL to `ended` in the record, per call of the killed process. */
  withReport: number[];
  withoutReport: number[];
  /** Calls of the killed process not ended within the wait. */
  notEnded: number;
  endedReasons: Map<string, number>;
  /** The surviving process's calls, by how they ended. */
  survivors: Map<string, number>;
}

async function crash(
  setup: Platform,
  a: MediaServer,
  b: MediaServer,
  statusUrl: string,
  fromBase: number,
): Promise<KillResult> {
  const { t, org } = setup;
  await setup.settle();
  const since = new Date(Date.now() - 1000);
  let live = 0;
  const onLive = (m: { live?: number }) => {
    if (typeof m.live === "number") live = m.live;
  };
  setup.callers.on("message", onLive);
  // Call i: process i mod 2 (B for odd i); Twilio's report for i mod 4 ∈ {0, 1}.
  const running = ask<RunResult>(
    setup.callers,
    {
      run: {
        ...script(setup),
        voiceUrl: a.voiceUrl,
        voiceUrls: [a.voiceUrl, b.voiceUrl],
        statusCallbacks: [statusUrl, statusUrl, null, null],
        calls: KILL_CALLS,
        turns: 1,
        bargeTurn: -1,
        rampMs: 30,
        // The survivors stay on the line past the sweeper's deadline for the killed calls (their last
        // heartbeat + 4/5 of the lease, libs/media/lease.ts).
        holdMs: LEASE_MS,
        fromBase,
      },
    },
    "result",
  );
  const upUntil = Date.now() + 30_000;
  while (live < KILL_CALLS && Date.now() < upUntil) await sleep(50);
  setup.callers.off("message", onLive);
  await sleep(KILL_AFTER_MS);
  const indexOf = (customer: unknown): number => {
    const from = (customer as { number?: string } | null)?.number ?? "";
    return Number(from.slice(5)) - fromBase;
  };
  const rows = () =>
    t.db.call.findMany({
      where: { orgId: org.orgId, createdAt: { gte: since } },
      select: { id: true, status: true, endedReason: true, customer: true },
    });
  const onB = (await rows()).filter((r) => indexOf(r.customer) % 2 === 1 && r.status === "in-progress");
  const exited = new Promise<void>((resolve) => b.child.once("exit", () => resolve()));
  const killedAt = Date.now();
  b.child.kill("SIGKILL");
  await exited;
  progress(`SIGKILL to ${b.name} with ${onB.length} calls up…`);
  const endedIn = new Map<string, number>();
  const reasons = new Map<string, number>();
  const until = killedAt + 2 * LEASE_MS + 10_000;
  while (endedIn.size < onB.length && Date.now() < until) {
    const now = Date.now();
    for (const r of await rows()) {
      if (!onB.some((x) => x.id === r.id) || endedIn.has(r.id) || r.status !== "ended") continue;
      endedIn.set(r.id, (now - killedAt) / 1000);
      const reason = r.endedReason ?? "none";
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    await sleep(100);
  }
  await running;
  await setup.settle();
  const survivors = new Map<string, number>();
  for (const r of await rows()) {
    if (indexOf(r.customer) % 2 !== 0) continue;
    const key = r.status === "ended" ? (r.endedReason ?? "none") : r.status;
    survivors.set(key, (survivors.get(key) ?? 0) + 1);
  }
  const withReport: number[] = [];
  const withoutReport: number[] = [];
  for (const r of onB) {
    const s = endedIn.get(r.id);
    if (s === undefined) continue;
    (indexOf(r.customer) % 4 < 2 ? withReport : withoutReport).push(s);
  }
  return {
    onKilled: onB.length,
    withReport,
    withoutReport,
    notEnded: onB.length - endedIn.size,
    endedReasons: reasons,
    survivors,
  };
}

// ---------------------------------------------------------------- report

const MB = 2 ** 20;

function row(r: Round): string {
  const perProcess = r.held / r.servers;
  const callSeconds = r.run.callSeconds;
  const cpuPerCallSecond = r.cpuMs.reduce((a, b) => a + b, 0) / callSeconds;
  const cores = r.cpuMs.map((ms) => `${f((100 * ms) / r.wallMs, 0)}%`).join(" / ");
  const rss = r.rss.map((b) => f(b / MB, 0)).join(" / ");
  const errors = r.run.errors.length + r.turns.missingTurns;
  return (
    `| ${r.label} | ${r.held} | ${f(perProcess, 0)} | ${f(r.held / r.servers, 0)} | ${allUp(r)} ` +
    `| ${f(overheadP(r, 50))} / ${f(overheadP(r, 95))} | ${r.late} of ${r.framesSent} / ${r.run.lateFrames} ` +
    `| ${f(cpuPerCallSecond, 2)} | ${cores} | ${rss} | ${errors} | ${r.ok ? "pass" : "FAIL"} |`
  );
}

function allUp(r: Round): string {
  return r.allUpMs === undefined ? "never all at once" : `${f(r.allUpMs / 1000)} s`;
}

function pass(ok: boolean): string {
  return ok ? "PASS" : "FAIL";
}

/** CPU of the machine over a round, by process, as a share of the machine's cores. */
function machineLine(r: Round): string {
  const cores = cpus().length;
  const share = (ms: number) => `${f((100 * ms) / (r.wallMs * cores), 0)}%`;
  const parts = [...r.processes.entries()]
    .filter(([, ms]) => ms / (r.wallMs * cores) >= 0.01)
    .sort((x, y) => y[1] - x[1])
    .map(([name, ms]) => `${name} ${share(ms)}`)
    .join(", ");
  return `${share(r.machineBusyMs)} busy; by process (those still running at the end, ≥ 1%): ${parts}`;
}

function seconds(xs: number[]): string {
  if (xs.length === 0) return "n/a";
  return `${f(pct(xs, 50))} / ${f(Math.max(...xs))} s`;
}

function counts(m: Map<string, number>): string {
  return [...m.entries()].map(([k, n]) => `${n} ${k}`).join(", ") || "none";
}

// ---------------------------------------------------------------- main

/**
 * BENCH_DRIVER_NICE=n: the drivers run n nicer than the media processes (the same in both
 * configurations), so a media process that wakes takes the CPU from them at once, as it would on a
 * node of its own; the media processes keep the bench's niceness (B was forked by this process).
 */
function yieldToMedia(setup: Platform, servers: MediaServer[]): void {
  if (DRIVER_NICE === 0) return;
  for (const pid of [process.pid, setup.callers.pid, setup.fakes.pid]) nice(pid, DRIVER_NICE);
  niceDatabases(DRIVER_NICE);
  process.once("exit", () => niceDatabases(undefined));
  for (const s of servers) nice(s.pid, 0);
}

async function startMedia(setup: Platform, name: string, port: number): Promise<ChildProcess> {
  const child = (
    await startChild<{ ready: boolean }>(
      "bench/media-child.ts",
      setup.mediaEnv(port, { MEDIA_PUBLIC_URL: `ws://127.0.0.1:${port}` }),
      ["--expose-gc", ...MEDIA_NODE_FLAGS],
    )
  ).child;
  roleNames.set(child.pid ?? 0, name);
  return child;
}

async function main(): Promise<void> {
  const runStarted = Date.now();
  const loadBefore = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const setup = await startPlatform({
    queuePrefix: "bench-scale",
    concurrencyLimit: 2 * MAX_CALLS + BURST + KILL_CALLS + 100,
    env: { CALL_LEASE_MS: String(LEASE_MS) },
  });
  const { t } = setup;
  const [apiPortB, mediaPortB] = await Promise.all([freePort(), freePort()]);
  const apiBRedis = t.redis.duplicate();
  const apiBQueue = new BullMqQueue(apiBRedis, { prefix: setup.prefix });
  let apiB: Api | undefined;
  let a: MediaServer | undefined;
  let b: MediaServer | undefined;
  try {
    // The second API: the same platform, its TwiML naming media process B.
    apiB = await buildApi(
      apiConfigFromEnv(
        testEnv({
          ...setup.env,
          DATABASE_URL: t.database.url,
          SECRETS_KEY: t.config.secretsKey.toString("base64"),
          ADMIN_TOKEN: t.config.adminToken,
          TWILIO_API_URL: setup.twilio.baseUrl,
          PUBLIC_URL: `http://127.0.0.1:${apiPortB}`,
          MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPortB}`,
        }),
      ),
      { db: t.db, redis: t.redis, queue: apiBQueue, logger: false },
    );
    await apiB.listen({ port: apiPortB, host: "127.0.0.1" });

    // ------------------------------------------------ one media process
    progress("one media process…");
    const childA = await startMedia(setup, "media process A", setup.mediaPort);
    a = {
      name: "media process A",
      child: childA,
      pid: childA.pid ?? 0,
      voiceUrl: `http://127.0.0.1:${setup.apiPort}/twilio/inbound`,
    };
    pin(a.pid, "server");
    pin(process.pid, "driver");
    yieldToMedia(setup, [a]);
    await warmUp(setup, [a], 1_900_000);
    const steps1 = [...new Set([...range(STEP_START, MAX_CALLS, STEP), CALLS])].sort((x, y) => x - y);
    const one = await stepUp(setup, [a], steps1, 1_000_000);
    const burst1 = await round(
      setup,
      [a],
      `1 process, burst of ${BURST} in 1 s`,
      BURST,
      1000 / BURST,
      3_000_000,
    );

    // ------------------------------------------------ two media processes
    progress("two media processes…");
    const childB = await startMedia(setup, "media process B", mediaPortB);
    b = {
      name: "media process B",
      child: childB,
      pid: childB.pid ?? 0,
      voiceUrl: `http://127.0.0.1:${apiPortB}/twilio/inbound`,
    };
    pin(b.pid, cpus().length - 1);
    for (const pid of [process.pid, setup.callers.pid, setup.fakes.pid]) pin(pid, "free");
    pinDatabases("free");
    yieldToMedia(setup, [a, b]);
    await warmUp(setup, [b], 2_900_000);
    const from2 = Math.max(one.capacity, CALLS);
    const steps2 = [...new Set([CALLS, ...range(from2, 2 * MAX_CALLS, STEP)])].sort((x, y) => x - y);
    const two = await stepUp(setup, [a, b], steps2, 2_000_000);
    const burst2 = await round(
      setup,
      [a, b],
      `2 processes, burst of ${BURST} in 1 s`,
      BURST,
      1000 / BURST,
      3_100_000,
    );

    // ------------------------------------------------ SIGKILL
    progress(`${KILL_CALLS} calls over both, then SIGKILL to B…`);
    const kill = await crash(setup, a, b, `http://127.0.0.1:${apiPortB}/twilio/status`, 4_000_000);
    b = undefined;

    // ------------------------------------------------ report
    const at = (rs: Round[], n: number) => rs.find((r) => r.calls === n);
    const one200 = at(one.rounds, CALLS);
    const two200 = at(two.rounds, CALLS);
    const capacity1 = one.capacity;
    const capacity2 = two.capacity;
    const ratio = capacity1 > 0 && capacity2 > 0 ? capacity2 / capacity1 : Number.NaN;
    const capRound1 = at(one.rounds, capacity1);
    const capRound2 = at(two.rounds, capacity2);
    const limit1 = one.rounds.find((r) => !r.ok);
    const limit2 = two.rounds.find((r) => !r.ok && r.calls > capacity2) ?? two.rounds[two.rounds.length - 1];
    const killAll = [...kill.withReport, ...kill.withoutReport];
    const killWorst = killAll.length > 0 ? Math.max(...killAll) : Number.NaN;
    const cpu = cpus();
    const held = (c: { capacity: number; capped: boolean; rounds: Round[] }) =>
      c.capacity === 0
        ? `below ${c.rounds[0]?.calls ?? "n/a"} (the first step failed)`
        : `${c.capacity}${c.capped ? " (BENCH_MAX_CALLS reached: at least)" : ""}`;
    const mediaRounds = [...one.rounds, burst1, ...two.rounds, burst2];
    const lines = [
      `Command: \`${QUICK ? "BENCH_QUICK=1 " : ""}npm run bench:scale\` — the bench:media call (first message, ${TURNS} caller turns, ` +
        `turn ${BARGE_TURN + 1} a barge-in; provider delays fixed) through one media process, then two behind ` +
        `round-robin APIs; step-up ${steps1.join(", ")} calls (one process) and ${two.rounds.map((r) => r.calls).join(", ")} ` +
        `(two), each round's calls placed within ${RAMP_WINDOW_MS / 1000} s (30 ms apart at most); bursts of ${BURST} calls ` +
        `within 1 s; SIGKILL to one of two processes with ${KILL_CALLS} calls up, CALL_LEASE_MS ${LEASE_MS}. ` +
        `Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "cpu"}, Node ${process.version}; placement: ` +
        `${PIN ? "one process on CPU 0 with its drivers on the other CPU, two processes on a CPU each with the drivers over both" : "none (BENCH_PIN=0)"}.`,
      "",
      "| Round | Calls held | … per process | … per CPU core | All streams up after | Overhead p50 / p95 (ms) | Late frames sent / on arrival | Media CPU ms per call-second | CPU per media process (of a core) | Peak RSS per media process (MB) | Errors | |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
      ...mediaRounds.map(row),
      "",
      "| Metric | Result | Target | |",
      "|---|---|---|---|",
      `| One media process: calls held, overhead p95 ≤ ${TARGET_OVERHEAD_P95} ms and no late frame | ${held(one)}${capRound1 ? ` (${capRound1.held} held at once, per core ${capacity1})` : ""} | ≥ ${TARGET_CALLS} | ${pass(capacity1 >= TARGET_CALLS)} |`,
      `| … at ${CALLS} calls: overhead p50 / p95, late frames | ${one200 ? `${f(overheadP(one200, 50))} / ${f(overheadP(one200, 95))} ms, ${one200.late} late` : "n/a"} | p95 ≤ ${TARGET_OVERHEAD_P95} ms, 0 | ${pass(one200?.ok === true)} |`,
      `| … CPU per call-second, RSS at ${CALLS} calls | ${one200 ? `${f(one200.cpuMs[0]! / one200.run.callSeconds, 2)} ms, ${f(one200.rss[0]! / MB, 0)} MB` : "n/a"} | — | |`,
      `| Two media processes: calls held | ${held(two)}${capRound2 ? ` (${capRound2.held} held at once, per process ${f(capacity2 / 2, 0)}, per core ${f(capacity2 / 2, 0)})` : ""} | — | |`,
      `| … at ${CALLS} calls: overhead p50 / p95, late frames | ${two200 ? `${f(overheadP(two200, 50))} / ${f(overheadP(two200, 95))} ms, ${two200.late} late` : "n/a"} | — | |`,
      `| Capacity two ÷ one | ${Number.isFinite(ratio) ? `${f(ratio, 2)}×` : "n/a"} | ≥ ${TARGET_RATIO}× | ${pass(ratio >= TARGET_RATIO)} |`,
      `| Burst 0 → ${BURST} in 1 s, one process: overhead p95, late frames, errors | ${f(overheadP(burst1, 95))} ms, ${burst1.late}, ${burst1.run.errors.length} (all up after ${allUp(burst1)}) | p95 ≤ ${TARGET_OVERHEAD_P95} ms, 0, 0 | ${pass(burst1.ok)} |`,
      `| Burst 0 → ${BURST} in 1 s, two processes | ${f(overheadP(burst2, 95))} ms, ${burst2.late}, ${burst2.run.errors.length} (all up after ${allUp(burst2)}) | p95 ≤ ${TARGET_OVERHEAD_P95} ms, 0, 0 | ${pass(burst2.ok)} |`,
      `| SIGKILL → call ended in the record, with Twilio's status callback, p50 / max | ${seconds(kill.withReport)} (${kill.withReport.length} calls) | ≤ ${TARGET_KILL_S} s | ${pass(kill.withReport.length > 0 && Math.max(...kill.withReport) <= TARGET_KILL_S)} |`,
      `| SIGKILL → call ended, Twilio's report lost (the sweeper alone), p50 / max | ${seconds(kill.withoutReport)} (${kill.withoutReport.length} calls) | ≤ ${TARGET_KILL_S} s | ${pass(kill.withoutReport.length > 0 && Math.max(...kill.withoutReport) <= TARGET_KILL_S)} |`,
      "",
      `SIGKILL: ${kill.onKilled} calls up on the killed process, ${kill.notEnded} not ended within ${f((2 * LEASE_MS + 10_000) / 1000, 0)} s; ` +
        `ended as: ${counts(kill.endedReasons)} (expected ${WORKER_DIED}); worst ${f(killWorst)} s. ` +
        `The other process's calls: ${counts(kill.survivors)}.`,
      `What bounds one process (${limit1 ? `first failing step, ${limit1.label}` : "no step failed"}): ` +
        `${limit1 ? `media event-loop delay p99 ${f(limit1.loops[0]?.p99 ?? Number.NaN)} ms, callers' ${f(limit1.run.loop.p99)} ms; machine ${machineLine(limit1)}` : "n/a"}.`,
      `What bounds two processes on ${cpu.length} cores (${limit2 ? limit2.label : "n/a"}): ` +
        `${limit2 ? `media event-loop delay p99 ${limit2.loops.map((l) => f(l.p99)).join(" / ")} ms, callers' ${f(limit2.run.loop.p99)} ms; machine ${machineLine(limit2)}` : "n/a"}. ` +
        "The callers, provider fakes, API/worker, Postgres and Redis share the same cores here; in production media pods have theirs.",
      `Load average before / after: ${loadBefore} / ${loadavg()
        .map((x) => x.toFixed(1))
        .join(", ")}. Total run ${f((Date.now() - runStarted) / 1000, 0)} s.`,
    ];
    const errors = mediaRounds.flatMap((r) => r.run.errors);
    if (errors.length > 0) lines.push(`Errors: ${[...new Set(errors)].slice(0, 5).join("; ")}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    if (b) await stopChild(b.child);
    if (a) await stopChild(a.child);
    await apiB?.close();
    await apiBQueue.close();
    apiBRedis.disconnect();
    await setup.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
