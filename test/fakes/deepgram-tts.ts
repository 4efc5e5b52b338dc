/**
 * Loopback fake of Deepgram's Aura streaming TTS websocket (`/v1/speak`), written from Deepgram's
 * published docs and SDK (deepgram-js-sdk speak v1 `Client.ts`/`Socket.ts` and `SpeakV1*` types;
 * docs "Voices and Languages", "Flush", "Clear", "Close", "TTS Troubleshooting WebSocket, NET, and
 * DATA Errors"; PROVIDERS.md §1.3):
 *
 * - Handshake: `Authorization: Token <key>` (or `Bearer`); query `model` (a voice model:
 *   `aura-{voice}-en` of Aura's English voices or `aura-2-{voice}-{lang}` of Aura-2's), `encoding`
 *   (linear16 | mulaw | alaw), `sample_rate` (8000, 16000, 24000, 32000, 48000), `speed`,
 *   `mip_opt_out`. A bad key is 401; an unknown model or format a 400 whose reason is in the
 *   `dg-error` header (and body) as Deepgram does for failed upgrades.
 * - Client frames: Speak {text}, Flush, Clear, Close. Server: Metadata on open, binary audio
 *   (`msPerChar` ms of tone per character in the requested encoding/rate) for the text held when
 *   a Flush arrives, then `{"type":"Flushed","sequence_id":n}`; Clear drops held text and stops the
 *   audio, answered by `Cleared`; Close closes at once (1000) without the pending audio.
 * - More than 20 Flush messages in 60 s (configurable): a Warning and the flush is ignored.
 * - An unknown or malformed message closes the socket 1008 (DATA-0000).
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

const AURA_1 = "asteria luna stella athena hera orion arcas perseus angus orpheus helios zeus".split(" ");
const AURA_2: Record<string, string[]> = {
  en: "amalthea andromeda apollo arcas aries asteria athena atlas aurora callista cora cordelia delia draco electra harmonia helena hera hermes hyperion iris janus juno jupiter luna mars minerva neptune odysseus ophelia orion orpheus pandora phoebe pluto saturn selene thalia theia vesta zeus".split(
    " ",
  ),
  es: "celeste estrella nestor sirio carina alvaro diana aquila selena javier".split(" "),
  de: "viktoria kara fabian julius lara elara aurelia".split(" "),
};
const MODELS = new Set([
  ...AURA_1.map((v) => `aura-${v}-en`),
  ...Object.entries(AURA_2).flatMap(([lang, voices]) => voices.map((v) => `aura-2-${v}-${lang}`)),
]);
const RATES = new Set([8000, 16000, 24000, 32000, 48000]);

export interface FakeDeepgramTtsOptions {
  rejectKeys?: Iterable<string>;
  /** Audio per character. Default 10 ms. */
  msPerChar?: number;
  /** Audio per binary frame. Default 100 ms. */
  chunkMs?: number;
  /** Wall time between frames. Default 5 ms. */
  chunkIntervalMs?: number;
  /** Time to a flush's first audio after the Flush arrived. Default 0. */
  ttfbMs?: number;
  /** Flush cap. Default 20 per 60 s (Deepgram's). */
  flushLimit?: { count: number; windowMs: number };
}

export interface DeepgramTtsConnection {
  query: Record<string, string>;
  authorization: string | undefined;
  /** Client messages as received. */
  messages: Record<string, unknown>[];
  /** Text spoken (flushed), in order. */
  spoken: string[];
  flushes: number[];
  warnings: number;
  audioBytes: number;
  ws: WebSocket;
}

export class FakeDeepgramTts {
  readonly connections: DeepgramTtsConnection[] = [];
  readonly rejectKeys: Set<string>;
  msPerChar: number;
  chunkMs: number;
  chunkIntervalMs: number;
  ttfbMs: number;
  flushLimit: { count: number; windowMs: number };
  /** Close the socket 1011 (NET-0000) when a Speak containing this arrives. */
  dropOnText: string | undefined;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #port: number;

  private constructor(server: Server, port: number, opts: FakeDeepgramTtsOptions) {
    this.#server = server;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.msPerChar = opts.msPerChar ?? 10;
    this.chunkMs = opts.chunkMs ?? 100;
    this.chunkIntervalMs = opts.chunkIntervalMs ?? 5;
    this.ttfbMs = opts.ttfbMs ?? 0;
    this.flushLimit = opts.flushLimit ?? { count: 20, windowMs: 60_000 };
  }

  static async start(opts: FakeDeepgramTtsOptions = {}): Promise<FakeDeepgramTts> {
    const { server, port } = await listenForUpgrades();
    const fake = new FakeDeepgramTts(server, port, opts);
    server.on("upgrade", (req, socket, head) => fake.#onUpgrade(req, socket, head));
    return fake;
  }

  /** `ws://127.0.0.1:PORT` (DEEPGRAM_TTS_API_URL). */
  get url(): string {
    return `ws://127.0.0.1:${this.#port}`;
  }

  get totalCharacters(): number {
    let n = 0;
    for (const c of this.connections) for (const t of c.spoken) n += t.length;
    return n;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await closeServer(this.#server);
  }

  #refuse(socket: Duplex, status: number, reason: string, message: string): void {
    const body = JSON.stringify({
      err_code: status === 401 ? "INVALID_AUTH" : "Bad Request",
      err_msg: message,
    });
    rejectUpgrade(socket, status, reason, body, { "dg-error": body, "dg-request-id": "fake-request" });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/v1/speak") {
      rejectUpgrade(socket, 404, "Not Found");
      return;
    }
    const auth = headerValue(req, "authorization");
    const key = auth?.replace(/^(Token|Bearer) /, "");
    if (!key || this.rejectKeys.has(key)) {
      this.#refuse(socket, 401, "Unauthorized", "Invalid credentials.");
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    const model = query.model ?? "aura-asteria-en";
    if (!MODELS.has(model)) {
      this.#refuse(socket, 400, "Bad Request", `No such model/language/tier combination found: ${model}`);
      return;
    }
    const encoding = query.encoding ?? "linear16";
    const rate = Number(query.sample_rate ?? 24000);
    if (!["linear16", "mulaw", "alaw"].includes(encoding) || !RATES.has(rate)) {
      this.#refuse(socket, 400, "Bad Request", `Unsupported encoding/sample_rate: ${encoding}/${rate}`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: DeepgramTtsConnection = {
        query,
        authorization: auth,
        messages: [],
        spoken: [],
        flushes: [],
        warnings: 0,
        audioBytes: 0,
        ws,
      };
      this.connections.push(conn);
      ws.send(
        JSON.stringify({
          type: "Metadata",
          request_id: `req-${this.connections.length}`,
          model_name: model,
          model_version: "fake",
          model_uuid: "fake",
        }),
      );
      this.#serve(conn, encoding, rate);
    });
  }

  #serve(conn: DeepgramTtsConnection, encoding: string, rate: number): void {
    const { ws } = conn;
    let held = "";
    let sequence = 0;
    /** Bumped by Clear: generations started before it stop. */
    let epoch = 0;
    let chain: Promise<void> = Promise.resolve();
    ws.on("message", (data, isBinary) => {
      let msg: Record<string, unknown>;
      try {
        msg = isBinary ? {} : (JSON.parse(data.toString()) as Record<string, unknown>);
      } catch {
        msg = {};
      }
      conn.messages.push(msg);
      switch (msg.type) {
        case "Speak":
          if (typeof msg.text !== "string") {
            ws.close(1008, "DATA-0000");
            return;
          }
          if (this.dropOnText !== undefined && msg.text.includes(this.dropOnText)) {
            this.dropOnText = undefined;
            ws.close(1011, "NET-0000");
            return;
          }
          held += msg.text;
          return;
        case "Flush": {
          const now = Date.now();
          conn.flushes = conn.flushes.filter((t) => t > now - this.flushLimit.windowMs);
          if (conn.flushes.length >= this.flushLimit.count) {
            conn.warnings++;
            ws.send(
              JSON.stringify({
                type: "Warning",
                description: "Flush limit exceeded: this flush is ignored.",
                code: "FLUSH_LIMIT",
              }),
            );
            return;
          }
          conn.flushes.push(now);
          const text = held;
          held = "";
          const id = sequence++;
          const mine = epoch;
          chain = chain.then(async () => {
            const wait = now + this.ttfbMs - Date.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            await this.#generate(conn, text, encoding, rate, () => mine !== epoch, id);
          });
          return;
        }
        case "Clear": {
          held = "";
          epoch++;
          const id = sequence;
          chain = chain.then(() => {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "Cleared", sequence_id: id }));
          });
          return;
        }
        case "Close":
          ws.close(1000);
          return;
        default:
          ws.close(1008, "DATA-0000");
      }
    });
  }

  async #generate(
    conn: DeepgramTtsConnection,
    text: string,
    encoding: string,
    rate: number,
    cancelled: () => boolean,
    sequenceId: number,
  ): Promise<void> {
    const { ws } = conn;
    if (cancelled()) return;
    if (text.length > 0) conn.spoken.push(text);
    const totalMs = text.length * this.msPerChar;
    for (let t = 0; t < totalMs; t += this.chunkMs) {
      if (cancelled() || ws.readyState !== ws.OPEN) return;
      const samples = Math.round((Math.min(this.chunkMs, totalMs - t) * rate) / 1000);
      const audio = encoding === "linear16" ? makePcmToneBuffer(samples * 2) : makeToneBuffer(samples);
      conn.audioBytes += audio.length;
      ws.send(audio);
      await new Promise((r) => setTimeout(r, this.chunkIntervalMs));
    }
    if (!cancelled() && ws.readyState === ws.OPEN)
      ws.send(JSON.stringify({ type: "Flushed", sequence_id: sequenceId }));
  }
}
