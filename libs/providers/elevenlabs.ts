// ElevenLabs streaming TTS over the multi-context websocket (`multi-stream-input`), spoken with
// plain `ws` (the Node SDK has no client for it). ONE socket per call, one context per assistant
// utterance: dialing a socket per reply (upgrade, handshake, per-socket setup and timers) was a
// visible share of the media process's CPU, and 100–300 ms of latency per reply on the real service.
//
// Socket: belongs to the call's AbortSignal and a connection key (API key, voice, model, output
// format, language and the other query options: what the URL and header carry), never shared across calls. `prewarm(options)`
// (call start) dials it; `open` reuses it, or dials when there is none or it died (the next `open`
// after a drop re-dials). When the call's signal aborts: `{"close_socket":true}`, then close.
//
// Context per `open`: a fresh `context_id`; first message `{text:" ", context_id, voice_settings,
// generation_config}` (settings are per context on this socket), then text clause by clause
// `{text, context_id, flush?}`; `end()` flushes what is unflushed and sends `{context_id,
// close_context:true}`: the server finishes the flushed audio and sends `{isFinal:true, contextId}`
// → `done`. `abort()` (barge-in) sends `close_context` and stops routing: the server may still send
// the audio it was flushing for that context (documented: a closed context "will continue
// flushing"), and it is dropped; the socket stays open for the next reply. Server messages carry
// `contextId` (camelCase) and are routed to their context's stream; unknown contexts are ignored.
//
// Keep-alive: ElevenLabs closes contexts (and we assume the socket) after `inactivity_timeout` of
// silence (20 s by default; we ask for the maximum, 180 s). When a live context has waited
// `keepAliveIntervalMs` for text (a slow model, a tool call), it gets the documented
// `{"text":"","context_id":…}`. An idle socket (no live context) gets nothing: a keep-alive needs a
// context id, and addressing one that does not exist yet could create it on the service without
// the next reply's voice settings. An idle socket the service closes is simply dialed again by the
// next `open`.
//
// Limits: 5 concurrent contexts per socket; a closed context counts until its `isFinal`. A socket
// with 5 unfinished contexts (rapid barge-ins while flushed audio drains) is retired: it closes once
// its live streams are done and the call's next `open` dials a fresh one.
//
// Failures: a socket that closes or errors while a context is live fails that stream with a
// ProviderError (auth/quota → not retryable), using the last error message the server sent.
import type { RawData, WebSocket } from "ws";
import { CallSocketPool, type CallSockets } from "./call-sockets.ts";
import { elevenLabsQueryParams, elevenLabsVoiceSettings } from "./elevenlabs-rules.ts";
import {
  type AudioFormat,
  abortError,
  ProviderError,
  type TextToSpeech,
  type TtsEvent,
  type TtsOptions,
  type TtsStream,
  voiceOf,
} from "./types.ts";
import { type OpenedSocket, openSocket, toWebSocketBase } from "./ws-connect.ts";

export interface ElevenLabsTtsConfig {
  /** `https://api.elevenlabs.io` (config ELEVENLABS_API_URL; http→ws) or a fake's URL. */
  baseUrl: string;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** `inactivity_timeout` query parameter, seconds (max 180). Default 60. */
  inactivityTimeoutS?: number;
  /** Send a keep-alive when nothing was sent on the call's socket for this long. Default 15000. */
  keepAliveIntervalMs?: number;
  /** `prewarm` opens the call's socket ahead of its first reply. Default true. */
  warm?: boolean;
}

/**
 * Small first threshold so the first clause is generated as soon as it arrives; later ones near
 * ElevenLabs' defaults for prosody. We also flush per clause, so these are upper bounds.
 */
export const LOW_LATENCY_SCHEDULE: readonly number[] = [50, 120, 160, 250];

/** ElevenLabs' limit on concurrent contexts per multi-context socket. */
export const MAX_CONTEXTS_PER_SOCKET = 5;

interface ServerMessage {
  audio?: string | null;
  isFinal?: boolean | null;
  /** One docs sample reads `is_final`; the AsyncAPI schema says `isFinal`. Accept both. */
  is_final?: boolean | null;
  contextId?: string | null;
  context_id?: string | null;
  message?: string;
  error?: string;
  code?: number | string;
}

const AUDIO_KEY = Buffer.from('"audio":"');

/**
 * An audio message's base64 cut out of its bytes and decoded, and the message without it (`"audio":""`)
 * for JSON.parse: most of a message is its audio, and decoding it to a string, scanning it as JSON
 * and copying it out again was most of what a voice's audio cost the media process. Base64 has no
 * quote or backslash, so the audio ends at the next quote; JSON escapes every quote inside a string,
 * so `"audio":"` only matches a key. Undefined when the message has no audio string (parsed whole).
 */
export function cutAudio(data: Buffer): { audio: Buffer; rest: string } | undefined {
  const at = data.indexOf(AUDIO_KEY);
  if (at < 0) return undefined;
  const start = at + AUDIO_KEY.length;
  const end = data.indexOf(0x22, start);
  if (end < 0) return undefined;
  return {
    audio: Buffer.from(data.toString("latin1", start, end), "base64"),
    rest: `${data.toString("utf8", 0, start)}${data.toString("utf8", end)}`,
  };
}

interface ServerError {
  message: string;
  code: string | undefined;
}

/** Server error codes no retry can fix: the key, the quota, a voice that does not exist. */
const PERMANENT_CODES = new Set(["invalid_api_key", "voice_not_found", "voice_does_not_exist"]);

function voiceError(status: number | undefined, detail: string, err: ServerError | undefined): ProviderError {
  const authFailure =
    (err?.code !== undefined && PERMANENT_CODES.has(err.code)) ||
    /api key|unauthori[sz]ed|quota/i.test(err?.message ?? "");
  const prefix =
    status === undefined ? "11labs closed the stream" : `11labs closed the stream (code ${status})`;
  return new ProviderError("11labs", "voice", `${prefix}: ${detail}`, !authFailure, status);
}

/** The raw `output_format`s of the websockets (S16LE PCM and μ-law; MP3/Opus need decoding). */
const PCM_RATES: readonly number[] = [8000, 16000, 22050, 24000, 44100, 48000];
/**
 * The PCM rates `outputFor` chooses. 44.1 kHz PCM is for Pro subscriptions and up in ElevenLabs'
 * output format docs (a customer key on a lower tier would fail the call), and the voices are
 * generated at 24 kHz anyway: a client asking for more gets 24 kHz resampled by the session.
 */
const OFFERED_PCM_RATES: readonly number[] = [8000, 16000, 22050, 24000];

/** `ulaw_8000`, `pcm_16000` …: ElevenLabs' name for an output format it produces raw. */
export function elevenLabsOutputFormat(format: AudioFormat): string {
  if (format.encoding === "mulaw" && format.sampleRate === 8000) return "ulaw_8000";
  if (format.encoding === "linear16" && PCM_RATES.includes(format.sampleRate))
    return `pcm_${format.sampleRate}`;
  throw new Error(`11labs has no raw output format for ${format.encoding} at ${format.sampleRate} Hz`);
}

/** The options that pick a socket: what its URL and header carry. Voice settings are per context. */
function socketKey(o: TtsOptions): string {
  const v = voiceOf(o, "11labs");
  return [
    o.apiKey,
    v.voiceId,
    v.model,
    o.outputFormat.encoding,
    o.outputFormat.sampleRate,
    v.language ?? "",
    v.enableSsmlParsing,
    v.autoMode,
  ].join("\u0000");
}

function contextInit(contextId: string, o: TtsOptions): string {
  // The first message of a context: text must be a single space. Settings are snake_case.
  const init: Record<string, unknown> = {
    text: " ",
    context_id: contextId,
    generation_config: { chunk_length_schedule: LOW_LATENCY_SCHEDULE },
  };
  // None set: no `voice_settings` at all (the voice's own apply), never an empty object.
  const settings = elevenLabsVoiceSettings(voiceOf(o, "11labs"));
  if (settings) init.voice_settings = settings;
  return JSON.stringify(init);
}

/** One call's socket: contexts in, server messages routed to the stream of their context. */
class CallSocket {
  readonly ws: WebSocket;
  readonly connectMs: number;
  /** Live streams by context id (not finished, not aborted). */
  readonly #streams = new Map<string, ElevenLabsStream>();
  /** Contexts begun on this socket and not reported final yet, aborted ones included. */
  readonly #unfinished = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  readonly #onGone: (s: CallSocket) => void;
  #seq = 1;
  #nextId = "c1";
  #sentSinceTick = false;
  #lastError: ServerError | undefined;
  #closed = false;
  #retired = false;

  constructor(opened: OpenedSocket, keepAliveIntervalMs: number, onGone: (s: CallSocket) => void) {
    this.ws = opened.ws;
    this.connectMs = opened.connectMs;
    this.#onGone = onGone;
    const ws = this.ws;
    this.#timer = setInterval(() => this.#tick(), keepAliveIntervalMs);
    this.#timer.unref();
    ws.on("error", () => {});
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.#onMessage(data);
    });
    ws.once("close", (code: number, reason: Buffer) => this.#onClose(code, reason.toString("utf8")));
  }

  get open(): boolean {
    return !this.#closed && this.ws.readyState === this.ws.OPEN;
  }

  /** Can take another context: open, not retired, under the context limit. */
  get usable(): boolean {
    return this.open && !this.#retired && this.#unfinished.size < MAX_CONTEXTS_PER_SOCKET;
  }

  send(text: string): void {
    this.#sentSinceTick = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  /** Starts a context for an utterance; the caller sends the context's init message. */
  begin(makeStream: (contextId: string) => ElevenLabsStream): ElevenLabsStream {
    const id = this.#nextId;
    this.#nextId = `c${++this.#seq}`;
    const stream = makeStream(id);
    this.#unfinished.add(id);
    if (this.open) this.#streams.set(id, stream);
    // Died between the pool check and here: report it like any drop mid-reply.
    else queueMicrotask(() => stream.onSocketClosed(1006, "socket closed before use", undefined));
    return stream;
  }

  /** The stream finished or was aborted: later messages for its context are dropped. */
  release(contextId: string): void {
    this.#streams.delete(contextId);
    if (this.#retired && this.#streams.size === 0) this.shutdown();
  }

  /** No new contexts; close once the live ones are done. */
  retire(): void {
    this.#retired = true;
    if (this.#streams.size === 0) this.shutdown();
  }

  /** Call over (or retired and drained): live streams end silently, the socket closes. */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const stream of this.#streams.values()) stream.silence();
    this.#streams.clear();
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send('{"close_socket":true}');
      this.ws.close(1000);
    } else {
      this.ws.terminate();
    }
  }

  #tick(): void {
    if (!this.#sentSinceTick && this.open) {
      // Only a live context waiting for text is kept alive (see the header: never an idle socket).
      for (const [cid, stream] of this.#streams) {
        if (!stream.ended) {
          this.ws.send(`{"text":"","context_id":${JSON.stringify(cid)}}`);
          break;
        }
      }
    }
    this.#sentSinceTick = false;
  }

  #onMessage(data: RawData): void {
    let msg: ServerMessage;
    let audio: Buffer | undefined;
    try {
      const cut = Buffer.isBuffer(data) ? cutAudio(data) : undefined;
      audio = cut?.audio;
      const parsed: unknown = JSON.parse(cut ? cut.rest : data.toString());
      // `null`, a number or a string is valid JSON but no message: ignored like any malformed one.
      if (parsed === null || typeof parsed !== "object") return;
      msg = parsed as ServerMessage;
    } catch {
      return;
    }
    const id = msg.contextId ?? msg.context_id;
    const isError = msg.error !== undefined || (msg.message !== undefined && msg.audio === undefined);
    if (id === undefined || id === null) {
      if (isError) this.#lastError = { message: msg.message ?? msg.error ?? "unknown", code: msg.error };
      return;
    }
    const final = msg.isFinal === true || msg.is_final === true;
    if (final) this.#unfinished.delete(id);
    const stream = this.#streams.get(id);
    if (!stream) return;
    if (audio) {
      if (audio.length > 0) stream.onAudio(audio);
    } else if (typeof msg.audio === "string" && msg.audio.length > 0) {
      stream.onAudio(Buffer.from(msg.audio, "base64"));
    }
    if (final) {
      this.release(id);
      stream.onFinal();
    } else if (isError) {
      const err: ServerError = { message: msg.message ?? msg.error ?? "unknown", code: msg.error };
      this.#lastError = err;
      this.release(id);
      stream.onContextError(typeof msg.code === "number" ? msg.code : undefined, err);
    }
  }

  #onClose(code: number, reason: string): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#onGone(this);
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const stream of streams) stream.onSocketClosed(code, reason, this.#lastError);
  }
}

export class ElevenLabsTts implements TextToSpeech {
  readonly provider = "11labs";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #inactivityTimeoutS: number;
  readonly #keepAliveIntervalMs: number;
  readonly #warmEnabled: boolean;
  readonly #sockets = new CallSocketPool<CallSocket>();

  constructor(config: ElevenLabsTtsConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#inactivityTimeoutS = Math.min(180, config.inactivityTimeoutS ?? 180);
    this.#keepAliveIntervalMs = config.keepAliveIntervalMs ?? 15_000;
    this.#warmEnabled = config.warm ?? true;
  }

  outputFor(want: AudioFormat): AudioFormat {
    if (want.encoding === "mulaw" && want.sampleRate === 8000) return want;
    if (want.encoding === "linear16" && OFFERED_PCM_RATES.includes(want.sampleRate)) return want;
    // The lowest offered rate at or above the one wanted (downsampling loses nothing heard), else 24 kHz.
    const rate = OFFERED_PCM_RATES.find((r) => r >= want.sampleRate) ?? 24000;
    return { encoding: "linear16", sampleRate: rate };
  }

  /** The multi-context URL this adapter speaks over (one socket per call, a context per utterance). */
  streamUrl(options: TtsOptions): string {
    return this.#url(options, "multi-stream-input");
  }

  prewarm(options: TtsOptions): void {
    if (!this.#warmEnabled || options.signal.aborted) return;
    this.#sockets.prewarm(options.signal, socketKey(options), (call) => this.#dial(options, call));
  }

  async open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream> {
    const started = performance.now();
    if (options.signal.aborted) throw abortError();
    const call = this.#sockets.of(options.signal);
    const { socket, reused } = await this.#acquire(call, socketKey(options), options);
    // The call's abort has already shut the socket down.
    if (options.signal.aborted) throw abortError();
    const connectMs = reused ? performance.now() - started : socket.connectMs;
    const stream = socket.begin((id) => new ElevenLabsStream(socket, id, onEvent, connectMs));
    socket.send(contextInit(stream.contextId, options));
    return stream;
  }

  #url(options: TtsOptions, endpoint: string): string {
    // Only the parameters the endpoint documents (elevenlabs-rules.ts): no optimize_streaming_latency.
    const v = voiceOf(options, "11labs");
    const q = new URLSearchParams({
      model_id: v.model,
      output_format: elevenLabsOutputFormat(options.outputFormat),
      inactivity_timeout: String(this.#inactivityTimeoutS),
      ...elevenLabsQueryParams(v),
    });
    return `${this.#base}/v1/text-to-speech/${encodeURIComponent(v.voiceId)}/${endpoint}?${q.toString()}`;
  }

  /** The call's open socket for this key, or a new one (none yet, it died, or it is full). */
  async #acquire(
    call: CallSockets<CallSocket>,
    key: string,
    options: TtsOptions,
  ): Promise<{ socket: CallSocket; reused: boolean }> {
    // Twice: another `open` of the same call may have replaced a dead socket while we waited.
    for (let attempt = 0; attempt < 2; attempt++) {
      const pending = call.byKey.get(key);
      if (!pending) break;
      const socket = await pending;
      if (socket?.usable) return { socket, reused: true };
      if (call.byKey.get(key) === pending) {
        call.byKey.delete(key);
        socket?.retire();
      }
    }
    const socket = await this.#sockets.dial(call, key, (c) => this.#dial(options, c));
    return { socket, reused: false };
  }

  async #dial(options: TtsOptions, call: CallSockets<CallSocket>): Promise<CallSocket> {
    const opened = await openSocket(this.streamUrl(options), {
      provider: this.provider,
      kind: "voice",
      headers: { "xi-api-key": options.apiKey },
      timeoutMs: options.connectTimeoutMs ?? this.#connectTimeoutMs,
      signal: options.signal,
    });
    if (options.signal.aborted) {
      opened.ws.on("error", () => {});
      opened.ws.terminate();
      throw abortError();
    }
    const socket = new CallSocket(opened, this.#keepAliveIntervalMs, (s) => call.all.delete(s));
    call.all.add(socket);
    return socket;
  }
}

class ElevenLabsStream implements TtsStream {
  readonly connectMs: number;
  readonly contextId: string;
  readonly #socket: CallSocket;
  readonly #onEvent: (e: TtsEvent) => void;
  #characters = 0;
  #ended = false;
  #finished = false;
  #aborted = false;
  /** Text was sent without `flush` since the last flush. */
  #unflushed = false;

  constructor(socket: CallSocket, contextId: string, onEvent: (e: TtsEvent) => void, connectMs: number) {
    this.#socket = socket;
    this.contextId = contextId;
    this.#onEvent = onEvent;
    this.connectMs = connectMs;
  }

  get ended(): boolean {
    return this.#ended;
  }

  sendText(text: string, flush = false): void {
    if (this.#ended || this.#aborted || this.#finished) return;
    // An empty text is a keep-alive on this socket; a lone space is the context's init.
    if (text.trim() === "") return;
    // ElevenLabs wants each chunk to end with a space so words do not run together.
    const chunk = text.endsWith(" ") ? text : `${text} `;
    this.#characters += chunk.length;
    // Without flush: `try_trigger_generation`, as on `stream-input` (not in the multi-context
    // schema; the server generates by chunk_length_schedule or at the context's close anyway).
    this.#socket.send(
      flush
        ? JSON.stringify({ text: chunk, context_id: this.contextId, flush: true })
        : JSON.stringify({ text: chunk, context_id: this.contextId, try_trigger_generation: true }),
    );
    this.#unflushed = !flush;
  }

  end(): void {
    if (this.#ended || this.#aborted || this.#finished) return;
    this.#ended = true;
    const id = JSON.stringify(this.contextId);
    if (this.#unflushed) this.#socket.send(`{"context_id":${id},"text":"","flush":true}`);
    this.#socket.send(`{"context_id":${id},"close_context":true}`);
    if (this.#characters === 0) {
      // Nothing to speak: do not wait for the server to confirm an empty context.
      this.#finished = true;
      this.#socket.release(this.contextId);
      this.#onEvent({ type: "done", characters: 0 });
    }
  }

  abort(): void {
    if (this.#aborted || this.#finished) return;
    this.#aborted = true;
    this.#socket.release(this.contextId);
    // After end() the context is already closed; the server may still drain it, unheard.
    if (!this.#ended)
      this.#socket.send(`{"context_id":${JSON.stringify(this.contextId)},"close_context":true}`);
  }

  /** Call teardown: no more events. */
  silence(): void {
    this.#aborted = true;
  }

  onAudio(audio: Buffer): void {
    if (this.#aborted || this.#finished) return;
    this.#onEvent({ type: "audio", audio });
  }

  onFinal(): void {
    if (this.#aborted || this.#finished) return;
    this.#finished = true;
    this.#onEvent({ type: "done", characters: this.#characters });
  }

  onContextError(status: number | undefined, err: ServerError): void {
    if (this.#aborted || this.#finished) return;
    this.#finished = true;
    this.#onEvent({ type: "error", error: voiceError(status, err.message, err) });
  }

  onSocketClosed(code: number, reason: string, err: ServerError | undefined): void {
    if (this.#aborted || this.#finished) return;
    this.#finished = true;
    if (code === 1000 && this.#ended && !err) {
      this.#onEvent({ type: "done", characters: this.#characters });
      return;
    }
    this.#onEvent({ type: "error", error: voiceError(code, err?.message ?? (reason || "no reason"), err) });
  }
}
