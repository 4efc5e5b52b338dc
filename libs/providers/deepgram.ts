// Deepgram live STT over a plain `ws` socket (`/v1/listen`). The SDK's socket wrapper adds a
// reconnect loop and per-message work we do not want on a path that carries 50 frames/s per call;
// the protocol is small enough to speak directly.
import type { RawData, WebSocket } from "ws";
import { deepgramVocabulary } from "./deepgram-rules.ts";
import {
  type AudioFormat,
  ProviderError,
  type SpeechToText,
  type SttEvent,
  type SttOptions,
  type SttStream,
} from "./types.ts";
import { closeSocket, openSocket, parseMessage, toWebSocketBase, whenClosed } from "./ws-connect.ts";

export interface DeepgramSttConfig {
  /** `wss://api.deepgram.com` (config DEEPGRAM_API_URL) or a fake's `ws://127.0.0.1:PORT`. */
  baseUrl: string;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /**
   * How often to check for an audio gap and send KeepAlive. Deepgram closes after 10 s without
   * audio or text; checking every 3 s keeps the worst gap at ~6 s. Default 3000.
   */
  keepAliveIntervalMs?: number;
  /** How long `close()` waits for Deepgram's final results after CloseStream. Default 2000. */
  closeTimeoutMs?: number;
}

const KEEP_ALIVE = JSON.stringify({ type: "KeepAlive" });
const FINALIZE = JSON.stringify({ type: "Finalize" });
const CLOSE_STREAM = JSON.stringify({ type: "CloseStream" });

interface DeepgramResultsMessage {
  type: "Results";
  start?: number;
  duration?: number;
  is_final?: boolean;
  speech_final?: boolean;
  from_finalize?: boolean;
  channel?: {
    alternatives?: Array<{ transcript?: string; confidence?: number; words?: Array<{ end?: number }> }>;
  };
}

type DeepgramServerMessage =
  | DeepgramResultsMessage
  | { type: "SpeechStarted"; timestamp?: number }
  | { type: "UtteranceEnd"; last_word_end?: number }
  | { type: "Metadata" }
  | { type: "Error"; description?: string; message?: string; variant?: string };

export class DeepgramStt implements SpeechToText {
  readonly provider = "deepgram";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #keepAliveIntervalMs: number;
  readonly #closeTimeoutMs: number;

  constructor(config: DeepgramSttConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#keepAliveIntervalMs = config.keepAliveIntervalMs ?? 3000;
    this.#closeTimeoutMs = config.closeTimeoutMs ?? 2000;
  }

  /**
   * Deepgram takes raw `linear16` at any declared rate, and `mulaw` at 8 kHz (the telephone rate;
   * other μ-law rates are converted by the session to keep one well-trodden path).
   */
  accepts(format: AudioFormat): boolean {
    if (format.encoding === "mulaw") return format.sampleRate === 8000;
    return Number.isInteger(format.sampleRate) && format.sampleRate >= 8000 && format.sampleRate <= 48000;
  }

  /** The `/v1/listen` URL for these options (exposed for tests and logs; holds no secret). */
  listenUrl(options: SttOptions): string {
    const q = new URLSearchParams({
      encoding: options.audio.encoding,
      sample_rate: String(options.audio.sampleRate),
      channels: "1",
      model: options.model,
      language: options.language,
      interim_results: "true",
      endpointing: String(options.endpointingMs),
      utterance_end_ms: String(options.utteranceEndMs),
      vad_events: "true",
      smart_format: String(options.smartFormat ?? true),
      punctuate: String(options.punctuate ?? true),
    });
    if (options.numerals) q.set("numerals", "true");
    if (options.profanityFilter) q.set("profanity_filter", "true");
    if (options.mipOptOut) q.set("mip_opt_out", "true");
    // Nova-3 takes `keyterm`; older models take `keywords` (optionally `word:boost`).
    const vocabulary = deepgramVocabulary(options.model, options);
    for (const k of vocabulary.keyterm) q.append("keyterm", k);
    for (const k of vocabulary.keywords) q.append("keywords", k);
    return `${this.#base}/v1/listen?${q.toString()}`;
  }

  async connect(options: SttOptions, onEvent: (e: SttEvent) => void): Promise<SttStream> {
    const { ws, connectMs } = await openSocket(this.listenUrl(options), {
      provider: this.provider,
      kind: "transcriber",
      headers: { Authorization: `Token ${options.apiKey}` },
      timeoutMs: options.connectTimeoutMs ?? this.#connectTimeoutMs,
      signal: options.signal,
    });
    return new DeepgramStream(ws, connectMs, onEvent, options.signal, {
      keepAliveIntervalMs: this.#keepAliveIntervalMs,
      closeTimeoutMs: this.#closeTimeoutMs,
    });
  }
}

class DeepgramStream implements SttStream {
  readonly connectMs: number;
  readonly #ws: WebSocket;
  readonly #onEvent: (e: SttEvent) => void;
  readonly #signal: AbortSignal;
  readonly #closeTimeoutMs: number;
  readonly #keepAlive: NodeJS.Timeout;
  readonly #closed: Promise<void>;
  // Set on every frame instead of reading the clock; the keep-alive tick clears it.
  #audioSinceTick = false;
  #closing = false;
  #ended = false;
  #error: ProviderError | undefined;
  readonly #onAbort = (): void => this.#shutdown(1000);

  constructor(
    ws: WebSocket,
    connectMs: number,
    onEvent: (e: SttEvent) => void,
    signal: AbortSignal,
    timing: { keepAliveIntervalMs: number; closeTimeoutMs: number },
  ) {
    this.#ws = ws;
    this.connectMs = connectMs;
    this.#onEvent = onEvent;
    this.#signal = signal;
    this.#closeTimeoutMs = timing.closeTimeoutMs;
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.#onMessage(data);
    });
    ws.on("error", (err: Error) => {
      this.#error ??= new ProviderError(
        "deepgram",
        "transcriber",
        `deepgram socket error: ${err.message}`,
        true,
      );
    });
    this.#closed = whenClosed(ws, (code, reason) => this.#onClose(code, reason));
    this.#keepAlive = setInterval(() => {
      if (!this.#audioSinceTick && ws.readyState === ws.OPEN) ws.send(KEEP_ALIVE);
      this.#audioSinceTick = false;
    }, timing.keepAliveIntervalMs);
    this.#keepAlive.unref();
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  sendAudio(audio: Buffer): void {
    // readyState is a getter on a number; cheaper than any try/catch around send.
    if (this.#closing || this.#ws.readyState !== 1) return;
    this.#audioSinceTick = true;
    this.#ws.send(audio);
  }

  finalize(): void {
    if (!this.#closing && this.#ws.readyState === 1) this.#ws.send(FINALIZE);
  }

  /** CloseStream, then wait (bounded) for the last results and the server's close. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      if (this.#ws.readyState === 1) {
        this.#ws.send(CLOSE_STREAM);
        const timer = setTimeout(() => this.#shutdown(1000), this.#closeTimeoutMs);
        timer.unref();
        await this.#closed;
        clearTimeout(timer);
        return;
      }
      this.#shutdown(1000);
    }
    await this.#closed;
  }

  #shutdown(code: number): void {
    this.#closing = true;
    closeSocket(this.#ws, code);
  }

  #onClose(code: number, reason: string): void {
    clearInterval(this.#keepAlive);
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#ended) return;
    this.#ended = true;
    // Expected: we asked (CloseStream / abort) or the server ended normally.
    if (!this.#closing && code !== 1000) {
      const error =
        this.#error ??
        new ProviderError(
          "deepgram",
          "transcriber",
          `deepgram closed the stream unexpectedly (code ${code}${reason ? `: ${reason}` : ""})`,
          // 1008 = policy (auth/plan); everything else (1011 NET-0001, 1006 drop) is transient.
          code !== 1008,
          code,
        );
      this.#emit({ type: "error", error });
    }
    this.#emit({ type: "closed" });
  }

  #onMessage(data: RawData): void {
    const msg = parseMessage<DeepgramServerMessage>(data);
    if (!msg) return;
    switch (msg.type) {
      case "Results": {
        const alt = msg.channel?.alternatives?.[0];
        const text = alt?.transcript ?? "";
        const isFinal = msg.is_final === true;
        // Empty interims are Deepgram saying "still silence"; nobody acts on them.
        if (!isFinal && text === "") return;
        this.#emit({
          type: "transcript",
          text,
          isFinal,
          speechFinal: msg.speech_final === true,
          confidence: alt?.confidence ?? 0,
          // The last word's end (what turn-taking wants); the result window's end when there are no words.
          endMs: Math.round((alt?.words?.at(-1)?.end ?? (msg.start ?? 0) + (msg.duration ?? 0)) * 1000),
          fromFinalize: msg.from_finalize === true,
        });
        return;
      }
      case "SpeechStarted":
        this.#emit({ type: "speech-started", atMs: Math.round((msg.timestamp ?? 0) * 1000) });
        return;
      case "UtteranceEnd":
        this.#emit({ type: "utterance-end", lastWordEndMs: Math.round((msg.last_word_end ?? 0) * 1000) });
        return;
      case "Error":
        this.#error = new ProviderError(
          "deepgram",
          "transcriber",
          `deepgram error: ${msg.description ?? msg.message ?? msg.variant ?? "unknown"}`,
          true,
        );
        return;
      default:
        return;
    }
  }

  #emit(e: SttEvent): void {
    this.#onEvent(e);
  }
}
