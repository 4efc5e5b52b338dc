import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import { watchDuplicate } from "../../redis/index.ts";

// How a listener reaches a call held by another media process (replicas behind one load balancer:
// the listen socket lands on any of them). Over Redis pub/sub:
// - `switchboard:listen-demand:<processId>`: each media process subscribes to its own for its whole
//   life; another process publishes a call id there when a listener of that call arrives;
// - `switchboard:listen:<callId>`: the holder publishes the call's mix there (frames below) while
//   anyone receives it: PUBLISH answers how many subscribers got a frame, and at 0 the holder stops.
//   Nothing is published for a call nobody listens to.
// Without Redis (npm start: one process) the same runs on an in-process emitter.

/** A frame on a call's listen channel: its first byte says what it is. */
export const LISTEN_AUDIO = 1;
/** The call ended (or is not held by the process asked): listeners close. */
export const LISTEN_ENDED = 2;

export function listenChannel(callId: string): string {
  return `switchboard:listen:${callId}`;
}

export function demandChannel(processId: string): string {
  return `switchboard:listen-demand:${processId}`;
}

export interface ListenBus {
  /** Delivers listen demands for this process's calls to `onDemand`; resolves with the unsubscribe. */
  serve(processId: string, onDemand: (callId: string) => void): Promise<() => Promise<void>>;
  /** Asks the process holding a call for its mix; resolves with whether that process was reached. */
  demand(processId: string, callId: string): Promise<boolean>;
  /** One frame of a call's listen channel; resolves with how many processes received it. */
  publish(callId: string, frame: Buffer): Promise<number>;
  /** Receives a call's listen frames; resolves with the unsubscribe. */
  subscribe(callId: string, onFrame: (frame: Buffer) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

type Handler = (payload: Buffer) => void;

/** One process, no Redis: use the shared `inProcessListenBus`. */
export class InProcessListenBus implements ListenBus {
  readonly #emitter = new EventEmitter();
  constructor() {
    this.#emitter.setMaxListeners(0);
  }
  #on(channel: string, handler: Handler): () => Promise<void> {
    this.#emitter.on(channel, handler);
    return async () => {
      this.#emitter.off(channel, handler);
    };
  }
  #emit(channel: string, payload: Buffer): number {
    const n = this.#emitter.listenerCount(channel);
    // As over Redis: delivered asynchronously, a copy each.
    if (n > 0) {
      const copy = Buffer.from(payload);
      queueMicrotask(() => this.#emitter.emit(channel, copy));
    }
    return n;
  }
  async serve(processId: string, onDemand: (callId: string) => void): Promise<() => Promise<void>> {
    return this.#on(demandChannel(processId), (p) => onDemand(p.toString()));
  }
  async demand(processId: string, callId: string): Promise<boolean> {
    return this.#emit(demandChannel(processId), Buffer.from(callId)) > 0;
  }
  async publish(callId: string, frame: Buffer): Promise<number> {
    return this.#emit(listenChannel(callId), frame);
  }
  async subscribe(callId: string, onFrame: (frame: Buffer) => void): Promise<() => Promise<void>> {
    return this.#on(listenChannel(callId), onFrame);
  }
  async close(): Promise<void> {}
}

/**
 * Redis pub/sub: publishing on the given connection, receiving on one subscriber connection of its
 * own (opened on first use) that carries every channel of this process.
 */
export class RedisListenBus implements ListenBus {
  readonly #redis: Redis;
  #subscriber: Redis | undefined;
  readonly #handlers = new Map<string, Set<Handler>>();

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  #sub(): Redis {
    if (!this.#subscriber) {
      const sub = this.#redis.duplicate({ enableReadyCheck: false, lazyConnect: false });
      sub.on("messageBuffer", (channel: Buffer, payload: Buffer) => {
        const set = this.#handlers.get(channel.toString());
        if (set) for (const h of set) h(payload);
      });
      // A dropped subscriber reconnects and ioredis subscribes its channels again; its errors are
      // reported with its parent's (once per outage).
      watchDuplicate(this.#redis, sub, "listen-bus");
      this.#subscriber = sub;
    }
    return this.#subscriber;
  }

  async #on(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
    }
    const first = set.size === 0;
    set.add(handler);
    if (first) await this.#sub().subscribe(channel);
    return async () => {
      const s = this.#handlers.get(channel);
      if (!s?.delete(handler) || s.size > 0) return;
      this.#handlers.delete(channel);
      await this.#subscriber?.unsubscribe(channel);
    };
  }

  serve(processId: string, onDemand: (callId: string) => void): Promise<() => Promise<void>> {
    return this.#on(demandChannel(processId), (p) => onDemand(p.toString()));
  }

  async demand(processId: string, callId: string): Promise<boolean> {
    return (await this.#redis.publish(demandChannel(processId), callId)) > 0;
  }

  publish(callId: string, frame: Buffer): Promise<number> {
    return this.#redis.publish(listenChannel(callId), frame);
  }

  subscribe(callId: string, onFrame: (frame: Buffer) => void): Promise<() => Promise<void>> {
    return this.#on(listenChannel(callId), onFrame);
  }

  async close(): Promise<void> {
    this.#handlers.clear();
    const sub = this.#subscriber;
    this.#subscriber = undefined;
    sub?.disconnect();
  }
}

/** The process-wide bus used without Redis. */
export const inProcessListenBus = new InProcessListenBus();

export function listenBusFor(redis: Redis | undefined): ListenBus {
  return redis ? new RedisListenBus(redis) : inProcessListenBus;
}
