import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { StartupError } from "./process.ts";

// `npm start` keeps an embedded Postgres (PGlite) and generated secrets in DATA_DIR. PGlite takes
// no lock of its own, so two processes on one directory both ran and one's writes were lost. The
// first process writes a lock file naming itself; a second refuses at once with that name. A lock
// whose process is gone (killed, machine restarted) is stale and taken over.

export const LOCK_FILE = "switchboard.lock";

interface LockOwner {
  pid: number;
  startedAt: string;
  hostname: string;
}

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A killed process stays a zombie until its parent (or init) reaps it: gone all the same.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(file, "utf8")) as Partial<LockOwner>;
    if (typeof owner.pid !== "number") return undefined;
    return { pid: owner.pid, startedAt: String(owner.startedAt), hostname: String(owner.hostname) };
  } catch {
    return undefined;
  }
}

/** Takes the directory's lock or throws a StartupError naming the process that holds it. */
export function lockDataDir(dir: string, now: () => Date = () => new Date()): DataDirLock {
  const file = path.join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, startedAt: now().toISOString(), hostname: hostname() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: "wx", mode: 0o600 });
      const release = () => {
        if (readOwner(file)?.pid === me.pid) unlinkSync(file);
        process.off("exit", release);
      };
      // Also on process.exit() (a failed start): a lock left behind would only be stale, but a
      // clean exit should leave nothing to explain.
      process.on("exit", release);
      return { file, release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = readOwner(file);
    if (owner && owner.hostname !== me.hostname) {
      throw new StartupError(
        `DATA_DIR ${dir} is in use by switchboard pid ${owner.pid} on ${owner.hostname} (started ${owner.startedAt}); if it is gone, delete ${file}`,
      );
    }
    if (owner && owner.pid !== me.pid && alive(owner.pid)) {
      throw new StartupError(
        `DATA_DIR ${dir} is in use by another switchboard (pid ${owner.pid}, started ${owner.startedAt}); stop it or set DATA_DIR to another directory`,
      );
    }
    // Stale (its process is gone) or unreadable (a crash while writing it): take it over. Two
    // processes doing this at the same instant could both succeed; for a development data
    // directory that narrow window is accepted.
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  throw new StartupError(`could not take the lock ${file}`);
}
