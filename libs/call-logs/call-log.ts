import type { CallLogCategory, CallLogEntry, CallLogLevel } from "./entry.ts";
import { Redactor } from "./redact.ts";

// A call's log as the call runs: entries are kept in memory only until the next flush (the call's
// checkpoints, its end, or when a small bound is reached, whichever comes first), then appended to
// storage as one chunk, so a call whose process dies keeps its log up to its last checkpoint. The
// log is bounded per call (CALL_LOG_MAX_ENTRIES / CALL_LOG_MAX_BYTES): past the cap a note says so
// and the rest is dropped. Nothing here runs per audio frame: parts of the session call `add` on
// events (a turn, a tool call, a provider connecting), never on the frame path.

export interface CallLogLimits {
  /** Entries per call, the cap's note included. */
  maxEntries: number;
  /** Bytes of entries' JSON per call. */
  maxBytes: number;
}

export const DEFAULT_CALL_LOG_LIMITS: CallLogLimits = { maxEntries: 5000, maxBytes: 2 * 1024 * 1024 };

/** Entries kept in memory between flushes before a flush is forced (a busy turn, a tool storm). */
const PENDING_MAX_ENTRIES = 100;
const PENDING_MAX_BYTES = 64 * 1024;

/** One flush: the entries of a call to append, with their count and bytes. */
export interface CallLogChunk {
  callId: string;
  orgId: string;
  entries: CallLogEntry[];
  count: number;
  bytes: number;
}

export interface CallLogOptions {
  limits: CallLogLimits;
  now: () => number;
  /** Appends a chunk to storage (the CallLog table). */
  append: (chunk: CallLogChunk) => Promise<void>;
  /** Told when a chunk could not be stored (its entries are lost; the call goes on). */
  onAppendError?: (err: unknown) => void;
}

interface Pending {
  at: number;
  level: CallLogLevel;
  category: CallLogCategory;
  message: string;
  data: Record<string, unknown> | undefined;
  bytes: number;
}

/** Rough JSON size of an entry's fixed fields (time, secondsFromStart, names and punctuation). */
const ENTRY_OVERHEAD_BYTES = 110;

export class CallLog {
  readonly #o: CallLogOptions;
  /** Scrubs secrets from every entry; the session registers the call's keys and server secrets. */
  readonly redact = new Redactor();
  /** Undecided until the call's assistant is known: entries wait; off drops them. */
  #enabled: boolean | undefined;
  #closed = false;
  #call: { callId: string; orgId: string } | undefined;
  #startedAt = 0;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #count = 0;
  #bytes = 0;
  #cut = false;
  /** Chunks stored so far (the call has a log once one is). */
  #stored = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: CallLogOptions) {
    this.#o = options;
  }

  /** Whether entries are kept (until the assistant's artifactPlan is known, they are). */
  get enabled(): boolean {
    return this.#enabled !== false && !this.#closed;
  }

  /** Whether any of the call's log has been stored (its artifact then names it). */
  get stored(): boolean {
    return this.#stored > 0;
  }

  /** The call is known (its stream was claimed): entries can be stored from now on. */
  bind(callId: string, orgId: string, startedAt: number): void {
    this.#call = { callId, orgId };
    this.#startedAt = startedAt;
  }

  /** artifactPlan.loggingEnabled of the assistant that starts the call (Vapi's default: on). */
  setEnabled(enabled: boolean): void {
    if (this.#enabled !== undefined) return;
    this.#enabled = enabled;
    if (!enabled) {
      this.#pending = [];
      this.#pendingBytes = 0;
    }
  }

  /** Something happened: `category` of the call, a constant `message`, details in `data`. */
  add(category: CallLogCategory, message: string, data?: Record<string, unknown>): void {
    this.#add("info", category, message, data);
  }

  warn(category: CallLogCategory, message: string, data?: Record<string, unknown>): void {
    this.#add("warn", category, message, data);
  }

  error(category: CallLogCategory, message: string, data?: Record<string, unknown>): void {
    this.#add("error", category, message, data);
  }

  debug(category: CallLogCategory, message: string, data?: Record<string, unknown>): void {
    this.#add("debug", category, message, data);
  }

  #add(
    level: CallLogLevel,
    category: CallLogCategory,
    message: string,
    data: Record<string, unknown> | undefined,
  ): void {
    if (this.#enabled === false || this.#closed || this.#cut) return;
    const safe = data ? (this.redact.value(data) as Record<string, unknown>) : undefined;
    const text = this.redact.text(message);
    const bytes =
      ENTRY_OVERHEAD_BYTES + category.length + Buffer.byteLength(text) + (safe ? jsonBytes(safe) : 0);
    const { maxEntries, maxBytes } = this.#o.limits;
    // One entry is kept back for the note that says the log was cut.
    if (this.#count + 1 >= maxEntries || this.#bytes + bytes > maxBytes) {
      this.#cut = true;
      this.#push({
        at: this.#o.now(),
        level: "warn",
        category: "log",
        message: "the call log reached its limit: what happened after this is not in it",
        data: { maxEntries, maxBytes, entries: this.#count, bytes: this.#bytes },
        bytes: ENTRY_OVERHEAD_BYTES + 120,
      });
      this.flush();
      return;
    }
    this.#push({ at: this.#o.now(), level, category, message: text, data: safe, bytes });
    if (this.#pending.length >= PENDING_MAX_ENTRIES || this.#pendingBytes >= PENDING_MAX_BYTES) this.flush();
  }

  #push(p: Pending): void {
    this.#pending.push(p);
    this.#pendingBytes += p.bytes;
    this.#count++;
    this.#bytes += p.bytes;
  }

  /**
   * Appends what is pending as one chunk (never awaited by the call's work; one append at a time,
   * in order). Nothing happens before the call is bound and its logging decided.
   */
  flush(): Promise<void> {
    if (!this.#call || this.#enabled === undefined || this.#pending.length === 0) return this.#flushing;
    const { callId, orgId } = this.#call;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const entries = pending.map((p) => this.#entry(p));
    const bytes = jsonBytes(entries);
    this.#flushing = this.#flushing.then(() =>
      this.#o.append({ callId, orgId, entries, count: entries.length, bytes }).then(
        () => {
          this.#stored++;
        },
        (err: unknown) => this.#o.onAppendError?.(err),
      ),
    );
    return this.#flushing;
  }

  /** The call is over: the rest is stored and later entries are ignored. Resolves once stored. */
  async close(): Promise<void> {
    // A call whose assistant never loaded keeps its log (Vapi's default).
    if (this.#enabled === undefined) this.#enabled = true;
    const done = this.flush();
    this.#closed = true;
    await done;
  }

  #entry(p: Pending): CallLogEntry {
    const entry: CallLogEntry = {
      time: new Date(p.at).toISOString(),
      secondsFromStart: Math.round(p.at - this.#startedAt) / 1000,
      level: p.level,
      category: p.category,
      message: p.message,
    };
    if (p.data && Object.keys(p.data).length > 0) entry.data = p.data;
    return entry;
  }
}

function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v));
}
