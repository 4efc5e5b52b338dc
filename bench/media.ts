// npm run bench:media — N concurrent simulated phone calls through ONE media process, against the
// loopback provider fakes with FIXED delays, then the same calls through a bare relay for a CPU
// baseline. Prints a markdown table (README-ready) with PASS/FAIL against the targets.
//   BENCH_CALLS=100 BENCH_TURNS=4 npm run bench:media        (BENCH_CPU_PROF=1: profile the media child)
//
// Topology. This process runs the load generator (TwilioCallSimulator per call, real 20 ms pacing),
// the four fakes (Twilio, Deepgram, OpenAI, ElevenLabs), a customer webhook server, the API (Twilio
// inbound webhook → Call + TwiML + stream token) and the worker (BullMQ on a bench-only prefix). The
// media app runs ALONE in a child node process (bench/media-child.ts → buildMedia, as in production:
// Postgres, Redis, real provider adapters), so its CPU and RSS are read from /proc/<pid> without the
// load generator. The bare relay (bench/media-relay.ts) is another child process, driven afterwards
// by the same number of calls with the same script.
//
// Each call: the assistant's first message, then BENCH_TURNS caller turns. Turn BARGE_TURN is spoken
// OVER the previous reply (BARGE_AFTER_MS after the caller started hearing it): a barge-in (clear,
// LLM/TTS aborted) per call. Other turns wait until the reply finished playing, plus THINK_MS.
//
// Fixed provider delays (the fakes): Deepgram endpointing ENDPOINTING_MS (silence in audio time before
// the final with speech_final) and transcriberDelayMs STT_DELAY_MS on every message; OpenAI TTFT
// TTFT_MS then one token every ITL_MS; ElevenLabs first byte TTFB_MS after a generation is triggered,
// audio faster than real time. The assistant's own configured waits are set to zero
// (startSpeakingPlan.waitSeconds 0, every transcriptionEndpointingPlan wait 0, backoffSeconds 0), so
// they are not part of the turn.
//
// Platform overhead per turn (measured where the caller is, by the simulator):
//   turnLatency = wall time the caller HEARD the first voiced byte of the reply − wall time the caller
//                 sent the last voiced frame of the turn (TwilioCallSimulator `turn.latencyMs`)
//   providerWait = ENDPOINTING_MS + STT_DELAY_MS + TTFT_MS + k × ITL_MS + TTFB_MS
//                 where k = index of the LLM token that completes the first clause (computed by running
//                 the platform's ClauseChunker over the fake's tokenisation of the reply: TTS cannot
//                 start before the first clause exists)
//   overhead = turnLatency − providerWait   (p50/p95/p99 over every turn of every call)
// It includes everything that is not a provider wait: websocket hops, the session's turn logic,
// the OpenAI SDK stream parsing, TTS socket handling, pacing, and the load generator's own timer
// jitter. A cross-check from the session's own artifact.performanceMetrics (turnLatency − the same
// providerWait, first frame SENT instead of heard) is printed below the table.
//
// CPU ms per call-second: (utime + stime of the child from /proc/<pid>/stat, from the first call
// placed to the last call ended) ÷ Σ per-call stream-open seconds. The same for the bare relay;
// the ratio is media ÷ relay.
// RSS per active call: (max VmRSS while all N calls were live − VmRSS after warm-up, before the
// first call) ÷ N.
// Late outbound frames: at the receiver. Every `media` message arriving on a simulated Twilio stream
// is timestamped (hook on ws' WebSocket#emit in this process). Per utterance (a schedule starts at the
// first frame after stream start, an `…:end` mark or a `clear`), frame k is due at
// t0 + max(0, k − LEAD_FRAMES) × 20 ms (the pacer sends 3 frames of lead); a frame is late when it
// arrives more than 40 ms after that. TTS audio always arrives faster than real time here, so
// a gap inside an utterance is never the provider's. This process's event-loop delay is printed:
// its lag shows up as lateness and latency too.
import { type ChildProcess, execSync, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { cpus, loadavg } from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { buildWorker } from "../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../apps/worker/src/config.ts";
import { ClauseChunker } from "../libs/providers/chunker.ts";
import { BullMqQueue } from "../libs/queue/index.ts";
import {
  FakeDeepgram,
  FakeElevenLabs,
  FakeOpenAI,
  FakeTwilio,
  TwilioCallSimulator as Simulator,
  type TwilioCallSimulator,
} from "../test/fakes/index.ts";
import { REDIS_URL, startTestApi, testEnv } from "../test/helpers/api.ts";
import { assistantBody, uniqueNumber } from "../test/helpers/bodies.ts";
import { startCustomerServer } from "../test/webhooks/customer-server.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 100);
const TURNS = Math.max(2, Number(process.env.BENCH_TURNS ?? 4));
const BARGE_TURN = Math.min(2, TURNS - 1);
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const RAMP_MS = 30; // between call starts
const THINK_MS = 200;
const BARGE_AFTER_MS = 700;
const WARMUP_CALLS = 2;

const ENDPOINTING_MS = 100;
const STT_DELAY_MS = 50;
const TTFT_MS = 200;
const ITL_MS = 10;
const TTFB_MS = 150;
const MS_PER_CHAR = 40;

const LEAD_FRAMES = 3;
const FRAME_MS = 20;
const LATE_MS = 40;

const TARGET_OVERHEAD_P95 = 20;
const TARGET_RSS_MB = 2;
const TARGET_CPU_RATIO = 1.5;

const ACCOUNT_SID = `AC${"fedcba9876543210".repeat(2)}`;
const AUTH_TOKEN = "bench-media-twilio-auth-token-0001";
const FIRST_MESSAGE = "Hi, this is Riley from Acme. How can I help?";
const REPLY = "Sure, we are open from nine to five on weekdays, and from ten to two on Saturdays.";
const UTTERANCES = [
  "What are your opening hours?",
  "Do you open on Saturdays?",
  "Wait, what about Sundays then?",
  "Can I book a table for two?",
  "Thanks, that is all I needed.",
];

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

function f(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const CLK_TCK = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;

/** CPU (user+system, ms) and RSS (bytes) of a process, from /proc. */
function procSample(pid: number): { cpuMs: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime = field 14, stime = field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuMs: (ticks * 1000) / CLK_TCK, rss: kb * 1024 };
}

/** Index of the token that completes the first clause (TTS can start only then). */
function firstClauseTokenIndex(text: string): number {
  // FakeOpenAI's tokenisation.
  const tokens = text.match(/\s*\S+|\s+/g) ?? [];
  const chunker = new ClauseChunker();
  for (let i = 0; i < tokens.length; i++) {
    if (chunker.push(tokens[i] as string).length > 0) return i;
  }
  return tokens.length - 1;
}
const FIRST_CLAUSE_TOKEN = firstClauseTokenIndex(REPLY);
const PROVIDER_WAIT_MS = ENDPOINTING_MS + STT_DELAY_MS + TTFT_MS + FIRST_CLAUSE_TOKEN * ITL_MS + TTFB_MS;

// ---------------------------------------------------------------- receiver-side frame timing

interface StreamTiming {
  anchored: boolean;
  t0: number;
  k: number;
  frames: number;
  late: number;
  maxLateMs: number;
}
let timings: StreamTiming[] = [];
const timingOf = new WeakMap<WebSocket, StreamTiming>();
const MEDIA_PREFIX = '{"event":"media"';
const MARK_PREFIX = '{"event":"mark"';
const CLEAR_PREFIX = '{"event":"clear"';

// The simulator's socket is private; observe its inbound messages on the ws class instead.
const originalEmit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function emit(this: WebSocket, event: string | symbol, ...args: unknown[]) {
  if (event === "message" && this.url?.includes("/twilio/stream")) observe(this, args[0] as Buffer);
  return originalEmit.call(this, event, ...args);
} as typeof WebSocket.prototype.emit;

function observe(ws: WebSocket, data: Buffer): void {
  const now = performance.now();
  let t = timingOf.get(ws);
  if (!t) {
    t = { anchored: false, t0: 0, k: 0, frames: 0, late: 0, maxLateMs: 0 };
    timingOf.set(ws, t);
    timings.push(t);
  }
  const head = data.toString("latin1", 0, 16);
  if (head === MEDIA_PREFIX) {
    t.frames++;
    if (!t.anchored) {
      t.anchored = true;
      t.t0 = now;
      t.k = 0;
      return;
    }
    t.k++;
    const lateBy = now - (t.t0 + Math.max(0, t.k - LEAD_FRAMES) * FRAME_MS);
    if (lateBy > LATE_MS) {
      t.late++;
      if (lateBy > t.maxLateMs) t.maxLateMs = lateBy;
    }
    return;
  }
  if (head.startsWith(CLEAR_PREFIX)) t.anchored = false;
  else if (head.startsWith(MARK_PREFIX) && data.includes(':end"')) t.anchored = false;
}

// ---------------------------------------------------------------- the call script

interface CallResult {
  sim: TwilioCallSimulator;
  streamSeconds: number;
  errors: string[];
}

async function drained(sim: TwilioCallSimulator, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = sim.outboundMediaMessages;
  let stableSince = Date.now();
  for (;;) {
    await sleep(50);
    if (sim.outboundMediaMessages !== last) {
      last = sim.outboundMediaMessages;
      stableSince = Date.now();
    }
    if (sim.queuedBytes === 0 && Date.now() - stableSince >= 200) return;
    if (Date.now() > until) throw new Error("reply never finished playing");
  }
}

async function drive(sim: TwilioCallSimulator, turns: number): Promise<CallResult> {
  const errors: string[] = [];
  const startedAt = sim.streamStartedAt ?? Date.now();
  try {
    await sim.waitForAudio({ since: 0, timeoutMs: 10_000 });
    for (let t = 0; t < turns; t++) {
      if (t === BARGE_TURN && turns > 1) await sleep(BARGE_AFTER_MS);
      else {
        await drained(sim);
        await sleep(THINK_MS);
      }
      if (sim.ended) throw new Error("call ended early");
      const turn = await sim.say(UTTERANCES[t % UTTERANCES.length] as string);
      await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 10_000 });
    }
    await drained(sim);
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  }
  await sim.hangup();
  return { sim, streamSeconds: (Date.now() - startedAt) / 1000, errors };
}

// ---------------------------------------------------------------- phases

interface PhaseResult {
  calls: CallResult[];
  cpuMs: number;
  callSeconds: number;
  wallSeconds: number;
  rssBefore: number;
  rssAtN: number;
  loopP99: number;
  loopMax: number;
  childLoopP99: number;
  childLoopMax: number;
}

/** Asks a child for its event-loop delay since the last ask (p99, max in ms). */
function childLoop(child: ChildProcess): Promise<{ p99: number; max: number }> {
  return new Promise((resolve) => {
    const onMessage = (m: { loop?: { p99: number; max: number } }) => {
      if (!m.loop) return;
      child.off("message", onMessage);
      resolve(m.loop);
    };
    child.on("message", onMessage);
    child.send("loop");
  });
}

async function runPhase(
  child: ChildProcess,
  place: (i: number) => Promise<TwilioCallSimulator>,
  turns: number,
): Promise<PhaseResult> {
  const pid = child.pid ?? 0;
  timings = [];
  await sleep(500);
  await childLoop(child);
  const rssBefore = procSample(pid).rss;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const sims: TwilioCallSimulator[] = [];
  let rssAtN = 0;
  let rssMax = 0;
  const sampler = setInterval(() => {
    const s = procSample(pid);
    rssMax = Math.max(rssMax, s.rss);
    let live = 0;
    for (const sim of sims) if (sim.streamOpen) live++;
    if (live >= CALLS) rssAtN = Math.max(rssAtN, s.rss);
  }, 250);
  const cpu0 = procSample(pid).cpuMs;
  const t0 = Date.now();
  const runs: Array<Promise<CallResult>> = [];
  for (let i = 0; i < CALLS; i++) {
    runs.push(
      place(i).then((sim) => {
        sims.push(sim);
        return drive(sim, turns);
      }),
    );
    await sleep(RAMP_MS);
  }
  const calls = await Promise.all(runs);
  // Let the last hang-ups be processed (the call write is part of a call's cost).
  await sleep(1500);
  const cpuMs = procSample(pid).cpuMs - cpu0;
  const childLag = await childLoop(child);
  const wallSeconds = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  loop.disable();
  return {
    calls,
    cpuMs,
    callSeconds: calls.reduce((n, c) => n + c.streamSeconds, 0),
    wallSeconds,
    rssBefore,
    rssAtN: rssAtN || rssMax,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    childLoopP99: childLag.p99,
    childLoopMax: childLag.max,
  };
}

function startChild(script: string, env: Record<string, string>, execArgv: string[] = []) {
  return new Promise<{ child: ChildProcess; port: number }>((resolve, reject) => {
    const child = fork(script, [], {
      env: { ...process.env, ...env },
      execArgv: ["--import", "tsx", ...execArgv],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
    child.once("message", (m: { ready?: boolean; port?: number }) => {
      if (m.ready) resolve({ child, port: m.port ?? 0 });
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const runStarted = Date.now();
  const loadBefore = loadavg()
    .map((x) => x.toFixed(1))
    .join(", ");
  const [twilio, deepgram, openai, elevenlabs, customer] = await Promise.all([
    FakeTwilio.start({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }] }),
    FakeDeepgram.start({ transcriberDelayMs: STT_DELAY_MS }),
    FakeOpenAI.start({ ttftMs: TTFT_MS, interTokenDelayMs: ITL_MS, respond: () => ({ text: REPLY }) }),
    FakeElevenLabs.start({ ttfbMs: TTFB_MS, msPerChar: MS_PER_CHAR }),
    startCustomerServer(),
  ]);
  const [apiPort, mediaPort] = await Promise.all([freePort(), freePort()]);
  const prefix = `bench-media-${randomUUID()}`;
  const env: Record<string, string> = {
    PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    MEDIA_PUBLIC_URL: `ws://127.0.0.1:${mediaPort}`,
    DEEPGRAM_API_URL: deepgram.url,
    OPENAI_BASE_URL: openai.baseUrl,
    ELEVENLABS_API_URL: elevenlabs.url,
    OPENAI_API_KEY: "sk-platform-openai",
    DEEPGRAM_API_KEY: "platform-deepgram",
    ELEVENLABS_API_KEY: "platform-elevenlabs",
    RATE_LIMIT_PER_MINUTE: "1000000",
  };
  const t = await startTestApi(env, { twilio });
  let media: ChildProcess | undefined;
  let relay: ChildProcess | undefined;
  const workerRedis = t.redis.duplicate();
  const queue = new BullMqQueue(workerRedis, { prefix });
  const worker = await buildWorker(
    workerConfigFromEnv(
      testEnv({ ...env, DATABASE_URL: t.database.url, SECRETS_KEY: t.config.secretsKey.toString("base64") }),
    ),
    { db: t.db, redis: t.redis, queue, logger: false },
  );
  try {
    await t.app.listen({ port: apiPort, host: "127.0.0.1" });
    const org = await t.createOrg("Bench");
    await t.db.org.update({ where: { id: org.orgId }, data: { concurrencyLimit: CALLS + 50 } });
    const res = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      payload: assistantBody({
        firstMessage: FIRST_MESSAGE,
        server: { url: customer.url, secret: "bench-secret" },
        serverMessages: ["status-update", "end-of-call-report"],
        transcriber: { provider: "deepgram", model: "nova-3", language: "en", endpointing: ENDPOINTING_MS },
        startSpeakingPlan: {
          waitSeconds: 0,
          transcriptionEndpointingPlan: {
            onPunctuationSeconds: 0,
            onNoPunctuationSeconds: 0,
            onNumberSeconds: 0,
          },
        },
        stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 0 },
        silenceTimeoutSeconds: 120,
      }),
    });
    if (res.statusCode !== 201) throw new Error(`assistant: ${res.statusCode} ${res.body}`);
    const assistantId = (res.json() as { id: string }).id;
    const number = uniqueNumber();
    twilio.addNumber(ACCOUNT_SID, number);
    const imp = await t.request({
      method: "POST",
      url: "/phone-number",
      key: org.key,
      payload: {
        provider: "twilio",
        number,
        twilioAccountSid: ACCOUNT_SID,
        twilioAuthToken: AUTH_TOKEN,
        assistantId,
      },
    });
    if (imp.statusCode !== 201) throw new Error(`phone number: ${imp.statusCode} ${imp.body}`);

    // ------------------------------------------------ media process
    const shared = testEnv({
      ...env,
      DATABASE_URL: t.database.url,
      SECRETS_KEY: t.config.secretsKey.toString("base64"),
    });
    const childEnv: Record<string, string> = {
      ...env,
      DATABASE_URL: t.database.url,
      REDIS_URL,
      SECRETS_KEY: t.config.secretsKey.toString("base64"),
      ADMIN_TOKEN: shared.ADMIN_TOKEN ?? "bench-admin-token-0123456789",
      TWILIO_API_URL: twilio.baseUrl,
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      MEDIA_PORT: String(mediaPort),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      MEDIA_DRAIN_MS: "2000",
      BENCH_QUEUE_PREFIX: prefix,
    };
    const prof = CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir=.scratch/prof"] : [];
    media = (await startChild("bench/media-child.ts", childEnv, prof)).child;
    let from = 0;
    const placeMedia = () =>
      twilio.placeInboundCall({
        to: number,
        from: `+1415${String(5_550_000 + ++from).padStart(7, "0")}`,
        simulator: { utterances: deepgram, recordAudio: false },
      });
    // Warm-up (JIT, connection pools, lazy imports): not measured.
    await Promise.all(Array.from({ length: WARMUP_CALLS }, () => placeMedia().then((s) => drive(s, 1))));
    process.stderr.write(`bench:media: ${CALLS} calls through the media process…\n`);
    const m = await runPhase(media, () => placeMedia(), TURNS);
    const mediaTimings = timings;

    // Server-side view: the session's own per-turn metrics, once every call is finalised.
    const sids = m.calls.map((c) => c.sim.callSid);
    const until = Date.now() + 15_000;
    let rows: Array<{ artifact: unknown }> = [];
    while (Date.now() < until) {
      rows = await t.db.call.findMany({
        where: { providerCallId: { in: sids }, finalizedAt: { not: null } },
        select: { artifact: true },
      });
      if (rows.length >= sids.length) break;
      await sleep(250);
    }
    const serverOverheads: number[] = [];
    for (const r of rows) {
      const pm = (r.artifact as { performanceMetrics?: { turnLatencies?: Array<{ turnLatency?: number }> } })
        ?.performanceMetrics;
      for (const tl of pm?.turnLatencies ?? [])
        if (typeof tl.turnLatency === "number") serverOverheads.push(tl.turnLatency - PROVIDER_WAIT_MS);
    }
    await stopChild(media);
    media = undefined;

    // ------------------------------------------------ bare relay
    process.stderr.write(`bench:media: ${CALLS} calls through the bare relay…\n`);
    const started = await startChild("bench/media-relay.ts", {
      BENCH_DEEPGRAM_URL: deepgram.url,
      BENCH_ELEVENLABS_URL: elevenlabs.url,
      BENCH_ENDPOINTING_MS: String(ENDPOINTING_MS),
      BENCH_FIRST_TEXT: FIRST_MESSAGE,
      BENCH_REPLY_TEXT: REPLY,
    });
    relay = started.child;
    const relayUrl = `http://127.0.0.1:${started.port}/voice`;
    const placeRelay = async (i: number) => {
      const sim = new Simulator({ utterances: deepgram, recordAudio: false });
      await sim.placeInboundCall({
        voiceUrl: relayUrl,
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        from: `+1415${String(5_560_000 + i).padStart(7, "0")}`,
        to: number,
      });
      return sim;
    };
    await Promise.all(
      Array.from({ length: WARMUP_CALLS }, (_v, i) => placeRelay(9000 + i).then((s) => drive(s, 1))),
    );
    const r = await runPhase(relay, placeRelay, TURNS);
    const relayTimings = timings;
    await stopChild(relay);
    relay = undefined;

    // ------------------------------------------------ report
    const overheads: number[] = [];
    const latencies: number[] = [];
    let missingTurns = 0;
    const errors: string[] = [];
    for (const c of m.calls) {
      errors.push(...c.errors);
      for (const turn of c.sim.turns) {
        if (turn.latencyMs === undefined) missingTurns++;
        else {
          latencies.push(turn.latencyMs);
          overheads.push(turn.latencyMs - PROVIDER_WAIT_MS);
        }
      }
    }
    const bargeIns = m.calls.filter((c) => c.sim.clears > 0).length;
    const late = mediaTimings.reduce((n, x) => n + x.late, 0);
    const frames = mediaTimings.reduce((n, x) => n + x.frames, 0);
    const maxLate = Math.max(0, ...mediaTimings.map((x) => x.maxLateMs));
    const callsWithLate = mediaTimings.filter((x) => x.late > 0).length;
    const relayLate = relayTimings.reduce((n, x) => n + x.late, 0);
    const relayFrames = relayTimings.reduce((n, x) => n + x.frames, 0);
    const mediaCpu = m.cpuMs / m.callSeconds;
    const relayCpu = r.cpuMs / r.callSeconds;
    const ratio = mediaCpu / relayCpu;
    const rssPerCall = (m.rssAtN - m.rssBefore) / CALLS / (1024 * 1024);
    const p95 = pct(overheads, 95);
    const pass = (ok: boolean) => (ok ? "PASS" : "FAIL");
    const cpu = cpus();

    const lines = [
      `Command: \`BENCH_CALLS=${CALLS} BENCH_TURNS=${TURNS} npm run bench:media\` — ${CALLS} concurrent calls ` +
        `(started ${RAMP_MS} ms apart) through one media process, ${TURNS} caller turns each, turn ${BARGE_TURN + 1} ` +
        `spoken over the reply (barge-in), ${m.calls.length * TURNS} turns in all. Fixed provider delays: Deepgram ` +
        `endpointing ${ENDPOINTING_MS} ms + ${STT_DELAY_MS} ms per message, OpenAI TTFT ${TTFT_MS} ms + ${ITL_MS} ms/token ` +
        `(first clause complete at token ${FIRST_CLAUSE_TOKEN}), ElevenLabs TTFB ${TTFB_MS} ms; provider wait per turn ` +
        `${PROVIDER_WAIT_MS} ms. Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "cpu"}, Node ${process.version}.`,
      "",
      "| Metric | Result | Target | |",
      "|---|---|---|---|",
      `| Platform overhead per turn, p50 / p95 / p99 | ${f(pct(overheads, 50))} / ${f(p95)} / ${f(pct(overheads, 99))} ms | p95 ≤ ${TARGET_OVERHEAD_P95} ms | ${pass(p95 <= TARGET_OVERHEAD_P95 && missingTurns === 0)} |`,
      `| Turn latency heard by the caller, p50 / p95 | ${f(pct(latencies, 50), 0)} / ${f(pct(latencies, 95), 0)} ms | — | |`,
      `| CPU per call-second, media process | ${f(mediaCpu, 2)} ms | — | |`,
      `| CPU per call-second, bare relay | ${f(relayCpu, 2)} ms | — | |`,
      `| CPU media ÷ bare relay | ${f(ratio, 2)}× | ≤ ${TARGET_CPU_RATIO}× | ${pass(ratio <= TARGET_CPU_RATIO)} |`,
      `| RSS per active call | ${f(rssPerCall, 2)} MB (${f(m.rssBefore / 2 ** 20, 0)} → ${f(m.rssAtN / 2 ** 20, 0)} MB) | ≤ ${TARGET_RSS_MB} MB | ${pass(rssPerCall <= TARGET_RSS_MB)} |`,
      `| Late outbound frames (> ${LATE_MS} ms behind schedule) | ${late} of ${frames} (${callsWithLate} calls, worst ${f(maxLate, 0)} ms) | 0 | ${pass(late === 0)} |`,
      `| Calls completed / barge-ins (clear received) | ${m.calls.length - m.calls.filter((c) => c.errors.length > 0).length} of ${CALLS} / ${bargeIns} | all | ${pass(errors.length === 0 && missingTurns === 0 && bargeIns === CALLS)} |`,
      "",
      `Server-side cross-check (session performanceMetrics, first frame sent): overhead p50 / p95 / p99 ` +
        `${f(pct(serverOverheads, 50))} / ${f(pct(serverOverheads, 95))} / ${f(pct(serverOverheads, 99))} ms over ${serverOverheads.length} turns.`,
      `Media phase: ${f(m.wallSeconds)} s wall, ${f(m.callSeconds, 0)} call-seconds, ${f(m.cpuMs, 0)} CPU ms. ` +
        `Relay phase: ${f(r.wallSeconds)} s wall, ${f(r.callSeconds, 0)} call-seconds, ${f(r.cpuMs, 0)} CPU ms, ` +
        `late frames ${relayLate} of ${relayFrames}.`,
      `Event-loop delay p99 / max: media process ${f(m.childLoopP99)} / ${f(m.childLoopMax)} ms, ` +
        `bare relay ${f(r.childLoopP99)} / ${f(r.childLoopMax)} ms, load generator (fakes, simulators, API) ` +
        `${f(m.loopP99)} / ${f(m.loopMax)} ms (media phase), ${f(r.loopP99)} / ${f(r.loopMax)} ms (relay phase). ` +
        `Load average before / after: ${loadBefore} / ${loadavg()
          .map((x) => x.toFixed(1))
          .join(", ")}. ` +
        `Total run ${f((Date.now() - runStarted) / 1000, 0)} s.`,
    ];
    if (errors.length > 0 || missingTurns > 0)
      lines.push(
        `Errors: ${missingTurns} turns without a reply; ${[...new Set(errors)].slice(0, 5).join("; ")}`,
      );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    if (media) await stopChild(media);
    if (relay) await stopChild(relay);
    await twilio.close();
    await worker.close();
    await queue.close();
    workerRedis.disconnect();
    // BullMQ keys of this run only.
    let cursor = "0";
    do {
      const [next, keys] = await t.redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await t.redis.del(...keys);
    } while (cursor !== "0");
    await Promise.all([deepgram.close(), openai.close(), elevenlabs.close(), customer.close()]);
    await t.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
