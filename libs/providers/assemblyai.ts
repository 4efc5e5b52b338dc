// AssemblyAI Universal-Streaming v3 over a plain `ws` socket (`/v3/ws`). The SDK insists on `wss:`
// and resolves `connect` only on Begin; speaking the small protocol directly lets tests use a loopback
// fake and lets the adapter map AssemblyAI's turn model onto our events:
// - `Turn` with `end_of_turn: false` is a partial (finalized and pending words together);
// - `Turn` with `end_of_turn: true` is AssemblyAI's own end of turn: a final transcript followed by
//   `utterance-end`, so the turn detector ends the caller's turn at once (Vapi uses a transcriber's
//   native end of turn instead of `transcriptionEndpointingPlan`). With `format_turns` the end of a turn
//   comes twice (unformatted, then formatted with the same `turn_order`): the formatted one is the final.
// - Word times are ms from the start of the audio stream, as our `endMs` is.
// Audio messages must hold 50–1000 ms (3007 "Input duration violation" otherwise): 20 ms phone frames
// are gathered into `chunkMs` messages, and larger ones split.
import type { RawData, WebSocket } from "ws";
import { assemblyAiModelRules } from "./assemblyai-rules.ts";
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

/** AssemblyAI's streaming host (`streaming.eu.assemblyai.com` in the EU). */
export const ASSEMBLYAI_API_URL = "wss://streaming.assemblyai.com";

export interface AssemblyAiSttConfig {
  /** `wss://streaming.assemblyai.com` (config ASSEMBLYAI_API_URL) or a fake's `ws://127.0.0.1:PORT`. */
  baseUrl: string;
  /** Handshake plus AssemblyAI's `Begin` (credentials are checked after the upgrade). Default 5000. */
  connectTimeoutMs?: number;
  /** How long `close()` waits for the last turns and `Termination` after `Terminate`. Default 2000. */
  closeTimeoutMs?: number;
  /** Audio gathered per message, within AssemblyAI's 50–1000 ms. Default 50 (its guidance: ~50 ms). */
  chunkMs?: number;
}

const MIN_CHUNK_MS = 50;
const MAX_CHUNK_MS = 1000;
const FORCE_ENDPOINT = JSON.stringify({ type: "ForceEndpoint" });
const TERMINATE = JSON.stringify({ type: "Terminate" });

interface AssemblyAiWord {
  text?: string;
  start?: number;
  end?: number;
  confidence?: number;
  word_is_final?: boolean;
}

interface AssemblyAiTurn {
  type: "Turn";
  turn_order?: number;
  turn_is_formatted?: boolean;
  end_of_turn?: boolean;
  transcript?: string;
  words?: AssemblyAiWord[];
}

type AssemblyAiMessage =
  | { type: "Begin"; id?: string; expires_at?: number }
  | { type: "SpeechStarted"; timestamp?: number }
  | AssemblyAiTurn
  | { type: "Termination" }
  | { type: "Error"; error_code?: number; error?: string };

/** Bytes per ms of `format` (μ-law: 1 byte a sample; linear16: 2). */
function bytesPerMs(format: AudioFormat): number {
  return (format.sampleRate / 1000) * (format.encoding === "mulaw" ? 1 : 2);
}

/**
 * Close codes AssemblyAI documents (common session errors; the SDK's table for the 4xxx ones) that a
 * new session would not fix: authorisation and account (1008, 4001-4003), our own messages (3006,
 * 3007, 4101) and a bad sample rate (4000). Server errors (3005), an expired session (3008), the
 * concurrency limit (3009, 4029) and drops are worth retrying.
 */
const FINAL_CLOSE_CODES = new Set([1008, 3006, 3007, 4000, 4001, 4002, 4003, 4101]);

/** A refusal of the key (1008 "Unauthorized Connection: Missing Authorization header" / 4001). */
function isAuthRefusal(code: number, reason: string): boolean {
  return code === 4001 || (code === 1008 && /authori[sz]ation|api key|token|not authori[sz]ed/i.test(reason));
}

function closeError(code: number, reason: string): ProviderError {
  const auth = isAuthRefusal(code, reason);
  return new ProviderError(
    "assembly-ai",
    "transcriber",
    `assembly-ai closed the stream (code ${code}${reason ? `: ${reason.slice(0, 300)}` : ""})`,
    !FINAL_CLOSE_CODES.has(code),
    // 401 is what the rest of the platform reads as "credentials refused".
    auth ? 401 : code,
  );
}

export class AssemblyAiStt implements SpeechToText {
  readonly provider = "assembly-ai";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #chunkMs: number;

  constructor(config: AssemblyAiSttConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#closeTimeoutMs = config.closeTimeoutMs ?? 2000;
    this.#chunkMs = Math.min(MAX_CHUNK_MS, Math.max(MIN_CHUNK_MS, config.chunkMs ?? MIN_CHUNK_MS));
  }

  /** `pcm_mulaw` (the telephone's 8 kHz) and `pcm_s16le` at the rate declared in `sample_rate`. */
  accepts(format: AudioFormat): boolean {
    if (format.encoding === "mulaw") return format.sampleRate === 8000;
    return Number.isInteger(format.sampleRate) && format.sampleRate >= 8000 && format.sampleRate <= 48000;
  }

  /** The `/v3/ws` URL for these options (exposed for tests and logs; holds no secret). */
  streamUrl(options: SttOptions): string {
    const model = options.model;
    const rules = assemblyAiModelRules(model);
    const a = options.assemblyAi ?? {};
    const q = new URLSearchParams({
      sample_rate: String(options.audio.sampleRate),
      encoding: options.audio.encoding === "mulaw" ? "pcm_mulaw" : "pcm_s16le",
      speech_model: model,
    });
    // What a model does not take is never sent (assemblyai-rules.ts refuses it when saved).
    if (rules.universalStreaming) {
      if (a.formatTurns) q.set("format_turns", "true");
      if (a.endOfTurnConfidenceThreshold !== undefined) {
        q.set("end_of_turn_confidence_threshold", String(a.endOfTurnConfidenceThreshold));
      }
    }
    if (a.minTurnSilenceMs !== undefined) q.set("min_turn_silence", String(a.minTurnSilenceMs));
    if (a.maxTurnSilenceMs !== undefined) q.set("max_turn_silence", String(a.maxTurnSilenceMs));
    if (rules.keyterms && options.keyterms && options.keyterms.length > 0) {
      q.set("keyterms_prompt", JSON.stringify(options.keyterms));
    }
    if (rules.u3Pro) {
      if (a.prompt) q.set("prompt", a.prompt);
      if (a.mode) q.set("mode", a.mode);
      if (a.agentContext) q.set("agent_context", a.agentContext);
    }
    return `${this.#base}/v3/ws?${q.toString()}`;
  }

  async connect(options: SttOptions, onEvent: (e: SttEvent) => void): Promise<SttStream> {
    const started = performance.now();
    const timeoutMs = options.connectTimeoutMs ?? this.#connectTimeoutMs;
    let opening: SessionOpening | undefined;
    const { ws } = await openSocket(this.streamUrl(options), {
      provider: this.provider,
      kind: "transcriber",
      // The bare key: AssemblyAI takes no "Bearer" or "Token" prefix.
      headers: { Authorization: options.apiKey },
      timeoutMs,
      signal: options.signal,
      // Begin can come in the same packet as the upgrade's answer.
      onSocket: (socket) => {
        opening = new SessionOpening(socket);
      },
    });
    const begun = opening as SessionOpening;
    await begun.begin(timeoutMs - (performance.now() - started), options.signal);
    const rules = assemblyAiModelRules(options.model);
    const stream = new AssemblyAiStream(ws, performance.now() - started, onEvent, options, {
      closeTimeoutMs: this.#closeTimeoutMs,
      chunkBytes: Math.round(this.#chunkMs * bytesPerMs(options.audio)),
      // The U3 Pro family formats every end of turn; Universal-Streaming only with format_turns.
      awaitFormatted: rules.universalStreaming && options.assemblyAi?.formatTurns === true,
    });
    begun.handOver(stream);
    return stream;
  }
}

/**
 * The session's opening: AssemblyAI accepts the upgrade, then checks the key and parameters and
 * refuses with an `Error` message and a close, or sends `Begin`. A refusal is a connect failure, not a
 * mid-call one. Messages after Begin that arrive before the stream exists are kept for it.
 */
class SessionOpening {
  readonly #ws: WebSocket;
  #begun = false;
  #detail = "";
  #closed: { code: number; reason: string } | undefined;
  #kept: RawData[] = [];
  #wake: (() => void) | undefined;
  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (isBinary) return;
    if (this.#begun) {
      this.#kept.push(data);
      return;
    }
    const msg = parseMessage<AssemblyAiMessage>(data);
    if (msg?.type === "Begin") this.#begun = true;
    else if (msg && "error" in msg && typeof msg.error === "string") this.#detail = msg.error;
    this.#wake?.();
  };
  readonly #onClose = (code: number, reason: Buffer): void => {
    this.#closed = { code, reason: reason.toString("utf8") };
    this.#wake?.();
  };

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", this.#onMessage);
    ws.on("close", this.#onClose);
  }

  begin(timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err: unknown): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#wake = undefined;
        if (err) {
          this.#detach();
          this.#ws.on("error", () => {});
          this.#ws.terminate();
          reject(err);
        } else {
          resolve();
        }
      };
      const check = (): void => {
        if (this.#begun) done(undefined);
        else if (this.#closed) done(closeError(this.#closed.code, this.#detail || this.#closed.reason));
      };
      const onAbort = (): void => done(abortError());
      const timer = setTimeout(
        () =>
          done(
            new ProviderError(
              "assembly-ai",
              "transcriber",
              `assembly-ai connection failed: no Begin within ${Math.round(timeoutMs)} ms`,
              true,
            ),
          ),
        Math.max(0, timeoutMs),
      );
      signal.addEventListener("abort", onAbort, { once: true });
      this.#wake = check;
      check();
    });
  }

  /** The stream takes over: what arrived since Begin first, in order. */
  handOver(stream: AssemblyAiStream): void {
    this.#detach();
    for (const data of this.#kept) stream.onText(data);
    this.#kept = [];
  }

  #detach(): void {
    this.#ws.off("message", this.#onMessage);
    this.#ws.off("close", this.#onClose);
  }
}

class AssemblyAiStream implements SttStream {
  readonly connectMs: number;
  readonly #ws: WebSocket;
  readonly #onEvent: (e: SttEvent) => void;
  readonly #signal: AbortSignal;
  readonly #closeTimeoutMs: number;
  readonly #chunkBytes: number;
  readonly #sampleBytes: number;
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #silenceByte: number;
  readonly #awaitFormatted: boolean;
  readonly #interim: boolean;
  readonly #minConfidence: number;
  readonly #closed: Promise<void>;
  /** Audio gathered for the next message (frames kept as given; concatenated once per message). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The highest `turn_order` whose final was emitted: later copies of it are dropped. */
  #lastFinalTurn = -1;
  /** An unformatted end of turn waiting for its formatted copy. */
  #unformatted: AssemblyAiTurn | undefined;
  /** The next end of turn answers a `finalize()` (ForceEndpoint). */
  #forced = false;
  #closing = false;
  #ended = false;
  #error: ProviderError | undefined;
  #errorCode: number | undefined;
  readonly #onAbort = (): void => this.#shutdown(1000);

  constructor(
    ws: WebSocket,
    connectMs: number,
    onEvent: (e: SttEvent) => void,
    options: SttOptions,
    tuning: { closeTimeoutMs: number; chunkBytes: number; awaitFormatted: boolean },
  ) {
    this.#ws = ws;
    this.connectMs = connectMs;
    this.#onEvent = onEvent;
    this.#signal = options.signal;
    this.#closeTimeoutMs = tuning.closeTimeoutMs;
    this.#chunkBytes = tuning.chunkBytes;
    const perMs = bytesPerMs(options.audio);
    this.#sampleBytes = options.audio.encoding === "mulaw" ? 1 : 2;
    this.#minBytes = Math.ceil((MIN_CHUNK_MS * perMs) / this.#sampleBytes) * this.#sampleBytes;
    this.#maxBytes = Math.floor((MAX_CHUNK_MS * perMs) / this.#sampleBytes) * this.#sampleBytes;
    this.#silenceByte = options.audio.encoding === "mulaw" ? 0xff : 0;
    this.#awaitFormatted = tuning.awaitFormatted;
    this.#interim = options.interimResults ?? true;
    this.#minConfidence = options.minConfidence ?? 0;
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (!isBinary) this.onText(data);
    });
    ws.on("error", (err: Error) => {
      this.#error ??= new ProviderError(
        "assembly-ai",
        "transcriber",
        `assembly-ai socket error: ${err.message}`,
        true,
      );
    });
    this.#closed = whenClosed(ws, (code, reason) => this.#onClose(code, reason));
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  sendAudio(audio: Buffer): void {
    if (this.#closing || this.#ws.readyState !== 1) return;
    this.#pending.push(audio);
    this.#pendingBytes += audio.length;
    if (this.#pendingBytes >= this.#chunkBytes) this.#flushAudio(false);
  }

  /** Sends what is gathered: in messages of at most 1000 ms; padded with silence to 50 ms when `pad`. */
  #flushAudio(pad: boolean): void {
    if (this.#pendingBytes === 0 || this.#ws.readyState !== 1) return;
    const minBytes = this.#minBytes;
    let total = this.#pendingBytes;
    if (pad && total < minBytes) {
      this.#pending.push(Buffer.alloc(minBytes - total, this.#silenceByte));
      total = minBytes;
    }
    const all =
      this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, total);
    this.#pending = [];
    this.#pendingBytes = 0;
    let off = 0;
    while (off < all.length) {
      let size = Math.min(this.#maxBytes, all.length - off);
      const rest = all.length - off - size;
      // A short tail would be refused on its own: the last two messages share the remainder.
      if (rest > 0 && rest < minBytes) size = Math.ceil((all.length - off) / 2);
      // Never a 16-bit sample split across two messages.
      if (off + size < all.length) size -= size % this.#sampleBytes;
      this.#ws.send(all.subarray(off, off + size));
      off += size;
    }
  }

  /** ForceEndpoint: AssemblyAI ends the current turn now (its final carries `fromFinalize`). */
  finalize(): void {
    if (this.#closing || this.#ws.readyState !== 1) return;
    this.#flushAudio(true);
    this.#forced = true;
    this.#ws.send(FORCE_ENDPOINT);
  }

  /** Terminate, then wait (bounded) for the last turns, `Termination` and the server's close. */
  async close(): Promise<void> {
    if (!this.#closing) {
      if (this.#ws.readyState === 1) {
        this.#flushAudio(true);
        this.#closing = true;
        this.#ws.send(TERMINATE);
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
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#ended) return;
    this.#ended = true;
    // An end of turn whose formatted copy never came is still the caller's words.
    if (this.#unformatted) this.#emitFinal(this.#unformatted);
    const failed = code !== 1000 || this.#errorCode !== undefined;
    if (!this.#closing && failed) {
      const error =
        this.#errorCode !== undefined
          ? closeError(this.#errorCode, this.#error?.message ?? reason)
          : (this.#error ?? closeError(code, reason));
      this.#onEvent({ type: "error", error });
    } else if (!this.#closing) {
      // AssemblyAI ended the session on its own (1000 without Terminate): the call has no transcriber.
      this.#onEvent({
        type: "error",
        error: new ProviderError("assembly-ai", "transcriber", "assembly-ai ended the session", true, code),
      });
    }
    this.#onEvent({ type: "closed" });
  }

  /** A text message from AssemblyAI. */
  onText(data: RawData): void {
    const msg = parseMessage<AssemblyAiMessage>(data);
    if (!msg) return;
    if (!("type" in msg) || msg.type === "Error") {
      // `{"type":"Error","error_code":3008,"error":"…"}` (or the SDK era's bare `{"error":"…"}`), then a close.
      const m = msg as { error_code?: number; error?: string };
      this.#errorCode = typeof m.error_code === "number" ? m.error_code : this.#errorCode;
      this.#error = new ProviderError(
        "assembly-ai",
        "transcriber",
        typeof m.error === "string" ? m.error.slice(0, 300) : "error",
        true,
      );
      return;
    }
    switch (msg.type) {
      case "SpeechStarted":
        this.#onEvent({ type: "speech-started", atMs: Math.round(msg.timestamp ?? 0) });
        return;
      case "Turn":
        this.#onTurn(msg);
        return;
      default:
        return;
    }
  }

  #onTurn(turn: AssemblyAiTurn): void {
    const order = turn.turn_order ?? this.#lastFinalTurn + 1;
    if (order <= this.#lastFinalTurn) return;
    const pending = this.#unformatted;
    if (pending && (pending.turn_order ?? -1) < order) {
      // A new turn started before the formatted copy of the last one: the unformatted one stands.
      this.#emitFinal(pending);
    }
    if (!turn.end_of_turn) {
      if (!this.#interim) return;
      const words = turn.words ?? [];
      const text = words.length > 0 ? words.map((w) => w.text ?? "").join(" ") : (turn.transcript ?? "");
      if (text.trim() === "") return;
      this.#onEvent({
        type: "transcript",
        text,
        isFinal: false,
        speechFinal: false,
        confidence: meanConfidence(words),
        endMs: Math.round(words.at(-1)?.end ?? 0),
      });
      return;
    }
    if (this.#awaitFormatted && !turn.turn_is_formatted) {
      this.#unformatted = turn;
      return;
    }
    this.#emitFinal(turn);
  }

  #emitFinal(turn: AssemblyAiTurn): void {
    this.#unformatted = undefined;
    this.#lastFinalTurn = Math.max(this.#lastFinalTurn, turn.turn_order ?? this.#lastFinalTurn + 1);
    const words = turn.words ?? [];
    const confidence = meanConfidence(words);
    // Vapi's confidenceThreshold: a turn heard below it is dropped (noise, a cough), not answered.
    const text = confidence < this.#minConfidence ? "" : (turn.transcript ?? "");
    const endMs = Math.round(words.at(-1)?.end ?? 0);
    const fromFinalize = this.#forced;
    this.#forced = false;
    this.#onEvent({
      type: "transcript",
      text,
      isFinal: true,
      speechFinal: false,
      confidence,
      endMs,
      fromFinalize,
    });
    // AssemblyAI decided the turn is over: no further wait on our side.
    this.#onEvent({ type: "utterance-end", lastWordEndMs: endMs });
  }
}

function meanConfidence(words: AssemblyAiWord[]): number {
  if (words.length === 0) return 0;
  let sum = 0;
  for (const w of words) sum += w.confidence ?? 0;
  return sum / words.length;
}
