// The websocket TTS adapters (Cartesia, Deepgram, ElevenLabs) keep ONE socket per call and
// connection key: dialed by `prewarm` at call start, reused by every `open`, re-dialed when it died.
// Sockets are registered under the call's AbortSignal (a WeakMap: nothing outlives the call), and
// the signal's abort shuts down every socket the call dialed, so no adapter keeps its own teardown.
import { abortError } from "./types.ts";

/** What the pool needs of an adapter's socket. */
export interface PooledSocket {
  readonly open: boolean;
  /** The dial's handshake time, reported by the first stream on the socket. */
  readonly connectMs: number;
  shutdown(): void;
}

/** One call's sockets of one adapter. */
export interface CallSockets<S> {
  /** By connection key: the socket being dialed or open (undefined when the dial failed). */
  readonly byKey: Map<string, Promise<S | undefined>>;
  /** The sockets to shut down when the call's signal aborts. */
  readonly all: Set<S>;
}

/** Dials a socket for the call; registers it in `call.all` unless the call aborted meanwhile. */
export type DialSocket<S> = (call: CallSockets<S>) => Promise<S>;

export class CallSocketPool<S extends PooledSocket> {
  readonly #calls = new WeakMap<AbortSignal, CallSockets<S>>();

  /** The call's sockets, created on first use. */
  of(signal: AbortSignal): CallSockets<S> {
    let call = this.#calls.get(signal);
    if (!call) {
      const created: CallSockets<S> = { byKey: new Map(), all: new Set() };
      call = created;
      this.#calls.set(signal, created);
      signal.addEventListener(
        "abort",
        () => {
          for (const socket of created.all) socket.shutdown();
          created.all.clear();
          created.byKey.clear();
        },
        { once: true },
      );
    }
    return call;
  }

  /** Dials ahead of the call's first reply, unless the key's socket is already dialing or open. */
  prewarm(signal: AbortSignal, key: string, dial: DialSocket<S>): void {
    const call = this.of(signal);
    if (call.byKey.has(key)) return;
    call.byKey.set(
      key,
      dial(call).catch(() => undefined),
    );
  }

  /** A new socket for the key; the next `open` finds it (or, if the dial fails, dials again). */
  dial(call: CallSockets<S>, key: string, dial: DialSocket<S>): Promise<S> {
    const dialing = dial(call);
    call.byKey.set(
      key,
      dialing.catch(() => undefined),
    );
    return dialing;
  }

  /** A dialed socket joins the call, or is shut down when the call ended during the dial. */
  adopt(call: CallSockets<S>, signal: AbortSignal, socket: S): S {
    if (signal.aborted) {
      socket.shutdown();
      throw abortError();
    }
    call.all.add(socket);
    return socket;
  }

  /**
   * The call's open socket for the key, or a new one when there is none or it died; with the
   * connect time a stream reports: the dial's handshake, or the wait since `started` when reused.
   */
  async acquire(
    signal: AbortSignal,
    key: string,
    started: number,
    dial: DialSocket<S>,
  ): Promise<{ socket: S; connectMs: number }> {
    const call = this.of(signal);
    let reused = true;
    let socket = await call.byKey.get(key);
    if (!socket?.open) {
      reused = false;
      socket = await this.dial(call, key, dial);
    }
    // The call's abort has already shut the socket down.
    if (signal.aborted) throw abortError();
    return { socket, connectMs: reused ? performance.now() - started : socket.connectMs };
  }
}
