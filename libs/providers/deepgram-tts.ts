// Deepgram Aura / Aura-2 over the streaming TTS websocket (`/v1/speak`), spoken with plain `ws`.
// ONE socket per call (dialed by `prewarm`, re-dialed by the next `open` when it died); the model
// (= the voice), encoding and rate are in its URL. The socket has no contexts: text is spoken in
// the order it arrives, `Flush` makes Deepgram generate what it holds and answers `Flushed`,
// `Clear` drops its buffers and stops the audio "as soon as possible" and answers `Cleared`, and
// `Close` closes at once, dropping pending audio (PROVIDERS.md §1.3). So utterances take turns:
// the first one open is the one speaking; a later one keeps its text until the earlier is done.
//
// - `sendText`: `{"type":"Speak","text"}`, then `{"type":"Flush"}` when the speaker asks for it and
//   the flush budget allows. Deepgram takes at most 20 flushes per 60 s (more are ignored with a
//   Warning, and the utterance would never hear its `Flushed`), so a clause flush is skipped when
//   a quarter of the window's flushes or fewer are left; `end()`'s flush is always sent, waiting for
//   the window to free a slot if it must. An utterance is done at the `Flushed` of its last flush.
// - `abort()` of the speaking utterance: `{"type":"Clear"}`; binary audio and `Flushed` that arrive
//   until the matching `Cleared` belong to it and are dropped. The next utterance's text, sent
//   after the Clear, is spoken after it.
// - Binary frames are raw audio; text frames are Metadata, Flushed, Cleared, Warning.
// - A socket that closes while utterances are live fails them (the close frame's code and
//   reason, e.g. 1008 DATA-0000); an idle socket that closes is dialed again by the next `open`.
import type { RawData, WebSocket } from "ws";
import { CallSocketPool, type CallSockets } from "./call-sockets.ts";
import {
  DEEPGRAM_TTS_FLUSH_LIMIT,
  DEEPGRAM_TTS_SAMPLE_RATES,
  deepgramSpeakFormat,
  deepgramSpeakModel,
} from "./deepgram-tts-rules.ts";
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
import { openSocket, toWebSocketBase } from "./ws-connect.ts";

export interface DeepgramTtsConfig {
  /** `wss://api.deepgram.com` (config DEEPGRAM_TTS_API_URL, else DEEPGRAM_API_URL) or a fake's. */
  baseUrl: string;
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** `prewarm` opens the call's socket ahead of its first reply. Default true. */
  warm?: boolean;
  /** Deepgram's flush cap (tests shrink the window). Default 20 per 60 s. */
  flushLimit?: { count: number; windowMs: number };
  /** Clock for the flush window. Default performance.now. */
  now?: () => number;
}

/** Flushes kept for utterance ends: a clause flush is skipped when no more are left in the window. */
function flushReserve(limit: { count: number }): number {
  return Math.max(1, Math.floor(limit.count / 4));
}

/**
 * How much longer than the window a flush counts against it here. Deepgram times a flush from when
 * it arrives, later than when it was sent: a slot that frees by our clock may not have freed by
 * Deepgram's yet, and a flush sent into it is ignored with a Warning (its utterance would never hear
 * `Flushed`). 500 ms for Deepgram's 60 s window, a tenth of a test's short one (50 ms at least).
 */
function flushMargin(limit: { windowMs: number }): number {
  return Math.min(500, Math.max(50, limit.windowMs / 10));
}

interface TextFrame {
  type?: string;
  description?: string;
  code?: string;
}

class CallSocket {
  readonly #ws: WebSocket;
  readonly connectMs: number;
  readonly #limit: { count: number; windowMs: number };
  readonly #now: () => number;
  /** Utterances in speaking order; the first is speaking. */
  readonly #queue: DeepgramStream[] = [];
  /** Clears sent and not answered: everything before their `Cleared` is a cancelled utterance's. */
  #clearing = 0;
  /** Times of the flushes sent in the current window. */
  #flushTimes: number[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    ws: WebSocket,
    connectMs: number,
    limit: { count: number; windowMs: number },
    now: () => number,
  ) {
    this.#ws = ws;
    this.connectMs = connectMs;
    this.#limit = limit;
    this.#now = now;
    ws.on("error", () => {});
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (isBinary) this.#onAudio(data as Buffer);
      else this.#onText(data);
    });
    ws.once("close", (code: number, reason: Buffer) => this.#onClose(code, reason.toString("utf8")));
  }

  get open(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  get speaking(): DeepgramStream | undefined {
    return this.#queue[0];
  }

  add(stream: DeepgramStream): void {
    if (!this.open) {
      queueMicrotask(() => stream.onClosed(1006, "socket closed before use"));
      return;
    }
    this.#queue.push(stream);
  }

  send(frame: string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(frame);
  }

  /** A clause flush, when the window leaves room for the utterance ends still to come. */
  tryFlush(): boolean {
    if (this.#roomLeft() <= flushReserve(this.#limit)) return false;
    this.#flush();
    return true;
  }

  /** An end flush: now, or as soon as the window frees a slot. */
  flushSoon(): void {
    if (this.#roomLeft() > 0) {
      this.#flush();
      return;
    }
    if (this.#flushTimer) return;
    const oldest = this.#flushTimes[0] ?? this.#now();
    this.#flushTimer = setTimeout(
      () => {
        this.#flushTimer = undefined;
        this.flushSoon();
      },
      Math.max(1, oldest + this.#limit.windowMs + flushMargin(this.#limit) - this.#now()),
    );
    this.#flushTimer.unref();
  }

  /** The speaking utterance is cancelled: Clear, and drop what arrives before `Cleared`. */
  clear(stream: DeepgramStream): void {
    const i = this.#queue.indexOf(stream);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    if (i === 0 && stream.sentText) {
      this.#clearing++;
      this.send('{"type":"Clear"}');
      this.#next();
    }
  }

  /** The speaking utterance heard its last Flushed: the next one starts. */
  finished(stream: DeepgramStream): void {
    if (this.#queue[0] !== stream) return;
    this.#queue.shift();
    this.#next();
  }

  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    for (const s of this.#queue) s.silence();
    this.#queue.length = 0;
    if (this.#ws.readyState === this.#ws.OPEN) {
      this.#ws.send('{"type":"Close"}');
      this.#ws.close(1000);
    } else {
      this.#ws.terminate();
    }
  }

  #next(): void {
    this.#queue[0]?.onSpeaking();
  }

  #roomLeft(): number {
    const since = this.#now() - this.#limit.windowMs - flushMargin(this.#limit);
    while (this.#flushTimes.length > 0 && (this.#flushTimes[0] as number) <= since) this.#flushTimes.shift();
    return this.#limit.count - this.#flushTimes.length;
  }

  #flush(): void {
    this.#flushTimes.push(this.#now());
    this.speaking?.onFlushSent();
    this.send('{"type":"Flush"}');
  }

  #onAudio(audio: Buffer): void {
    if (this.#clearing > 0) return;
    this.#queue[0]?.onAudio(audio);
  }

  #onText(data: RawData): void {
    let frame: TextFrame;
    try {
      const parsed: unknown = JSON.parse(data.toString());
      if (parsed === null || typeof parsed !== "object") return;
      frame = parsed as TextFrame;
    } catch {
      return;
    }
    if (frame.type === "Cleared") {
      if (this.#clearing > 0) this.#clearing--;
    } else if (frame.type === "Flushed" && this.#clearing === 0) {
      this.#queue[0]?.onFlushed();
    }
  }

  #onClose(code: number, reason: string): void {
    this.#closed = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    const live = this.#queue.splice(0);
    for (const s of live) s.onClosed(code, reason);
  }
}

class DeepgramStream implements TtsStream {
  readonly connectMs: number;
  readonly #socket: CallSocket;
  readonly #onEvent: (e: TtsEvent) => void;
  /** Text held until this utterance is the one speaking. */
  #held: { text: string; flush: boolean }[] = [];
  #characters = 0;
  #flushesPending = 0;
  #unflushed = false;
  #ended = false;
  #finished = false;
  sentText = false;

  constructor(socket: CallSocket, onEvent: (e: TtsEvent) => void, connectMs: number) {
    this.#socket = socket;
    this.#onEvent = onEvent;
    this.connectMs = connectMs;
  }

  get #speaking(): boolean {
    return this.#socket.speaking === this;
  }

  sendText(text: string, flush = false): void {
    if (this.#ended || this.#finished || text.trim() === "") return;
    const piece = this.#characters === 0 ? text.trimStart() : ` ${text.trim()}`;
    this.#characters += piece.length;
    if (this.#speaking) this.#speak(piece, flush);
    else this.#held.push({ text: piece, flush });
  }

  end(): void {
    if (this.#ended || this.#finished) return;
    this.#ended = true;
    if (this.#speaking) this.#endNow();
  }

  abort(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#socket.clear(this);
  }

  silence(): void {
    this.#finished = true;
  }

  /** This utterance's turn: its held text goes out. */
  onSpeaking(): void {
    if (this.#finished) return;
    const held = this.#held;
    this.#held = [];
    for (const h of held) this.#speak(h.text, h.flush);
    if (this.#ended) this.#endNow();
  }

  onFlushSent(): void {
    this.#flushesPending++;
    this.#unflushed = false;
  }

  onFlushed(): void {
    if (this.#finished) return;
    if (this.#flushesPending > 0) this.#flushesPending--;
    if (this.#ended && !this.#unflushed && this.#flushesPending === 0) this.#done();
  }

  onAudio(audio: Buffer): void {
    if (!this.#finished) this.#onEvent({ type: "audio", audio });
  }

  onClosed(code: number, reason: string): void {
    if (this.#finished) return;
    this.#finished = true;
    const detail = reason || "no reason";
    this.#onEvent({
      type: "error",
      error: new ProviderError(
        "deepgram",
        "voice",
        `deepgram closed the stream (code ${code}): ${detail}`,
        // 1008 DATA-…: the request itself (text, parameters); anything else may pass on a retry.
        code !== 1008,
        code,
      ),
    });
  }

  #speak(text: string, flush: boolean): void {
    this.sentText = true;
    this.#socket.send(JSON.stringify({ type: "Speak", text }));
    this.#unflushed = true;
    if (flush) this.#socket.tryFlush();
  }

  #endNow(): void {
    if (this.#characters === 0) {
      this.#done();
      return;
    }
    if (this.#unflushed) this.#socket.flushSoon();
    else if (this.#flushesPending === 0) this.#done();
  }

  #done(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#socket.finished(this);
    this.#onEvent({ type: "done", characters: this.#characters });
  }
}

export class DeepgramTts implements TextToSpeech {
  readonly provider = "deepgram";
  readonly #base: string;
  readonly #connectTimeoutMs: number;
  readonly #warm: boolean;
  readonly #limit: { count: number; windowMs: number };
  readonly #now: () => number;
  readonly #sockets = new CallSocketPool<CallSocket>();

  constructor(config: DeepgramTtsConfig) {
    this.#base = toWebSocketBase(config.baseUrl);
    this.#connectTimeoutMs = config.connectTimeoutMs ?? 5000;
    this.#warm = config.warm ?? true;
    this.#limit = config.flushLimit ?? DEEPGRAM_TTS_FLUSH_LIMIT;
    this.#now = config.now ?? (() => performance.now());
  }

  outputFor(want: AudioFormat): AudioFormat {
    if (DEEPGRAM_TTS_SAMPLE_RATES.includes(want.sampleRate)) return want;
    const rate = DEEPGRAM_TTS_SAMPLE_RATES.find((r) => r >= want.sampleRate) ?? 48_000;
    return { encoding: "linear16", sampleRate: rate };
  }

  /** `/v1/speak?model=aura-2-thalia-en&encoding=mulaw&sample_rate=8000…` */
  speakUrl(options: TtsOptions): string {
    const v = voiceOf(options, "deepgram");
    const q = new URLSearchParams({
      model: deepgramSpeakModel(v.model, v.voiceId),
      ...deepgramSpeakFormat(options.outputFormat),
    });
    if (v.mipOptOut) q.set("mip_opt_out", "true");
    return `${this.#base}/v1/speak?${q.toString()}`;
  }

  prewarm(options: TtsOptions): void {
    if (!this.#warm || options.signal.aborted) return;
    const url = this.speakUrl(options);
    this.#sockets.prewarm(options.signal, url, (call) => this.#dial(url, options, call));
  }

  async open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream> {
    const started = performance.now();
    if (options.signal.aborted) throw abortError();
    const url = this.speakUrl(options);
    const { socket, connectMs } = await this.#sockets.acquire(options.signal, url, started, (call) =>
      this.#dial(url, options, call),
    );
    const stream = new DeepgramStream(socket, onEvent, connectMs);
    socket.add(stream);
    return stream;
  }

  async #dial(url: string, options: TtsOptions, call: CallSockets<CallSocket>): Promise<CallSocket> {
    const { ws, connectMs } = await openSocket(url, {
      provider: "deepgram",
      kind: "voice",
      headers: { Authorization: `Token ${options.apiKey}` },
      timeoutMs: options.connectTimeoutMs ?? this.#connectTimeoutMs,
      signal: options.signal,
    });
    return this.#sockets.adopt(call, options.signal, new CallSocket(ws, connectMs, this.#limit, this.#now));
  }
}
