import type { Redis } from "ioredis";
import type { Db } from "../db/index.ts";
import { isRedisUnavailable } from "../redis/index.ts";

// Spend controls, checked before a call starts and while it runs:
// - an organisation whose payment failed (billingState past_due | canceled) is refused: 402
//   `call.start.error-subscription-frozen`;
// - one whose month-to-date platform-billed spend (Σ UsageLine.amountMicros with billedBy =
//   platform, calls started this calendar month, UTC; read from the UsageDaily rollup) has
//   reached `monthlySpendLimitMicros` is refused: 402 `call.start.error-subscription-insufficient-credits`;
// - one with `concurrencyLimit` calls already active is refused: 429
//   `call.start.error-subscription-concurrency-limit-reached`.
// Active calls are leases in a Redis sorted set per org (member = callId, score = lease expiry in
// ms, Redis server time). Admission is one Lua script (drop expired, count, add if under the
// limit), so two processes never both take the last slot. The media session renews its lease
// (e.g. every 20 s with the default 60 s lease) and releases it at the end; a crashed process stops
// renewing and its slots free themselves. Without Redis (`npm start`, one process) an in-process
// store with the same semantics is shared by every SpendControls in the process.
// While a call runs, the media session polls `isOverSpendLimit(orgId)`; when true it lets the
// current turn finish and ends the call with ENDED_REASON_SPEND_LIMIT_REACHED.
// Redis unreachable at admission (a failover, a partition): the call is refused (503 with
// Retry-After, ENDED_REASON_ADMISSION_UNAVAILABLE), not admitted without a lease. Admitting it would
// let an organisation past its concurrency limit by any number of calls for as long as the outage
// lasts, and the call's live control, listeners and server messages all wait on Redis too.

export const ENDED_REASON_SUBSCRIPTION_FROZEN = "call.start.error-subscription-frozen";
export const ENDED_REASON_INSUFFICIENT_CREDITS = "call.start.error-subscription-insufficient-credits";
export const ENDED_REASON_CONCURRENCY_LIMIT = "call.start.error-subscription-concurrency-limit-reached";
/** A call in progress ended because the organisation's monthly spend limit was reached. */
export const ENDED_REASON_SPEND_LIMIT_REACHED = "call.in-progress.error-spend-limit-reached";
/** A call refused because its concurrency lease could not be taken (Redis unreachable). */
export const ENDED_REASON_ADMISSION_UNAVAILABLE = "call.start.error-vapifault-get-subscription";
/** What a call refused for that asks its caller to wait before trying again, in seconds. */
export const ADMISSION_RETRY_AFTER_SECONDS = 5;

export const FROZEN_BILLING_STATES: ReadonlySet<string> = new Set(["past_due", "canceled"]);

export type Admission =
  | { ok: true }
  | { ok: false; statusCode: 402 | 429 | 503; endedReason: string; message: string };

export interface SpendControlsOptions {
  /** Lease length; a call must renew its lease within it. Default 60 s. */
  leaseMs?: number;
  /** How long a computed month-to-date spend is reused for `isOverSpendLimit`. Default 5 s; 0 = never. */
  spendCacheMs?: number;
  /** Redis key prefix. Default "switchboard:concurrency:". */
  keyPrefix?: string;
  /** In-process lease store when there is no Redis (default: one per process). */
  store?: InProcessLeaseStore;
  /**
   * How long admission waits for Redis before refusing the call as unavailable (default 2 s); a
   * lease taken after that is given back at once.
   */
  admissionTimeoutMs?: number;
}

/** Start of the calendar month (UTC) containing `at`. */
export function monthStartUtc(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
}

/** Lease sets for one process: the Redis scripts' semantics, in memory. */
export class InProcessLeaseStore {
  private readonly orgs = new Map<string, Map<string, number>>();

  private live(orgId: string, now: number): Map<string, number> {
    let set = this.orgs.get(orgId);
    if (!set) {
      set = new Map();
      this.orgs.set(orgId, set);
    }
    for (const [id, expiry] of set) if (expiry <= now) set.delete(id);
    return set;
  }

  acquire(orgId: string, callId: string, limit: number, leaseMs: number): boolean {
    const now = Date.now();
    const set = this.live(orgId, now);
    if (!set.has(callId) && set.size >= limit) return false;
    set.set(callId, now + leaseMs);
    return true;
  }

  renew(orgId: string, callId: string, leaseMs: number): boolean {
    const now = Date.now();
    const set = this.live(orgId, now);
    if (!set.has(callId)) return false;
    set.set(callId, now + leaseMs);
    return true;
  }

  release(orgId: string, callId: string): void {
    this.orgs.get(orgId)?.delete(callId);
  }

  count(orgId: string): number {
    return this.live(orgId, Date.now()).size;
  }
}

export const PROCESS_LEASE_STORE = new InProcessLeaseStore();

// KEYS[1] = lease set; ARGV = callId, limit, leaseMs. Returns 1 when admitted (or already holding a lease).
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
`;

// KEYS[1] = lease set; ARGV = callId, leaseMs. Returns 1 when the lease was live and is extended.
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
`;

// KEYS[1] = lease set. Drops expired leases and returns the live count.
const COUNT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`;

interface OrgLimits {
  billingState: string;
  monthlySpendLimitMicros: bigint | null;
  concurrencyLimit: number;
}

export class SpendControls {
  private readonly leaseMs: number;
  private readonly spendCacheMs: number;
  private readonly prefix: string;
  private readonly store: InProcessLeaseStore;
  private readonly admissionTimeoutMs: number;
  private readonly spendCache = new Map<string, { at: number; month: number; micros: bigint }>();

  constructor(
    private readonly db: Db,
    private readonly redis: Redis | undefined,
    options: SpendControlsOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 60_000;
    this.spendCacheMs = options.spendCacheMs ?? 5_000;
    this.prefix = options.keyPrefix ?? "switchboard:concurrency:";
    this.store = options.store ?? PROCESS_LEASE_STORE;
    this.admissionTimeoutMs = options.admissionTimeoutMs ?? 2000;
  }

  get leaseDurationMs(): number {
    return this.leaseMs;
  }

  private key(orgId: string): string {
    return `${this.prefix}${orgId}`;
  }

  private async limits(orgId: string): Promise<OrgLimits | null> {
    return this.db.org.findUnique({
      where: { id: orgId },
      select: { billingState: true, monthlySpendLimitMicros: true, concurrencyLimit: true },
    });
  }

  /** Month-to-date spend billed by the platform (UTC calendar month of `at`), micro-dollars. */
  async monthToDateBilledMicros(orgId: string, at: Date = new Date()): Promise<bigint> {
    const start = monthStartUtc(at);
    // The daily rollup (kept in step with UsageLine in the same transaction): the month starts at
    // midnight UTC, so whole days give exactly Σ lines with occurredAt ≥ start.
    const day = start.toISOString().slice(0, 10);
    const rows = await this.db.$queryRaw<{ micros: bigint | null }[]>`
      SELECT SUM("amountMicros")::bigint AS micros FROM "UsageDaily"
      WHERE "orgId" = ${orgId}::uuid AND "day" >= ${day}::date AND "billedBy" = 'platform'`;
    return rows[0]?.micros ?? 0n;
  }

  private async cachedSpend(orgId: string): Promise<bigint> {
    const now = Date.now();
    const month = monthStartUtc(new Date(now)).getTime();
    const hit = this.spendCache.get(orgId);
    if (hit && hit.month === month && now - hit.at < this.spendCacheMs) return hit.micros;
    const micros = await this.monthToDateBilledMicros(orgId, new Date(now));
    if (this.spendCacheMs > 0) this.spendCache.set(orgId, { at: now, month, micros });
    return micros;
  }

  /**
   * Decides whether a call may start and, when it may, takes a concurrency lease for it (renew it
   * with renewLease, give it back with releaseCall). Admitting the same callId twice is harmless.
   */
  async admitCall(orgId: string, callId: string): Promise<Admission> {
    const org = await this.limits(orgId);
    if (!org) {
      return {
        ok: false,
        statusCode: 402,
        endedReason: ENDED_REASON_SUBSCRIPTION_FROZEN,
        message: "Unknown organisation",
      };
    }
    if (FROZEN_BILLING_STATES.has(org.billingState)) {
      return {
        ok: false,
        statusCode: 402,
        endedReason: ENDED_REASON_SUBSCRIPTION_FROZEN,
        message: `Calls are paused: the organisation's last payment failed (billing state ${org.billingState}). Update the payment method to resume.`,
      };
    }
    if (org.monthlySpendLimitMicros !== null) {
      // Fresh figure at admission: the cache only serves the periodic in-call checks.
      const spent = await this.monthToDateBilledMicros(orgId);
      if (spent >= org.monthlySpendLimitMicros) {
        return {
          ok: false,
          statusCode: 402,
          endedReason: ENDED_REASON_INSUFFICIENT_CREDITS,
          message: `Monthly spend limit reached: ${usd(spent)} of ${usd(org.monthlySpendLimitMicros)} USD billed this month. Raise it with PATCH /billing/settings.`,
        };
      }
    }
    const admitted = await this.acquire(orgId, callId, org.concurrencyLimit);
    if (admitted === "unavailable") {
      return {
        ok: false,
        statusCode: 503,
        endedReason: ENDED_REASON_ADMISSION_UNAVAILABLE,
        message: `Calls cannot start right now: the concurrency limit cannot be checked (Redis is unreachable). Retry in ${ADMISSION_RETRY_AFTER_SECONDS} s.`,
      };
    }
    if (!admitted) {
      return {
        ok: false,
        statusCode: 429,
        endedReason: ENDED_REASON_CONCURRENCY_LIMIT,
        message: `Concurrency limit reached: ${org.concurrencyLimit} calls are already in progress for this organisation.`,
      };
    }
    return { ok: true };
  }

  /** Takes a lease, or tells that Redis could not be asked in time. */
  private async acquire(orgId: string, callId: string, limit: number): Promise<boolean | "unavailable"> {
    const redis = this.redis;
    if (!redis) return this.store.acquire(orgId, callId, limit, this.leaseMs);
    const attempt = redis.eval(ACQUIRE, 1, this.key(orgId), callId, limit, this.leaseMs);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.admissionTimeoutMs);
    });
    try {
      const result = await Promise.race([attempt, timeout]);
      if (result !== "timeout") return result === 1;
      // The script may still run once Redis answers: the lease goes back right after it (same
      // connection, commands in order), so a refused call holds no slot.
      attempt.catch(() => {});
      redis.zrem(this.key(orgId), callId).catch(() => {});
      return "unavailable";
    } catch (err) {
      if (isRedisUnavailable(err)) return "unavailable";
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Extends a call's lease; false when it had expired (the slot may have been taken since). */
  async renewLease(orgId: string, callId: string): Promise<boolean> {
    if (this.redis) return (await this.redis.eval(RENEW, 1, this.key(orgId), callId, this.leaseMs)) === 1;
    return this.store.renew(orgId, callId, this.leaseMs);
  }

  /** Gives a call's slot back (at the end of the call, or when it failed to start). */
  async releaseCall(orgId: string, callId: string): Promise<void> {
    if (this.redis) await this.redis.zrem(this.key(orgId), callId);
    else this.store.release(orgId, callId);
  }

  /** Calls holding a live lease. */
  async activeCalls(orgId: string): Promise<number> {
    if (this.redis) return Number(await this.redis.eval(COUNT, 1, this.key(orgId)));
    return this.store.count(orgId);
  }

  /** True when the org's month-to-date platform-billed spend has reached its limit (cached briefly). */
  async isOverSpendLimit(orgId: string): Promise<boolean> {
    const org = await this.limits(orgId);
    if (!org || org.monthlySpendLimitMicros === null) return false;
    return (await this.cachedSpend(orgId)) >= org.monthlySpendLimitMicros;
  }
}

function usd(micros: bigint): string {
  const s = micros.toString().padStart(7, "0");
  return `${s.slice(0, -6)}.${s.slice(-6, -4)}`;
}
