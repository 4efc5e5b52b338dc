import type { LeaseControls } from "./session/index.ts";

// Every reply of every call asks whether the organisation is over its monthly spend limit. Calls of
// one organisation share the answer for `ttlMs` (concurrent asks share one lookup), so a hundred
// live calls cost about one database query per second instead of one per turn. Spend figures are
// already cached for up to 5 s by SpendControls; this adds at most `ttlMs` to that.

export const SPEND_CHECK_TTL_MS = 1000;
const MAX_ORGS = 10_000;

export class CachedSpendLimit implements LeaseControls {
  readonly #inner: LeaseControls;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #byOrg = new Map<string, { at: number; over: Promise<boolean> }>();

  constructor(inner: LeaseControls, opts: { ttlMs?: number; now?: () => number } = {}) {
    this.#inner = inner;
    this.#ttlMs = opts.ttlMs ?? SPEND_CHECK_TTL_MS;
    this.#now = opts.now ?? Date.now;
  }

  renewLease(orgId: string, callId: string): Promise<boolean> {
    return this.#inner.renewLease(orgId, callId);
  }

  releaseCall(orgId: string, callId: string): Promise<void> {
    return this.#inner.releaseCall(orgId, callId);
  }

  isOverSpendLimit(orgId: string): Promise<boolean> {
    const now = this.#now();
    const hit = this.#byOrg.get(orgId);
    if (hit && now - hit.at < this.#ttlMs) return hit.over;
    if (this.#byOrg.size >= MAX_ORGS) {
      for (const [id, e] of this.#byOrg) if (now - e.at >= this.#ttlMs) this.#byOrg.delete(id);
      if (this.#byOrg.size >= MAX_ORGS) this.#byOrg.clear();
    }
    const entry = { at: now, over: this.#inner.isOverSpendLimit(orgId) };
    this.#byOrg.set(orgId, entry);
    // A failed lookup is not remembered: the next reply asks again.
    entry.over.catch(() => {
      if (this.#byOrg.get(orgId) === entry) this.#byOrg.delete(orgId);
    });
    return entry.over;
  }
}
