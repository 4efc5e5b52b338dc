import { EventEmitter } from "node:events";
import { type Static, Type } from "@sinclair/typebox";
import type { Redis } from "ioredis";
import { watchDuplicate } from "../redis/index.ts";

// Live call control (`POST /call/:id/control`) reaches whichever media process holds the call over
// Redis pub/sub, channel `switchboard:call-control:<callId>`. Without Redis (npm start: one process)
// the same interface runs on an in-process EventEmitter shared by every app in the process.

const E164 = "^\\+[1-9]\\d{1,14}$";

/** Vapi's live-control shapes (`monitor.controlUrl`). */
export const CallControlMessage = Type.Union(
  [
    Type.Object(
      {
        type: Type.Literal("say"),
        content: Type.String({ minLength: 1, maxLength: 5000 }),
        endCallAfterSpoken: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal("add-message"),
        message: Type.Object(
          {
            role: Type.Union([
              Type.Literal("system"),
              Type.Literal("user"),
              Type.Literal("assistant"),
              Type.Literal("tool"),
            ]),
            content: Type.String({ maxLength: 20000 }),
          },
          { additionalProperties: false },
        ),
        triggerResponseEnabled: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    Type.Object({ type: Type.Literal("end-call") }, { additionalProperties: false }),
    Type.Object(
      {
        type: Type.Literal("transfer"),
        destination: Type.Object(
          {
            type: Type.Literal("number"),
            number: Type.String({ pattern: E164 }),
            extension: Type.Optional(Type.String({ maxLength: 10 })),
            // Vapi's TransferDestinationNumber limits: callerId 40, spoken messages 1000.
            callerId: Type.Optional(Type.String({ maxLength: 40 })),
            message: Type.Optional(Type.String({ maxLength: 1000 })),
          },
          { additionalProperties: false },
        ),
        content: Type.Optional(Type.String({ maxLength: 5000 })),
      },
      { additionalProperties: false },
    ),
  ],
  { title: "CallControlMessage" },
);
export type CallControlMessage = Static<typeof CallControlMessage>;

export function controlChannel(callId: string): string {
  return `switchboard:call-control:${callId}`;
}

/** Subscribed for its whole life by each media process: how another process tells it is gone. */
export function processChannel(processId: string): string {
  return `switchboard:media-process:${processId}`;
}

export type ControlHandler = (msg: CallControlMessage) => void;

export interface ControlBus {
  /** Delivers `msg` to the process holding the call; resolves with how many subscribers received it. */
  publish(callId: string, msg: CallControlMessage): Promise<number>;
  /** Listens for control messages of one call; resolves with an unsubscribe function. */
  subscribe(callId: string, handler: ControlHandler): Promise<() => Promise<void>>;
  /**
   * Marks a media process alive for as long as this bus is open. A process that dies (even by
   * SIGKILL) loses its Redis connection at once, and with it the subscription `isAlive` counts.
   * Resolves with the function that withdraws it (a process closing down).
   */
  announce(processId: string): Promise<() => Promise<void>>;
  /** Whether a media process is still connected; rejects when that cannot be told (Redis down). */
  isAlive(processId: string): Promise<boolean>;
  close(): Promise<void>;
}

function parse(raw: string): CallControlMessage | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    return v !== null && typeof v === "object" ? (v as CallControlMessage) : undefined;
  } catch {
    return undefined;
  }
}

/** How long unsubscribing from a call's channel may hold up the end of the call. */
const UNSUBSCRIBE_WAIT_MS = 1000;

/** One process, no Redis. Use the shared `inProcessControlBus` so API and media see each other. */
export class InProcessControlBus implements ControlBus {
  readonly #emitter = new EventEmitter();
  readonly #processes = new Set<string>();
  constructor() {
    this.#emitter.setMaxListeners(0);
  }
  async announce(processId: string): Promise<() => Promise<void>> {
    this.#processes.add(processId);
    return async () => {
      this.#processes.delete(processId);
    };
  }
  async isAlive(processId: string): Promise<boolean> {
    return this.#processes.has(processId);
  }
  async publish(callId: string, msg: CallControlMessage): Promise<number> {
    const channel = controlChannel(callId);
    const n = this.#emitter.listenerCount(channel);
    // Same wire as Redis: handlers get their own copy, asynchronously.
    const raw = JSON.stringify(msg);
    if (n > 0) queueMicrotask(() => this.#emitter.emit(channel, raw));
    return n;
  }
  async subscribe(callId: string, handler: ControlHandler): Promise<() => Promise<void>> {
    const channel = controlChannel(callId);
    const listener = (raw: string): void => {
      const msg = parse(raw);
      if (msg) handler(msg);
    };
    this.#emitter.on(channel, listener);
    return async () => {
      this.#emitter.off(channel, listener);
    };
  }
  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
    this.#processes.clear();
  }
}

/**
 * Redis pub/sub. Publishing uses the given connection; subscribing opens one dedicated subscriber
 * connection per bus (lazily) and multiplexes every call's channel over it.
 */
export class RedisControlBus implements ControlBus {
  readonly #redis: Redis;
  #subscriber: Redis | undefined;
  readonly #handlers = new Map<string, Set<ControlHandler>>();

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  publish(callId: string, msg: CallControlMessage): Promise<number> {
    return this.#redis.publish(controlChannel(callId), JSON.stringify(msg));
  }

  #sub(): Redis {
    if (!this.#subscriber) {
      const sub = this.#redis.duplicate({ enableReadyCheck: false, lazyConnect: false });
      sub.on("message", (channel: string, raw: string) => {
        const set = this.#handlers.get(channel);
        if (!set || set.size === 0) return;
        const msg = parse(raw);
        if (!msg) return;
        for (const h of set) h(msg);
      });
      // A dropped subscriber reconnects and ioredis re-subscribes its channels; its errors are
      // reported with its parent's (once per outage).
      watchDuplicate(this.#redis, sub, "control-bus");
      this.#subscriber = sub;
    }
    return this.#subscriber;
  }

  async subscribe(callId: string, handler: ControlHandler): Promise<() => Promise<void>> {
    const channel = controlChannel(callId);
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
      // Waited for a moment only: with no handler left the channel is inert already, and a call
      // ending while Redis is unreachable must not wait for ioredis to give up on the command (~10 s).
      const done = this.#subscriber?.unsubscribe(channel).catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, UNSUBSCRIBE_WAIT_MS)))]);
      clearTimeout(timer);
    };
  }

  async announce(processId: string): Promise<() => Promise<void>> {
    const channel = processChannel(processId);
    await this.#sub().subscribe(channel);
    return async () => {
      await this.#subscriber?.unsubscribe(channel);
    };
  }

  async isAlive(processId: string): Promise<boolean> {
    const reply = (await this.#redis.pubsub("NUMSUB", processChannel(processId))) as [string, number];
    return Number(reply[1]) > 0;
  }

  async close(): Promise<void> {
    this.#handlers.clear();
    const sub = this.#subscriber;
    this.#subscriber = undefined;
    sub?.disconnect();
  }
}

/** The process-wide bus used when there is no Redis (shared by API and media in `npm start`). */
export const inProcessControlBus = new InProcessControlBus();

/** Redis when configured, else the shared in-process bus. */
export function controlBusFor(redis: Redis | undefined): ControlBus {
  return redis ? new RedisControlBus(redis) : inProcessControlBus;
}
