// OpenAI speech to text: a Realtime transcription session over a plain `ws` socket
// (`/v1/realtime?intent=transcription`; the SDK's realtime client forces `wss:`). The session is set
// with `session.update` (`session.type: "transcription"`, the GA shape; `transcription_session.update`
// is the beta one) and answered by `session.updated`, which `connect` waits for, so a model or format
// the session refuses fails the connect. Audio goes as base64 `input_audio_buffer.append`; server VAD
// commits each stretch of speech as an item, whose transcript arrives as
// `conversation.item.input_audio_transcription.delta` events and one `…completed`.
// Mapping: `speech_started` → speech-started; deltas → partials (the item's text so far); completed →
// a final followed by `utterance-end`: OpenAI's VAD already waited `silence_duration_ms` of silence, so
// the turn ends without a second wait (Vapi's use of a transcriber's native end of turn).
import type { RawData, WebSocket } from "ws";
import { openAiSttModelRules } from "./openai-stt-rules.ts";
import {
  type AudioFormat,
  abortError,
  ProviderError,
  type SpeechToText,
  type SttEvent,
  type SttOptions,
  type SttStream,
} from "./types.ts";
import { closeSocket, openSocket, parseMessage, toWebSocketBase, whenClosed } from "./ws-connect.ts";

/** The Realtime endpoint under an OpenAI API base URL (`https://api.openai.com/v1` → `wss://…/v1/realtime`). */
export function openAiRealtimeUrl(baseUrl: string): string {
  return `${toWebSocketBase(baseUrl)}/realtime`;
}

export interface OpenAiSttConfig {
  /**
   * The Realtime endpoint: `wss://api.openai.com/v1/realtime` (config OPENAI_REALTIME_URL, by default
   * OPENAI_BASE_URL's `/realtime`) or a fake's `ws://127.0.0.1:PORT/v1/realtime`.
   */
  realtimeUrl: string;
  /** Handshake plus `session.updated`. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `close()` waits for transcripts of speech already committed. Default 2000. */
  closeTimeoutMs?: number;
  /** Server VAD (OpenAI's defaults: threshold 0.5, 300 ms padding, 500 ms of silence ends speech). */
  vad?: { threshold?: number; prefixPaddingMs?: number; silenceDurationMs?: number };
}

interface RealtimeError {
  type?: string;
  code?: string | null;
  message?: string;
  param?: string | null;
}

type RealtimeEvent =
  | { type: "session.created" | "session.updated" }
  | { type: "input_audio_buffer.speech_started"; audio_start_ms?: number; item_id?: string }
  | { type: "input_audio_buffer.speech_stopped"; audio_end_ms?: number; item_id?: string }
  | { type: "input_audio_buffer.committed"; item_id?: string }
  | { type: "conversation.item.input_audio_transcription.delta"; item_id?: string; delta?: string }
  | {
      type: "conversation.item.input_audio_transcription.completed";
      item_id?: string;
      transcript?: string;
      logprobs?: Array<{ logprob?: number }> | null;
    }
  | { type: "conversation.item.input_audio_transcription.failed"; item_id?: string; error?: RealtimeError }
  | { type: "error"; error?: RealtimeError };

/** An `error` event as a ProviderError: OpenAI's server errors are retryable, request errors are not. */
function eventError(error: RealtimeError | undefined, when: string): ProviderError {
  const auth = error?.code === "invalid_api_key";
  const server = error?.type === "server_error";
  return new ProviderError(
    "openai",
    "transcriber",
    `openai ${when}: ${(error?.message ?? error?.code ?? "error").slice(0, 300)}`,
    server || error?.code === "rate_limit_exceeded",
    auth ? 401 : server ? 500 : 400,
  );
}

export class OpenAiStt implements SpeechToText {
  readonly provider = "openai";
  readonly #url: string;
  readonly #connectTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #vad: { threshold: number; prefixPaddingMs: number; silenceDurationMs: number };

  constructor(config: OpenAiSttConfig) {
    this.#url = toWebSocketBase(config.realtimeUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#closeTimeoutMs = config.closeTimeoutMs ?? 2000;
    this.#vad = {
      threshold: config.vad?.threshold ?? 0.5,
      prefixPaddingMs: config.vad?.prefixPaddingMs ?? 300,
      silenceDurationMs: config.vad?.silenceDurationMs ?? 500,
    };
  }

  /** `audio/pcmu` (μ-law 8 kHz) and `audio/pcm` at 24 kHz only: any other format is converted first. */
  accepts(format: AudioFormat): boolean {
    return format.encoding === "mulaw" ? format.sampleRate === 8000 : format.sampleRate === 24000;
  }

  /** The `session.update` event this session starts with (exposed for tests; holds no secret). */
  sessionUpdate(options: SttOptions): Record<string, unknown> {
    const rules = openAiSttModelRules(options.model);
    const transcription: Record<string, unknown> = { model: options.model };
    if (options.language) transcription.language = options.language.split("-")[0];
    return {
      type: "session.update",
      session: {
        type: "transcription",
        audio: {
          input: {
            format:
              options.audio.encoding === "mulaw"
                ? { type: "audio/pcmu" }
                : { type: "audio/pcm", rate: 24000 },
            transcription,
            turn_detection: rules.serverVad
              ? {
                  type: "server_vad",
                  threshold: this.#vad.threshold,
                  prefix_padding_ms: this.#vad.prefixPaddingMs,
                  silence_duration_ms: this.#vad.silenceDurationMs,
                }
              : null,
          },
        },
        // Token log-probabilities give each final a confidence.
        include: ["item.input_audio_transcription.logprobs"],
      },
    };
  }

  async connect(options: SttOptions, onEvent: (e: SttEvent) => void): Promise<SttStream> {
    const started = performance.now();
    const timeoutMs = options.connectTimeoutMs ?? this.#connectTimeoutMs;
    const { ws } = await openSocket(`${this.#url}?intent=transcription`, {
      provider: this.provider,
      kind: "transcriber",
      headers: { Authorization: `Bearer ${options.apiKey}` },
      timeoutMs,
      signal: options.signal,
    });
    ws.send(JSON.stringify(this.sessionUpdate(options)));
    await waitForSession(ws, timeoutMs - (performance.now() - started), options.signal);
    return new OpenAiSttStream(ws, performance.now() - started, onEvent, options, {
      closeTimeoutMs: this.#closeTimeoutMs,
      silenceDurationMs: this.#vad.silenceDurationMs,
    });
  }
}

/** Waits for `session.updated`; an `error` (unknown model, bad format, key) or a close fails the connect. */
function waitForSession(ws: WebSocket, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (err: unknown): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      if (err) {
        ws.on("error", () => {});
        ws.terminate();
        reject(err);
      } else {
        resolve();
      }
    };
    const onMessage = (data: RawData, isBinary: boolean): void => {
      if (isBinary) return;
      const msg = parseMessage<RealtimeEvent>(data);
      if (msg?.type === "session.updated") finish(undefined);
      else if (msg?.type === "error") finish(eventError(msg.error, "refused the transcription session"));
    };
    const onClose = (code: number, reason: Buffer): void => {
      finish(
        new ProviderError(
          "openai",
          "transcriber",
          `openai closed the transcription session before it started (code ${code}${reason.length ? `: ${reason.toString("utf8").slice(0, 300)}` : ""})`,
          code !== 1008,
          code,
        ),
      );
    };
    const onAbort = (): void => finish(abortError());
    const timer = setTimeout(
      () =>
        finish(
          new ProviderError(
            "openai",
            "transcriber",
            `openai connection failed: no session.updated within ${Math.round(timeoutMs)} ms`,
            true,
          ),
        ),
      Math.max(0, timeoutMs),
    );
    ws.on("message", onMessage);
    ws.on("close", onClose);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

class OpenAiSttStream implements SttStream {
  readonly connectMs: number;
  readonly #ws: WebSocket;
  readonly #onEvent: (e: SttEvent) => void;
  readonly #signal: AbortSignal;
  readonly #closeTimeoutMs: number;
  readonly #silenceDurationMs: number;
  readonly #interim: boolean;
  readonly #closed: Promise<void>;
  /** Text so far per item being transcribed. */
  readonly #text = new Map<string, string>();
  /** Audio time the caller's speech ended, per item (speech_stopped less the VAD's silence). */
  readonly #endMs = new Map<string, number>();
  /** Items committed whose transcript has not arrived. */
  readonly #awaiting = new Set<string>();
  /** Called when `#awaiting` empties (close waits on it). */
  #drained: (() => void) | undefined;
  /** A `finalize()` commit is in flight: the next committed item answers it. */
  #forcing = false;
  /** The item that answers a `finalize()`. */
  #forcedItem: string | undefined;
  #closing = false;
  #ended = false;
  #error: ProviderError | undefined;
  readonly #onAbort = (): void => this.#shutdown();

  constructor(
    ws: WebSocket,
    connectMs: number,
    onEvent: (e: SttEvent) => void,
    options: SttOptions,
    tuning: { closeTimeoutMs: number; silenceDurationMs: number },
  ) {
    this.#ws = ws;
    this.connectMs = connectMs;
    this.#onEvent = onEvent;
    this.#signal = options.signal;
    this.#closeTimeoutMs = tuning.closeTimeoutMs;
    this.#silenceDurationMs = tuning.silenceDurationMs;
    this.#interim = options.interimResults ?? true;
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.#onMessage(data);
    });
    ws.on("error", (err: Error) => {
      this.#error ??= new ProviderError("openai", "transcriber", `openai socket error: ${err.message}`, true);
    });
    this.#closed = whenClosed(ws, (code, reason) => this.#onClose(code, reason));
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  sendAudio(audio: Buffer): void {
    if (this.#closing || this.#ws.readyState !== 1) return;
    this.#ws.send(`{"type":"input_audio_buffer.append","audio":"${audio.toString("base64")}"}`);
  }

  /** Commits the buffer now: what the caller said so far is transcribed (its final has `fromFinalize`). */
  finalize(): void {
    if (this.#closing || this.#ws.readyState !== 1) return;
    this.#forcing = true;
    this.#ws.send('{"type":"input_audio_buffer.commit"}');
  }

  /** Waits (bounded) for the transcripts of committed speech, then closes the socket. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      if (this.#ws.readyState === 1 && this.#awaiting.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#closeTimeoutMs);
          timer.unref();
          this.#drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      this.#shutdown();
    }
    await this.#closed;
  }

  #shutdown(): void {
    this.#closing = true;
    closeSocket(this.#ws, 1000);
  }

  #onClose(code: number, reason: string): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#closing) {
      const error =
        this.#error ??
        new ProviderError(
          "openai",
          "transcriber",
          `openai closed the transcription session (code ${code}${reason ? `: ${reason.slice(0, 300)}` : ""})`,
          code !== 1008,
          code,
        );
      this.#onEvent({ type: "error", error });
    }
    this.#onEvent({ type: "closed" });
  }

  #settle(itemId: string): void {
    this.#text.delete(itemId);
    this.#endMs.delete(itemId);
    this.#awaiting.delete(itemId);
    if (this.#awaiting.size === 0) this.#drained?.();
  }

  #onMessage(data: RawData): void {
    const msg = parseMessage<RealtimeEvent>(data);
    if (!msg) return;
    switch (msg.type) {
      case "input_audio_buffer.speech_started":
        this.#onEvent({ type: "speech-started", atMs: Math.round(msg.audio_start_ms ?? 0) });
        return;
      case "input_audio_buffer.speech_stopped":
        // `audio_end_ms` includes the silence the VAD waited; the words ended that much earlier.
        if (msg.item_id) {
          this.#endMs.set(
            msg.item_id,
            Math.max(0, Math.round((msg.audio_end_ms ?? 0) - this.#silenceDurationMs)),
          );
        }
        return;
      case "input_audio_buffer.committed":
        if (!msg.item_id) return;
        this.#awaiting.add(msg.item_id);
        if (this.#forcing) {
          this.#forcing = false;
          this.#forcedItem = msg.item_id;
        }
        return;
      case "conversation.item.input_audio_transcription.delta": {
        if (!msg.item_id || !msg.delta) return;
        const text = (this.#text.get(msg.item_id) ?? "") + msg.delta;
        this.#text.set(msg.item_id, text);
        if (this.#interim && text.trim() !== "") {
          this.#onEvent({
            type: "transcript",
            text: text.trim(),
            isFinal: false,
            speechFinal: false,
            confidence: 0,
            endMs: this.#endMs.get(msg.item_id) ?? 0,
          });
        }
        return;
      }
      case "conversation.item.input_audio_transcription.completed": {
        const id = msg.item_id ?? "";
        const endMs = this.#endMs.get(id) ?? 0;
        const fromFinalize = id !== "" && id === this.#forcedItem;
        if (fromFinalize) this.#forcedItem = undefined;
        this.#settle(id);
        this.#emitFinal((msg.transcript ?? "").trim(), confidenceOf(msg.logprobs), endMs, fromFinalize);
        return;
      }
      case "conversation.item.input_audio_transcription.failed":
        this.#settle(msg.item_id ?? "");
        // The caller's words of that item are lost: not a silence to carry on through.
        this.#onEvent({ type: "error", error: eventError(msg.error, "could not transcribe the caller") });
        return;
      case "error":
        this.#onError(msg.error);
        return;
      default:
        return;
    }
  }

  #onError(error: RealtimeError | undefined): void {
    // A commit with nothing in the buffer (finalize() between turns): nothing was pending.
    if (error?.code === "input_audio_buffer_commit_empty") {
      if (this.#forcing) {
        this.#forcing = false;
        this.#emitFinal("", 0, 0, true);
      }
      return;
    }
    // OpenAI: "most errors are recoverable and the session will stay open"; a server error is not one
    // we can wait out here, a request error names a bug on our side that must not end a call.
    if (error?.type === "server_error") this.#onEvent({ type: "error", error: eventError(error, "error") });
  }

  #emitFinal(text: string, confidence: number, endMs: number, fromFinalize: boolean): void {
    this.#onEvent({
      type: "transcript",
      text,
      isFinal: true,
      speechFinal: false,
      confidence,
      endMs,
      fromFinalize,
    });
    this.#onEvent({ type: "utterance-end", lastWordEndMs: endMs });
  }
}

/** The mean token probability of a transcript, from its log-probabilities (0 when there are none). */
function confidenceOf(logprobs: Array<{ logprob?: number }> | null | undefined): number {
  if (!logprobs || logprobs.length === 0) return 0;
  let sum = 0;
  for (const p of logprobs) sum += Math.exp(p.logprob ?? Number.NEGATIVE_INFINITY);
  return sum / logprobs.length;
}
