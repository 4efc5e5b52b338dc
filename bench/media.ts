// npm run bench:media — N concurrent simulated phone calls through ONE media process, against the
// loopback provider fakes with FIXED delays, and the same calls through a bare relay for a CPU
// baseline: after a warm-up and a memory sub-phase for each, BENCH_PAIRS (default 2) pairs of timed
// rounds alternate (media, relay, media, relay, …) so a slow spell of the machine weighs on both
// sides; each side's figures are its rounds together (single rounds move by ±15% on this shared VM).
// Prints a markdown table (README-ready) with PASS/FAIL against the targets.
//   BENCH_CALLS=100 BENCH_TURNS=4 BENCH_PAIRS=2 BENCH_WARMUP_ROUNDS=3 npm run bench:media
// (about 7 minutes: each round of 100 calls lasts ~30 s of real time whatever the machine; 3 pairs
// took 6.4 min with one warm-up round, and single runs move more than a third pair narrows them:
// repeat runs instead.)
// BENCH_CPU_PROF=1: .cpuprofile files of both servers in .scratch/prof; BENCH_NODE_FLAGS="…": extra
// node flags for both servers alike; BENCH_PIN=0: no CPU placement (see below). Both servers run with
// the media process's production flags (MEDIA_NODE_FLAGS, apps/media/src/node-flags.ts): what is
// compared is the code, not runtime settings (the relay costs the same or less with them).
// BENCH_RECORDING=1: the assistant records its calls (artifactPlan.recordingEnabled; off otherwise, as
// before recordings existed, and the default of every other bench). Compare the media process's CPU
// per call-second and RSS per call with a run without it: the targets are ≤ 1.15× and ≤ 0.5 MB.
// BENCH_RECORDING=compare: both in one run, rounds taking turns (recording on, recording off, relay;
// an assistant and a number each), and a line comparing them (about 7 minutes with two pairs).
// BENCH_TRANSPORT=websocket: web calls instead of phone calls (Vapi's `vapi.websocket` transport, PCM
// s16le 16 kHz in binary frames both ways: bench/web-call-simulator.ts): each call is created with
// `POST /call` and a `transport` on the API and its client opens `transport.websocketCallUrl` on the
// media process; the bare relay answers the same `POST /call` and relays the same PCM (640-byte binary
// frames every 20 ms, Deepgram `linear16` 16 kHz, ElevenLabs `pcm_16000`). Same callers, fakes,
// script, figures and targets.
// BENCH_B_FLAGS="<node flags>" and/or BENCH_B_TREE=<another checkout>: a same-run A/B comparison. A
// second media process (side "media B") runs the other checkout's bench/media-child.ts (its code: a
// worktree of another commit, with node_modules and a generated Prisma client) and/or these extra node
// flags, beside the first on the same CPU and the same database; with BENCH_B_FLAGS a second bare
// relay ("relay B") runs with them too. Every side gets the same warm-up, memory sub-phase and untimed
// round, then the timed rounds take turns (media, media B, relay[, relay B]) and a last paragraph
// gives B ÷ A for the media process and the relay, and each side's ratio to its relay. Separate runs
// minutes apart differ by 10–30% on this machine; sides of one run are what can be compared.
// BENCH_VOICES=11labs,cartesia,deepgram,openai: the media process is measured with each voice (an
// assistant and a number each; the voices' fakes have the same first-byte delay and audio per
// character), its rounds taking turns with the bare relay's in every pair (voice 1, …, voice n, relay);
// the full table is the first voice's, then one line per voice: overhead per turn, CPU per call-second
// against the relay's rounds, late frames. (The relay speaks to the ElevenLabs fake: it is the cost of
// carrying the audio, the same baseline for every voice.)
//
// Topology: five node processes, so that what is measured is not disturbed by what drives it.
//   - this process (orchestrator): the API (Twilio inbound webhook → Call + TwiML + stream token), the
//     worker (BullMQ on a bench-only prefix), the Twilio REST fake and a customer webhook server;
//   - bench/media-fakes.ts: the provider fakes (Deepgram, OpenAI, ElevenLabs) alone, so their fixed
//     delays are kept by an idle event loop;
//   - bench/media-callers.ts: the load generator, one TwilioCallSimulator per call (real 20 ms
//     pacing), measuring what the caller hears;
//   - bench/media-child.ts: the media app ALONE (buildMedia as in production: Postgres, Redis, the
//     real provider adapters), so its CPU and RSS are read from /proc/<pid>;
//   - bench/media-relay.ts: the bare relay, driven by the same callers with the same script.
//
// Each call: the assistant's first message, then BENCH_TURNS caller turns. Turn BARGE_TURN is spoken
// OVER the previous reply (BARGE_AFTER_MS after the caller started hearing it): a barge-in (clear,
// LLM/TTS aborted) per call. Other turns wait until the reply finished playing, plus THINK_MS.
//
// Fixed provider delays (bench/media-script.ts): Deepgram endpointing ENDPOINTING_MS (silence in
// audio time before the final with speech_final) and STT_DELAY_MS on every message; OpenAI TTFT
// TTFT_MS then one token every ITL_MS (on a fixed schedule from the request); ElevenLabs first byte
// TTFB_MS after a generation is triggered, audio faster than real time. The assistant's own
// configured waits are zero (startSpeakingPlan.waitSeconds 0, every transcriptionEndpointingPlan wait
// 0, backoffSeconds 0), so they are not part of the turn.
//
// Platform overhead per turn (the target), for every turn of every call:
//   turnLatency = wall time the caller HEARD the first voiced byte of the reply − wall time the caller
//                 sent the last voiced frame of the turn (TwilioCallSimulator `turn.latencyMs`, in the
//                 callers process)
//   providerTime = what the providers took in that turn, as the media process saw it (the session's
//                 performanceMetrics.turnLatencies[i].providerLatency): last voiced frame forwarded →
//                 final transcript received, LLM request sent → first speakable clause received, text
//                 sent to TTS → first audio received
//   overhead = turnLatency − providerTime
// So it holds everything that is not a provider's wait: the hops between the caller and the media
// process, the session's turn logic, stream parsing, TTS socket handling, pacing, and the callers'
// own event-loop delay. Printed beside it: the session's own share alone (platformLatency: first
// frame SENT rather than heard), and turnLatency − the FIXED provider delays
//   ENDPOINTING_MS + STT_DELAY_MS + TTFT_MS + k × ITL_MS + TTFB_MS
// (k = index of the LLM token that completes the first clause, found by running the platform's
// ClauseChunker over the fake's tokenisation of the reply), which also counts the fakes' timer lag
// and the hops to them.
//
// CPU ms per call-second: (utime + stime of the child from /proc/<pid>/stat, from the first call
// placed to the last call ended) ÷ Σ per-call stream-open seconds. The same for the bare relay;
// the ratio is media ÷ relay. CPU per thread is printed below the table. Each timed round starts once
// the worker has no job waiting or running (the previous round's post-call work is that round's).
// Placement (BENCH_PIN=0 turns it off): the measured server (media process or bare relay) has CPU 0
// to itself; the callers, the provider fakes, this orchestrator, Postgres and Redis run on the other
// CPUs (a media process does not share its machine with the load generator or the databases in
// production). Without it the figures mostly measure interference: the same forwarding code ran
// 1.4× slower in whichever server shared its core with a busier neighbourhood.
// Also printed, per call-second: syscalls and context switches of each server (/proc/<pid>/io,
// status), CPU of every process on the machine, hypervisor steal, and each server's GC pauses.
// RSS per active call: an untimed memory sub-phase after warm-up and before the timed calls (media
// process and bare relay alike): N calls held up once, unmeasured; then a full GC (--expose-gc) and
// the resident size with no call up, then N calls held up at once (two turns each, then on hold), a
// full GC and the resident size, then again with no call up; the difference from the lower of the
// two no-call sizes ÷ N. Resident size here is VmRSS less the V8 heap pages committed but empty
// (heapTotal − heapUsed): V8 returns those lazily, and they made the figure depend on GC timing.
// (Without a forced GC the resident size moves by tens of MB as garbage comes and goes, more than
// the calls themselves hold; that figure is printed too.)
// Late outbound frames (the target): counted by the media process's pacer as it sends. Frame k of an
// utterance is due at start + max(0, k − 3) × 20 ms (3 frames of lead) and is late when it leaves
// more than 40 ms after that. The same is counted at the receiver by the callers (arrival time), which
// adds the loopback hop and the callers' own event-loop delay; both are printed.

import type { ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { MEDIA_NODE_FLAGS } from "../apps/media/src/node-flags.ts";
import type { PacingStats } from "../libs/media/pacer.ts";
import type { RunRequest, RunResult } from "./media-callers.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  BENCH_VOICES,
  type BenchLine,
  type BenchVoice,
  FIRST_CLAUSE_TOKEN,
  finalisedTurns,
  PROVIDER_WAIT_MS,
  startPlatform,
  turnFigures,
} from "./media-platform.ts";
import {
  BARGE_AFTER_MS,
  ENDPOINTING_MS,
  FIRST_MESSAGE,
  type GcPauses,
  ITL_MS,
  type LoopDelay,
  REPLY,
  STT_DELAY_MS,
  THINK_MS,
  TTFB_MS,
  TTFT_MS,
} from "./media-script.ts";
import {
  ask,
  f,
  freePort,
  type KernelCounts,
  kernelDelta,
  kernelSample,
  machineCpu,
  pct,
  pin,
  processesCpu,
  processesDelta,
  procSample,
  roleNames,
  sleep,
  startChild,
  stopChild,
  threadDelta,
  threadSample,
} from "./processes.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const TURNS = Math.max(2, Number(process.env.BENCH_TURNS ?? 4));
const PAIRS = Math.max(1, Number(process.env.BENCH_PAIRS ?? 2));
const BARGE_TURN = Math.min(2, TURNS - 1);
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
/**
 * BENCH_RECORDING=compare: rounds with recording on and rounds with it off take turns in the same
 * run (an assistant and number each, same voice), each against the relay: the table is recording
 * on's, and a line compares the two directly.
 */
const COMPARE_RECORDING = process.env.BENCH_RECORDING === "compare";
/** The side of the rounds with recording off (BENCH_RECORDING=compare). */
const UNRECORDED = "recording off";
/** Issue 13's targets for recording: CPU ≤ 1.15× the same calls unrecorded, RSS ≤ 0.5 MB per call. */
const TARGET_RECORDING_RATIO = 1.15;
const TARGET_RECORDING_RSS_MB = 0.5;
const RECORDING = process.env.BENCH_RECORDING === "1" || COMPARE_RECORDING;
if (COMPARE_RECORDING && process.env.BENCH_VOICES)
  throw new Error("BENCH_RECORDING=compare measures the ElevenLabs voice alone (no BENCH_VOICES)");
/** BENCH_B_FLAGS / BENCH_B_TREE: the B side of a same-run comparison (see the header). */
const B_FLAGS = (process.env.BENCH_B_FLAGS ?? "").split(/\s+/).filter(Boolean);
const B_TREE = process.env.BENCH_B_TREE ? path.resolve(process.env.BENCH_B_TREE) : undefined;
const COMPARE_B = B_FLAGS.length > 0 || B_TREE !== undefined;
if (COMPARE_B && (COMPARE_RECORDING || process.env.BENCH_VOICES))
  throw new Error(
    "BENCH_B_FLAGS / BENCH_B_TREE compare one voice, recording as set (no BENCH_VOICES, no BENCH_RECORDING=compare)",
  );
const MEDIA_B = "media B";
const RELAY_B = "relay B";
/**
 * BENCH_SCRAPE=1: the media process's `GET /metrics` is fetched every BENCH_SCRAPE_MS (default 1000;
 * Prometheus' usual interval is 15-30 s) during its timed rounds, to show scraping does not slow calls.
 */
const SCRAPE = process.env.BENCH_SCRAPE === "1";
const SCRAPE_MS = Math.max(10, Number(process.env.BENCH_SCRAPE_MS ?? 1000));
const RAMP_MS = 30; // between call starts
const WEB = process.env.BENCH_TRANSPORT === "websocket";
if (process.env.BENCH_TRANSPORT && !WEB && process.env.BENCH_TRANSPORT !== "twilio")
  throw new Error("BENCH_TRANSPORT: twilio (default) or websocket");
const VOICES = (process.env.BENCH_VOICES ?? "")
  .split(",")
  .map((v) => v.trim())
  .filter(Boolean);
for (const v of VOICES)
  if (!(v in BENCH_VOICES)) throw new Error(`BENCH_VOICES: ${v}? (${Object.keys(BENCH_VOICES).join(", ")})`);
/** The voices measured: ElevenLabs alone unless BENCH_VOICES names others. */
const SIDES: BenchVoice[] = VOICES.length > 0 ? [...new Set(VOICES as BenchVoice[])] : ["11labs"];
/**
 * Warm-up calls per server, with the full script (every turn, the barge-in, the ending): every code
 * path and every database query shape is compiled before anything is measured (Prisma compiles a
 * query shape on its first use; the first timed round used to pay for that).
 */
const WARMUP_CALLS = 10;
/** BENCH_WARMUP_ROUNDS: untimed full rounds per server before the timed ones (default 3; see below). */
const WARMUP_ROUNDS = Math.max(1, Number(process.env.BENCH_WARMUP_ROUNDS ?? 3));

const TARGET_OVERHEAD_P95 = 20;
const TARGET_RSS_MB = 2;
const TARGET_CPU_RATIO = 1.5;

/** A child's resident size and V8 heap in use after a full garbage collection (bytes). */
interface Memory {
  rss: number;
  heap: number;
}

interface MemoryResult {
  before: Memory;
  atN: Memory | undefined;
  /** Bytes per call held up: resident size and V8 heap, each after a full GC. */
  rssPerCall: number;
  heapPerCall: number;
  errors: number;
}

// ---------------------------------------------------------------- one phase (media or relay)

interface PhaseResult {
  run: RunResult;
  cpuMs: number;
  threads: string;
  wallSeconds: number;
  rssBefore: number;
  rssAtN: number;
  /** Highest VmRSS seen during the phase (garbage included). */
  rssMax: number;
  /** Most calls live at once (as the callers saw it). */
  peakLive: number;
  loop: LoopDelay;
  pacing: PacingStats;
  kernel: KernelCounts;
  /** CPU of the whole machine over the round (every process: the server, callers, fakes, databases…). */
  machineCpuMs: number;
  /** Hypervisor steal over the round, ms (CPU this VM wanted and did not get). */
  stealMs: number;
  /** CPU ms of every process over the round, by bench role or process name. */
  processes: Map<string, number>;
  /** BENCH_SCRAPE: how long each `GET /metrics` of the round took, ms, and its size in bytes. */
  scrapes: { ms: number[]; bytes: number };
}

/**
 * Untimed memory sub-phase: a full GC and the resident size / V8 heap with no call up, then N calls
 * held up at once (two turns each, then on hold), a full GC and the same again. A forced GC stalls
 * the process, so this runs before, never during, the timed calls.
 */
async function measureMemory(
  server: ChildProcess,
  callers: ChildProcess,
  base: Omit<RunRequest, "calls" | "turns" | "fromBase">,
  fromBase: number,
): Promise<MemoryResult> {
  const hold = (from: number) =>
    ask<RunResult>(
      callers,
      { run: { ...base, calls: CALLS, turns: 2, bargeTurn: -1, holdMs: 3000, fromBase: from } },
      "result",
    );
  // Once unmeasured: what the first N calls leave behind for good (pool sockets, buffers, code) is
  // not what a call holds, and the process also sheds start-up memory around then.
  await hold(fromBase + 5_000);
  const before = await ask<Memory>(server, "gc", "memory");
  let atN: Promise<Memory> | undefined;
  const onLive = (msg: { live?: number }) => {
    if (typeof msg.live === "number" && msg.live >= CALLS && !atN)
      atN = sleep(500).then(() => ask<Memory>(server, "gc", "memory"));
  };
  callers.on("message", onLive);
  const held = await hold(fromBase);
  callers.off("message", onLive);
  const n = await atN;
  // And with no call up again: the allocator keeps or returns pages on its own schedule, so the
  // figure is taken against the lower of the two no-call sizes (the larger, conservative result).
  await sleep(1000);
  const after = await ask<Memory>(server, "gc", "memory");
  const idle = { rss: Math.min(before.rss, after.rss), heap: Math.min(before.heap, after.heap) };
  return {
    before: idle,
    atN: n,
    rssPerCall: n ? (n.rss - idle.rss) / CALLS : Number.NaN,
    heapPerCall: n ? (n.heap - idle.heap) / CALLS : Number.NaN,
    errors: held.errors.length,
  };
}

/** Warm-up (JIT, query compilation, connection pools, lazy imports; not measured), then memory. */
async function prepare(
  server: ChildProcess,
  callers: ChildProcess,
  base: Omit<RunRequest, "calls" | "turns" | "fromBase">,
  fromBase: number,
): Promise<MemoryResult> {
  await ask<RunResult>(
    callers,
    { run: { ...base, calls: WARMUP_CALLS, turns: TURNS, fromBase: fromBase + 90_000 } },
    "result",
  );
  return measureMemory(server, callers, base, fromBase + 80_000);
}

/** One timed round: N calls with the full script; CPU, RSS, loop delay and pacing of `server`. */
async function runPhase(
  server: ChildProcess,
  callers: ChildProcess,
  base: Omit<RunRequest, "calls" | "turns" | "fromBase">,
  fromBase: number,
  settle: () => Promise<void>,
  scrapeUrl?: string,
): Promise<PhaseResult> {
  const pid = server.pid ?? 0;
  // The previous round's post-call jobs (webhooks, analysis, usage) finish first: they are that
  // round's work, not this one's.
  await settle();
  await sleep(500);
  await ask<LoopDelay>(server, "loop", "loop");
  const pacing0 = await ask<PacingStats>(server, "pacing", "pacing");
  const before = { rss: procSample(pid).rss };
  let rssAtN = 0;
  let rssMax = 0;
  let live = 0;
  let peakLive = 0;
  const onLive = (m: { live?: number }) => {
    if (typeof m.live !== "number") return;
    live = m.live;
    peakLive = Math.max(peakLive, live);
  };
  callers.on("message", onLive);
  const sampler = setInterval(() => {
    const rss = procSample(pid).rss;
    rssMax = Math.max(rssMax, rss);
    if (live >= CALLS) rssAtN = Math.max(rssAtN, rss);
  }, 250);
  const cpu0 = procSample(pid).cpuMs;
  const threads0 = threadSample(pid);
  const kernel0 = kernelSample(pid);
  const machine0 = machineCpu();
  const procs0 = processesCpu();
  const t0 = Date.now();
  const scrapes = { ms: [] as number[], bytes: 0 };
  let scraping = scrapeUrl !== undefined;
  const scraper = (async () => {
    while (scraping && scrapeUrl) {
      const at = performance.now();
      const body = await (await fetch(scrapeUrl)).text();
      scrapes.ms.push(performance.now() - at);
      scrapes.bytes = body.length;
      await sleep(SCRAPE_MS);
    }
  })();
  const run = await ask<RunResult>(
    callers,
    { run: { ...base, calls: CALLS, turns: TURNS, fromBase } },
    "result",
  );
  scraping = false;
  await scraper;
  // Let the last hang-ups be processed (the call write is part of a call's cost).
  await sleep(1500);
  const cpuMs = procSample(pid).cpuMs - cpu0;
  const threads = threadDelta(threads0, threadSample(pid));
  const kernel = kernelDelta(kernel0, kernelSample(pid));
  const machine1 = machineCpu();
  const machine = machine1.busyMs - machine0.busyMs;
  const steal = machine1.stealMs - machine0.stealMs;
  const processes = processesDelta(procs0, processesCpu(), roleNames);
  const wallSeconds = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  callers.off("message", onLive);
  const loop = await ask<LoopDelay>(server, "loop", "loop");
  const pacing1 = await ask<PacingStats>(server, "pacing", "pacing");
  return {
    run,
    cpuMs,
    threads,
    wallSeconds,
    rssBefore: before.rss,
    rssAtN: rssAtN || rssMax,
    rssMax,
    peakLive,
    loop,
    pacing: {
      framesSent: pacing1.framesSent - pacing0.framesSent,
      lateFrames: pacing1.lateFrames - pacing0.lateFrames,
      // The child resets its worst lateness at every ask: this is the round's own.
      maxLateMs: pacing1.maxLateMs,
    },
    kernel,
    machineCpuMs: machine,
    stealMs: steal,
    processes,
    scrapes,
  };
}

function addGc(a: GcPauses | undefined, b: GcPauses | undefined): GcPauses | undefined {
  if (!a || !b) return a ?? b;
  return {
    minorCount: a.minorCount + b.minorCount,
    minorMs: a.minorMs + b.minorMs,
    majorCount: a.majorCount + b.majorCount,
    majorMs: a.majorMs + b.majorMs,
    maxMs: Math.max(a.maxMs, b.maxMs),
  };
}

function gcLine(g: GcPauses | undefined): string {
  if (!g) return "n/a";
  return `${g.minorCount} scavenges (${f(g.minorMs, 0)} ms), ${g.majorCount} other (${f(g.majorMs, 0)} ms), longest ${f(g.maxMs, 1)} ms`;
}

/** Timed rounds of the same server as one: sums of work and time, worst of delays. */
function combine(a: PhaseResult, b: PhaseResult): PhaseResult {
  return {
    run: {
      calls: [...a.run.calls, ...b.run.calls],
      errors: [...a.run.errors, ...b.run.errors],
      callSeconds: a.run.callSeconds + b.run.callSeconds,
      bargeIns: a.run.bargeIns + b.run.bargeIns,
      frames: a.run.frames + b.run.frames,
      lateFrames: a.run.lateFrames + b.run.lateFrames,
      callsWithLate: a.run.callsWithLate + b.run.callsWithLate,
      maxLateMs: Math.max(a.run.maxLateMs, b.run.maxLateMs),
      loop: { p99: Math.max(a.run.loop.p99, b.run.loop.p99), max: Math.max(a.run.loop.max, b.run.loop.max) },
    },
    cpuMs: a.cpuMs + b.cpuMs,
    threads: `${a.threads} | ${b.threads}`,
    wallSeconds: a.wallSeconds + b.wallSeconds,
    rssBefore: Math.min(a.rssBefore, b.rssBefore),
    rssAtN: Math.max(a.rssAtN, b.rssAtN),
    rssMax: Math.max(a.rssMax, b.rssMax),
    peakLive: Math.max(a.peakLive, b.peakLive),
    loop: {
      p99: Math.max(a.loop.p99, b.loop.p99),
      max: Math.max(a.loop.max, b.loop.max),
      gc: addGc(a.loop.gc, b.loop.gc),
    },
    pacing: {
      framesSent: a.pacing.framesSent + b.pacing.framesSent,
      lateFrames: a.pacing.lateFrames + b.pacing.lateFrames,
      maxLateMs: Math.max(a.pacing.maxLateMs, b.pacing.maxLateMs),
    },
    kernel: {
      reads: a.kernel.reads + b.kernel.reads,
      writes: a.kernel.writes + b.kernel.writes,
      voluntary: a.kernel.voluntary + b.kernel.voluntary,
      involuntary: a.kernel.involuntary + b.kernel.involuntary,
    },
    machineCpuMs: a.machineCpuMs + b.machineCpuMs,
    stealMs: a.stealMs + b.stealMs,
    scrapes: { ms: [...a.scrapes.ms, ...b.scrapes.ms], bytes: Math.max(a.scrapes.bytes, b.scrapes.bytes) },
    processes: new Map(
      [...new Set([...a.processes.keys(), ...b.processes.keys()])].map((k) => [
        k,
        (a.processes.get(k) ?? 0) + (b.processes.get(k) ?? 0),
      ]),
    ),
  };
}

// ---------------------------------------------------------------- main

function perCallSecond(x: PhaseResult, n: number): string {
  return f(n / x.run.callSeconds, 2);
}

function processesLine(x: PhaseResult): string {
  return [...x.processes.entries()]
    .filter(([, ms]) => ms / x.run.callSeconds >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${perCallSecond(x, ms)}`)
    .join(", ");
}

async function main(): Promise<void> {
  const runStarted = Date.now();
  const loadBefore = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const setup = await startPlatform({
    queuePrefix: "bench-media",
    concurrencyLimit: CALLS + 50,
    voices: SIDES,
    recording: RECORDING,
    unrecorded: COMPARE_RECORDING,
  });
  const { t, callers, fakes, fakeUrls, apiPort, mediaPort } = setup;
  let media: ChildProcess | undefined;
  let relay: ChildProcess | undefined;
  /** BENCH_B_FLAGS / BENCH_B_TREE: media B and relay B. */
  const extra: ChildProcess[] = [];
  try {
    const script = {
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      to: setup.number,
      rampMs: RAMP_MS,
      bargeTurn: BARGE_TURN,
      bargeAfterMs: BARGE_AFTER_MS,
      thinkMs: THINK_MS,
    };

    // ------------------------------------------------ media process
    const childEnv = setup.mediaEnv(mediaPort);
    const prof = CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir=.scratch/prof"] : [];
    // Extra node flags for both servers alike (BENCH_NODE_FLAGS="--max-semi-space-size=32 …").
    const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
    media = (
      await startChild<{ ready: boolean }>("bench/media-child.ts", childEnv, [
        "--expose-gc",
        ...MEDIA_NODE_FLAGS,
        ...nodeFlags,
        ...prof,
      ])
    ).child;
    roleNames.set(media.pid ?? 0, "media process");
    pin(media.pid, "server");
    /** The script of the calls to the media process answered by the assistant with `voice`. */
    const mediaScriptOf = (voice: BenchVoice) => {
      const line = setup.lines.get(voice);
      if (!line) throw new Error(`no assistant for ${voice}`);
      return lineScript(line);
    };
    /** The script of the calls answered by the assistant on `line`. */
    const lineScript = (line: BenchLine) => {
      return WEB
        ? {
            ...script,
            voiceUrl: "",
            web: {
              createUrl: `http://127.0.0.1:${apiPort}/call`,
              key: setup.org.key,
              assistantId: line.assistantId,
            },
          }
        : { ...script, to: line.number, voiceUrl: `http://127.0.0.1:${apiPort}/twilio/inbound` };
    };
    // BENCH_B_FLAGS / BENCH_B_TREE: media B, on its own port (calls are sent to it by port).
    let mediaB: ChildProcess | undefined;
    let mediaPortB = 0;
    if (COMPARE_B) {
      mediaPortB = await freePort();
      const script = path.join(B_TREE ?? process.cwd(), "bench/media-child.ts");
      process.stderr.write(
        `bench:media: starting media B (${script}${B_FLAGS.length ? ` ${B_FLAGS.join(" ")}` : ""})…\n`,
      );
      mediaB = (
        await startChild<{ ready: boolean }>(
          script,
          setup.mediaEnv(mediaPortB, { MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPortB}` }),
          ["--expose-gc", ...MEDIA_NODE_FLAGS, ...nodeFlags, ...B_FLAGS, ...prof],
        )
      ).child;
      extra.push(mediaB);
      roleNames.set(mediaB.pid ?? 0, MEDIA_B);
      pin(mediaB.pid, "server");
    }
    process.stderr.write(`bench:media: starting the bare relay…\n`);
    const relayEnv = {
      BENCH_DEEPGRAM_URL: fakeUrls.deepgram,
      BENCH_ELEVENLABS_URL: fakeUrls.elevenlabs,
      BENCH_ENDPOINTING_MS: String(ENDPOINTING_MS),
      BENCH_FIRST_TEXT: FIRST_MESSAGE,
      BENCH_REPLY_TEXT: REPLY,
    };
    const started = await startChild<{ ready: boolean; port: number }>("bench/media-relay.ts", relayEnv, [
      "--expose-gc",
      ...MEDIA_NODE_FLAGS,
      ...nodeFlags,
      ...prof,
    ]);
    relay = started.child;
    roleNames.set(relay.pid ?? 0, "bare relay");
    pin(relay.pid, "server");
    pin(process.pid, "driver");
    const relayScriptAt = (port: number) => {
      const relayUrl = `http://127.0.0.1:${port}`;
      return WEB
        ? {
            ...script,
            voiceUrl: "",
            web: { createUrl: `${relayUrl}/call`, key: "relay", assistantId: "relay" },
          }
        : { ...script, voiceUrl: `${relayUrl}/voice` };
    };
    const relayScript = relayScriptAt(started.ready.port);
    // BENCH_B_FLAGS: relay B, the bare relay with B's flags.
    let relayB: ChildProcess | undefined;
    let relayScriptB = relayScript;
    if (B_FLAGS.length > 0) {
      const b = await startChild<{ ready: boolean; port: number }>("bench/media-relay.ts", relayEnv, [
        "--expose-gc",
        ...MEDIA_NODE_FLAGS,
        ...nodeFlags,
        ...B_FLAGS,
        ...prof,
      ]);
      relayB = b.child;
      extra.push(relayB);
      roleNames.set(relayB.pid ?? 0, RELAY_B);
      pin(relayB.pid, "server");
      relayScriptB = relayScriptAt(b.ready.port);
    }
    /** What is measured: the media process with each voice, then the bare relay. */
    const sides = [
      ...SIDES.map((voice) => ({ name: voice, server: media as ChildProcess, script: mediaScriptOf(voice) })),
      ...(setup.unrecorded
        ? [{ name: UNRECORDED, server: media as ChildProcess, script: lineScript(setup.unrecorded) }]
        : []),
      ...(mediaB
        ? [
            {
              name: MEDIA_B,
              server: mediaB,
              script: { ...mediaScriptOf(SIDES[0] as BenchVoice), mediaPort: mediaPortB },
            },
          ]
        : []),
      { name: "relay", server: relay, script: relayScript },
      ...(relayB ? [{ name: RELAY_B, server: relayB, script: relayScriptB }] : []),
    ];
    const relays = new Set<ChildProcess | undefined>([relay, relayB].filter(Boolean));
    const first = sides[0] as (typeof sides)[number];
    process.stderr.write(`bench:media: warm-up and memory, media process then bare relay…\n`);
    const mediaMemory = await prepare(media, callers, first.script, 5_550_000);
    const relayMemory = await prepare(relay, callers, relayScript, 5_560_000);
    // The B side: its own process, the same preparation (its memory figures are printed at the end).
    const sideB = sides.find((x) => x.name === MEDIA_B);
    const memoryB = sideB ? await prepare(sideB.server, callers, sideB.script, 5_530_000) : undefined;
    const relayBSide = sides.find((x) => x.name === RELAY_B);
    if (relayBSide) await prepare(relayBSide.server, callers, relayBSide.script, 5_300_000);
    // The other voices' code paths are compiled too (not measured).
    for (const [i, side] of sides.filter((x) => x !== first && x.server === media).entries())
      await ask<RunResult>(
        callers,
        { run: { ...side.script, calls: WARMUP_CALLS, turns: TURNS, fromBase: 5_400_000 + i * 1000 } },
        "result",
      );
    const settle = () => setup.settle();
    // WARMUP_ROUNDS untimed full rounds each (media, relay, media, relay, …), then the timed rounds:
    // every timed round follows a full round of another server, in the same state. (The memory
    // sub-phase's forced collections shrink the heap and production never forces one; without an
    // untimed round the first timed media round ran ~1.2× the second.) More than one: code that runs
    // once per call (setup, the end-of-call report, pricing) becomes hot only after hundreds of calls,
    // and V8's optimising compiler, on the process's own CPU, was still compiling it in the timed
    // rounds: 1.24 s in the first timed round after one untimed round, 0.67 s in the second, 0.57 s in
    // the third (`BENCH_NODE_FLAGS=--trace-opt`, 100 web calls; the relay 0.03–0.08 s), a start-up
    // cost a long-running media process has paid long before.
    const untimedRounds = COMPARE_B ? sides.map((x) => x.script) : [first.script, relayScript];
    for (let w = 0; w < WARMUP_ROUNDS; w++)
      for (const [i, untimed] of untimedRounds.entries()) {
        await settle();
        await ask<RunResult>(
          callers,
          {
            run: { ...untimed, calls: CALLS, turns: TURNS, fromBase: 5_570_000 + w * 100_000 + i * 10_000 },
          },
          "result",
        );
      }
    // Timed rounds take turns (media, relay, media, relay; with voices: each voice, then the relay)
    // so a slow spell of the machine weighs on every side.
    const rounds = new Map<string, PhaseResult[]>(sides.map((side) => [side.name, []]));
    const order: Array<{ side: string; cpu: number }> = [];
    let round = 0;
    for (let pair = 0; pair < PAIRS; pair++)
      for (const [i, side] of sides.entries()) {
        round++;
        const isRelay = relays.has(side.server);
        process.stderr.write(
          `bench:media: round ${round} of ${PAIRS * sides.length}, ${CALLS} ${WEB ? "web" : "phone"} calls through the ${isRelay ? "bare relay" : `media process (${side.name})`}…\n`,
        );
        const result = await runPhase(
          side.server,
          callers,
          side.script,
          5_000_000 + (pair * sides.length + i) * 10_000,
          settle,
          !isRelay && SCRAPE ? `http://127.0.0.1:${mediaPort}/metrics` : undefined,
        );
        rounds.get(side.name)?.push(result);
        order.push({ side: side.name, cpu: result.cpuMs / result.run.callSeconds });
      }
    const of = (name: string) => (rounds.get(name) ?? []).reduce(combine);
    const m = of(first.name);
    const r = of("relay");
    const cpuRounds = order
      .map(
        (x) =>
          `${x.side === "relay" ? "relay" : SIDES.length > 1 || COMPARE_B ? x.side : x.side === UNRECORDED ? "unrecorded" : "media"} ${f(x.cpu, 2)}`,
      )
      .join(" / ");

    // The session's own per-turn metrics (artifact.performanceMetrics), once every call is finalised.
    const turnsOf = async (x: PhaseResult) =>
      turnFigures(
        x.run.calls,
        await finalisedTurns(
          t.db,
          x.run.calls.map((c) => c.callSid),
          15_000,
          WEB ? "id" : "providerCallId",
        ),
        TURNS,
      );
    const perVoice: string[] = [];
    if (SIDES.length > 1)
      for (const voice of SIDES) {
        const x = of(voice);
        const v = await turnsOf(x);
        const cpu = x.cpuMs / x.run.callSeconds;
        const voiceLatency = v.providerParts.voiceLatency;
        perVoice.push(
          `| \`${voice}\` | ${f(pct(v.overheads, 50))} / ${f(pct(v.overheads, 95))} ms | ${f(pct(voiceLatency, 50), 0)} / ${f(pct(voiceLatency, 95), 0)} ms | ${f(cpu, 2)} ms | ${f(cpu / (r.cpuMs / r.run.callSeconds), 2)}× | ${x.pacing.lateFrames} of ${x.pacing.framesSent} | ${x.run.calls.length - x.run.errors.length} of ${x.run.calls.length} |`,
        );
      }
    await stopChild(media);
    media = undefined;
    await stopChild(relay);
    relay = undefined;
    for (const child of extra.splice(0)) await stopChild(child);
    const fakesLoop = await ask<LoopDelay>(fakes, "loop", "loop");

    // ------------------------------------------------ report
    const { overheads, overheadsFixed, latencies, platform, providerParts, byTurn, missingTurns, unmatched } =
      await turnsOf(m);
    const perTurn = byTurn
      .map(
        (xs, i) =>
          `turn ${i + 1}${i === BARGE_TURN ? " (barge-in)" : ""} ${f(pct(xs, 50))} / ${f(pct(xs, 95))}`,
      )
      .join(", ");
    const breakdown = Object.entries(providerParts)
      .map(([k, xs]) => `${k} ${f(pct(xs, 50), 0)} / ${f(pct(xs, 95), 0)}`)
      .join(", ");
    const errors = m.run.errors;
    const placed = m.run.calls.length;
    const completed = placed - errors.length;
    const mediaCpu = m.cpuMs / m.run.callSeconds;
    const relayCpu = r.cpuMs / r.run.callSeconds;
    const ratio = mediaCpu / relayCpu;
    const rssGrowth = (m.rssAtN - m.rssBefore) / CALLS / (1024 * 1024);
    const p95 = pct(overheads, 95);
    const pass = (ok: boolean) => (ok ? "PASS" : "FAIL");
    const cpu = cpus();

    const lines = [
      `Command: \`BENCH_CALLS=${CALLS} BENCH_TURNS=${TURNS} BENCH_PAIRS=${PAIRS}${WEB ? " BENCH_TRANSPORT=websocket" : ""}${VOICES.length > 0 ? ` BENCH_VOICES=${SIDES.join(",")}` : ""}${COMPARE_RECORDING ? " BENCH_RECORDING=compare" : RECORDING ? " BENCH_RECORDING=1" : ""} npm run bench:media\` — ${CALLS} concurrent ` +
        `${WEB ? "web calls (vapi.websocket, PCM s16le 16 kHz, binary frames both ways)" : "phone calls (Twilio Media Streams)"} ` +
        `(started ${RAMP_MS} ms apart) through one media process${SIDES.length > 1 ? ` with the ${first.name} voice (the other voices below)` : ""}, ${TURNS} caller turns each, turn ${BARGE_TURN + 1} ` +
        `spoken over the reply (barge-in); ${PAIRS} timed rounds through each server, alternating, ${PAIRS * CALLS * TURNS} media turns in all. Fixed provider delays: Deepgram ` +
        `endpointing ${ENDPOINTING_MS} ms + ${STT_DELAY_MS} ms per message, OpenAI TTFT ${TTFT_MS} ms + ${ITL_MS} ms/token ` +
        `(first clause complete at token ${FIRST_CLAUSE_TOKEN}), ElevenLabs TTFB ${TTFB_MS} ms; provider wait per turn ` +
        `${PROVIDER_WAIT_MS} ms. Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "cpu"}, Node ${process.version}.`,
      "",
      "| Metric | Result | Target | |",
      "|---|---|---|---|",
      `| Platform overhead per turn heard by the caller (turn latency − provider time), p50 / p95 / p99 | ${f(pct(overheads, 50))} / ${f(p95)} / ${f(pct(overheads, 99))} ms | p95 ≤ ${TARGET_OVERHEAD_P95} ms | ${pass(p95 <= TARGET_OVERHEAD_P95 && missingTurns === 0 && unmatched === 0)} |`,
      `| … the media process's own share (performanceMetrics platformLatency), p50 / p95 / p99 | ${f(pct(platform, 50))} / ${f(pct(platform, 95))} / ${f(pct(platform, 99))} ms | — | |`,
      `| … turn latency − the fixed provider delays (${PROVIDER_WAIT_MS} ms), p50 / p95 / p99 | ${f(pct(overheadsFixed, 50))} / ${f(pct(overheadsFixed, 95))} / ${f(pct(overheadsFixed, 99))} ms | — | |`,
      `| Turn latency heard by the caller, p50 / p95 | ${f(pct(latencies, 50), 0)} / ${f(pct(latencies, 95), 0)} ms | — | |`,
      `| CPU per call-second, media process | ${f(mediaCpu, 2)} ms | — | |`,
      `| CPU per call-second, bare relay | ${f(relayCpu, 2)} ms | — | |`,
      `| CPU media ÷ bare relay | ${f(ratio, 2)}× | ≤ ${TARGET_CPU_RATIO}× | ${pass(ratio <= TARGET_CPU_RATIO)} |`,
      `| RSS per active call | ${f(mediaMemory.rssPerCall / 2 ** 20, 2)} MB (${f(mediaMemory.before.rss / 2 ** 20, 0)} → ${f((mediaMemory.atN?.rss ?? Number.NaN) / 2 ** 20, 0)} MB after a full GC, less empty V8 heap; V8 heap ${f(mediaMemory.heapPerCall / 1024, 0)} KB per call; bare relay ${f(relayMemory.rssPerCall / 2 ** 20, 2)} MB) | ≤ ${TARGET_RSS_MB} MB | ${pass(mediaMemory.rssPerCall / 2 ** 20 <= TARGET_RSS_MB && mediaMemory.errors === 0)} |`,
      `| Late outbound frames, sent > 40 ms behind schedule | ${m.pacing.lateFrames} of ${m.pacing.framesSent} (worst ${f(m.pacing.maxLateMs, 0)} ms) | 0 | ${pass(m.pacing.lateFrames === 0)} |`,
      `| Calls completed / barge-ins (clear received) | ${completed} of ${placed} / ${m.run.bargeIns} | all | ${pass(errors.length === 0 && missingTurns === 0 && m.run.bargeIns === placed && placed === PAIRS * CALLS)} |`,
      "",
      `Caller-heard overhead by turn, p50 / p95 (ms): ${perTurn}. Provider time as the media process saw it, ` +
        `p50 / p95 (ms): ${breakdown} (fixed: all ${PROVIDER_WAIT_MS}, model = TTFT ${TTFT_MS}, voice = TTFB ${TTFB_MS}); ${overheads.length} ` +
        `turns matched to the session's metrics, ${unmatched} not.`,
      `Frames on arrival at the callers (> 40 ms behind, with the hop and the callers' own delay): media ` +
        `${m.run.lateFrames} of ${m.run.frames} (${m.run.callsWithLate} calls, worst ${f(m.run.maxLateMs, 0)} ms); ` +
        `bare relay ${r.run.lateFrames} of ${r.run.frames} (worst ${f(r.run.maxLateMs, 0)} ms). Bare relay's own ` +
        `pacer: ${r.pacing.lateFrames} of ${r.pacing.framesSent} sent late.`,
      `VmRSS during the timed phase (no forced GC): ${f(m.rssBefore / 2 ** 20, 0)} MB after warm-up → ${f(m.rssAtN / 2 ** 20, 0)} MB ` +
        `with all ${m.peakLive} calls up (${f(rssGrowth, 2)} MB per call; garbage comes and goes).`,
      `CPU per call-second by round (media, relay, media, relay…): ${cpuRounds} ms.`,
      `Media rounds: ${f(m.wallSeconds)} s wall, ${f(m.run.callSeconds, 0)} call-seconds, ${f(m.cpuMs, 0)} CPU ms. ` +
        `Relay rounds: ${f(r.wallSeconds)} s wall, ${f(r.run.callSeconds, 0)} call-seconds, ${f(r.cpuMs, 0)} CPU ms.`,
      `CPU by thread (user + system ms): media process ${m.threads}; bare relay ${r.threads}.`,
      `Per call-second, media process / bare relay: read syscalls ${perCallSecond(m, m.kernel.reads)} / ${perCallSecond(r, r.kernel.reads)}, ` +
        `write syscalls ${perCallSecond(m, m.kernel.writes)} / ${perCallSecond(r, r.kernel.writes)}, context switches ` +
        `${perCallSecond(m, m.kernel.voluntary)} / ${perCallSecond(r, r.kernel.voluntary)} voluntary, ` +
        `${perCallSecond(m, m.kernel.involuntary)} / ${perCallSecond(r, r.kernel.involuntary)} involuntary; ` +
        `whole machine (every process) ${perCallSecond(m, m.machineCpuMs)} / ${perCallSecond(r, r.machineCpuMs)} CPU ms; ` +
        `hypervisor steal ${f(m.stealMs, 0)} / ${f(r.stealMs, 0)} ms in all.`,
      `Garbage-collection pauses in the timed rounds: media process ${gcLine(m.loop.gc)}; bare relay ${gcLine(r.loop.gc)}.`,
      `CPU ms per call-second by process, media rounds: ${processesLine(m)}; relay rounds: ${processesLine(r)}.`,
      `Event-loop delay p99 / max: media process ${f(m.loop.p99)} / ${f(m.loop.max)} ms, ` +
        `bare relay ${f(r.loop.p99)} / ${f(r.loop.max)} ms, callers ${f(m.run.loop.p99)} / ${f(m.run.loop.max)} ms ` +
        `(media phase), ${f(r.run.loop.p99)} / ${f(r.run.loop.max)} ms (relay phase), provider fakes ` +
        `${f(fakesLoop.p99)} / ${f(fakesLoop.max)} ms. Load average before / after: ${loadBefore} / ${loadavg()
          .map((x) => x.toFixed(1))
          .join(", ")}. Total run ${f((Date.now() - runStarted) / 1000, 0)} s.`,
    ];
    if (perVoice.length > 0)
      lines.push(
        "",
        `Per voice (${PAIRS} round${PAIRS > 1 ? "s" : ""} each, taking turns with the bare relay's; CPU ÷ the relay's rounds of the same run):`,
        "",
        "| voice | overhead per turn p50 / p95 | voice first byte p50 / p95 (fixed 150) | CPU per call-second | ÷ bare relay | late frames | calls completed |",
        "|---|---|---|---|---|---|---|",
        ...perVoice,
      );
    if (COMPARE_RECORDING) {
      const off = of(UNRECORDED);
      const offCpu = off.cpuMs / off.run.callSeconds;
      const offRounds = order.filter((x) => x.side === UNRECORDED).map((x) => f(x.cpu, 2));
      const onRounds = order.filter((x) => x.side === first.name).map((x) => f(x.cpu, 2));
      const recRatio = mediaCpu / offCpu;
      lines.push(
        "",
        `Recording on ÷ off, the same run (rounds taking turns: on, off, relay): ${f(mediaCpu, 2)} / ${f(offCpu, 2)} ms per call-second = ` +
          `${f(recRatio, 2)}× (target ≤ ${TARGET_RECORDING_RATIO}×: ${pass(recRatio <= TARGET_RECORDING_RATIO)}); rounds on ${onRounds.join(", ")}, ` +
          `off ${offRounds.join(", ")}; off ÷ relay ${f(offCpu / relayCpu, 2)}×. Late frames with it off: ${off.pacing.lateFrames} of ${off.pacing.framesSent}. ` +
          `RSS per call above is recording on's (target ≤ ${TARGET_RECORDING_RSS_MB} MB: ${pass(mediaMemory.rssPerCall / 2 ** 20 <= TARGET_RECORDING_RSS_MB)}).`,
      );
    }
    if (COMPARE_B) {
      const b = of(MEDIA_B);
      const bCpu = b.cpuMs / b.run.callSeconds;
      const rb = rounds.get(RELAY_B)?.length ? of(RELAY_B) : undefined;
      const rbCpu = rb ? rb.cpuMs / rb.run.callSeconds : relayCpu;
      const bTurns = await turnsOf(b);
      const roundsOf = (name: string) =>
        order
          .filter((x) => x.side === name)
          .map((x) => f(x.cpu, 2))
          .join(", ");
      lines.push(
        "",
        `A/B in the same run (rounds taking turns: ${sides.map((x) => x.name).join(", ")}). ` +
          `A: this checkout${nodeFlags.length ? ` with ${nodeFlags.join(" ")}` : ""}. ` +
          `B: ${B_TREE ?? "this checkout"}${B_FLAGS.length ? ` with ${B_FLAGS.join(" ")}` : ""}.`,
        "",
        "| side | CPU per call-second (rounds) | ÷ its relay | overhead p50 / p95 / p99 | late frames | event-loop p99 / max | GC pauses | RSS per call |",
        "|---|---|---|---|---|---|---|---|",
        `| media A | ${f(mediaCpu, 2)} ms (${roundsOf(first.name)}) | ${f(ratio, 2)}× | ${f(pct(overheads, 50))} / ${f(p95)} / ${f(pct(overheads, 99))} ms | ${m.pacing.lateFrames} | ${f(m.loop.p99)} / ${f(m.loop.max)} ms | ${gcLine(m.loop.gc)} | ${f(mediaMemory.rssPerCall / 2 ** 20, 2)} MB |`,
        `| media B | ${f(bCpu, 2)} ms (${roundsOf(MEDIA_B)}) | ${f(bCpu / rbCpu, 2)}× | ${f(pct(bTurns.overheads, 50))} / ${f(pct(bTurns.overheads, 95))} / ${f(pct(bTurns.overheads, 99))} ms | ${b.pacing.lateFrames} | ${f(b.loop.p99)} / ${f(b.loop.max)} ms | ${gcLine(b.loop.gc)} | ${memoryB ? f(memoryB.rssPerCall / 2 ** 20, 2) : "?"} MB |`,
        `| relay A | ${f(relayCpu, 2)} ms (${roundsOf("relay")}) | | | ${r.pacing.lateFrames} | ${f(r.loop.p99)} / ${f(r.loop.max)} ms | ${gcLine(r.loop.gc)} | |`,
        ...(rb
          ? [
              `| relay B | ${f(rbCpu, 2)} ms (${roundsOf(RELAY_B)}) | | | ${rb.pacing.lateFrames} | ${f(rb.loop.p99)} / ${f(rb.loop.max)} ms | ${gcLine(rb.loop.gc)} | |`,
            ]
          : []),
        "",
        `B ÷ A: media ${f(bCpu / mediaCpu, 3)}×${rb ? `, relay ${f(rbCpu / relayCpu, 3)}×` : ""}.`,
      );
    }
    if (SCRAPE)
      lines.push(
        `BENCH_SCRAPE: the media process's /metrics fetched every ${SCRAPE_MS} ms during its timed rounds: ` +
          `${m.scrapes.ms.length} scrapes of ${f(m.scrapes.bytes / 1024, 0)} KB, p50 / p95 / max ` +
          `${f(pct(m.scrapes.ms, 50))} / ${f(pct(m.scrapes.ms, 95))} / ${f(Math.max(...m.scrapes.ms))} ms.`,
      );
    if (errors.length > 0 || missingTurns > 0)
      lines.push(
        `Errors: ${missingTurns} turns without a reply; ${[...new Set(errors)].slice(0, 5).join("; ")}`,
      );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    if (media) await stopChild(media);
    if (relay) await stopChild(relay);
    for (const child of extra) await stopChild(child);
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
