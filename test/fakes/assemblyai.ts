/**
 * FakeAssemblyAI — loopback AssemblyAI Universal-Streaming v3 (`ws://127.0.0.1:PORT/v3/ws?…`), written
 * from AssemblyAI's published protocol (AssemblyAI/assemblyai-api-spec `usm-streaming.yml` and
 * `usm-streaming-u3-pro.yml`, the streaming "Message sequence" and "Common session errors and
 * closures" pages, the Node SDK's streaming types and close-code table; PROVIDERS.md §2.2):
 *
 * - Connect: query `speech_model` (required: universal-streaming-english | universal-streaming-multilingual
 *   | universal-3-5-pro | u3-rt-pro | whisper-rt), `sample_rate` (required), `encoding` (pcm_s16le by
 *   default, or pcm_mulaw), `format_turns`, `end_of_turn_confidence_threshold`, `min_turn_silence`
 *   (or the deprecated `min_end_of_turn_silence_when_confident`), `max_turn_silence`, `keyterms_prompt`
 *   (a JSON array), `prompt`, `mode`, `agent_context`. Auth: `Authorization: <key>` (bare) or
 *   `?token=` from `GET /v3/token?expires_in_seconds=N` (the key in `Authorization`).
 *   The upgrade is accepted and then checked, as AssemblyAI does: a missing or refused key gets
 *   `{"type":"Error","error_code":1008,"error":"Unauthorized Connection: …"}` and a close 1008; a
 *   parameter the model does not take (`end_of_turn_confidence_threshold` off Universal-Streaming,
 *   `prompt`/`mode`/`agent_context` off the U3 Pro family, `keyterms_prompt` on Whisper, an unknown
 *   model) gets an Error and close 3006, a bad sample rate 4000 (the SDK's code) — which code
 *   AssemblyAI uses for parameters is unconfirmed; tests match "an Error, then a close".
 *   Then `Begin {id, expires_at}`.
 * - Audio: binary frames of 50–1000 ms each, else Error + close 3007 "Input duration violation".
 * - Turns, on the audio clock: voice starts a turn (`turn_order` counts from 0); every
 *   `partialIntervalMs` of voice a `Turn` with `end_of_turn:false` whose `transcript` holds the
 *   finalized words and `words` the words heard so far (the last one `word_is_final:false`); after
 *   `min_turn_silence` of silence once every scripted word was heard (else after `max_turn_silence`)
 *   the end of turn: `end_of_turn:true`, `turn_is_formatted:false`, words lower case without
 *   punctuation; with `format_turns=true` the same turn again with `turn_is_formatted:true` and the
 *   registered text. The U3 Pro family always formats: one end-of-turn message, formatted, and it
 *   sends `SpeechStarted {timestamp}` (the Universal-Streaming spec lists no such message).
 *   Word times are ms from the stream start.
 * - `ForceEndpoint` ends the current turn at once; `Terminate` ends it, then `Termination
 *   {audio_duration_seconds, session_duration_seconds}` and close 1000; `KeepAlive` is accepted;
 *   any other text is Error + close 3006.
 * Utterances: the words a caller "says" come from `utterances` (the Deepgram fake's registry in the
 * media harness, so its callers work unchanged) or the fake's own `registry`.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  type HeardUtterance,
  SpeechScanner,
  scriptedWords,
  UtteranceRegistry,
  type UtteranceSource,
} from "./scripted-speech.ts";
import { Arrivals, closeWebSocketServer, headerValue, listenLoopback, sendJson } from "./util.ts";

export interface AssemblyAiWord {
  start: number;
  end: number;
  text: string;
  confidence: number;
  word_is_final: boolean;
}

export interface AssemblyAiTurn {
  type: "Turn";
  turn_order: number;
  turn_is_formatted: boolean;
  end_of_turn: boolean;
  transcript: string;
  end_of_turn_confidence: number;
  words: AssemblyAiWord[];
  utterance: string;
}

export type AssemblyAiServerMessage =
  | { type: "Begin"; id: string; expires_at: number }
  | { type: "SpeechStarted"; timestamp: number }
  | AssemblyAiTurn
  | { type: "Termination"; audio_duration_seconds: number; session_duration_seconds: number }
  | { type: "Error"; error_code: number; error: string };

export interface FakeAssemblyAiOptions {
  rejectKeys?: Iterable<string>;
  /** Voice between partial turns. Default 200. */
  partialIntervalMs?: number;
  /** Voice before SpeechStarted (U3 Pro). Default 60. */
  speechStartedAfterMs?: number;
  /** Wall-clock delay on every message sent. Default 0. */
  transcriberDelayMs?: number;
  /** Words per confidence: what each word's `confidence` is. Default 0.95. */
  wordConfidence?: number;
}

const MODELS = new Set([
  "universal-streaming-english",
  "universal-streaming-multilingual",
  "universal-3-5-pro",
  "u3-rt-pro",
  "u3-pro",
  "whisper-rt",
]);

interface Refusal {
  code: number;
  error: string;
}

/** What AssemblyAI refuses in a connection's query for its model (see the file comment). */
export function assemblyAiRefusal(q: URLSearchParams): Refusal | undefined {
  const model = q.get("speech_model");
  if (!model || !MODELS.has(model)) {
    return { code: 3006, error: `Invalid speech_model: ${model ?? "(missing)"}` };
  }
  const rate = Number(q.get("sample_rate"));
  if (!Number.isInteger(rate) || rate <= 0)
    return { code: 4000, error: "Sample rate must be a positive integer" };
  const encoding = q.get("encoding") ?? "pcm_s16le";
  if (encoding !== "pcm_s16le" && encoding !== "pcm_mulaw")
    return { code: 3006, error: `Invalid encoding: ${encoding}` };
  const universal = model.startsWith("universal-streaming");
  const u3 = model === "universal-3-5-pro" || model.startsWith("u3-");
  if (q.has("end_of_turn_confidence_threshold") && !universal) {
    return { code: 3006, error: `end_of_turn_confidence_threshold is not supported for ${model}` };
  }
  for (const p of ["prompt", "mode", "agent_context"]) {
    if (q.has(p) && !u3) return { code: 3006, error: `${p} is only supported for Universal-3 Pro models` };
  }
  if (q.has("keyterms_prompt")) {
    if (model === "whisper-rt")
      return { code: 3006, error: "keyterms_prompt is not supported for whisper-rt" };
    let terms: unknown;
    try {
      terms = JSON.parse(q.get("keyterms_prompt") ?? "");
    } catch {
      return { code: 3006, error: "keyterms_prompt must be a JSON array of strings" };
    }
    if (!Array.isArray(terms) || terms.some((t) => typeof t !== "string")) {
      return { code: 3006, error: "keyterms_prompt must be a JSON array of strings" };
    }
    if (terms.length > 100 || terms.some((t: string) => t.length > 50)) {
      return { code: 3006, error: "keyterms_prompt: at most 100 terms of at most 50 characters" };
    }
  }
  return undefined;
}

interface Turn extends HeardUtterance {
  order: number;
  lastPartialVoicedMs: number;
  speechStartedSent: boolean;
}

/** One `/v3/ws` session, with what tests assert on. */
export class AssemblyAiSession {
  readonly id = randomUUID();
  readonly openedAt = Date.now();
  closeCode: number | undefined;
  readonly params: Record<string, string>;
  readonly authorization: string | undefined;
  /** Text messages received (`ForceEndpoint`, `Terminate`…), parsed. */
  readonly controls: Array<{ type?: string }> = [];
  /** Everything sent, in order. */
  readonly sent: AssemblyAiServerMessage[] = [];
  /** Sizes of the audio messages received, in ms. */
  readonly audioMessageMs: number[] = [];

  readonly #ws: WebSocket;
  readonly #fake: FakeAssemblyAI;
  readonly #scanner: SpeechScanner;
  readonly #model: string;
  readonly #u3: boolean;
  readonly #formatTurns: boolean;
  readonly #minSilenceMs: number;
  readonly #maxSilenceMs: number;
  #turn: Turn | undefined;
  #nextOrder = 0;
  #ended = false;

  constructor(ws: WebSocket, req: IncomingMessage, fake: FakeAssemblyAI) {
    this.#ws = ws;
    this.#fake = fake;
    this.authorization = headerValue(req, "authorization");
    const q = new URL(req.url ?? "/", "http://x").searchParams;
    this.params = Object.fromEntries(q);
    this.#model = q.get("speech_model") ?? "";
    this.#u3 = this.#model === "universal-3-5-pro" || this.#model.startsWith("u3-");
    this.#formatTurns = q.get("format_turns") === "true";
    const num = (name: string, fallback: number): number => (q.has(name) ? Number(q.get(name)) : fallback);
    this.#minSilenceMs = num(
      "min_turn_silence",
      num("min_end_of_turn_silence_when_confident", this.#u3 ? 100 : 400),
    );
    this.#maxSilenceMs = num("max_turn_silence", this.#u3 ? 1000 : 1280);
    this.#scanner = new SpeechScanner(
      {
        encoding: q.get("encoding") === "pcm_mulaw" ? "mulaw" : "linear16",
        sampleRate: Number(q.get("sample_rate")),
      },
      (voiced, endMs) => this.#onWindow(voiced, endMs),
    );
    ws.on("message", (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on("close", (code) => {
      this.closeCode = code;
      this.#ended = true;
    });
    ws.on("error", () => {});
  }

  get audioSeconds(): number {
    return this.#scanner.audioMs / 1000;
  }

  get turns(): AssemblyAiTurn[] {
    return this.sent.filter((m): m is AssemblyAiTurn => m.type === "Turn");
  }

  /** Sends `Begin`: the session is open. */
  begin(): void {
    this.#send({ type: "Begin", id: this.id, expires_at: Math.floor(Date.now() / 1000) + 3 * 3600 });
  }

  /** Ends the session with an `Error` message and that close code (3005 server error, 3008 expired…). */
  fail(code: number, error: string): void {
    this.#send({ type: "Error", error_code: code, error });
    this.#after(() => this.#ws.close(code, error.length <= 123 ? error : "See Error message for details"));
  }

  /** Closes the socket from the server side without a message (a network drop is `1006`-like). */
  drop(code = 1011, reason = "fake drop"): void {
    this.#ws.close(code, reason);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    if (!isBinary) {
      let msg: { type?: string };
      try {
        msg = JSON.parse(data.toString("utf8")) as { type?: string };
      } catch {
        this.fail(3006, `Invalid JSON: ${data.toString("utf8").slice(0, 60)}`);
        return;
      }
      this.controls.push(msg);
      switch (msg.type) {
        case "ForceEndpoint":
          if (this.#turn) this.#endTurn(this.#turn, 1);
          return;
        case "Terminate":
          if (this.#turn) this.#endTurn(this.#turn, 1);
          this.#send({
            type: "Termination",
            audio_duration_seconds: Math.round(this.audioSeconds),
            session_duration_seconds: Math.round((Date.now() - this.openedAt) / 1000),
          });
          this.#after(() => this.#ws.close(1000));
          return;
        case "KeepAlive":
        case "UpdateConfiguration":
          return;
        default:
          this.fail(3006, `Invalid Message Type: ${String(msg.type)}`);
          return;
      }
    }
    const ms = (data.length * 1000) / this.#scanner.bytesPerSecond;
    this.audioMessageMs.push(ms);
    if (ms < 50 || ms > 1000) {
      this.fail(3007, `Input duration violation: ${Math.round(ms)} ms. Expected between 50 and 1000 ms`);
      return;
    }
    this.#scanner.push(data);
  }

  #onWindow(voiced: boolean, endMs: number): void {
    const startMs = endMs - 20;
    let turn = this.#turn;
    if (voiced) {
      if (!turn) {
        const p = this.#scanner.pending;
        this.#scanner.pending = undefined;
        turn = {
          id: p?.id,
          durationMs: p?.durationMs ?? 0,
          startMs,
          voicedMs: 0,
          lastVoiceEndMs: endMs,
          order: this.#nextOrder++,
          lastPartialVoicedMs: 0,
          speechStartedSent: false,
        };
        this.#turn = turn;
      }
      turn.voicedMs += 20;
      turn.lastVoiceEndMs = endMs;
      if (this.#u3 && !turn.speechStartedSent && turn.voicedMs >= this.#fake.speechStartedAfterMs) {
        turn.speechStartedSent = true;
        this.#send({ type: "SpeechStarted", timestamp: Math.round(turn.startMs) });
      }
      if (turn.voicedMs - turn.lastPartialVoicedMs >= this.#fake.partialIntervalMs) {
        turn.lastPartialVoicedMs = turn.voicedMs;
        this.#partial(turn);
      }
      return;
    }
    if (!turn) return;
    const silenceMs = endMs - turn.lastVoiceEndMs;
    const allHeard = this.#heard(turn) >= this.#words(turn, false).length;
    if ((allHeard && silenceMs >= this.#minSilenceMs) || silenceMs >= this.#maxSilenceMs) {
      this.#endTurn(turn, allHeard ? 0.9 : 0.5);
    }
  }

  #words(turn: Turn, formatted: boolean): string[] {
    return scriptedWords(this.#fake.utterances, turn.id, formatted);
  }

  /** Words heard so far: in proportion to the scripted duration voiced. */
  #heard(turn: Turn): number {
    const all = this.#words(turn, false).length;
    if (turn.durationMs <= 0) return all;
    return Math.min(all, Math.ceil((all * turn.voicedMs) / turn.durationMs));
  }

  #wordTimes(turn: Turn, words: string[], count: number, finalCount: number): AssemblyAiWord[] {
    const span = turn.durationMs || turn.voicedMs;
    const per = words.length > 0 ? span / words.length : 0;
    const out: AssemblyAiWord[] = [];
    for (let i = 0; i < count; i++) {
      out.push({
        start: Math.round(turn.startMs + i * per),
        end: Math.round(turn.startMs + (i + 1) * per),
        text: words[i] as string,
        confidence: this.#fake.wordConfidence,
        word_is_final: i < finalCount,
      });
    }
    return out;
  }

  #partial(turn: Turn): void {
    const words = this.#words(turn, false);
    const heard = this.#heard(turn);
    if (heard === 0) return;
    const list = this.#wordTimes(turn, words, heard, heard - 1);
    this.#send({
      type: "Turn",
      turn_order: turn.order,
      turn_is_formatted: false,
      end_of_turn: false,
      transcript: words.slice(0, heard - 1).join(" "),
      end_of_turn_confidence: 0.1,
      words: list,
      utterance: "",
    });
  }

  #endTurn(turn: Turn, confidence: number): void {
    this.#turn = undefined;
    const plain = this.#words(turn, false);
    const formatted = this.#words(turn, true);
    const message = (words: string[], isFormatted: boolean): AssemblyAiTurn => ({
      type: "Turn",
      turn_order: turn.order,
      turn_is_formatted: isFormatted,
      end_of_turn: true,
      transcript: words.join(" "),
      end_of_turn_confidence: confidence,
      words: this.#wordTimes(turn, words, words.length, words.length),
      utterance: words.join(" "),
    });
    if (this.#u3) {
      this.#send(message(formatted, true));
      return;
    }
    this.#send(message(plain, false));
    if (this.#formatTurns) this.#send(message(formatted, true));
  }

  #send(msg: AssemblyAiServerMessage): void {
    this.sent.push(msg);
    const text = JSON.stringify(msg);
    this.#after(() => {
      if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(text);
    });
  }

  #after(fn: () => void): void {
    const delay = this.#fake.transcriberDelayMs;
    if (delay > 0) setTimeout(fn, delay);
    else fn();
  }
}

export class FakeAssemblyAI {
  readonly sessions: AssemblyAiSession[] = [];
  readonly rejectKeys: Set<string>;
  /** Where the words a caller says are registered: the fake's own registry unless set. */
  utterances: UtteranceSource;
  readonly registry = new UtteranceRegistry();
  partialIntervalMs: number;
  speechStartedAfterMs: number;
  transcriberDelayMs: number;
  wordConfidence: number;
  /** Temporary tokens issued by `GET /v3/token`. */
  readonly #tokens = new Set<string>();
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #port: number;
  readonly #arrivals = new Arrivals<AssemblyAiSession>("FakeAssemblyAI: no session");

  private constructor(server: Server, wss: WebSocketServer, port: number, opts: FakeAssemblyAiOptions) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.utterances = this.registry;
    this.partialIntervalMs = opts.partialIntervalMs ?? 200;
    this.speechStartedAfterMs = opts.speechStartedAfterMs ?? 60;
    this.transcriberDelayMs = opts.transcriberDelayMs ?? 0;
    this.wordConfidence = opts.wordConfidence ?? 0.95;
  }

  static async start(opts: FakeAssemblyAiOptions = {}): Promise<FakeAssemblyAI> {
    let fake: FakeAssemblyAI | undefined;
    const server = createServer((req, res) => fake?.onRequest(req, res));
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const port = await listenLoopback(server);
    fake = new FakeAssemblyAI(server, wss, port, opts);
    server.on("upgrade", (req, socket, head) => fake?.onUpgrade(req, socket, head));
    return fake;
  }

  /** `ws://127.0.0.1:PORT` (ASSEMBLYAI_API_URL); sessions are at `/v3/ws`. */
  get url(): string {
    return `ws://127.0.0.1:${this.#port}`;
  }

  allocateUtterance(text: string): number {
    return this.registry.allocateUtterance(text);
  }

  waitForSession(timeoutMs = 5000): Promise<AssemblyAiSession> {
    return this.#arrivals.next(timeoutMs);
  }

  async close(): Promise<void> {
    await closeWebSocketServer(this.#wss, this.#server);
  }

  /** @internal `GET /v3/token?expires_in_seconds=N` with the key: a temporary token for `?token=`. */
  onRequest(req: IncomingMessage, res: import("node:http").ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method !== "GET" || url.pathname !== "/v3/token") {
      sendJson(res, 404, { error: "Not found" });
      return;
    }
    const key = headerValue(req, "authorization");
    if (!key || this.rejectKeys.has(key)) {
      sendJson(res, 401, { error: "Invalid API key" });
      return;
    }
    const expires = Number(url.searchParams.get("expires_in_seconds"));
    if (!Number.isInteger(expires) || expires < 1 || expires > 600) {
      sendJson(res, 400, { error: "expires_in_seconds must be between 1 and 600" });
      return;
    }
    const token = randomUUID();
    this.#tokens.add(token);
    sendJson(res, 200, { token });
  }

  /** @internal */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/v3/ws") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new AssemblyAiSession(ws, req, this);
      this.sessions.push(session);
      this.#arrivals.arrived(session);
      // AssemblyAI checks the key and the parameters after the upgrade.
      const key = headerValue(req, "authorization");
      const token = url.searchParams.get("token");
      const keyOk =
        key !== undefined && key !== "" && !this.rejectKeys.has(key) && !/^(Bearer|Token) /i.test(key);
      const tokenOk = token !== null && this.#tokens.delete(token);
      if (!keyOk && !tokenOk) {
        session.fail(
          1008,
          key || token
            ? "Unauthorized Connection: Invalid API key"
            : "Unauthorized Connection: Missing Authorization header",
        );
        return;
      }
      const refusal = assemblyAiRefusal(url.searchParams);
      if (refusal) {
        session.fail(refusal.code, refusal.error);
        return;
      }
      session.begin();
    });
  }
}
