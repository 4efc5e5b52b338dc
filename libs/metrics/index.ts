import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { ProviderError } from "../providers/types.ts";
import { JOBS, type JobCounts, type JobHandler, type JobHandlers, type JobName } from "../queue/index.ts";

// Every Prometheus metric of the platform is defined here, once per process, on one registry: each
// app's `GET /metrics` serves it (so `npm start`, all three apps in one process, has one registry
// behind its three ports). Counters and histograms move per request, per turn, per call or per job,
// never per audio frame. Gauges of live state (calls, sockets, queue depth) are read at scrape time
// from whatever the running apps registered with `track*`, so the hot path pays nothing for them.

export const registry = new Registry();

// Process CPU, memory, heap, GC, handles, file descriptors and event-loop delay
// (`nodejs_eventloop_lag_*`, from Node's monitorEventLoopDelay).
collectDefaultMetrics({ register: registry });

// ------------------------------------------------------------------ scrape-time sources

type Source<T> = () => T;
const activeCallSources = new Set<Source<number>>();
const socketSources = new Set<Source<{ pending: number; active: number }>>();
const queueSources = new Set<Source<Promise<QueueCounts>>>();

/** Job counts by queue name, as BullMQ's `getJobCounts` gives them. */
export type QueueCounts = Record<string, JobCounts>;

/** How long a scrape waits for the queue counts (Redis may be unreachable: the scrape still answers). */
const QUEUE_COUNT_TIMEOUT_MS = 1000;

function track<T>(set: Set<Source<T>>, source: Source<T>): () => void {
  set.add(source);
  return () => set.delete(source);
}

function sum(set: Set<Source<number>>): number {
  let n = 0;
  for (const s of set) n += s();
  return n;
}

/** The media app's calls in progress, counted at each scrape. Returns the function that stops it. */
export function trackActiveCalls(count: () => number): () => void {
  return track(activeCallSources, count);
}

/** The media app's open websockets (pending: no valid `start` yet; active: carrying a call), at each scrape. */
export function trackWebsocketConnections(count: () => { pending: number; active: number }): () => void {
  return track(socketSources, count);
}

/** The worker's queues, counted (one Redis round trip per queue) at each scrape. */
export function trackQueueDepth(counts: () => Promise<QueueCounts>): () => void {
  return track(queueSources, counts);
}

// ------------------------------------------------------------------ HTTP

export const httpRequestDuration = new Histogram({
  name: "switchboard_http_request_duration_seconds",
  help: "HTTP requests by app, method, route pattern and status code",
  labelNames: ["app", "method", "route", "status_code"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

// ------------------------------------------------------------------ calls

export const activeCalls = new Gauge({
  name: "switchboard_media_active_calls",
  help: "Calls held by this media process (from the stream's start to the call's record written)",
  registers: [registry],
  collect() {
    this.set(sum(activeCallSources));
  },
});

export const websocketConnections = new Gauge({
  name: "switchboard_media_websocket_connections",
  help: "Open media websockets on this process by state: pending (no valid start yet) or active (carrying a call)",
  labelNames: ["state"] as const,
  registers: [registry],
  collect() {
    let pending = 0;
    let active = 0;
    for (const s of socketSources) {
      const c = s();
      pending += c.pending;
      active += c.active;
    }
    this.set({ state: "pending" }, pending);
    this.set({ state: "active" }, active);
  },
});

export const callsStarted = new Counter({
  name: "switchboard_calls_started_total",
  help: "Calls whose media stream was accepted by this process",
  registers: [registry],
});

export const callsEnded = new Counter({
  name: "switchboard_calls_ended_total",
  help: "Calls whose ended record this process wrote, by Vapi endedReason",
  labelNames: ["ended_reason"] as const,
  registers: [registry],
});

/** Counts a call whose ended record was just written (exactly once per call, by whoever wrote it). */
export function callEnded(endedReason: string): void {
  callsEnded.inc({ ended_reason: endedReason });
}

// ------------------------------------------------------------------ turns and providers

/** The stages of one turn, as `artifact.performanceMetrics.turnLatencies` records them (ms). */
export interface TurnTimings {
  endpointingLatency: number;
  transcriberLatency: number;
  modelLatency: number;
  voiceLatency: number;
  turnLatency: number;
  providerLatency?: number;
  platformLatency?: number;
}

export const turnLatency = new Histogram({
  name: "switchboard_turn_latency_seconds",
  help: "Per-turn latency by stage: endpointing, transcriber, model, voice, turn (caller's last word to the reply's first audio), provider and platform (Switchboard's own overhead)",
  labelNames: ["stage"] as const,
  buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
  registers: [registry],
});

/** One completed turn's latencies (ms), observed once per turn. */
export function observeTurn(t: TurnTimings): void {
  turnLatency.observe({ stage: "endpointing" }, t.endpointingLatency / 1000);
  turnLatency.observe({ stage: "transcriber" }, t.transcriberLatency / 1000);
  turnLatency.observe({ stage: "model" }, t.modelLatency / 1000);
  turnLatency.observe({ stage: "voice" }, t.voiceLatency / 1000);
  turnLatency.observe({ stage: "turn" }, t.turnLatency / 1000);
  if (t.providerLatency !== undefined) turnLatency.observe({ stage: "provider" }, t.providerLatency / 1000);
  if (t.platformLatency !== undefined) turnLatency.observe({ stage: "platform" }, t.platformLatency / 1000);
}

export const providerErrors = new Counter({
  name: "switchboard_provider_errors_total",
  help: "Provider failures during calls, by provider, kind (transcriber, llm, voice) and outcome: retried (the same provider again), fallback (the next provider of the fallback plan), cut-short (a model reply ended where it broke off), ended (the call or its setup ended)",
  labelNames: ["provider", "kind", "outcome"] as const,
  registers: [registry],
});

export type ProviderErrorOutcome = "retried" | "fallback" | "cut-short" | "ended";

/** A provider failure and what the call did about it; `where` names the stage when the error does not. */
export function providerFailed(
  err: unknown,
  where: { provider: string; kind: ProviderError["kind"] },
  outcome: ProviderErrorOutcome = "ended",
): void {
  const e = err instanceof ProviderError ? err : undefined;
  providerErrors.inc({ provider: e?.provider ?? where.provider, kind: e?.kind ?? where.kind, outcome });
}

// ------------------------------------------------------------------ webhooks and jobs

export const webhookDeliveries = new Counter({
  name: "switchboard_webhook_deliveries_total",
  help: "Server-message delivery attempts by outcome: delivered, rejected (not retried), retrying, abandoned (last attempt failed)",
  labelNames: ["outcome"] as const,
  registers: [registry],
});

// Both queue gauges are filled by one read of Redis per scrape, whichever of them is collected first.
let queueRead: Promise<void> | undefined;
function readQueues(): Promise<void> {
  queueRead ??= fillQueueGauges().finally(() => {
    queueRead = undefined;
  });
  return queueRead;
}

export const queueWaitingJobs = new Gauge({
  name: "switchboard_queue_waiting_jobs",
  help: "Jobs waiting to be picked up, by queue (read from Redis at scrape time)",
  labelNames: ["queue"] as const,
  registers: [registry],
  collect: readQueues,
});

export const queueJobs = new Gauge({
  name: "switchboard_queue_jobs",
  help: "Jobs by queue and state (active; delayed: waiting for a retry or their time; failed: kept after the last attempt)",
  labelNames: ["queue", "state"] as const,
  registers: [registry],
  collect: readQueues,
});

async function fillQueueGauges(): Promise<void> {
  const all = await Promise.all(
    [...queueSources].map(async (source) => {
      let timer: NodeJS.Timeout | undefined;
      const counts = await Promise.race([
        source().catch(() => undefined),
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), QUEUE_COUNT_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      return counts;
    }),
  );
  queueWaitingJobs.reset();
  queueJobs.reset();
  // Unreachable Redis: no series rather than stale ones.
  for (const counts of all) {
    for (const [queue, c] of Object.entries(counts ?? {})) {
      queueWaitingJobs.inc({ queue }, c.waiting);
      queueJobs.inc({ queue, state: "active" }, c.active);
      queueJobs.inc({ queue, state: "delayed" }, c.delayed);
      queueJobs.inc({ queue, state: "failed" }, c.failed);
    }
  }
}

export const jobDuration = new Histogram({
  name: "switchboard_job_duration_seconds",
  help: "Job attempts by queue and job name, successful or not",
  labelNames: ["queue", "job"] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export const jobFailures = new Counter({
  name: "switchboard_job_failures_total",
  help: "Job attempts that threw (retried with backoff until the job's attempts run out), by queue and job name",
  labelNames: ["queue", "job"] as const,
  registers: [registry],
});

function instrument<N extends JobName>(name: N, handler: JobHandler<N>): JobHandler<N> {
  const labels = { queue: JOBS[name].queue, job: name };
  return async (payload, ctx) => {
    const end = jobDuration.startTimer(labels);
    try {
      await handler(payload, ctx);
    } catch (err) {
      jobFailures.inc(labels);
      throw err;
    } finally {
      end();
    }
  };
}

/** The same processors, each attempt timed and each throw counted. */
export function instrumentJobs(handlers: JobHandlers): JobHandlers {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(handlers) as JobName[]) {
    const handler = handlers[name] as JobHandler<JobName> | undefined;
    if (handler) out[name] = instrument(name, handler);
  }
  return out as JobHandlers;
}

export { installMetrics, type MetricsRouteOptions } from "./http.ts";
