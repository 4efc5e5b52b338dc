import type { Redis } from "ioredis";

// A read-through cache for hot, rarely-changing rows (API keys, assistants). Prisma costs ~0.6 ms
// of CPU per query here, several times a whole bare Fastify request, so the hot read paths keep
// what they looked up for a short TTL. Writes evict the entry in this process at once and, through
// Redis pub/sub, in every other process; the TTL bounds staleness if a message is ever missed.

const CHANNEL = "switchboard:cache:evict";

export class TtlCache<V> {
  private readonly map = new Map<string, { value: V; expiresAt: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    // Map keeps insertion order: dropping the oldest entry is a cheap approximation of LRU.
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { value, expiresAt: now + this.ttlMs });
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  deleteWhere(pred: (value: V, key: string) => boolean): void {
    for (const [k, e] of this.map) if (pred(e.value, k)) this.map.delete(k);
  }

  clear(): void {
    this.map.clear();
  }
}

type Evictor = (key: string) => void;

/** Cross-process eviction: `evict(name, key)` reaches every process's cache registered under `name`. */
export class CacheBus {
  private readonly evictors = new Map<string, Evictor>();
  private subscribed?: Promise<unknown>;

  constructor(
    private readonly redis?: Redis,
    private readonly subscriber?: Redis,
  ) {}

  register(name: string, evictor: Evictor): void {
    this.evictors.set(name, evictor);
    if (this.subscriber && !this.subscribed) {
      const sub = this.subscriber;
      // A Redis that is down at start must not stop the API: eviction falls back to the TTL.
      this.subscribed = sub.subscribe(CHANNEL).catch(() => {});
      sub.on("message", (channel, message) => {
        if (channel !== CHANNEL) return;
        const sep = message.indexOf("|");
        if (sep > 0) this.evictors.get(message.slice(0, sep))?.(message.slice(sep + 1));
      });
    }
  }

  async ready(): Promise<void> {
    await this.subscribed;
  }

  async evict(name: string, key: string): Promise<void> {
    this.evictors.get(name)?.(key);
    if (this.redis) await this.redis.publish(CHANNEL, `${name}|${key}`);
  }
}
