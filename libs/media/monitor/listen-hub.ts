import type { AudioTaps } from "../session/audio-tap.ts";
import type { MediaLogger } from "../session/context.ts";
import { realTimer, type ScheduleTimer } from "../stream-guard.ts";
import { LISTEN_AUDIO, LISTEN_ENDED, type ListenBus } from "./listen-bus.ts";
import { DELAY_MS, StereoMix } from "./stereo-mix.ts";

// The live listeners of one media process (`monitor.listenUrl`). A listener of a call this process
// holds gets the call's mix from a tap on its session; a listener of a call another process holds
// gets it over the listen bus, from that process. Either way a call's audio is mixed once, only
// while someone listens, and sent every TICK_MS.
//
// Bounds: MAX_LISTENERS_PER_CALL sockets per call per process; a listener whose socket holds more
// than MAX_BUFFERED_BYTES unsent (about a second of audio) is too slow and is closed, never
// buffered for; a relayed call that sends nothing for RELAY_SILENT_LIMIT_MS (its process died) is
// given up.

export const MAX_LISTENERS_PER_CALL = 10;
/** About a second of the stereo mix (64 kB/s). */
export const MAX_BUFFERED_BYTES = 64 * 1024;
const TICK_MS = 20;
/** A relayed call silent this long is asked again (its holder may have missed the demand). */
const RELAY_REDEMAND_MS = 1000;
/** A relayed call silent this long is given up. */
export const RELAY_SILENT_LIMIT_MS = 10_000;

/** Close codes and reasons a listener can get from the hub. */
export const LISTEN_CLOSE = {
  ended: [1000, "call ended"],
  tooMany: [1013, "too many listeners on this call"],
  tooSlow: [1008, "listener too slow: audio is not buffered beyond a second"],
  unavailable: [1011, "call audio unavailable: the media process holding the call does not answer"],
  shutdown: [1001, "media process is shutting down"],
} as const satisfies Record<string, readonly [number, string]>;

/** A listener's websocket. */
export interface ListenerSocket {
  send(data: Buffer): void;
  close(code: number, reason: string): void;
  /** Bytes queued on the socket, not yet sent. */
  readonly bufferedAmount: number;
}

/** What the hub needs of a call session this process holds. */
export interface TappableCall {
  readonly phase: string;
  readonly taps: AudioTaps;
  readonly finished: Promise<void>;
}

export interface ListenHubOptions {
  bus: ListenBus;
  processId: string;
  /** The session of a call this process holds. */
  findCall(callId: string): TappableCall | undefined;
  log: MediaLogger;
  now?: () => number;
  schedule?: ScheduleTimer;
}

class Listener {
  closed = false;
  constructor(readonly socket: ListenerSocket) {}
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close(code, reason);
  }
}

/** A call held here that someone listens to, here or through the bus. */
interface Held {
  callId: string;
  mix: StereoMix;
  untap: () => void;
  listeners: Set<Listener>;
  /** Another process relays it: the mix goes on the bus. */
  remote: boolean;
  /** Bumped by every demand: a PUBLISH that reached nobody stops the relay only if none came since. */
  demands: number;
  ended: boolean;
}

/** A call held by another process, relayed to listeners here. */
interface Relayed {
  callId: string;
  holder: string;
  listeners: Set<Listener>;
  unsubscribe: Promise<(() => Promise<void>) | undefined>;
  lastFrameAt: number;
  demandedAt: number;
  ended: boolean;
}

export class ListenHub {
  readonly #o: ListenHubOptions;
  readonly #now: () => number;
  readonly #schedule: ScheduleTimer;
  readonly #held = new Map<string, Held>();
  readonly #relayed = new Map<string, Relayed>();
  #cancelTick: (() => void) | undefined;
  #stopServing: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(options: ListenHubOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#schedule = options.schedule ?? realTimer;
  }

  /** Starts answering other processes' demands for this process's calls. */
  async start(): Promise<void> {
    this.#stopServing = await this.#o.bus.serve(this.#o.processId, (callId) => this.#onDemand(callId));
  }

  /** Calls being mixed here, and calls relayed from other processes (for tests and metrics). */
  get counts(): { held: number; relayed: number } {
    return { held: this.#held.size, relayed: this.#relayed.size };
  }

  /**
   * A listener of `callId`, whose media process is `holder` (the call's `mediaProcessId`). Returns
   * what the socket's close must call.
   */
  listen(callId: string, holder: string, socket: ListenerSocket): () => void {
    const listener = new Listener(socket);
    if (this.#closed) {
      listener.close(...LISTEN_CLOSE.shutdown);
      return () => {};
    }
    const session = this.#o.findCall(callId);
    if (session) return this.#listenHere(callId, session, listener);
    if (holder === this.#o.processId) {
      // Held here a moment ago: it has ended since.
      listener.close(...LISTEN_CLOSE.ended);
      return () => {};
    }
    return this.#listenThere(callId, holder, listener);
  }

  // ------------------------------------------------------------------ calls held here

  #listenHere(callId: string, session: TappableCall, listener: Listener): () => void {
    if (session.phase === "ending" || session.phase === "ended") {
      listener.close(...LISTEN_CLOSE.ended);
      return () => {};
    }
    const held = this.#hold(callId, session);
    if (held.listeners.size >= MAX_LISTENERS_PER_CALL) {
      listener.close(...LISTEN_CLOSE.tooMany);
      return () => {};
    }
    held.listeners.add(listener);
    return () => {
      listener.closed = true;
      held.listeners.delete(listener);
      this.#releaseIfIdle(held);
    };
  }

  #hold(callId: string, session: TappableCall): Held {
    let held = this.#held.get(callId);
    if (held) return held;
    const mix = new StereoMix(this.#now());
    const h: Held = {
      callId,
      mix,
      untap: session.taps.add(mix),
      listeners: new Set(),
      remote: false,
      demands: 0,
      ended: false,
    };
    held = h;
    this.#held.set(callId, h);
    void session.finished.then(() => this.#endHeld(h));
    this.#ensureTicking();
    return h;
  }

  #onDemand(callId: string): void {
    const session = this.#o.findCall(callId);
    if (!session || session.phase === "ending" || session.phase === "ended") {
      void this.#o.bus.publish(callId, Buffer.of(LISTEN_ENDED)).catch(() => 0);
      return;
    }
    const held = this.#hold(callId, session);
    held.remote = true;
    held.demands++;
  }

  #endHeld(held: Held): void {
    if (held.ended) return;
    held.ended = true;
    // What the mix still holds of the call's last moments goes out first.
    this.#send(held, held.mix.take(this.#now() + DELAY_MS));
    for (const l of held.listeners) l.close(...LISTEN_CLOSE.ended);
    held.listeners.clear();
    if (held.remote) void this.#o.bus.publish(held.callId, Buffer.of(LISTEN_ENDED)).catch(() => 0);
    held.remote = false;
    this.#release(held);
  }

  #releaseIfIdle(held: Held): void {
    if (held.listeners.size === 0 && !held.remote) this.#release(held);
  }

  #release(held: Held): void {
    held.untap();
    if (this.#held.get(held.callId) === held) this.#held.delete(held.callId);
  }

  #send(held: Held, chunk: Buffer | undefined): void {
    if (!chunk) return;
    for (const l of held.listeners) this.#deliver(l, chunk, held.listeners);
    if (!held.remote) return;
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = LISTEN_AUDIO;
    chunk.copy(frame, 1);
    const demands = held.demands;
    this.#o.bus.publish(held.callId, frame).then(
      (n) => {
        // Nobody receives it any more (every relay left, or its process died): stop publishing.
        if (n === 0 && held.demands === demands && held.remote) {
          held.remote = false;
          this.#releaseIfIdle(held);
        }
      },
      (err: unknown) => this.#o.log.debug({ err, callId: held.callId }, "listen relay publish failed"),
    );
  }

  #deliver(l: Listener, chunk: Buffer, set: Set<Listener>): void {
    if (l.closed) {
      set.delete(l);
      return;
    }
    if (l.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      set.delete(l);
      l.close(...LISTEN_CLOSE.tooSlow);
      return;
    }
    l.socket.send(chunk);
  }

  // ------------------------------------------------------------------ calls held elsewhere

  #listenThere(callId: string, holder: string, listener: Listener): () => void {
    let relay = this.#relayed.get(callId);
    if (!relay) relay = this.#relay(callId, holder);
    if (relay.listeners.size >= MAX_LISTENERS_PER_CALL) {
      listener.close(...LISTEN_CLOSE.tooMany);
      return () => {};
    }
    relay.listeners.add(listener);
    const r = relay;
    return () => {
      listener.closed = true;
      r.listeners.delete(listener);
      if (r.listeners.size === 0) this.#dropRelay(r);
    };
  }

  #relay(callId: string, holder: string): Relayed {
    const now = this.#now();
    const relay: Relayed = {
      callId,
      holder,
      listeners: new Set(),
      unsubscribe: Promise.resolve(undefined),
      lastFrameAt: now,
      demandedAt: now,
      ended: false,
    };
    this.#relayed.set(callId, relay);
    // Subscribed before the demand, so the holder's first frame finds us.
    relay.unsubscribe = this.#o.bus
      .subscribe(callId, (frame) => this.#onRelayFrame(relay, frame))
      .then(
        async (unsubscribe) => {
          if (!relay.ended) await this.#demand(relay);
          return unsubscribe;
        },
        (err: unknown) => {
          this.#o.log.warn({ err, callId }, "listen relay subscribe failed");
          this.#endRelay(relay, LISTEN_CLOSE.unavailable);
          return undefined;
        },
      );
    this.#ensureTicking();
    return relay;
  }

  async #demand(relay: Relayed): Promise<void> {
    relay.demandedAt = this.#now();
    try {
      if (await this.#o.bus.demand(relay.holder, relay.callId)) return;
    } catch (err) {
      this.#o.log.debug({ err, callId: relay.callId }, "listen demand failed");
    }
    // The holder's process is gone (or Redis is): the call cannot be heard from here.
    this.#endRelay(relay, LISTEN_CLOSE.unavailable);
  }

  #onRelayFrame(relay: Relayed, frame: Buffer): void {
    if (relay.ended || frame.length === 0) return;
    if (frame[0] === LISTEN_ENDED) {
      this.#endRelay(relay, LISTEN_CLOSE.ended);
      return;
    }
    if (frame[0] !== LISTEN_AUDIO) return;
    relay.lastFrameAt = this.#now();
    const chunk = frame.subarray(1);
    for (const l of relay.listeners) this.#deliver(l, chunk, relay.listeners);
  }

  #endRelay(relay: Relayed, [code, reason]: readonly [number, string]): void {
    if (relay.ended) return;
    for (const l of relay.listeners) l.close(code, reason);
    relay.listeners.clear();
    this.#dropRelay(relay);
  }

  #dropRelay(relay: Relayed): void {
    if (relay.ended) return;
    relay.ended = true;
    if (this.#relayed.get(relay.callId) === relay) this.#relayed.delete(relay.callId);
    void relay.unsubscribe.then((u) => u?.()).catch(() => {});
  }

  // ------------------------------------------------------------------ the clock

  #ensureTicking(): void {
    if (this.#cancelTick || this.#closed) return;
    this.#cancelTick = this.#schedule(() => this.#tick(), TICK_MS);
  }

  #tick(): void {
    this.#cancelTick = undefined;
    const now = this.#now();
    for (const held of this.#held.values()) this.#send(held, held.mix.take(now));
    for (const relay of this.#relayed.values()) {
      const silent = now - relay.lastFrameAt;
      if (silent >= RELAY_SILENT_LIMIT_MS) this.#endRelay(relay, LISTEN_CLOSE.unavailable);
      else if (silent >= RELAY_REDEMAND_MS && now - relay.demandedAt >= RELAY_REDEMAND_MS) {
        void this.#demand(relay);
      }
    }
    if (this.#held.size > 0 || this.#relayed.size > 0) this.#ensureTicking();
  }

  /** The process is stopping: every listener is closed (1001) and demands are no longer served. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTick?.();
    this.#cancelTick = undefined;
    for (const held of [...this.#held.values()]) {
      for (const l of held.listeners) l.close(...LISTEN_CLOSE.shutdown);
      held.listeners.clear();
      held.remote = false;
      this.#release(held);
    }
    for (const relay of [...this.#relayed.values()]) this.#endRelay(relay, LISTEN_CLOSE.shutdown);
    await this.#stopServing?.().catch(() => {});
  }
}
