// Cartesia Sonic over its TTS websocket (`/tts/websocket`), spoken with plain `ws`: the JS SDK
// forces `wss://` (PROVIDERS.md §4 trap 13), which a loopback fake cannot be, and adds nothing
// the protocol needs. ONE socket per call (dialed by `prewarm`, re-dialed by the next `open` when
// it died), one context per utterance: Cartesia multiplexes "dozens" of contexts on a socket.
//
// Context per `open`: a fresh `context_id`. Each clause is a generation request carrying the same
// fields every time (model_id, voice, output_format, language, generation_config,
// pronunciation_dict_id: Cartesia wants them unchanged across a context) with `transcript` and
// `continue: true`; the transcript is concatenated verbatim, so clauses are joined with a space.
// `max_buffer_delay_ms: 0`: our clauses are complete, so generation starts on each at once instead
// of waiting up to Cartesia's default 3 s for more context. `end()` sends an empty transcript with
// `continue: false`; the server sends the rest of the audio and `{"type":"done"}` → `done`.
// `abort()` (barge-in) sends `{"context_id","cancel":true}` and stops routing: chunks already in
// flight for that context may still arrive (unconfirmed either way) and are dropped here.
//
// Server frames are JSON text: `chunk` (base64 `data`), `flush_done`, `timestamps`, `done`, and
// `error` (`{title, message, error_code, status_code}` since Cartesia-Version 2026-03-01, `{error,
// status_code}` before; parsed both ways). An error with a `context_id` fails that stream; one
// without is the socket's, remembered for the close that follows.
import type { RawData, WebSocket } from "ws";
import { CallSocketPool, type CallSockets } from "./call-sockets.ts";
import { CARTESIA_SAMPLE_RATES, cartesiaGenerationConfig, cartesiaOutputFormat } from "./cartesia-rules.ts";
import {
  type AudioFormat,
  abortError,
  isRetryableStatus,
  ProviderError,
  type TextToSpeech,
  type TtsEvent,
  type TtsOptions,
  type TtsStream,
  voiceOf,
} from "./types.ts";
import { openSocket, toWebSocketBase } from "./ws-connect.ts";

/** The API version this adapter speaks (structured error frames). */
export const CARTESIA_VERSION = "2026-03-01";

export interface CartesiaTtsConfig {
  /** `https://api.cartesia.ai` (config CARTESIA_API_URL; http→ws) or a fake's URL. */
  baseUrl: string;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** `prewarm` opens the call's socket ahead of its first reply. Default true. */
  warm?: boolean;
}

interface ServerFrame {
  type?: string;
  context_id?: string;
  data?: string;
  done?: boolean;
  status_code?: number;
  title?: string;
  message?: string;
  error?: string;
  error_code?: string;
}

function frameError(frame: ServerFrame): ProviderError {
  const status = typeof frame.status_code === "number" ? frame.status_code : undefined;
  const detail =
    [frame.title, frame.message].filter((s) => typeof s === "string" && s !== "").join(": ") ||
    frame.error ||
    "unknown error";
  const code = frame.error_code ? ` (${frame.error_code})` : "";
  return new ProviderError(
    "cartesia",
    "voice",
    `cartesia refused the request${status !== undefined ? ` (${status})` : ""}: ${detail}${code}`,
    status === undefined ? true : isRetryableStatus(status),
    status,
  );
}

function socketKey(o: TtsOptions): string {
  return [o.apiKey, o.outputFormat.encoding, o.outputFormat.sampleRate].join("\u0000");
}

/** The fields every request of a context repeats unchanged. */
function contextFields(o: TtsOptions): Record<string, unknown> {
  const v = voiceOf(o, "cartesia");
  const fields: Record<string, unknown> = {
    model_id: v.model,
    voice: { mode: "id", id: v.voiceId },
    output_format: cartesiaOutputFormat(o.outputFormat),
    max_buffer_delay_ms: 0,
  };
  if (v.language) fields.language = v.language;
  const gc = cartesiaGenerationConfig(v.model, v.generationConfig);
  if (gc) fields.generation_config = gc;
  if (v.pronunciationDictId) fields.pronunciation_dict_id = v.pronunciationDictId;
  return fields;
}

class CallSocket {
  readonly #ws: WebSocket;
  readonly connectMs: number;
  readonly #streams = new Map<string, CartesiaStream>();
  #seq = 0;
  #lastError: ProviderError | undefined;
  #closed = false;

  constructor(ws: WebSocket, connectMs: number) {
    this.#ws = ws;
    this.connectMs = connectMs;
    ws.on("error", () => {});
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.#onMessage(data);
    });
    ws.once("close", (code: number, reason: Buffer) => this.#onClose(code, reason.toString("utf8")));
  }

  get open(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  nextContextId(): string {
    return `ctx-${++this.#seq}`;
  }

  add(stream: CartesiaStream): void {
    if (this.open) this.#streams.set(stream.contextId, stream);
    else queueMicrotask(() => stream.onClosed(1006, "socket closed before use", undefined));
  }

  release(contextId: string): void {
    this.#streams.delete(contextId);
  }

  send(frame: string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(frame);
  }

  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#streams.values()) s.silence();
    this.#streams.clear();
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000);
    else this.#ws.terminate();
  }

  #onMessage(data: RawData): void {
    let frame: ServerFrame;
    try {
      const parsed: unknown = JSON.parse(data.toString());
      if (parsed === null || typeof parsed !== "object") return;
      frame = parsed as ServerFrame;
    } catch {
      return;
    }
    const stream = frame.context_id === undefined ? undefined : this.#streams.get(frame.context_id);
    if (frame.type === "error") {
      const err = frameError(frame);
      if (stream) {
        this.release(stream.contextId);
        stream.onError(err);
      } else {
        this.#lastError = err;
      }
      return;
    }
    if (!stream) return;
    if (frame.type === "chunk" && typeof frame.data === "string" && frame.data.length > 0) {
      stream.onAudio(Buffer.from(frame.data, "base64"));
    } else if (frame.type === "done") {
      this.release(stream.contextId);
      stream.onDone();
    }
  }

  #onClose(code: number, reason: string): void {
    this.#closed = true;
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.onClosed(code, reason, this.#lastError);
  }
}

class CartesiaStream implements TtsStream {
  readonly contextId: string;
  readonly connectMs: number;
  readonly #socket: CallSocket;
  readonly #fields: Record<string, unknown>;
  readonly #onEvent: (e: TtsEvent) => void;
  #characters = 0;
  #ended = false;
  #finished = false;

  constructor(
    socket: CallSocket,
    fields: Record<string, unknown>,
    onEvent: (e: TtsEvent) => void,
    connectMs: number,
  ) {
    this.#socket = socket;
    this.contextId = socket.nextContextId();
    this.#fields = fields;
    this.#onEvent = onEvent;
    this.connectMs = connectMs;
  }

  sendText(text: string, _flush?: boolean): void {
    if (this.#ended || this.#finished || text.trim() === "") return;
    // Transcripts are concatenated verbatim within a context: the space between clauses is ours.
    const transcript = this.#characters === 0 ? text.trimStart() : ` ${text.trim()}`;
    this.#characters += transcript.length;
    this.#request(transcript, true);
  }

  end(): void {
    if (this.#ended || this.#finished) return;
    this.#ended = true;
    if (this.#characters === 0) {
      // Nothing was sent: the context never existed on the service.
      this.#finish();
      this.#onEvent({ type: "done", characters: 0 });
      return;
    }
    this.#request("", false);
  }

  abort(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#socket.release(this.contextId);
    if (this.#characters > 0) this.#socket.send(JSON.stringify({ context_id: this.contextId, cancel: true }));
  }

  silence(): void {
    this.#finished = true;
  }

  onAudio(audio: Buffer): void {
    if (!this.#finished) this.#onEvent({ type: "audio", audio });
  }

  onDone(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onEvent({ type: "done", characters: this.#characters });
  }

  onError(err: ProviderError): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#onEvent({ type: "error", error: err });
  }

  onClosed(code: number, reason: string, err: ProviderError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    const error =
      err ??
      new ProviderError(
        "cartesia",
        "voice",
        `cartesia closed the stream (code ${code}): ${reason || "no reason"}`,
        code !== 1008,
        code,
      );
    this.#onEvent({ type: "error", error });
  }

  #request(transcript: string, more: boolean): void {
    this.#socket.send(
      JSON.stringify({ ...this.#fields, context_id: this.contextId, transcript, continue: more }),
    );
  }

  #finish(): void {
    this.#finished = true;
    this.#socket.release(this.contextId);
  }
}

export class CartesiaTts implements TextToSpeech {
  readonly provider = "cartesia";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #warm: boolean;
  readonly #sockets = new CallSocketPool<CallSocket>();

  constructor(config: CartesiaTtsConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#warm = config.warm ?? true;
  }

  outputFor(want: AudioFormat): AudioFormat {
    // Raw μ-law and 16-bit PCM at any of the socket's rates; otherwise the next rate up (or 48 kHz).
    if (CARTESIA_SAMPLE_RATES.includes(want.sampleRate)) return want;
    const rate = CARTESIA_SAMPLE_RATES.find((r) => r >= want.sampleRate) ?? 48_000;
    return { encoding: "linear16", sampleRate: rate };
  }

  /** The websocket URL (the version also travels as a header). */
  streamUrl(): string {
    return `${this.#base}/tts/websocket?cartesia_version=${CARTESIA_VERSION}`;
  }

  prewarm(options: TtsOptions): void {
    if (!this.#warm || options.signal.aborted) return;
    this.#sockets.prewarm(options.signal, socketKey(options), (call) => this.#dial(options, call));
  }

  async open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream> {
    const started = performance.now();
    if (options.signal.aborted) throw abortError();
    const fields = contextFields(options);
    const { socket, connectMs } = await this.#sockets.acquire(
      options.signal,
      socketKey(options),
      started,
      (call) => this.#dial(options, call),
    );
    const stream = new CartesiaStream(socket, fields, onEvent, connectMs);
    socket.add(stream);
    return stream;
  }

  async #dial(options: TtsOptions, call: CallSockets<CallSocket>): Promise<CallSocket> {
    const { ws, connectMs } = await openSocket(this.streamUrl(), {
      provider: "cartesia",
      kind: "voice",
      headers: { Authorization: `Bearer ${options.apiKey}`, "Cartesia-Version": CARTESIA_VERSION },
      timeoutMs: options.connectTimeoutMs ?? this.#connectTimeoutMs,
      signal: options.signal,
    });
    return this.#sockets.adopt(call, options.signal, new CallSocket(ws, connectMs));
  }
}
