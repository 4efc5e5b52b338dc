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
 * - WebSocket `…/v1/text-to-speech/{voice_id}/multi-stream-input?…` (same query and auth): several
 *   contexts on one socket. Field names as in @elevenlabs/elevenlabs-js `serialization/types`
 *   (`InitializeConnectionMulti`, `SendTextMulti`, `FlushContext`, `CloseContext`, `CloseSocket`,
 *   `KeepContextAlive`, `AudioOutputMulti`, `FinalOutputMulti`):
 *   the first message for a new `context_id` starts that context (`{text:" ", context_id,
 *   voice_settings?, generation_config?, xi_api_key?}`; no id means the context "default"), then
 *   `{text, context_id, flush?, try_trigger_generation?}`; `{context_id, flush:true, text?}` flushes;
 *   `{text:"", context_id}` is a keep-alive (for an unknown context it only resets the inactivity
 *   clock, nothing is created); `{context_id, close_context:true}` drops the context's unflushed
 *   text, lets what was flushed finish ("continue flushing"), then sends `{isFinal:true, contextId}`;
 *   `{close_socket:true}` does that for every context, then closes 1000.
 *   Server audio: `{audio, normalizedAlignment, alignment, contextId}` (camelCase `contextId`).
 *   At most `maxContexts` (5, the documented limit) contexts may be unfinished (a closed context
 *   counts until its `isFinal`); one more is an error `max_active_conversations` and close 1008.
 *   Contexts generate concurrently; the generations of one context are sequential.
 * - HTTP `POST /v1/text-to-speech/{voice_id}/stream?output_format=ulaw_8000` → chunked raw audio;
 *   `POST /v1/text-to-speech/{voice_id}` → the whole clip. Point `@elevenlabs/elevenlabs-js` at
 *   `fake.baseUrl` (`baseUrl` option).
 *
 * Per the published spec, the websockets refuse: `model_id=eleven_v3` at the handshake (HTTP 403);
 * a voice id the account does not have (`voices`, `addVoice`; the premade ones always exist), and
 * `language_code` with a model other than Turbo/Flash v2.5, with an error message and close 1008 on
 * the first message (`voice_not_found` is also the HTTP endpoints' 400); `voice_settings` without
 * the required `stability` and `similarity_boost` likewise. Query parameters the endpoint does not
 * list are recorded (`undocumentedParams`), not refused, as ElevenLabs ignores them.
 *
 * Failure injection: `dropAfterAudioBytes(n)` breaks the next socket that has sent n bytes of audio
 * on one context (the network drops it: no close frame, the client sees 1006), mid-utterance;
 * `connection.drop(code)` closes a socket from the server side; `refuseUpgrades(n, status)` answers
 * the next n handshakes with an HTTP error (503 by default: an outage) in ElevenLabs' `detail` shape.
 *
 * Audio is deterministic: `msPerChar` ms of loud μ-law tone per character (spaces and punctuation
 * included), first chunk `ttfbMs` after the generation was triggered (and never before the previous
 * generation of the same context — of the socket, on `stream-input` — finished), then one
 * `chunkMs`-long chunk every `chunkIntervalMs`. `pcm_<rate>` formats get a loud 16-bit little-endian
 * PCM tone at that rate (2 bytes per sample, chunks of whole samples); every other non-`ulaw_8000`
 * format (MP3, Opus, A-law) gets μ-law bytes (the format is recorded, not honoured). Both websockets fail after `inactivity_timeout`
 * seconds (default 20) without a client message: an error message, then close 1008.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  Arrivals,
  closeWebSocketServer,
  headerValue,
  listenLoopback,
  makePcmToneBuffer,
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
  /** Unfinished contexts allowed per `multi-stream-input` socket. Default 5 (ElevenLabs' limit). */
  maxContexts?: number;
  /** Voice ids of the account besides the premade ones; any other id is `voice_not_found`. */
  voices?: Iterable<string>;
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
  /** `multi-stream-input`: the context it was generated for. */
  contextId?: string;
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

const PCM_TONE_CACHE: { buf: Buffer; b64: Map<number, string> } = {
  buf: makePcmToneBuffer(96_000),
  b64: new Map(),
};

function pcmToneBase64(bytes: number): string {
  let s = PCM_TONE_CACHE.b64.get(bytes);
  if (s === undefined) {
    if (bytes > PCM_TONE_CACHE.buf.length) PCM_TONE_CACHE.buf = makePcmToneBuffer(bytes);
    s = PCM_TONE_CACHE.buf.toString("base64", 0, bytes);
    PCM_TONE_CACHE.b64.set(bytes, s);
  }
  return s;
}

/** Bytes of `ms` of audio in `outputFormat` (`pcm_<rate>`: whole 16-bit samples; otherwise 8 kHz, 1 byte per sample). */
export function outputBytes(outputFormat: string | undefined, ms: number): number {
  const pcm = /^pcm_(\d+)$/.exec(outputFormat ?? "");
  if (!pcm) return Math.round(ms * 8);
  return Math.round((ms * Number(pcm[1])) / 1000) * 2;
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
  /** multi-stream-input */
  context_id?: string;
  close_context?: boolean;
  close_socket?: boolean;
}

/** One context of a `multi-stream-input` socket; a `stream-input` socket is one implicit context. */
export class ElevenLabsContext {
  /** `""` for the implicit context of a `stream-input` socket. */
  readonly id: string;
  readonly openedAt = Date.now();
  voiceSettings: Record<string, unknown> | undefined;
  /** The context's first message (its init), parsed. */
  readonly init: ClientMessage;
  /** Every message addressed to this context, parsed, init included. */
  readonly received: ClientMessage[] = [];
  /** Billable characters: text after the init, excluding keep-alives. */
  charsReceived = 0;
  audioBytesSent = 0;
  keepAlives = 0;
  readonly generations: ElevenLabsGeneration[] = [];
  /** When `close_context` (or `close_socket`) arrived. */
  closedAt: number | undefined;
  /** When `isFinal` was sent for it. */
  finalAt: number | undefined;
  /** @internal */
  buffer = "";
  /** @internal */
  schedule = [120, 160, 250, 290];
  /** @internal */
  scheduleIdx = 0;
  /** @internal — generations of one context are sequential. */
  chain: Promise<void> = Promise.resolve();

  constructor(id: string, init: ClientMessage) {
    this.id = id;
    this.init = init;
    this.voiceSettings = init.voice_settings;
    const schedule = init.generation_config?.chunk_length_schedule;
    if (Array.isArray(schedule) && schedule.length > 0) this.schedule = schedule;
  }

  get text(): string {
    return this.generations.map((g) => g.text).join("");
  }
}

export class ElevenLabsConnection {
  readonly id = randomUUID();
  readonly voiceId: string;
  /** `multi-stream-input` (contexts) rather than `stream-input`. */
  readonly multi: boolean;
  readonly params: Record<string, string>;
  /** Query parameters the endpoint does not list (ElevenLabs ignores them; tests assert there are none). */
  readonly undocumentedParams: string[];
  readonly headerKey: string | undefined;
  key: string | undefined;
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  closeCode: number | undefined;
  /** Every JSON message received, parsed. */
  readonly received: ClientMessage[] = [];
  /** The BOS's settings; on `multi-stream-input` those of the latest context. */
  voiceSettings: Record<string, unknown> | undefined;
  /** Billable characters: all text after the BOS / context inits, excluding keep-alives. */
  charsReceived = 0;
  charsSynthesized = 0;
  audioBytesSent = 0;
  /** Keep-alives received (`{text:" "}`, or `{text:"", context_id}` on multi-stream-input). */
  keepAlives = 0;
  /** The fake broke this socket (`dropAfterAudioBytes`). */
  dropped = false;
  /** Every generation on this socket, over all contexts, in the order they were triggered. */
  readonly generations: ElevenLabsGeneration[] = [];
  /** multi-stream-input: every context begun, in order (the implicit one on stream-input). */
  readonly contexts: ElevenLabsContext[] = [];
  /** Messages sent (audio payloads replaced by their byte length, to keep memory flat). */
  readonly sent: Array<{
    audioBytes: number;
    isFinal: boolean | null;
    chars?: string[];
    contextId?: string;
  }> = [];
  lastActivityAt = Date.now();

  readonly #ws: WebSocket;
  readonly #fake: FakeElevenLabs;
  /** Contexts that take text: begun and not closed. */
  readonly #open = new Map<string, ElevenLabsContext>();
  #bos = false;
  #eos = false;
  #closing = false;
  readonly #autoMode: boolean;

  constructor(ws: WebSocket, req: IncomingMessage, voiceId: string, multi: boolean, fake: FakeElevenLabs) {
    this.#ws = ws;
    this.#fake = fake;
    this.voiceId = voiceId;
    this.multi = multi;
    this.params = Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams);
    this.undocumentedParams = Object.keys(this.params).filter((k) => !QUERY_PARAMS.has(k));
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

  /** The context with this id (the latest one when an id was reused). */
  context(id: string): ElevenLabsContext | undefined {
    for (let i = this.contexts.length - 1; i >= 0; i--)
      if (this.contexts[i]?.id === id) return this.contexts[i];
    return undefined;
  }

  /** Contexts begun and not reported final yet (what counts against the limit). */
  get unfinishedContexts(): number {
    return this.contexts.filter((c) => c.finalAt === undefined).length;
  }

  /** Resolves when all generations triggered so far have been sent. */
  idle(): Promise<void> {
    return Promise.all(this.contexts.map((c) => c.chain)).then(() => {});
  }

  inactivityTimeout(): void {
    const seconds = Number(this.params.inactivity_timeout ?? 20);
    this.#error(
      `Have not received a new text input within the timeout of ${seconds} seconds. Streaming input terminated.`,
      "input_timeout_exceeded",
    );
  }

  /** Failure injection: the server drops the socket (mid-utterance, say). */
  drop(code = 1011, reason = "fake drop"): void {
    this.#ws.close(code, reason);
  }

  /** Sends a text message as given (malformed-message tests). */
  sendRaw(text: string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(text);
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
    if (this.multi) this.#onMultiMessage(msg);
    else this.#onSingleMessage(msg);
  }

  /**
   * Takes the key from a first message and checks what the socket was opened for; false (and the
   * socket failed) when the key, the voice or a model option is refused.
   */
  #authorize(msg: ClientMessage): boolean {
    const k = msg.xi_api_key ?? msg["xi-api-key"] ?? msg.authorization;
    if (k) this.key = k;
    if (!this.key || this.#fake.rejectKeys.has(this.key)) {
      this.#error("Invalid API key", "invalid_api_key");
      return false;
    }
    if (!this.#fake.voices.has(this.voiceId)) {
      this.#error(`A voice for the voice_id ${this.voiceId} was not found.`, "voice_not_found");
      return false;
    }
    const model = this.params.model_id ?? DEFAULT_MODEL;
    if (this.params.language_code !== undefined && !LANGUAGE_CODE_MODELS.has(model)) {
      this.#error(
        `Model '${model}' does not support the language_code ${this.params.language_code}. Currently only Turbo v2.5 and Flash v2.5 support language enforcement.`,
        "unsupported_language",
      );
      return false;
    }
    return true;
  }

  /** RealtimeVoiceSettings requires stability and similarity_boost whenever voice_settings is sent. */
  #validSettings(msg: ClientMessage): boolean {
    const v = msg.voice_settings;
    if (v === undefined || (typeof v.stability === "number" && typeof v.similarity_boost === "number"))
      return true;
    this.#error("voice_settings must include stability and similarity_boost.", "invalid_voice_settings");
    return false;
  }

  #onSingleMessage(msg: ClientMessage): void {
    if (this.#eos) return;
    if (!this.#bos) {
      this.#bos = true;
      if (!this.#authorize(msg) || !this.#validSettings(msg)) return;
      const ctx = new ElevenLabsContext("", msg);
      ctx.received.push(msg);
      this.contexts.push(ctx);
      this.voiceSettings = msg.voice_settings;
      // The BOS text is a single space and is not billed; anything else is taken as text.
      if (msg.text && msg.text !== " ") this.#append(ctx, msg.text);
      return;
    }
    const ctx = this.contexts[0];
    if (!ctx) return;
    ctx.received.push(msg);
    const text = msg.text ?? "";
    if (text === "" && !msg.flush) {
      this.#eos = true;
      this.#trigger(ctx);
      ctx.closedAt = Date.now();
      ctx.chain = ctx.chain.then(() => {
        ctx.finalAt = Date.now();
        this.#send(JSON.stringify({ isFinal: true }), 0, true);
        if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
      });
      return;
    }
    if (text === " ") this.#keepAlive(ctx);
    else this.#append(ctx, text);
    this.#textArrived(ctx, msg);
  }

  #onMultiMessage(msg: ClientMessage): void {
    if (this.#closing) return;
    if (msg.close_socket === true) {
      this.#closing = true;
      for (const ctx of [...this.#open.values()]) this.#close(ctx);
      void this.idle().then(() => {
        if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
      });
      return;
    }
    const id = msg.context_id ?? "default";
    const text = msg.text ?? "";
    let ctx = this.#open.get(id);
    if (msg.close_context === true) {
      if (ctx) {
        ctx.received.push(msg);
        this.#close(ctx);
      }
      return;
    }
    if (!ctx) {
      if (text === "" && !msg.flush) {
        // A keep-alive for a context that does not exist: it only resets the inactivity clock.
        this.keepAlives++;
        return;
      }
      if (this.contexts.length === 0 && !this.#authorize(msg)) return;
      if (!this.#validSettings(msg)) return;
      if (this.unfinishedContexts >= this.#fake.maxContexts) {
        this.#error(
          `Maximum simultaneous contexts per WebSocket connection exceeded (${this.#fake.maxContexts}). Please close an existing context before opening a new one.`,
          "max_active_conversations",
        );
        return;
      }
      ctx = new ElevenLabsContext(id, msg);
      this.contexts.push(ctx);
      this.#open.set(id, ctx);
      this.voiceSettings = msg.voice_settings;
      ctx.received.push(msg);
      // The init text is a single space and is not billed; anything else is taken as text.
      if (text !== "" && text !== " ") this.#append(ctx, text);
      this.#textArrived(ctx, msg);
      return;
    }
    ctx.received.push(msg);
    if (msg.voice_settings) {
      // Re-initialising an existing context with new settings.
      ctx.voiceSettings = msg.voice_settings;
      this.voiceSettings = msg.voice_settings;
    }
    if (text === "" && !msg.flush) {
      this.#keepAlive(ctx);
      return;
    }
    if (text !== "" && text !== " ") this.#append(ctx, text);
    else if (text === " " && !msg.flush) this.#keepAlive(ctx);
    this.#textArrived(ctx, msg);
  }

  /** `close_context`: unflushed text is dropped, flushed text finishes, then `isFinal`. */
  #close(ctx: ElevenLabsContext): void {
    this.#open.delete(ctx.id);
    ctx.closedAt = Date.now();
    ctx.buffer = "";
    ctx.chain = ctx.chain.then(() => {
      ctx.finalAt = Date.now();
      this.#send(JSON.stringify({ isFinal: true, contextId: ctx.id }), 0, true, undefined, ctx);
    });
  }

  #keepAlive(ctx: ElevenLabsContext): void {
    ctx.keepAlives++;
    this.keepAlives++;
  }

  #textArrived(ctx: ElevenLabsContext, msg: ClientMessage): void {
    if (msg.flush || msg.try_trigger_generation || this.#autoMode) {
      this.#trigger(ctx);
      return;
    }
    const threshold = ctx.schedule[Math.min(ctx.scheduleIdx, ctx.schedule.length - 1)] ?? 120;
    if (ctx.buffer.length >= threshold) {
      ctx.scheduleIdx++;
      this.#trigger(ctx);
    }
  }

  #append(ctx: ElevenLabsContext, text: string): void {
    ctx.charsReceived += text.length;
    this.charsReceived += text.length;
    ctx.buffer += text;
  }

  #trigger(ctx: ElevenLabsContext): void {
    const text = ctx.buffer;
    ctx.buffer = "";
    if (text.trim() === "") return;
    const gen: ElevenLabsGeneration = { text, triggeredAt: Date.now(), audioBytes: 0 };
    if (this.multi) gen.contextId = ctx.id;
    ctx.generations.push(gen);
    this.generations.push(gen);
    this.charsSynthesized += text.length;
    ctx.chain = ctx.chain.then(() => this.#generate(ctx, gen));
  }

  async #generate(ctx: ElevenLabsContext, gen: ElevenLabsGeneration): Promise<void> {
    const f = this.#fake;
    const wait = gen.triggeredAt + f.ttfbMs - Date.now();
    if (wait > 0) await sleep(wait);
    const chars = [...gen.text];
    const totalMs = chars.length * f.msPerChar;
    const tail = this.multi ? `,"contextId":${JSON.stringify(ctx.id)}}` : "}";
    for (let t = 0; t < totalMs; t += f.chunkMs) {
      if (this.#ws.readyState !== this.#ws.OPEN) return;
      if (t > 0 && f.chunkIntervalMs > 0) await sleep(f.chunkIntervalMs);
      const ms = Math.min(f.chunkMs, totalMs - t);
      const format = this.params.output_format;
      const bytes = outputBytes(format, ms);
      const audio = format?.startsWith("pcm_") ? pcmToneBase64(bytes) : toneBase64(bytes);
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
      // The multi-context AudioOutputMulti has no isFinal; stream-input sends `isFinal: null`.
      this.#send(
        this.multi
          ? `{"audio":"${audio}","normalizedAlignment":${alignment},"alignment":${alignment}${tail}`
          : `{"audio":"${audio}","isFinal":null,"normalizedAlignment":${alignment},"alignment":${alignment}${tail}`,
        bytes,
        null,
        slice,
        ctx,
      );
    }
    gen.doneAt = Date.now();
  }

  #send(
    text: string,
    audioBytes: number,
    isFinal: boolean | null,
    chars?: string[],
    ctx?: ElevenLabsContext,
  ): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.audioBytesSent += audioBytes;
    if (ctx) ctx.audioBytesSent += audioBytes;
    const record: (typeof this.sent)[number] = chars
      ? { audioBytes, isFinal, chars }
      : { audioBytes, isFinal };
    if (this.multi && ctx) record.contextId = ctx.id;
    this.sent.push(record);
    this.#ws.send(text);
    if (ctx && audioBytes > 0 && this.#fake.takeDrop(ctx.audioBytesSent)) {
      this.dropped = true;
      this.#ws.terminate();
    }
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

const WS_PATH = /^\/v1\/text-to-speech\/([^/]+)\/(multi-)?stream-input$/;

/** The websockets' query parameters (AsyncAPI spec, both endpoints list the same). */
const QUERY_PARAMS = new Set([
  "authorization",
  "model_id",
  "language_code",
  "enable_logging",
  "enable_ssml_parsing",
  "output_format",
  "inactivity_timeout",
  "sync_alignment",
  "auto_mode",
  "apply_text_normalization",
  "seed",
  "single_use_token",
]);

/** "WebSockets are not available for the eleven_v3 model" (websockets docs). */
const NO_WEBSOCKET_MODELS = new Set(["eleven_v3"]);
const LANGUAGE_CODE_MODELS = new Set(["eleven_turbo_v2_5", "eleven_flash_v2_5"]);
const DEFAULT_MODEL = "eleven_multilingual_v2";

/** Voice ids of ElevenLabs' premade voices (GET /v1/voices, category "premade"); tests add their own. */
export const PREMADE_VOICE_IDS: readonly string[] = [
  "21m00Tcm4TlvDq8ikWAM", // Rachel
  "AZnzlk1XvdvUeBnXmlld", // Domi
  "EXAVITQu4vr4xnSDxMaL", // Bella
  "ErXwobaYiN019PkySvjV", // Antoni
  "MF3mGyEYCl7XYWbV9V6O", // Elli
  "TxGEqnHWrfWFTfGW9XjX", // Josh
  "VR6AewLTigWG4xSOukaG", // Arnold
  "pNInz6obpgDQGcFmaJgB", // Adam
  "yoZ06aMxZJJ28mfd3POQ", // Sam
];
const HTTP_PATH = /^\/v1\/text-to-speech\/([^/]+)(\/stream)?$/;

export class FakeElevenLabs {
  readonly connections: ElevenLabsConnection[] = [];
  readonly requests: RecordedTtsRequest[] = [];
  readonly rejectKeys: Set<string>;
  /** The voice ids that exist (premade + `voices` + `addVoice`). */
  readonly voices: Set<string>;
  msPerChar: number;
  ttfbMs: number;
  chunkMs: number;
  chunkIntervalMs: number;
  maxContexts: number;

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #port: number;
  readonly #live = new Set<ElevenLabsConnection>();
  readonly #arrivals = new Arrivals<ElevenLabsConnection>("FakeElevenLabs: no connection");
  readonly #sweep: NodeJS.Timeout;
  /** Failure injection: break a socket after this much audio on one context (once). */
  #dropAfter: number | undefined;
  #outage = { remaining: 0, status: 503 };

  private constructor(server: Server, wss: WebSocketServer, port: number, opts: FakeElevenLabsOptions) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.voices = new Set([...PREMADE_VOICE_IDS, ...(opts.voices ?? [])]);
    this.msPerChar = opts.msPerChar ?? 60;
    this.ttfbMs = opts.ttfbMs ?? 0;
    this.chunkMs = opts.chunkMs ?? 250;
    this.chunkIntervalMs = opts.chunkIntervalMs ?? 0;
    this.maxContexts = opts.maxContexts ?? 5;
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

  /** Failure injection: the next socket to send `bytes` of audio on one context is broken (once). */
  dropAfterAudioBytes(bytes: number): void {
    this.#dropAfter = bytes;
  }

  /** @internal True (once) when a context that has sent `sent` bytes is to be broken now. */
  takeDrop(sent: number): boolean {
    if (this.#dropAfter === undefined || sent < this.#dropAfter) return false;
    this.#dropAfter = undefined;
    return true;
  }

  /** Failure injection: the next `count` handshakes are answered `status` (an outage, a refused key). */
  refuseUpgrades(count: number, status = 503): void {
    this.#outage = { remaining: count, status };
  }

  /** Adds voices to the account (a cloned or library voice), so requests for them are served. */
  addVoice(...ids: string[]): void {
    for (const id of ids) this.voices.add(id);
  }

  /** `ws://127.0.0.1:PORT` — the app appends `/v1/text-to-speech/{voice}/multi-stream-input?...`. */
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
    return this.#arrivals.next(timeoutMs);
  }

  /** @internal */
  connectionClosed(c: ElevenLabsConnection): void {
    this.#live.delete(c);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await closeWebSocketServer(this.#wss, this.#server);
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
    if (this.#outage.remaining > 0) {
      this.#outage.remaining--;
      const status = this.#outage.status;
      rejectUpgrade(
        socket,
        status,
        status >= 500 ? "Service Unavailable" : "Refused",
        JSON.stringify({
          detail: { status: "service_unavailable", message: "Service temporarily unavailable" },
        }),
      );
      return;
    }
    const model = new URL(req.url ?? "/", "http://x").searchParams.get("model_id") ?? DEFAULT_MODEL;
    if (NO_WEBSOCKET_MODELS.has(model)) {
      // Refused at the handshake, not with a JSON error on the socket (the body's wording is ours).
      rejectUpgrade(
        socket,
        403,
        "Forbidden",
        JSON.stringify({
          detail: {
            status: "model_not_supported",
            message: `WebSockets are not available for the ${model} model.`,
          },
        }),
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
      const conn = new ElevenLabsConnection(
        ws,
        req,
        decodeURIComponent(m[1] ?? ""),
        m[2] !== undefined,
        this,
      );
      this.connections.push(conn);
      this.#live.add(conn);
      this.#arrivals.arrived(conn);
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
    if (!this.voices.has(record.voiceId)) {
      record.status = 400;
      sendJson(res, 400, {
        detail: {
          status: "voice_not_found",
          message: `A voice for the voice_id ${record.voiceId} was not found.`,
        },
      });
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
