// The child processes of the media benches (`bench:media`, `bench:scale`) and what /proc says about
// them: forking a bench child and asking it questions over IPC (bench/child-ipc.ts), CPU placement
// (taskset), and CPU, memory, syscall and context-switch counters of processes, threads and the
// whole machine.
import { type ChildProcess, execSync, fork } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { createServer as createNetServer } from "node:net";
import { cpus, getPriority, setPriority } from "node:os";
import path from "node:path";

/**
 * The measured server (media process or bare relay) gets CPU 0 to itself and everything that drives
 * it (callers, provider fakes, API/worker) is held on the other CPUs, so the figures are the server's
 * own rather than the load generator's interference. BENCH_PIN=0 lets the scheduler place everything.
 */
export const PIN = process.env.BENCH_PIN !== "0" && cpus().length >= 2 && hasTaskset();

/** Bench roles by pid, for the per-process CPU line (everything else by process name). */
export const roleNames = new Map<number, string>([[process.pid, "orchestrator (API + worker)"]]);

// ---------------------------------------------------------------- helpers

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export function f(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const CLK_TCK = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;

/** Name and CPU ms (user, system) of a process or thread, from the text of its /proc `stat`. */
function parseStat(stat: string): { name: string; userMs: number; systemMs: number } {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime = field 14, stime = field 15.
  return {
    name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
    userMs: (Number(fields[11]) * 1000) / CLK_TCK,
    systemMs: (Number(fields[12]) * 1000) / CLK_TCK,
  };
}

/** CPU (user+system, ms) and RSS (bytes) of a process, from /proc. */
export function procSample(pid: number): { cpuMs: number; rss: number } {
  const { userMs, systemMs } = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuMs: userMs + systemMs, rss: kb * 1024 };
}

/** Syscalls and context switches of a process so far, from /proc/<pid>/io and /proc/<pid>/status. */
export interface KernelCounts {
  reads: number;
  writes: number;
  voluntary: number;
  involuntary: number;
}

export function kernelSample(pid: number): KernelCounts {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const n = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    reads: n(io, /syscr:\s+(\d+)/),
    writes: n(io, /syscw:\s+(\d+)/),
    voluntary: n(status, /^voluntary_ctxt_switches:\s+(\d+)/m),
    involuntary: n(status, /nonvoluntary_ctxt_switches:\s+(\d+)/),
  };
}

export function kernelDelta(a: KernelCounts, b: KernelCounts): KernelCounts {
  return {
    reads: b.reads - a.reads,
    writes: b.writes - a.writes,
    voluntary: b.voluntary - a.voluntary,
    involuntary: b.involuntary - a.involuntary,
  };
}

/**
 * CPU ms used by the whole machine so far (every process, user + system + softirq…), and the steal:
 * CPU the hypervisor gave to someone else while this machine wanted it. From /proc/stat.
 */
export function machineCpu(): { busyMs: number; stealMs: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1);
  // user nice system idle iowait irq softirq steal: busy is all but idle, iowait and steal.
  const busy = fields.slice(0, 7).reduce((acc, v, i) => (i === 3 || i === 4 ? acc : acc + Number(v)), 0);
  return { busyMs: (busy * 1000) / CLK_TCK, stealMs: (Number(fields[7] ?? 0) * 1000) / CLK_TCK };
}

/** CPU ms used so far by every process on the machine, by pid (with its name). */
export function processesCpu(): Map<number, { name: string; cpuMs: number }> {
  const out = new Map<number, { name: string; cpuMs: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { name, userMs, systemMs } = parseStat(readFileSync(`/proc/${entry}/stat`, "utf8"));
      out.set(Number(entry), { name, cpuMs: userMs + systemMs });
    } catch {
      // the process exited
    }
  }
  return out;
}

/** CPU ms per process group over an interval: the named bench children, else the process name. */
export function processesDelta(
  before: Map<number, { name: string; cpuMs: number }>,
  after: Map<number, { name: string; cpuMs: number }>,
  names: Map<number, string>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pid, a] of after) {
    const d = a.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    if (d <= 0) continue;
    const key = names.get(pid) ?? a.name;
    out.set(key, (out.get(key) ?? 0) + d);
  }
  return out;
}

export type ThreadCpu = Map<string, { user: number; system: number }>;

/** CPU ms (user, system) per thread name of a process, from /proc/<pid>/task. */
export function threadSample(pid: number): ThreadCpu {
  const out: ThreadCpu = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread exited
    }
    const t = parseStat(stat);
    const name = t.name.replace(/[0-9]+$/, "#");
    const prev = out.get(name) ?? { user: 0, system: 0 };
    prev.user += t.userMs;
    prev.system += t.systemMs;
    out.set(name, prev);
  }
  return out;
}

export function threadDelta(before: ThreadCpu, after: ThreadCpu): string {
  return [...after.entries()]
    .map(([name, a]) => {
      const b = before.get(name) ?? { user: 0, system: 0 };
      return { name, user: a.user - b.user, system: a.system - b.system };
    })
    .filter((t) => t.user + t.system > 0)
    .sort((x, y) => y.user + y.system - (x.user + x.system))
    .map((t) => `${t.name} ${t.user.toFixed(0)}u+${t.system.toFixed(0)}s`)
    .join(", ");
}

// ---------------------------------------------------------------- child processes

function hasTaskset(): boolean {
  try {
    execSync("taskset -p 1", { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Server: CPU 0 only; driver: every CPU but 0 (all threads of the process, and those it starts
 * later); free: every CPU again; a number: that CPU only (a second measured server).
 */
export function pin(pid: number | undefined, role: "server" | "driver" | "free" | number): void {
  if (!PIN || !pid) return;
  const n = cpus().length;
  const list =
    typeof role === "number"
      ? String(role)
      : role === "server"
        ? "0"
        : role === "driver"
          ? `1-${n - 1}`
          : `0-${n - 1}`;
  try {
    execSync(`taskset -a -p -c ${list} ${pid}`, { stdio: "ignore" });
  } catch {
    // the process exited, or it is not ours to move
  }
}

/**
 * Postgres and Redis run on other machines than a media process in production; here they are held
 * off the measured server's CPU for the run (new Postgres backends inherit it from the postmaster)
 * and given every CPU back at the end.
 */
function databasePids(): number[] {
  try {
    return execSync("pgrep -x 'postgres|redis-server'", { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function pinDatabases(role: "driver" | "free"): void {
  for (const pid of databasePids()) pin(pid, role);
}

export function startChild<T extends { ready?: boolean }>(
  script: string,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; ready: T }> {
  return new Promise((resolve, reject) => {
    const child = fork(script, [], {
      env: { ...process.env, ...env },
      execArgv: ["--import", "tsx", ...execArgv],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
    const onMessage = (m: T) => {
      if (!m.ready) return;
      child.off("message", onMessage);
      resolve({ child, ready: m });
    };
    child.on("message", onMessage);
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Sends `ask` to a child and resolves with the `key` field of its first answer carrying one. */
export function ask<T>(child: ChildProcess, question: unknown, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (typeof m !== "object" || m === null) return;
      if (key in m) {
        child.off("message", onMessage);
        resolve(m[key] as T);
      } else if ("failed" in m) {
        child.off("message", onMessage);
        reject(new Error(String(m.failed)));
      }
    };
    child.on("message", onMessage);
    child.send(question as object);
  });
}

// ---------------------------------------------------------------- allocation profile

/**
 * BENCH_ALLOC_PROF=<dir>: V8's sampling heap profiler over the process's life, counting the
 * allocations the collector freed too (what makes garbage, where node's --heap-prof keeps only what
 * is alive at exit); written as a .heapprofile (Chrome DevTools' format) when the returned function
 * is called. Undefined when not asked for.
 */
export function startAllocationProfile(): (() => Promise<void>) | undefined {
  const dir = process.env.BENCH_ALLOC_PROF;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    );
  void post("HeapProfiler.startSampling", {
    samplingInterval: 32 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = (await post("HeapProfiler.stopSampling")) as { profile: unknown };
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

// ---------------------------------------------------------------- scheduling priority

/** The niceness this bench started with (a run under `nice -n -10` has -10). */
const BASE_NICE = getPriority();

/**
 * Sets every thread of `pid` to the bench's niceness plus `add` (0: back to the bench's own).
 * Lowering a niceness needs privileges: without them the process keeps its own, silently.
 */
export function nice(pid: number | undefined, add: number): void {
  if (!pid) return;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), Math.max(-20, Math.min(19, BASE_NICE + add)));
    } catch {
      // not permitted, or the thread is gone
    }
  }
}

/** Postgres's and Redis's own niceness before a bench changed it, by pid. */
const databaseNice = new Map<number, number>();

/**
 * The same for Postgres and Redis (their processes that exist now; new backends inherit the
 * postmaster's); `undefined` puts back what they had before.
 */
export function niceDatabases(add: number | undefined): void {
  for (const pid of databasePids()) {
    if (!databaseNice.has(pid)) {
      try {
        databaseNice.set(pid, getPriority(pid));
      } catch {
        continue;
      }
    }
    if (add !== undefined) nice(pid, add);
    else {
      const own = databaseNice.get(pid) ?? 0;
      try {
        for (const tid of readdirSync(`/proc/${pid}/task`)) setPriority(Number(tid), own);
      } catch {
        // gone, or not permitted
      }
    }
  }
}
