// A client of Vapi's websocket transport as a browser page or a server SDK user would write one:
// it opens `websocketCallUrl`, streams its microphone as binary frames (20 ms every 20 ms of wall
// clock, silence unless `say()`), collects the assistant's binary audio and the JSON text frames.
import { WebSocket } from "ws";
import {
  encodeUtteranceFrames,
  type FakeAudioFormat,
  type FakeDeepgram,
  silenceFrame,
} from "../fakes/index.ts";

const FRAME_MS = 20;

export interface WebCallClientOptions {
  format: FakeAudioFormat;
  /** Words the caller says are registered here (the fake transcriber "hears" them). */
  utterances: FakeDeepgram;
  origin?: string;
  /** Stream the microphone (default true); false: the client never sends audio. */
  microphone?: boolean;
  /** Cut the microphone's stream into binary frames of this many bytes (odd sizes too), not 20 ms ones. */
  chunkBytes?: number;
}

export class WebCallClient {
  readonly ws: WebSocket;
  readonly format: FakeAudioFormat;
  /** The close as the client saw it. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Binary frames received (the assistant's audio), in order. */
  readonly frames: Buffer[] = [];
  /** Wall time of each received frame. */
  readonly frameTimes: number[] = [];
  /** JSON text frames received (client messages). */
  readonly messages: Array<Record<string, unknown>> = [];
  /** Bytes of audio sent. */
  sentBytes = 0;
  readonly #opts: WebCallClientOptions;
  readonly #silence: Buffer;
  readonly #queue: Array<{ frame: Buffer; done?: () => void }> = [];
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #framesSent = 0;
  /** `chunkBytes`: audio not sent yet. */
  #pending = Buffer.alloc(0);

  private constructor(ws: WebSocket, opts: WebCallClientOptions) {
    this.ws = ws;
    this.#opts = opts;
    this.format = opts.format;
    this.#silence = silenceFrame(opts.format);
    this.closed = new Promise((resolve) => {
      ws.once("close", (code, reason) => {
        this.#stopMic();
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.frames.push(data);
        this.frameTimes.push(Date.now());
        return;
      }
      try {
        this.messages.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>);
      } catch {
        // Not JSON: nothing a client can read.
      }
    });
  }

  /** Connects; resolves once open (or with the close, for a refused client). */
  static async connect(url: string, opts: WebCallClientOptions): Promise<WebCallClient> {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      headers: opts.origin ? { origin: opts.origin } : {},
    });
    const client = new WebCallClient(ws, opts);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    if (opts.microphone ?? true) client.#startMic();
    return client;
  }

  /** Bytes of assistant audio received. */
  get receivedBytes(): number {
    return this.frames.reduce((n, f) => n + f.length, 0);
  }

  /** The caller says `text` (registered with the fake transcriber); resolves once its last frame was sent. */
  say(text: string, durationMs?: number): Promise<void> {
    const id = this.#opts.utterances.allocateUtterance(text);
    const words = text.split(/\s+/).filter(Boolean).length;
    const frames = encodeUtteranceFrames(id, durationMs ?? Math.max(400, words * 300), this.format);
    return new Promise((resolve) => {
      frames.forEach((frame, i) => {
        this.#queue.push({ frame, done: i === frames.length - 1 ? resolve : undefined });
      });
    });
  }

  /** Sends a JSON control message as a text frame. */
  control(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  hangup(): void {
    this.control({ type: "hangup" });
  }

  /** Client messages of `type` received so far. */
  messagesOf(type: string): Array<Record<string, unknown>> {
    return this.messages.filter((m) => m.type === type);
  }

  /** Stops the microphone (the client keeps the socket). */
  mute(): void {
    this.#stopMic();
  }

  close(code = 1000): void {
    this.#stopMic();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
  }

  #startMic(): void {
    this.#startedAt = Date.now();
    // Catches up on missed ticks: the far end hears a steady 50 frames a second.
    this.#timer = setInterval(() => {
      const due = Math.floor((Date.now() - this.#startedAt) / FRAME_MS);
      while (this.#framesSent < due && this.ws.readyState === WebSocket.OPEN) {
        const next = this.#queue.shift();
        const frame = next?.frame ?? this.#silence;
        this.#send(frame);
        this.#framesSent++;
        next?.done?.();
      }
    }, FRAME_MS);
  }

  #send(frame: Buffer): void {
    const size = this.#opts.chunkBytes;
    if (!size) {
      this.ws.send(frame, { binary: true });
      this.sentBytes += frame.length;
      return;
    }
    this.#pending = Buffer.concat([this.#pending, frame]);
    while (this.#pending.length >= size) {
      this.ws.send(this.#pending.subarray(0, size), { binary: true });
      this.sentBytes += size;
      this.#pending = this.#pending.subarray(size);
    }
  }

  #stopMic(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
