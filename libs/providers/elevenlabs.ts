// ElevenLabs streaming TTS over the `stream-input` websocket, spoken with plain `ws` (the Node
// SDK has no client for it). One socket per assistant reply: BOS (voice settings) → text clause
// by clause → EOS `{text:""}` → audio chunks → `isFinal` → server closes.
//
// Warm sockets: the handshake (TCP + TLS + upgrade) is 100–300 ms on the real service, paid on
// every reply. `prewarm(options)` (call start) opens a socket and sends its BOS ahead of time; the
// next `open` with the same options takes it and immediately pre-opens a replacement, so every
// reply of that call starts on a ready socket. Warm sockets belong to the call's AbortSignal
// (closed when it aborts, never shared across calls) and are kept alive with `{"text":" "}`
// every `keepAliveIntervalMs` (ElevenLabs closes sockets idle for `inactivity_timeout`, 20 s by
// default; we also ask for 60 s). Calls that never prewarm dial per reply.
import type { RawData, WebSocket } from "ws";
import { ProviderError, type TextToSpeech, type TtsEvent, type TtsOptions, type TtsStream } from "./types.ts";
import { type OpenedSocket, openSocket, toWebSocketBase } from "./ws-connect.ts";

export interface ElevenLabsTtsConfig {
  /** `https://api.elevenlabs.io` (config ELEVENLABS_API_URL; http→ws) or a fake's URL. */
  baseUrl: string;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** `inactivity_timeout` query parameter, seconds (max 180). Default 60. */
  inactivityTimeoutS?: number;
  /** Send `{"text":" "}` when nothing was sent for this long. Default 15000. */
  keepAliveIntervalMs?: number;
  /** Keep a pre-opened socket per prewarmed call. Default true. */
  warm?: boolean;
}

/**
 * Small first threshold so the first clause is generated as soon as it arrives; later ones near
 * ElevenLabs' defaults for prosody. We also trigger per clause, so these are upper bounds.
 */
export const LOW_LATENCY_SCHEDULE: readonly number[] = [50, 120, 160, 250];

const KEEP_ALIVE = '{"text":" "}';
const EOS = '{"text":""}';

interface ServerMessage {
  audio?: string | null;
  isFinal?: boolean | null;
  message?: string;
  error?: string;
}

/** A socket with its BOS sent, plus the keep-alive that holds it open between clauses. */
class LiveSocket {
  readonly ws: WebSocket;
  readonly connectMs: number;
  readonly #timer: NodeJS.Timeout;
  #sentSinceTick = false;

  constructor(opened: OpenedSocket, keepAliveIntervalMs: number) {
    this.ws = opened.ws;
    this.connectMs = opened.connectMs;
    const ws = this.ws;
    this.#timer = setInterval(() => {
      if (!this.#sentSinceTick && ws.readyState === ws.OPEN) ws.send(KEEP_ALIVE);
      this.#sentSinceTick = false;
    }, keepAliveIntervalMs);
    this.#timer.unref();
    ws.on("error", () => {});
    ws.once("close", () => clearInterval(this.#timer));
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  send(text: string): void {
    this.#sentSinceTick = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  /** After EOS nothing more may be sent, keep-alives included. */
  stopKeepAlive(): void {
    clearInterval(this.#timer);
  }

  /** Immediate: no close handshake, the server stops streaming to a dead socket. */
  kill(): void {
    clearInterval(this.#timer);
    this.ws.terminate();
  }
}

function poolKey(o: TtsOptions): string {
  const v = o.voiceSettings;
  return [
    o.apiKey,
    o.voiceId,
    o.model,
    o.outputFormat,
    o.optimizeStreamingLatency ?? "",
    v ? `${v.stability}|${v.similarityBoost}|${v.style}|${v.useSpeakerBoost}|${v.speed}` : "",
    o.chunkLengthSchedule?.join(",") ?? "",
  ].join("\u0000");
}

export class ElevenLabsTts implements TextToSpeech {
  readonly provider = "11labs";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #inactivityTimeoutS: number;
  readonly #keepAliveIntervalMs: number;
  readonly #warmEnabled: boolean;
  // Per call (signal) and per options key: a socket being opened or ready.
  readonly #warm = new WeakMap<AbortSignal, Map<string, Promise<LiveSocket | undefined>>>();

  constructor(config: ElevenLabsTtsConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#inactivityTimeoutS = Math.min(180, config.inactivityTimeoutS ?? 60);
    this.#keepAliveIntervalMs = config.keepAliveIntervalMs ?? 15_000;
    this.#warmEnabled = config.warm ?? true;
  }

  streamUrl(options: TtsOptions): string {
    const q = new URLSearchParams({
      model_id: options.model,
      output_format: options.outputFormat,
      inactivity_timeout: String(this.#inactivityTimeoutS),
    });
    if (options.optimizeStreamingLatency !== undefined) {
      q.set("optimize_streaming_latency", String(options.optimizeStreamingLatency));
    }
    return `${this.#base}/v1/text-to-speech/${encodeURIComponent(options.voiceId)}/stream-input?${q.toString()}`;
  }

  prewarm(options: TtsOptions): void {
    if (!this.#warmEnabled || options.signal.aborted) return;
    let perCall = this.#warm.get(options.signal);
    if (!perCall) {
      perCall = new Map();
      this.#warm.set(options.signal, perCall);
      const calls = perCall;
      options.signal.addEventListener(
        "abort",
        () => {
          for (const pending of calls.values()) void pending.then((s) => s?.kill());
          calls.clear();
        },
        { once: true },
      );
    }
    const key = poolKey(options);
    if (perCall.has(key)) return;
    perCall.set(
      key,
      this.#dial(options).catch(() => undefined),
    );
  }

  async open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream> {
    const started = performance.now();
    const perCall = this.#warm.get(options.signal);
    const key = perCall ? poolKey(options) : "";
    const pending = perCall?.get(key);
    let socket: LiveSocket | undefined;
    if (perCall && pending) {
      perCall.delete(key);
      socket = await pending;
      if (socket && !socket.open) {
        socket.kill();
        socket = undefined;
      }
      // Replace what we took so the call's next reply is warm too: after this reply's text is
      // on its way (building a client upgrade request is not free), never before.
      setImmediate(() => this.prewarm(options));
    }
    const reused = socket !== undefined;
    socket ??= await this.#dial(options);
    if (options.signal.aborted) {
      socket.kill();
      throw new DOMException("The operation was aborted", "AbortError");
    }
    return new ElevenLabsStream(
      socket,
      onEvent,
      options.signal,
      reused ? performance.now() - started : socket.connectMs,
    );
  }

  async #dial(options: TtsOptions): Promise<LiveSocket> {
    const opened = await openSocket(this.streamUrl(options), {
      provider: this.provider,
      kind: "voice",
      headers: { "xi-api-key": options.apiKey },
      timeoutMs: options.connectTimeoutMs ?? this.#connectTimeoutMs,
      signal: options.signal,
    });
    const socket = new LiveSocket(opened, this.#keepAliveIntervalMs);
    const v = options.voiceSettings;
    // BOS: the text must be a single space. Settings are snake_case on the wire.
    const bos: Record<string, unknown> = {
      text: " ",
      generation_config: { chunk_length_schedule: options.chunkLengthSchedule ?? LOW_LATENCY_SCHEDULE },
    };
    if (v) {
      const settings: Record<string, number | boolean> = {};
      if (v.stability !== undefined) settings.stability = v.stability;
      if (v.similarityBoost !== undefined) settings.similarity_boost = v.similarityBoost;
      if (v.style !== undefined) settings.style = v.style;
      if (v.useSpeakerBoost !== undefined) settings.use_speaker_boost = v.useSpeakerBoost;
      if (v.speed !== undefined) settings.speed = v.speed;
      bos.voice_settings = settings;
    }
    socket.send(JSON.stringify(bos));
    return socket;
  }
}

class ElevenLabsStream implements TtsStream {
  readonly connectMs: number;
  readonly #socket: LiveSocket;
  readonly #onEvent: (e: TtsEvent) => void;
  readonly #signal: AbortSignal;
  #characters = 0;
  #ended = false;
  #finished = false;
  #aborted = false;
  #serverError: { message: string; code: string | undefined } | undefined;
  readonly #onAbort = (): void => this.abort();

  constructor(socket: LiveSocket, onEvent: (e: TtsEvent) => void, signal: AbortSignal, connectMs: number) {
    this.#socket = socket;
    this.#onEvent = onEvent;
    this.#signal = signal;
    this.connectMs = connectMs;
    socket.ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.#onMessage(data);
    });
    socket.ws.once("close", (code: number, reason: Buffer) => this.#onClose(code, reason.toString("utf8")));
    signal.addEventListener("abort", this.#onAbort, { once: true });
    if (!socket.open) {
      // Died between the pool check and here: report it like any mid-reply drop.
      queueMicrotask(() => this.#onClose(1006, "socket closed before use"));
    }
  }

  sendText(text: string, flush = false): void {
    if (this.#ended || this.#aborted) return;
    // An empty text would be read as end-of-stream; a lone space is a keep-alive.
    if (text.trim() === "") return;
    // ElevenLabs wants each chunk to end with a space so words do not run together.
    const chunk = text.endsWith(" ") ? text : `${text} `;
    this.#characters += chunk.length;
    this.#socket.send(
      flush
        ? JSON.stringify({ text: chunk, flush: true })
        : JSON.stringify({ text: chunk, try_trigger_generation: true }),
    );
  }

  end(): void {
    if (this.#ended || this.#aborted) return;
    this.#ended = true;
    this.#socket.stopKeepAlive();
    this.#socket.send(EOS);
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#socket.kill();
  }

  #onMessage(data: RawData): void {
    if (this.#aborted || this.#finished) return;
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data.toString()) as ServerMessage;
    } catch {
      return;
    }
    if (typeof msg.audio === "string" && msg.audio.length > 0) {
      this.#onEvent({ type: "audio", mulaw: Buffer.from(msg.audio, "base64") });
    }
    if (msg.isFinal === true) {
      this.#finished = true;
      this.#onEvent({ type: "done", characters: this.#characters });
      return;
    }
    if (msg.error !== undefined || (msg.message !== undefined && msg.audio === undefined)) {
      this.#serverError = { message: msg.message ?? msg.error ?? "unknown", code: msg.error };
    }
  }

  #onClose(code: number, reason: string): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#aborted || this.#finished) return;
    this.#finished = true;
    if (code === 1000 && this.#ended && !this.#serverError) {
      this.#onEvent({ type: "done", characters: this.#characters });
      return;
    }
    const err = this.#serverError;
    const authFailure =
      err?.code === "invalid_api_key" || /api key|unauthori[sz]ed|quota/i.test(err?.message ?? "");
    this.#onEvent({
      type: "error",
      error: new ProviderError(
        "11labs",
        "voice",
        `11labs closed the stream (code ${code}): ${err?.message ?? (reason || "no reason")}`,
        !authFailure,
        code,
      ),
    });
  }
}
