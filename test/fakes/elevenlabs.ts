/**
 * FakeElevenLabs — loopback ElevenLabs TTS.
 *
 * - WebSocket `ws://127.0.0.1:PORT/v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=ulaw_8000`
 *   Client: first `{text:" ", voice_settings?, generation_config?, xi_api_key?}` (BOS), then
 *   `{text, try_trigger_generation?, flush?}`, `{text:" "}` keep-alive, `{text:""}` end (EOS).
 *   Server: `{audio: base64, isFinal: null, normalizedAlignment, alignment}` per chunk, `{isFinal:true}`
 *   after EOS, then close 1000. Auth: `xi-api-key` header or the BOS `xi_api_key` (also `xi-api-key`).
 *   Text is buffered and generated when the buffer reaches `generation_config.chunk_length_schedule`
 *   (default [120,160,250,290]), or on `flush`, `try_trigger_generation`, `auto_mode=true`, or EOS.
 * - HTTP `POST /v1/text-to-speech/{voice_id}/stream?output_format=ulaw_8000` → chunked raw audio;
 *   `POST /v1/text-to-speech/{voice_id}` → the whole clip. Point `@elevenlabs/elevenlabs-js` at
 *   `fake.baseUrl` (`baseUrl` option).
 *
 * Audio is deterministic: `msPerChar` ms of loud μ-law tone per character (spaces and punctuation
 * included), first chunk `ttfbMs` after the generation was triggered (and never before the previous
 * generation on the same socket finished), then one `chunkMs`-long chunk every `chunkIntervalMs`.
 * Every non-`ulaw_8000` output format also gets μ-law bytes (the format is recorded, not honoured).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  closeServer,
  headerValue,
  listenLoopback,
  makeToneBuffer,
  readBody,
  rejectUpgrade,
  sendJson,
  sleep,
} from "./util.ts";

export interface FakeElevenLabsOptions {
  /** Keys answered with 401 (HTTP / upgrade) or an error + close 1008 (key sent in BOS). */
  rejectKeys?: Iterable<string>;
  /** Audio per character. Default 60 ms. */
  msPerChar?: number;
  /** Time to first byte after a generation is triggered. Default 0. */
  ttfbMs?: number;
  /** Audio per chunk. Default 250 ms. */
  chunkMs?: number;
  /** Wall time between chunks of one generation. Default 0 (faster than real time, like the real API). */
  chunkIntervalMs?: number;
}

export interface Alignment {
  charStartTimesMs: number[];
  charDurationsMs: number[];
  chars: string[];
}

export interface ElevenLabsGeneration {
  text: string;
  triggeredAt: number;
  firstAudioAt?: number;
  doneAt?: number;
  audioBytes: number;
}

const TONE_CACHE: { buf: Buffer; b64: Map<number, string> } = { buf: makeToneBuffer(16_000), b64: new Map() };

function toneBase64(bytes: number): string {
  let s = TONE_CACHE.b64.get(bytes);
  if (s === undefined) {
    if (bytes > TONE_CACHE.buf.length) TONE_CACHE.buf = makeToneBuffer(bytes);
    s = TONE_CACHE.buf.toString("base64", 0, bytes);
    TONE_CACHE.b64.set(bytes, s);
  }
  return s;
}

function toneBytes(bytes: number): Buffer {
  if (bytes > TONE_CACHE.buf.length) TONE_CACHE.buf = makeToneBuffer(bytes);
  return TONE_CACHE.buf.subarray(0, bytes);
}

interface ClientMessage {
  text?: string;
  flush?: boolean;
  try_trigger_generation?: boolean;
  voice_settings?: Record<string, unknown>;
  generation_config?: { chunk_length_schedule?: number[] };
  xi_api_key?: string;
  "xi-api-key"?: string;
  authorization?: string;
}

export class ElevenLabsConnection {
  readonly id = randomUUID();
  readonly voiceId: string;
  readonly params: Record<string, string>;
  readonly headerKey: string | undefined;
  key: string | undefined;
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  closeCode: number | undefined;
  /** Every JSON message received, parsed. */
  readonly received: ClientMessage[] = [];
  voiceSettings: Record<string, unknown> | undefined;
  /** Billable characters: all text after the BOS, excluding `" "` keep-alives. */
  charsReceived = 0;
  charsSynthesized = 0;
  audioBytesSent = 0;
  readonly generations: ElevenLabsGeneration[] = [];
  /** Messages sent (audio payloads replaced by their byte length, to keep memory flat). */
  readonly sent: Array<{ audioBytes: number; isFinal: boolean | null; chars?: string[] }> = [];
  lastActivityAt = Date.now();

  readonly #ws: WebSocket;
  readonly #fake: FakeElevenLabs;
  #buffer = "";
  #schedule = [120, 160, 250, 290];
  #scheduleIdx = 0;
  #chain: Promise<void> = Promise.resolve();
  #bos = false;
  #eos = false;
  readonly #autoMode: boolean;

  constructor(ws: WebSocket, req: IncomingMessage, voiceId: string, fake: FakeElevenLabs) {
    this.#ws = ws;
    this.#fake = fake;
    this.voiceId = voiceId;
    this.params = Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams);
    this.headerKey = headerValue(req, "xi-api-key");
    this.key = this.headerKey;
    this.#autoMode = this.params.auto_mode === "true";
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.#onMessage((data as Buffer).toString("utf8"));
    });
    ws.on("close", (code) => {
      this.closedAt = Date.now();
      this.closeCode = code;
      fake.connectionClosed(this);
    });
    ws.on("error", () => {});
  }

  get text(): string {
    return this.generations.map((g) => g.text).join("");
  }

  /** Resolves when all generations triggered so far have been sent. */
  idle(): Promise<void> {
    return this.#chain;
  }

  inactivityTimeout(): void {
    const seconds = Number(this.params.inactivity_timeout ?? 20);
    this.#error(
      `Have not received a new text input within the timeout of ${seconds} seconds. Streaming input terminated.`,
      "input_timeout_exceeded",
    );
  }

  #error(message: string, code: string): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.send(JSON.stringify({ message, error: code, code: 1008 }));
    this.#ws.close(1008, message.slice(0, 120));
  }

  #onMessage(raw: string): void {
    this.lastActivityAt = Date.now();
    let msg: ClientMessage;
    try {
      msg = JSON.parse(raw) as ClientMessage;
    } catch {
      this.#error("Invalid JSON message", "invalid_message");
      return;
    }
    this.received.push(msg);
    if (this.#eos) return;
    if (!this.#bos) {
      this.#bos = true;
      const k = msg.xi_api_key ?? msg["xi-api-key"] ?? msg.authorization;
      if (k) this.key = k;
      if (!this.key || this.#fake.rejectKeys.has(this.key)) {
        this.#error("Invalid API key", "invalid_api_key");
        return;
      }
      this.voiceSettings = msg.voice_settings;
      const schedule = msg.generation_config?.chunk_length_schedule;
      if (Array.isArray(schedule) && schedule.length > 0) this.#schedule = schedule;
      // The BOS text is a single space and is not billed; anything else is taken as text.
      if (msg.text && msg.text !== " ") this.#append(msg.text);
      return;
    }
    const text = msg.text ?? "";
    if (text === "" && !msg.flush) {
      this.#eos = true;
      this.#trigger();
      this.#chain = this.#chain.then(() => {
        this.#send(JSON.stringify({ isFinal: true }), 0, true);
        if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
      });
      return;
    }
    if (text !== " ") this.#append(text);
    if (msg.flush || msg.try_trigger_generation || this.#autoMode) {
      this.#trigger();
      return;
    }
    const threshold = this.#schedule[Math.min(this.#scheduleIdx, this.#schedule.length - 1)] ?? 120;
    if (this.#buffer.length >= threshold) {
      this.#scheduleIdx++;
      this.#trigger();
    }
  }

  #append(text: string): void {
    this.charsReceived += text.length;
    this.#buffer += text;
  }

  #trigger(): void {
    const text = this.#buffer;
    this.#buffer = "";
    if (text.trim() === "") return;
    const gen: ElevenLabsGeneration = { text, triggeredAt: Date.now(), audioBytes: 0 };
    this.generations.push(gen);
    this.charsSynthesized += text.length;
    this.#chain = this.#chain.then(() => this.#generate(gen));
  }

  async #generate(gen: ElevenLabsGeneration): Promise<void> {
    const f = this.#fake;
    const wait = gen.triggeredAt + f.ttfbMs - Date.now();
    if (wait > 0) await sleep(wait);
    const chars = [...gen.text];
    const totalMs = chars.length * f.msPerChar;
    for (let t = 0; t < totalMs; t += f.chunkMs) {
      if (this.#ws.readyState !== this.#ws.OPEN) return;
      if (t > 0 && f.chunkIntervalMs > 0) await sleep(f.chunkIntervalMs);
      const ms = Math.min(f.chunkMs, totalMs - t);
      const bytes = Math.round(ms * 8);
      const first = Math.ceil(t / f.msPerChar);
      const last = Math.min(chars.length, Math.ceil((t + ms) / f.msPerChar));
      const slice = chars.slice(first, last);
      const starts: number[] = [];
      const durations: number[] = [];
      for (let i = first; i < last; i++) {
        starts.push(i * f.msPerChar - t);
        durations.push(f.msPerChar);
      }
      const alignment = `{"charStartTimesMs":${JSON.stringify(starts)},"charDurationsMs":${JSON.stringify(
        durations,
      )},"chars":${JSON.stringify(slice)}}`;
      gen.firstAudioAt ??= Date.now();
      gen.audioBytes += bytes;
      this.#send(
        `{"audio":"${toneBase64(bytes)}","isFinal":null,"normalizedAlignment":${alignment},"alignment":${alignment}}`,
        bytes,
        null,
        slice,
      );
    }
    gen.doneAt = Date.now();
  }

  #send(text: string, audioBytes: number, isFinal: boolean | null, chars?: string[]): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.audioBytesSent += audioBytes;
    this.sent.push(chars ? { audioBytes, isFinal, chars } : { audioBytes, isFinal });
    this.#ws.send(text);
  }
}

export interface RecordedTtsRequest {
  voiceId: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
  text: string;
  status: number;
  receivedAt: number;
  firstByteAt?: number;
  audioBytes: number;
  aborted: boolean;
}

const WS_PATH = /^\/v1\/text-to-speech\/([^/]+)\/stream-input$/;
const HTTP_PATH = /^\/v1\/text-to-speech\/([^/]+)(\/stream)?$/;

export class FakeElevenLabs {
  readonly connections: ElevenLabsConnection[] = [];
  readonly requests: RecordedTtsRequest[] = [];
  readonly rejectKeys: Set<string>;
  msPerChar: number;
  ttfbMs: number;
  chunkMs: number;
  chunkIntervalMs: number;

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #port: number;
  readonly #live = new Set<ElevenLabsConnection>();
  readonly #waiters: Array<(c: ElevenLabsConnection) => void> = [];
  readonly #sweep: NodeJS.Timeout;

  private constructor(server: Server, wss: WebSocketServer, port: number, opts: FakeElevenLabsOptions) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.msPerChar = opts.msPerChar ?? 60;
    this.ttfbMs = opts.ttfbMs ?? 0;
    this.chunkMs = opts.chunkMs ?? 250;
    this.chunkIntervalMs = opts.chunkIntervalMs ?? 0;
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.#live) {
        const limitMs = Number(c.params.inactivity_timeout ?? 20) * 1000;
        if (now - c.lastActivityAt > limitMs) c.inactivityTimeout();
      }
    }, 250);
    this.#sweep.unref();
  }

  static async start(opts: FakeElevenLabsOptions = {}): Promise<FakeElevenLabs> {
    let fake: FakeElevenLabs | undefined;
    const server = createServer((req, res) => {
      fake?.handleHttp(req, res).catch(() => {
        if (!res.headersSent)
          sendJson(res, 500, { detail: { status: "internal_error", message: "fake error" } });
        else res.end();
      });
    });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const port = await listenLoopback(server);
    fake = new FakeElevenLabs(server, wss, port, opts);
    const f = fake;
    server.on("upgrade", (req, socket, head) => f.#onUpgrade(req, socket, head));
    return fake;
  }

  /** `ws://127.0.0.1:PORT` — the app appends `/v1/text-to-speech/{voice}/stream-input?...`. */
  get url(): string {
    return `ws://127.0.0.1:${this.#port}`;
  }

  /** `http://127.0.0.1:PORT` — `new ElevenLabsClient({ baseUrl })`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get openConnections(): number {
    return this.#live.size;
  }

  /** Billable characters over every WS connection and HTTP request. */
  get totalCharacters(): number {
    let n = 0;
    for (const c of this.connections) n += c.charsReceived;
    for (const r of this.requests) if (r.status === 200) n += r.text.length;
    return n;
  }

  waitForConnection(timeoutMs = 5000): Promise<ElevenLabsConnection> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("FakeElevenLabs: no connection")), timeoutMs);
      this.#waiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  /** @internal */
  connectionClosed(c: ElevenLabsConnection): void {
    this.#live.delete(c);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
    await closeServer(this.#server);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? "/").split("?")[0] ?? "";
    const m = WS_PATH.exec(path);
    if (!m) {
      rejectUpgrade(
        socket,
        404,
        "Not Found",
        JSON.stringify({ detail: { status: "not_found", message: "Not found" } }),
      );
      return;
    }
    const headerKey = headerValue(req, "xi-api-key");
    if (headerKey !== undefined && this.rejectKeys.has(headerKey)) {
      rejectUpgrade(
        socket,
        401,
        "Unauthorized",
        JSON.stringify({ detail: { status: "invalid_api_key", message: "Invalid API key" } }),
      );
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new ElevenLabsConnection(ws, req, decodeURIComponent(m[1] ?? ""), this);
      this.connections.push(conn);
      this.#live.add(conn);
      for (const w of this.#waiters.splice(0)) w(conn);
    });
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const m = HTTP_PATH.exec(url.pathname);
    if (req.method !== "POST" || !m) {
      sendJson(res, 404, { detail: { status: "not_found", message: "Not found" } });
      return;
    }
    const raw = await readBody(req);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    } catch {
      // recorded as empty; answered 422 below
    }
    const text = typeof body.text === "string" ? body.text : "";
    const record: RecordedTtsRequest = {
      voiceId: decodeURIComponent(m[1] ?? ""),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      text,
      status: 200,
      receivedAt: Date.now(),
      audioBytes: 0,
      aborted: false,
    };
    this.requests.push(record);
    const key = headerValue(req, "xi-api-key");
    if (!key || this.rejectKeys.has(key)) {
      record.status = 401;
      sendJson(res, 401, { detail: { status: "invalid_api_key", message: "Invalid API key" } });
      return;
    }
    if (!text) {
      record.status = 422;
      sendJson(res, 422, {
        detail: [{ loc: ["body", "text"], msg: "field required", type: "value_error.missing" }],
      });
      return;
    }
    const format = record.query.output_format ?? "mp3_44100_128";
    const contentType = format.startsWith("ulaw")
      ? "audio/basic"
      : format.startsWith("mp3")
        ? "audio/mpeg"
        : "audio/wav";
    const totalBytes = Math.round([...text].length * this.msPerChar * 8);
    const chunkBytes = Math.max(8, Math.round(this.chunkMs * 8));
    res.on("close", () => {
      if (record.audioBytes < totalBytes) record.aborted = true;
    });
    if (this.ttfbMs > 0) await sleep(this.ttfbMs);
    res.writeHead(200, { "content-type": contentType, "request-id": randomUUID() });
    const streaming = m[2] === "/stream";
    for (let off = 0; off < totalBytes; off += chunkBytes) {
      if (res.destroyed) return;
      if (streaming && off > 0 && this.chunkIntervalMs > 0) await sleep(this.chunkIntervalMs);
      const n = Math.min(chunkBytes, totalBytes - off);
      record.firstByteAt ??= Date.now();
      record.audioBytes += n;
      res.write(toneBytes(n));
    }
    res.end();
  }
}
