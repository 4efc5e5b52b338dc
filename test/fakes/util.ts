// Small helpers shared by the loopback fakes. Nothing here is provider specific.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocketServer } from "ws";

/** Listens on 127.0.0.1 with a kernel-chosen port and returns that port. */
export function listenLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes the server and drops keep-alive sockets so `close()` never hangs a test. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A loopback server for a fake that only speaks websockets: plain HTTP requests are a 404. */
export async function listenForUpgrades(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  return { server, port: await listenLoopback(server) };
}

/** Cuts every client of `wss` off, then closes the server. */
export async function closeWebSocketServer(wss: WebSocketServer, server: Server): Promise<void> {
  for (const client of wss.clients) client.terminate();
  wss.close();
  await closeServer(server);
}

/** Tests waiting for the next connection (or session) a fake accepts. */
export class Arrivals<T> {
  readonly #waiters: Array<(item: T) => void> = [];
  /** The timeout's message, e.g. `FakeDeepgram: no connection`. */
  readonly #missing: string;

  constructor(missing: string) {
    this.#missing = missing;
  }

  /** Resolves with the next arrival after this call. */
  next(timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(this.#missing)), timeoutMs);
      this.#waiters.push((item) => {
        clearTimeout(t);
        resolve(item);
      });
    });
  }

  /** Hands `item` to every test waiting. */
  arrived(item: T): void {
    for (const w of this.#waiters.splice(0)) w(item);
  }
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Refuses a websocket upgrade with a plain HTTP status, as real providers do for a bad key. */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  reason: string,
  body = "",
  headers: Record<string, string> = {},
): void {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * One interval shared by every subscriber, so 100 simulated calls cost one timer instead of 100.
 * The interval only runs while someone is subscribed. Subscribers get `Date.now()` and must
 * catch up on their own (timers drift under load).
 */
export class SharedTicker {
  readonly #subscribers = new Set<(now: number) => void>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly intervalMs: number) {}

  subscribe(fn: (now: number) => void): () => void {
    this.#subscribers.add(fn);
    if (!this.#timer) {
      this.#timer = setInterval(() => {
        const now = Date.now();
        for (const sub of this.#subscribers) sub(now);
      }, this.intervalMs);
    }
    return () => {
      this.#subscribers.delete(fn);
      if (this.#subscribers.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }
}

/** μ-law magnitude (`~byte & 0x7f`; 0xFF and 0x7F are silence) at or above which a byte is "voice". */
export const VOICE_MAGNITUDE = 16;

export function isVoicedByte(byte: number): boolean {
  return (~byte & 0x7f) >= VOICE_MAGNITUDE;
}

/** Index of the first voiced byte in `buf[from..to)`, or -1. */
export function firstVoicedIndex(buf: Uint8Array, from = 0, to = buf.length): number {
  for (let i = from; i < to; i++) {
    if ((~(buf[i] as number) & 0x7f) >= VOICE_MAGNITUDE) return i;
  }
  return -1;
}

/** The linear16 equivalent of VOICE_MAGNITUDE: μ-law magnitude code 16 decodes to ±132. */
export const PCM_VOICE_MAGNITUDE = 132;

/** G.711 μ-law byte → 16-bit sample (ITU-T G.711 decoding, with the usual 0x84 bias). */
export function decodeMulawByte(byte: number): number {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** The tone of `makeToneBuffer` in 16-bit little-endian PCM (`bytes` even); same loudness. */
export function makePcmToneBuffer(bytes: number): Buffer {
  const mulaw = makeToneBuffer(bytes >> 1);
  const buf = Buffer.allocUnsafe(bytes & ~1);
  for (let i = 0; i < mulaw.length; i++) buf.writeInt16LE(decodeMulawByte(mulaw[i] as number), i * 2);
  return buf;
}

/**
 * A deterministic loud μ-law "tone": a repeating 8-sample square-ish wave well above the VAD
 * threshold. Any length; callers slice it (subarray, no copy).
 */
export function makeToneBuffer(bytes: number): Buffer {
  const pattern = [0x1f, 0x2f, 0x1f, 0x0f, 0x9f, 0xaf, 0x9f, 0x8f];
  const buf = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) buf[i] = pattern[i % pattern.length] as number;
  return buf;
}
