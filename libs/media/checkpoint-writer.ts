import { type Db, Prisma } from "../db/index.ts";

// The per-turn checkpoints of every call on this media process, written together: each call's
// latest conversation and usage (so a call whose process dies is ended with what it had, libs/media/
// orphans.ts) go in ONE UPDATE for every call with a checkpoint due, at most CHECKPOINT_BATCH_MS
// after the turn that made it due. One statement per call and turn was most of the media process's
// database work (a query through Prisma costs more CPU than a second of a call's audio); a hundred
// calls now make a few statements a second instead of one per turn each. One batch is written at a
// time; a call whose turn completes meanwhile goes in the next, with its state as of that write.

/** What a checkpoint persists of a call. */
export interface CallCheckpoint {
  transcript: string;
  messages: unknown;
  usage: unknown;
}

/** How long a due checkpoint waits for others to be written with it. */
export const CHECKPOINT_BATCH_MS = 250;
/** A batch this large is written at once. */
const MAX_BATCH = 200;

interface Due {
  /** The call's state now, or undefined when it no longer needs a checkpoint (it is ending). */
  read: () => CallCheckpoint | undefined;
  onError: (err: unknown) => void;
}

export class CheckpointWriter {
  readonly #db: Db;
  readonly #delayMs: number;
  #due = new Map<string, Due>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;

  constructor(db: Db, delayMs = CHECKPOINT_BATCH_MS) {
    this.#db = db;
    this.#delayMs = delayMs;
  }

  /** Calls with a checkpoint waiting to be written. */
  get pending(): number {
    return this.#due.size;
  }

  /** The call's checkpoint is due: written with the next batch (its state read then). */
  submit(callId: string, read: Due["read"], onError: Due["onError"]): void {
    this.#due.set(callId, { read, onError });
    if (this.#writing) return;
    if (this.#due.size >= MAX_BATCH) this.#start();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#start(), this.#delayMs);
      this.#timer.unref();
    }
  }

  /** Writes what is due now (and waits for a batch being written). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#due.size > 0) {
      this.#start();
      await this.#writing;
    }
  }

  #start(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#due;
    this.#due = new Map();
    this.#writing = this.#write(batch).finally(() => {
      this.#writing = undefined;
      if (this.#due.size > 0) {
        this.#timer = setTimeout(() => this.#start(), this.#delayMs);
        this.#timer.unref();
      }
    });
  }

  async #write(batch: Map<string, Due>): Promise<void> {
    const rows: Prisma.Sql[] = [];
    for (const [callId, due] of batch) {
      const cp = due.read();
      if (!cp) batch.delete(callId);
      else
        rows.push(
          Prisma.sql`(${callId}, ${cp.transcript}, ${JSON.stringify(cp.messages)}, ${JSON.stringify(cp.usage)})`,
        );
    }
    if (rows.length === 0) return;
    try {
      // The status guard keeps a late checkpoint from overwriting a call already ended (its final
      // write changes the status in the same transaction). The rows are locked in id order first, as
      // the heartbeat locks them (touchCalls): two statements updating many of the same calls in
      // different orders deadlock, and Postgres aborts one (a checkpoint or a heartbeat lost).
      await this.#db.$executeRaw(Prisma.sql`
        WITH v(id, t, m, u) AS (VALUES ${Prisma.join(rows)}),
        locked AS (
          SELECT c."id" FROM "Call" AS c
          WHERE c."id" IN (SELECT v.id::uuid FROM v) AND c."status" = 'in-progress'
          ORDER BY c."id"
          FOR NO KEY UPDATE
        )
        UPDATE "Call" AS c
        SET "transcript" = v.t, "messages" = v.m::jsonb, "usage" = v.u::jsonb, "updatedAt" = now()
        FROM v, locked
        WHERE c."id" = locked."id" AND c."id" = v.id::uuid AND c."status" = 'in-progress'`);
    } catch (err) {
      for (const due of batch.values()) due.onError(err);
    }
  }
}

const writers = new WeakMap<Db, CheckpointWriter>();

/** The process's checkpoint writer for `db` (one per database client). */
export function checkpointWriterFor(db: Db): CheckpointWriter {
  let writer = writers.get(db);
  if (!writer) {
    writer = new CheckpointWriter(db);
    writers.set(db, writer);
  }
  return writer;
}
