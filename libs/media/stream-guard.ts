import { addressKey } from "../http/client-address.ts";

// Bounds on the media port's websockets. Until its `start` carries a valid media token a socket is
// anyone's: it has `startTimeoutMs` to authenticate, and one address may hold only so many such
// sockets at once. Authenticated streams are not counted per address: Twilio opens every stream from
// a few addresses of its own, and calls are bounded by each organisation's concurrency limit, which
// admitted them. Every open socket, authenticated or not, counts against the process's total.
// Below the websockets, a TCP connection that has not upgraded yet is bounded the same way: the
// start deadline from the moment it is accepted, and at most `maxPendingPerAddress` per peer (one
// address sending half requests would otherwise hold the port's whole connection ceiling while
// Node waits a minute or more for their headers, and keep every call out). Behind a proxy the peer
// is the proxy, which forwards only complete requests: they upgrade at once and count for moments.

/** Runs `fn` after `ms` and returns a cancel. Production uses setTimeout; tests advance their own. */
export type ScheduleTimer = (fn: () => void, ms: number) => () => void;

export const realTimer: ScheduleTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

export interface StreamLimits {
  /** A socket without a valid `start` after this long is closed (MEDIA_START_TIMEOUT_MS). */
  startTimeoutMs: number;
  /** Open media sockets per process, authenticated or not (MEDIA_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Not yet authenticated sockets per remote address (MEDIA_MAX_PENDING_PER_ADDRESS). */
  maxPendingPerAddress: number;
}

/** Open media sockets: `pending` have not (yet) sent a valid `start`, `active` carry a call. */
export interface StreamCounts {
  pending: number;
  active: number;
}

interface Tracked {
  key: string;
  authenticated: () => boolean;
  cancel: () => void;
  expire: (code: number, reason: string) => void;
}

export class StreamGuard {
  readonly #limits: StreamLimits;
  readonly #schedule: ScheduleTimer;
  readonly #open = new Set<Tracked>();
  /**
   * Sockets by address key that were not authenticated when last looked at. Authentication is
   * one-way, so the sets are pruned lazily (on a refusal check, a deadline, a count) instead of the
   * session having to report it.
   */
  readonly #pending = new Map<string, Set<Tracked>>();
  /** TCP connections not (yet) upgraded to a websocket, by the peer's address key. */
  readonly #connecting = new Map<string, number>();

  constructor(limits: StreamLimits, schedule: ScheduleTimer = realTimer) {
    this.#limits = limits;
    this.#schedule = schedule;
  }

  /**
   * Why a new socket from `address` must be refused now (the app closes it with 1013), if it must.
   * At the process's limit, the oldest socket still unauthenticated gives up its place instead
   * (closed with 1013): sockets from a few addresses, each under its own cap, could otherwise fill
   * the process and keep every new call out, while Twilio's streams authenticate within
   * milliseconds of opening and so are never the oldest pending for long.
   */
  refusal(address: string): string | undefined {
    const pending = this.#pending.get(addressKey(address));
    if (pending && this.#prune(pending) >= this.#limits.maxPendingPerAddress) {
      return "too many unauthenticated streams from this address";
    }
    if (this.#open.size >= this.#limits.maxConnections && !this.#evictOldestPending()) {
      return "media process at its connection limit";
    }
    return undefined;
  }

  /**
   * Counts an accepted socket until the returned release is called (on its close). If `authenticated`
   * is still false after the start timeout, `expire` gets the reason to close it with (1008).
   */
  admit(
    address: string,
    authenticated: () => boolean,
    expire: (code: number, reason: string) => void,
  ): () => void {
    const entry: Tracked = { key: addressKey(address), authenticated, cancel: () => {}, expire };
    this.#open.add(entry);
    let pending = this.#pending.get(entry.key);
    if (!pending) {
      pending = new Set();
      this.#pending.set(entry.key, pending);
    }
    pending.add(entry);
    const ms = this.#limits.startTimeoutMs;
    entry.cancel = this.#schedule(() => {
      if (authenticated()) this.#forget(entry);
      else expire(1008, `no valid start message within ${ms} ms`);
    }, ms);
    return () => {
      entry.cancel();
      this.#open.delete(entry);
      this.#forget(entry);
    };
  }

  /**
   * A TCP connection from the peer `address`, before it upgrades: undefined when the address already
   * holds `maxPendingPerAddress` such connections (the app drops it); else it counts until the
   * returned release is called (on upgrade or close), and `expire` is called if neither happened
   * within the start timeout.
   */
  connect(address: string, expire: () => void): (() => void) | undefined {
    const key = addressKey(address);
    const held = this.#connecting.get(key) ?? 0;
    if (held >= this.#limits.maxPendingPerAddress) return undefined;
    this.#connecting.set(key, held + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      cancel();
      const left = (this.#connecting.get(key) ?? 1) - 1;
      if (left > 0) this.#connecting.set(key, left);
      else this.#connecting.delete(key);
    };
    const cancel = this.#schedule(() => {
      release();
      expire();
    }, this.#limits.startTimeoutMs);
    return release;
  }

  counts(): StreamCounts {
    let pending = 0;
    for (const set of this.#pending.values()) pending += this.#prune(set);
    return { pending, active: this.#open.size - pending };
  }

  /** Closes the longest-open socket not yet authenticated; false when every socket carries a call. */
  #evictOldestPending(): boolean {
    for (const entry of this.#open) {
      if (entry.authenticated()) continue;
      entry.cancel();
      this.#open.delete(entry);
      this.#forget(entry);
      entry.expire(1013, "unauthenticated stream evicted: media process at its connection limit");
      return true;
    }
    return false;
  }

  #prune(set: Set<Tracked>): number {
    for (const entry of set) if (entry.authenticated()) this.#forget(entry);
    return set.size;
  }

  #forget(entry: Tracked): void {
    const set = this.#pending.get(entry.key);
    if (!set?.delete(entry) || set.size > 0) return;
    this.#pending.delete(entry.key);
  }
}
