/**
 * Loopback fake of Cartesia's TTS websocket (`/tts/websocket`), written from Cartesia's published
 * material (cartesia-js `src/resources/tts.ts` GenerationRequest / WebsocketResponse, docs pages
 * "TTS websocket", "Contexts", "API Changes", "Volume, Speed, and Emotion"; PROVIDERS.md §2.1):
 *
 * - Auth: `Authorization: Bearer <key>`, `X-API-Key: <key>` or `?api_key=`; a version in the
 *   `Cartesia-Version` header or `?cartesia_version=` (the query wins). A missing key or version,
 *   or a key in `rejectKeys`, is refused at the handshake (401 / 400).
 * - Client frames: generation requests `{model_id, transcript, voice:{mode:"id",id}, output_format:
 *   {container:"raw", encoding, sample_rate}, context_id, continue?, flush?, language?,
 *   generation_config?, pronunciation_dict_id?, max_buffer_delay_ms?}` and `{context_id, cancel:true}`.
 * - Server frames: `chunk` (base64 audio in the requested encoding and rate: `msPerChar` ms of tone
 *   per character), `flush_done` after a flush, `done` after the last input (`continue:false`) has
 *   been spoken, and `error` frames in the 2026-03-01 shape `{type, done:true, title, message,
 *   error_code, status_code, context_id}`.
 * - Refused with an error frame: a model Cartesia no longer serves (`model_sunsetted`: sonic,
 *   sonic-english, sonic-multilingual, the 2025-03-07 snapshots) or never had (`model_not_found`); a
 *   language the model does not speak; an input whose non-transcript fields differ from the
 *   context's first input (Cartesia: they must stay the same); input on a context that is done.
 *   `generation_config` on a model that does not take it is recorded and ignored ("no effect on
 *   earlier models"), as is `__experimental_controls`.
 * - Cancel stops a context's audio; whether chunks already in flight still arrive is unconfirmed,
 *   so with `lateChunkAfterCancel` the fake sends one more chunk of the cancelled context.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  closeServer,
  headerValue,
  listenForUpgrades,
  makePcmToneBuffer,
  makeToneBuffer,
  rejectUpgrade,
} from "./util.ts";

const SERVED = new Set([
  "sonic-3.5",
  "sonic-3.5-2026-05-04",
  "sonic-3",
  "sonic-3-2026-01-12",
  "sonic-3-2025-10-27",
  "sonic-3-latest",
  "sonic-latest",
  "sonic-2",
  "sonic-2-2025-06-11",
  "sonic-2-2025-05-08",
  "sonic-2-2025-04-16",
  "sonic-turbo",
  "sonic-turbo-2025-06-04",
]);
const SUNSETTED = new Set([
  "sonic",
  "sonic-english",
  "sonic-multilingual",
  "sonic-2-2025-03-07",
  "sonic-turbo-2025-03-07",
]);
const SONIC_2_LANGUAGES = new Set(["en", "de", "es", "fr", "ja", "ko", "pt", "zh"]);
const SONIC_3_LANGUAGES = new Set(
  "en de es fr ja pt zh hi ko it nl pl ru sv tr tl bg ro ar cs el fi hr ms sk da ta uk hu no vi bn th he ka id te gu kn ml mr pa".split(
    " ",
  ),
);
const RATES = new Set([8000, 16000, 22050, 24000, 44100, 48000]);
const ENCODINGS = new Set(["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]);
/** Fields that may change between the inputs of one context. */
const PER_INPUT = new Set(["transcript", "continue", "flush", "duration", "context_id"]);

export interface FakeCartesiaOptions {
  rejectKeys?: Iterable<string>;
  /** Audio per character. Default 10 ms. */
  msPerChar?: number;
  /** Audio per chunk frame. Default 100 ms. */
  chunkMs?: number;
  /** Wall time between chunks. Default 5 ms. */
  chunkIntervalMs?: number;
  /** Time to an input's first chunk after it arrived. Default 0. */
  ttfbMs?: number;
  /** After a cancel, send one more chunk of that context (a chunk that was already in flight). */
  lateChunkAfterCancel?: boolean;
}

export interface CartesiaContext {
  id: string;
  /** Every request of the context, as received. */
  requests: Record<string, unknown>[];
  transcript: string;
  cancelled: boolean;
  done: boolean;
  /** Audio bytes sent for it. */
  audioBytes: number;
}

export interface CartesiaConnection {
  headers: Record<string, string | undefined>;
  query: Record<string, string>;
  apiKey: string;
  version: string;
  contexts: Map<string, CartesiaContext>;
  /** Error frames sent. */
  errors: Record<string, unknown>[];
  ws: WebSocket;
}

function toneFor(format: { encoding: string; sample_rate: number }, ms: number): Buffer {
  const samples = Math.round((ms * format.sample_rate) / 1000);
  if (format.encoding === "pcm_s16le") return makePcmToneBuffer(samples * 2);
  if (format.encoding === "pcm_f32le") return Buffer.alloc(samples * 4, 0x3f);
  return makeToneBuffer(samples);
}

export class FakeCartesia {
  readonly connections: CartesiaConnection[] = [];
  readonly rejectKeys: Set<string>;
  msPerChar: number;
  chunkMs: number;
  chunkIntervalMs: number;
  ttfbMs: number;
  lateChunkAfterCancel: boolean;
  /** Close the next socket that receives a transcript containing this, with 1011 (a server fault). */
  dropOnTranscript: string | undefined;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #port: number;

  private constructor(server: Server, port: number, opts: FakeCartesiaOptions) {
    this.#server = server;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.msPerChar = opts.msPerChar ?? 10;
    this.chunkMs = opts.chunkMs ?? 100;
    this.chunkIntervalMs = opts.chunkIntervalMs ?? 5;
    this.ttfbMs = opts.ttfbMs ?? 0;
    this.lateChunkAfterCancel = opts.lateChunkAfterCancel ?? false;
  }

  static async start(opts: FakeCartesiaOptions = {}): Promise<FakeCartesia> {
    const { server, port } = await listenForUpgrades();
    const fake = new FakeCartesia(server, port, opts);
    server.on("upgrade", (req, socket, head) => fake.#onUpgrade(req, socket, head));
    return fake;
  }

  /** `http://127.0.0.1:PORT` (CARTESIA_API_URL). */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Characters of every context's transcript (Cartesia bills about one credit each). */
  get totalCharacters(): number {
    let n = 0;
    for (const c of this.connections) for (const ctx of c.contexts.values()) n += ctx.transcript.length;
    return n;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await closeServer(this.#server);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/tts/websocket") {
      rejectUpgrade(socket, 404, "Not Found");
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const bearer = headerValue(req, "authorization")?.replace(/^Bearer /, "");
    const apiKey = bearer ?? headerValue(req, "x-api-key") ?? query.api_key ?? query.access_token;
    const version = query.cartesia_version ?? headerValue(req, "cartesia-version");
    if (!apiKey || this.rejectKeys.has(apiKey)) {
      rejectUpgrade(socket, 401, "Unauthorized", JSON.stringify({ error: "Invalid API key" }));
      return;
    }
    if (!version) {
      rejectUpgrade(
        socket,
        400,
        "Bad Request",
        JSON.stringify({ error: "Cartesia-Version header is required" }),
      );
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: CartesiaConnection = {
        headers: { authorization: headerValue(req, "authorization"), "cartesia-version": version },
        query,
        apiKey,
        version,
        contexts: new Map(),
        errors: [],
        ws,
      };
      this.connections.push(conn);
      ws.on("message", (data, isBinary) => {
        if (!isBinary) this.#onMessage(conn, data.toString());
      });
    });
  }

  #error(
    conn: CartesiaConnection,
    contextId: string | undefined,
    status: number,
    code: string,
    title: string,
    message: string,
  ): void {
    const frame = {
      type: "error",
      done: true,
      title,
      message,
      error_code: code,
      status_code: status,
      request_id: `req-${conn.errors.length + 1}`,
      ...(contextId !== undefined ? { context_id: contextId } : {}),
    };
    conn.errors.push(frame);
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify(frame));
  }

  #onMessage(conn: CartesiaConnection, text: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      this.#error(
        conn,
        undefined,
        400,
        "invalid_request",
        "Invalid request",
        "The message is not valid JSON.",
      );
      return;
    }
    const contextId = typeof msg.context_id === "string" ? msg.context_id : undefined;
    if (msg.cancel === true) {
      const ctx = contextId ? conn.contexts.get(contextId) : undefined;
      if (ctx && !ctx.done) {
        ctx.cancelled = true;
        if (this.lateChunkAfterCancel)
          this.#sendChunk(conn, ctx, toneFor({ encoding: "pcm_mulaw", sample_rate: 8000 }, 20));
      }
      return;
    }
    const model = String(msg.model_id ?? "");
    if (SUNSETTED.has(model)) {
      this.#error(
        conn,
        contextId,
        400,
        "model_sunsetted",
        "Model sunsetted",
        "The requested model has been sunsetted and is no longer available.",
      );
      return;
    }
    if (!SERVED.has(model)) {
      this.#error(
        conn,
        contextId,
        400,
        "model_not_found",
        "Invalid model",
        "The model is not valid, make sure it is a valid model ID.",
      );
      return;
    }
    const voice = msg.voice as { mode?: unknown; id?: unknown } | undefined;
    const format = msg.output_format as
      | { container?: unknown; encoding?: unknown; sample_rate?: unknown }
      | undefined;
    if (
      !contextId ||
      typeof msg.transcript !== "string" ||
      voice?.mode !== "id" ||
      typeof voice.id !== "string"
    ) {
      this.#error(
        conn,
        contextId,
        400,
        "invalid_request",
        "Invalid request",
        "context_id, transcript and voice {mode: id, id} are required.",
      );
      return;
    }
    if (
      format?.container !== "raw" ||
      !ENCODINGS.has(String(format.encoding)) ||
      !RATES.has(Number(format.sample_rate))
    ) {
      this.#error(
        conn,
        contextId,
        400,
        "invalid_output_format",
        "Invalid output format",
        "The websocket takes raw output at a supported sample rate.",
      );
      return;
    }
    const languages =
      model.startsWith("sonic-3") || model.endsWith("-latest") ? SONIC_3_LANGUAGES : SONIC_2_LANGUAGES;
    if (msg.language !== undefined && !languages.has(String(msg.language))) {
      this.#error(
        conn,
        contextId,
        400,
        "unsupported_language",
        "Unsupported language",
        `Language ${String(msg.language)} is not supported by ${model}.`,
      );
      return;
    }
    let ctx = conn.contexts.get(contextId);
    if (ctx?.done) {
      this.#error(
        conn,
        contextId,
        400,
        "context_expired",
        "Context expired",
        "This context has finished; use a new context_id.",
      );
      return;
    }
    if (!ctx) {
      ctx = { id: contextId, requests: [], transcript: "", cancelled: false, done: false, audioBytes: 0 };
      conn.contexts.set(contextId, ctx);
    } else {
      const first = ctx.requests[0] ?? {};
      const keys = new Set([...Object.keys(first), ...Object.keys(msg)].filter((k) => !PER_INPUT.has(k)));
      for (const k of keys) {
        if (JSON.stringify(first[k]) !== JSON.stringify(msg[k])) {
          this.#error(
            conn,
            contextId,
            400,
            "invalid_request",
            "Invalid request",
            `Field ${k} must not change within a context.`,
          );
          return;
        }
      }
    }
    ctx.requests.push(msg);
    ctx.transcript += msg.transcript;
    if (this.dropOnTranscript !== undefined && msg.transcript.includes(this.dropOnTranscript)) {
      this.dropOnTranscript = undefined;
      conn.ws.close(1011, "internal server error");
      return;
    }
    const context = ctx;
    const fmt = { encoding: String(format.encoding), sample_rate: Number(format.sample_rate) };
    void this.#speak(conn, context, fmt, msg.transcript, msg.continue !== true, msg.flush === true);
  }

  /** Contexts speak their inputs in order. */
  readonly #queues = new WeakMap<CartesiaContext, Promise<void>>();

  #speak(
    conn: CartesiaConnection,
    ctx: CartesiaContext,
    fmt: { encoding: string; sample_rate: number },
    transcript: string,
    last: boolean,
    flush: boolean,
  ): Promise<void> {
    const prev = this.#queues.get(ctx) ?? Promise.resolve();
    const arrivedAt = Date.now();
    const next = prev.then(async () => {
      const wait = arrivedAt + this.ttfbMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const totalMs = transcript.length * this.msPerChar;
      for (let t = 0; t < totalMs && !ctx.cancelled; t += this.chunkMs) {
        this.#sendChunk(conn, ctx, toneFor(fmt, Math.min(this.chunkMs, totalMs - t)));
        await new Promise((r) => setTimeout(r, this.chunkIntervalMs));
      }
      if (ctx.cancelled || conn.ws.readyState !== conn.ws.OPEN) return;
      if (flush)
        conn.ws.send(
          JSON.stringify({
            type: "flush_done",
            done: false,
            flush_done: true,
            flush_id: 1,
            status_code: 206,
            context_id: ctx.id,
          }),
        );
      if (last) {
        ctx.done = true;
        conn.ws.send(JSON.stringify({ type: "done", done: true, status_code: 206, context_id: ctx.id }));
      }
    });
    this.#queues.set(ctx, next);
    return next;
  }

  #sendChunk(conn: CartesiaConnection, ctx: CartesiaContext, audio: Buffer): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    ctx.audioBytes += audio.length;
    conn.ws.send(
      JSON.stringify({
        type: "chunk",
        data: audio.toString("base64"),
        done: false,
        status_code: 206,
        step_time: 1,
        context_id: ctx.id,
      }),
    );
  }
}
