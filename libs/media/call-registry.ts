import { type Db, Prisma } from "../db/index.ts";
import type { CallSession, LeaseControls, MediaLogger } from "./session/index.ts";

// The calls one media process holds: one shared heartbeat for all of them (a single UPDATE for
// every live call, plus each call's concurrency lease), and the drain on shutdown.

export const HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * What a stopping media process allows itself beyond MEDIA_DRAIN_MS to end the calls still running
 * (records, usage, sockets) before it gives up and exits 1. Container stop grace periods must be
 * longer than the drain plus this.
 */
export const SHUTDOWN_MARGIN_MS = 15_000;

/**
 * The heartbeat of calls in progress, in one statement. Rows are locked in id order, as the
 * checkpoint writer's batches lock them (libs/media/checkpoint-writer.ts): two statements that
 * update many of the same calls in different orders deadlock, and Postgres then aborts one of them.
 * `FOR NO KEY UPDATE` is the lock the update takes anyway: it lets the call-log batches' foreign-key
 * checks (`FOR KEY SHARE` on the same rows) through, where `FOR UPDATE` deadlocked with them.
 */
export async function touchCalls(db: Db, callIds: readonly string[], now: number): Promise<void> {
  if (callIds.length === 0) return;
  const at = new Date(now).toISOString();
  await db.$executeRaw(Prisma.sql`
    WITH locked AS (
      SELECT "id" FROM "Call"
      WHERE "id" IN (${Prisma.join(callIds.map((id) => Prisma.sql`${id}::uuid`))}) AND "status" = 'in-progress'
      ORDER BY "id"
      FOR NO KEY UPDATE
    )
    UPDATE "Call" AS c SET "heartbeatAt" = ${at}::timestamptz, "updatedAt" = ${at}::timestamptz
    FROM locked WHERE c."id" = locked."id"`);
}

export class CallRegistry {
  readonly #sessions = new Set<CallSession>();
  readonly #db: Db;
  readonly #spend: LeaseControls | undefined;
  readonly #log: MediaLogger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #hurried = false;
  #emptyWaiters: Array<() => void> = [];

  constructor(opts: {
    db: Db;
    spend?: LeaseControls;
    logger: MediaLogger;
    now?: () => number;
    heartbeatMs?: number;
  }) {
    this.#db = opts.db;
    this.#spend = opts.spend;
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#timer = setInterval(() => void this.heartbeat(), opts.heartbeatMs ?? HEARTBEAT_INTERVAL_MS);
    this.#timer.unref();
  }

  get draining(): boolean {
    return this.#draining;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Calls in progress here: from the stream's accepted start until their record is written. */
  get active(): number {
    let n = 0;
    for (const s of this.#sessions) if (s.callId !== "") n++;
    return n;
  }

  /** The session of a call this process holds (from its stream's accepted start until it is written). */
  find(callId: string): CallSession | undefined {
    for (const s of this.#sessions) if (s.callId === callId) return s;
    return undefined;
  }

  add(session: CallSession): void {
    this.#sessions.add(session);
    void session.finished.then(() => {
      this.#sessions.delete(session);
      if (this.#sessions.size === 0) for (const w of this.#emptyWaiters.splice(0)) w();
    });
  }

  async heartbeat(): Promise<void> {
    // A call is in progress in the database from its stream claim on, so one still starting (a slow
    // database or transcriber) is kept alive too, and one ending (its recording being stored, which
    // can take seconds on a slow volume or bucket): the sweeper must not take it for an orphan.
    const live = [...this.#sessions].filter(
      (s) => (s.phase === "live" || s.phase === "starting" || s.phase === "ending") && s.callId,
    );
    if (live.length === 0) return;
    try {
      await touchCalls(
        this.#db,
        live.map((s) => s.callId),
        this.#now(),
      );
    } catch (err) {
      this.#log.warn({ err }, "heartbeat failed");
    }
    if (this.#spend) {
      const spend = this.#spend;
      await Promise.allSettled(live.map((s) => spend.renewLease(s.orgId, s.callId)));
    }
  }

  /** Stops taking calls; lets active ones finish for up to `ms`, then ends the rest (`worker-shutdown`). */
  async drain(ms: number): Promise<void> {
    this.#draining = true;
    if (this.#sessions.size > 0 && ms > 0 && !this.#hurried) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#emptyWaiters.push(r)),
        new Promise<void>((r) => {
          timer = setTimeout(r, ms);
        }),
      ]);
      clearTimeout(timer);
    }
    await Promise.allSettled([...this.#sessions].map((s) => s.shutdown()));
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Cuts a drain short (an operator's second SIGTERM): the calls still running end at once. */
  hurry(): void {
    this.#hurried = true;
    for (const w of this.#emptyWaiters.splice(0)) w();
  }
}
