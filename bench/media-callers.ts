// The simulated callers of `npm run bench:media`, in their own node process: one
// TwilioCallSimulator per call (signs the voice webhook like Twilio, opens the media stream, speaks
// with real 20 ms pacing, echoes marks, honours `clear`), driven by the same script for the media
// process and for the bare relay. Measured here, where the caller is: turn latency (last voiced
// frame sent → first voiced byte heard) and late frames on arrival. Every `media` message arriving
// on a simulated stream is timestamped (hook on ws' WebSocket#emit). Per utterance (a schedule
// starts at the first frame after stream start, an `…:end` mark or a `clear`), frame k is due at
// t0 + max(0, k − LEAD_FRAMES) × 20 ms; it is late when it arrives more than 40 ms after that.
//
// With `web` in the request the calls are web calls instead (bench/web-call-simulator.ts: `POST /call`
// with a `vapi.websocket` transport, PCM s16le 16 kHz in binary frames both ways), timed the same way:
// a binary message is a frame, and a schedule starts again after `user-interrupted` (a barge-in) or
// the assistant's `speech-update` stopped (the end of an utterance).
//
// IPC: the parent sends {run: RunRequest}; this process answers {live: n} while calls are up and
// then {result: RunResult}. "loop" is answered with this process's event-loop delay.
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { TwilioCallSimulator } from "../test/fakes/index.ts";
import { type LoopDelay, UTTERANCES, utteranceRegistry } from "./media-script.ts";
import { WebCallSimulator, withPort } from "./web-call-simulator.ts";

export interface RunRequest {
  voiceUrl: string;
  /**
   * Call i rings voiceUrls[i % length] instead (round robin, as a balancer in front of several media
   * processes would spread them: bench:scale gives each media process an API that names it).
   */
  voiceUrls?: string[];
  /**
   * Call i has Twilio POST its `completed` status callback to statusCallbacks[i % length]; null (or
   * no list) for none, as when Twilio's report never reaches the platform.
   */
  statusCallbacks?: Array<string | null>;
  accountSid: string;
  authToken: string;
  to: string;
  /** Caller numbers are +1415 followed by fromBase + i, seven digits. */
  fromBase: number;
  calls: number;
  turns: number;
  /** Between call starts. */
  rampMs: number;
  /** Index of the turn spoken over the previous reply (barge-in); -1 for none. */
  bargeTurn: number;
  bargeAfterMs: number;
  thinkMs: number;
  /** Stay on the line this long after the last reply (the memory phase holds every call up). */
  holdMs?: number;
  /** Web calls instead of phone calls: created by `POST createUrl` (Bearer key) for the assistant. */
  web?: { createUrl: string; key: string; assistantId: string };
  /**
   * The media process the calls connect to, when not the one the API names (bench:media's B side):
   * the stream or websocket URL's port is replaced by this.
   */
  mediaPort?: number;
}

/** What the script needs of a simulated call, phone (Twilio) or web. */
type Sim = TwilioCallSimulator | WebCallSimulator;

export interface RunResult {
  /** Per call (Twilio CallSid) and turn: caller-heard latency in ms, or null when no reply was heard. */
  calls: Array<{ callSid: string; latencies: Array<number | null> }>;
  errors: string[];
  callSeconds: number;
  bargeIns: number;
  frames: number;
  lateFrames: number;
  callsWithLate: number;
  maxLateMs: number;
  loop: LoopDelay;
}

const LEAD_FRAMES = 3;
const FRAME_MS = 20;
const LATE_MS = 40;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
/** A web call's client messages that end an utterance's schedule: a barge-in, the assistant stopped. */
const WEB_INTERRUPTED = Buffer.from('"type":"user-interrupted"');
const WEB_STOPPED = Buffer.from('"status":"stopped"');
const WEB_ASSISTANT = Buffer.from('"role":"assistant"');

// The simulator's socket is private; observe its inbound messages on the ws class instead.
const originalEmit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function emit(this: WebSocket, event: string | symbol, ...args: unknown[]) {
  if (event === "message") {
    if (this.url?.includes("/twilio/stream")) observe(this, args[0] as Buffer, false);
    else if (this.url?.includes("/transport?")) observe(this, args[0] as Buffer, true, args[1] === true);
  }
  return originalEmit.call(this, event, ...args);
} as typeof WebSocket.prototype.emit;

function observe(ws: WebSocket, data: Buffer, web: boolean, isBinary = false): void {
  const now = performance.now();
  let t = timingOf.get(ws);
  if (!t) {
    t = { anchored: false, t0: 0, k: 0, frames: 0, late: 0, maxLateMs: 0 };
    timingOf.set(ws, t);
    timings.push(t);
  }
  if (web && !isBinary) {
    if (
      data.indexOf(WEB_INTERRUPTED) >= 0 ||
      (data.indexOf(WEB_STOPPED) >= 0 && data.indexOf(WEB_ASSISTANT) >= 0 && data.includes("speech-update"))
    )
      t.anchored = false;
    return;
  }
  const head = web ? MEDIA_PREFIX : data.toString("latin1", 0, 16);
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

async function drained(sim: Sim, timeoutMs = 15_000): Promise<void> {
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

async function drive(sim: Sim, req: RunRequest, turns: number): Promise<{ seconds: number; error?: string }> {
  const startedAt = sim.streamStartedAt ?? Date.now();
  let error: string | undefined;
  try {
    await sim.waitForAudio({ since: 0, timeoutMs: 10_000 });
    for (let t = 0; t < turns; t++) {
      if (t === req.bargeTurn) await sleep(req.bargeAfterMs);
      else {
        await drained(sim);
        await sleep(req.thinkMs);
      }
      if (sim.ended) throw new Error("call ended early");
      // The rest of an utterance is never sent once the call is over (its media process killed).
      const turn = await Promise.race([
        sim.say(UTTERANCES[t % UTTERANCES.length] as string),
        endOf.get(sim)?.then(() => undefined),
      ]);
      if (!turn) throw new Error("call ended early");
      await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 10_000 });
    }
    await drained(sim);
    if (req.holdMs) await sleep(req.holdMs);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  await sim.hangup();
  return { seconds: (Date.now() - startedAt) / 1000, ...(error ? { error } : {}) };
}

/** Settles when the simulated call has ended, however it ended. */
const endOf = new WeakMap<Sim, Promise<void>>();

async function place(req: RunRequest, i: number): Promise<Sim> {
  let onEnded: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    onEnded = resolve;
  });
  if (req.web) {
    const web = await WebCallSimulator.place({
      ...req.web,
      utterances: utteranceRegistry,
      onEnded,
      ...(req.mediaPort === undefined ? {} : { mediaPort: req.mediaPort }),
    });
    endOf.set(web, ended);
    return web;
  }
  const mediaPort = req.mediaPort;
  const sim = new TwilioCallSimulator({
    utterances: utteranceRegistry,
    recordAudio: false,
    onEnded,
    ...(mediaPort === undefined ? {} : { streamUrl: (url: string) => withPort(url, mediaPort) }),
  });
  endOf.set(sim, ended);
  const statusCallback = req.statusCallbacks?.[i % req.statusCallbacks.length];
  await sim.placeInboundCall({
    voiceUrl: req.voiceUrls?.[i % req.voiceUrls.length] ?? req.voiceUrl,
    accountSid: req.accountSid,
    authToken: req.authToken,
    from: `+1415${String(req.fromBase + i).padStart(7, "0")}`,
    to: req.to,
    ...(statusCallback ? { statusCallback } : {}),
  });
  return sim;
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

async function run(req: RunRequest): Promise<RunResult> {
  timings = [];
  loopDelay.reset();
  const sims: Sim[] = [];
  const live = setInterval(() => {
    let n = 0;
    for (const sim of sims) if (sim.streamOpen) n++;
    process.send?.({ live: n });
  }, 250);
  const runs: Array<Promise<{ seconds: number; error?: string }>> = [];
  for (let i = 0; i < req.calls; i++) {
    runs.push(
      place(req, i).then((sim) => {
        sims.push(sim);
        return drive(sim, req, req.turns);
      }),
    );
    await sleep(req.rampMs);
  }
  const outcomes = await Promise.all(runs);
  clearInterval(live);
  return {
    calls: sims.map((sim) => ({
      callSid: sim.callSid,
      latencies: sim.turns.map((t) => t.latencyMs ?? null),
    })),
    errors: outcomes.flatMap((o) => (o.error ? [o.error] : [])),
    callSeconds: outcomes.reduce((n, o) => n + o.seconds, 0),
    bargeIns: sims.filter((s) => s.clears > 0).length,
    frames: timings.reduce((n, x) => n + x.frames, 0),
    lateFrames: timings.reduce((n, x) => n + x.late, 0),
    callsWithLate: timings.filter((x) => x.late > 0).length,
    maxLateMs: Math.max(0, ...timings.map((x) => x.maxLateMs)),
    loop: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  };
}

process.on("message", (m: "loop" | { run?: RunRequest }) => {
  if (m === "loop") {
    process.send?.({ loop: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 } });
    loopDelay.reset();
    return;
  }
  if (typeof m === "object" && m.run) {
    run(m.run).then(
      (result) => process.send?.({ result }),
      (err: unknown) => process.send?.({ failed: err instanceof Error ? err.stack : String(err) }),
    );
  }
});
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));
process.send?.({ ready: true });
