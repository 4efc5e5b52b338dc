/**
 * FakeOpenAIRealtimeStt — loopback OpenAI Realtime transcription sessions
 * (`ws://127.0.0.1:PORT/v1/realtime?intent=transcription`), written from the API reference as the
 * official SDK carries it (openai/openai-node @7b7d6ca `src/resources/realtime/realtime.ts`) and the
 * "Realtime transcription" guide:
 *
 * - Auth `Authorization: Bearer <key>`; a missing or refused key is HTTP 401 at the upgrade with
 *   OpenAI's error body (`invalid_api_key`). Then `session.created`.
 * - `session.update` with `session.type: "transcription"` (the GA shape; only on an `intent=transcription`
 *   connection): `audio.input.format` `{type:"audio/pcm", rate:24000}` (PCM is 24 kHz only) or
 *   `{type:"audio/pcmu"}` (μ-law 8 kHz); `audio.input.transcription` `{model, language, prompt, …}`;
 *   `audio.input.turn_detection` server VAD or null. Refused with an `error` event
 *   (`invalid_request_error`, naming `param`): an unknown model, another PCM rate, turn detection or a
 *   prompt on `gpt-realtime-whisper`, `keywords` off gpt-transcribe/gpt-live-transcribe, `delay` off
 *   gpt-realtime-whisper. Accepted: `session.updated` with the session.
 * - `input_audio_buffer.append {audio: base64}`; server VAD on the audio clock:
 *   `input_audio_buffer.speech_started {audio_start_ms, item_id}` (less `prefix_padding_ms`), after
 *   `silence_duration_ms` of silence `input_audio_buffer.speech_stopped {audio_end_ms, item_id}` and
 *   `input_audio_buffer.committed {item_id, previous_item_id}`; then the item's transcript as
 *   `conversation.item.input_audio_transcription.delta` events (a word each) and one `…completed`
 *   `{item_id, content_index, transcript, usage, logprobs?}` (`transcriptionDelayMs` later in wall time).
 *   The gpt-4o transcribe models write text formatted (case, punctuation, digits).
 * - `input_audio_buffer.commit` commits now (speech in progress included); with less than 100 ms in
 *   the buffer an `error` `input_audio_buffer_commit_empty`. `input_audio_buffer.clear` →
 *   `input_audio_buffer.cleared`. An unknown event or bad JSON is an `error` event (the session stays).
 * Utterances come from `utterances` (the Deepgram fake's registry in the media harness) or `registry`.
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
import { Arrivals, closeWebSocketServer, headerValue, listenLoopback, rejectUpgrade } from "./util.ts";

export const REALTIME_TRANSCRIPTION_MODELS = [
  "whisper-1",
  "gpt-transcribe",
  "gpt-live-transcribe",
  "gpt-4o-mini-transcribe",
  "gpt-4o-mini-transcribe-2025-12-15",
  "gpt-4o-transcribe",
  "gpt-4o-transcribe-diarize",
  "gpt-realtime-whisper",
] as const;

export interface RealtimeErrorBody {
  type: string;
  code: string | null;
  message: string;
  param: string | null;
  event_id: string | null;
}

export type RealtimeServerEvent = { type: string; event_id: string; [k: string]: unknown };

export interface FakeOpenAIRealtimeSttOptions {
  rejectKeys?: Iterable<string>;
  /** Wall time between the commit and the transcript's events. Default 0. */
  transcriptionDelayMs?: number;
}

interface Vad {
  threshold: number;
  prefixPaddingMs: number;
  silenceDurationMs: number;
}

interface Item extends HeardUtterance {
  itemId: string;
}

/** Why a `session.update` is refused, or undefined (see the file comment). */
export function transcriptionSessionRefusal(
  session: Record<string, unknown>,
): { param: string; message: string } | undefined {
  if (session.type !== "transcription") {
    return {
      param: "session.type",
      message: `Invalid value: '${String(session.type)}'. Expected 'transcription' on a transcription session.`,
    };
  }
  const input = ((session.audio as Record<string, unknown> | undefined)?.input ?? {}) as Record<
    string,
    unknown
  >;
  const format = (input.format ?? { type: "audio/pcm", rate: 24000 }) as { type?: string; rate?: number };
  if (!["audio/pcm", "audio/pcmu", "audio/pcma"].includes(format.type ?? "")) {
    return { param: "session.audio.input.format.type", message: `Invalid value: '${String(format.type)}'.` };
  }
  if (format.type === "audio/pcm" && format.rate !== undefined && format.rate !== 24000) {
    return {
      param: "session.audio.input.format.rate",
      message: "Invalid value: only a 24000 Hz sample rate is supported for audio/pcm.",
    };
  }
  const t = (input.transcription ?? {}) as Record<string, unknown>;
  const model = String(t.model ?? "");
  if (!(REALTIME_TRANSCRIPTION_MODELS as readonly string[]).includes(model)) {
    return {
      param: "session.audio.input.transcription.model",
      message: `Invalid value: '${model}'. Supported values are: ${REALTIME_TRANSCRIPTION_MODELS.join(", ")}.`,
    };
  }
  const realtimeWhisper = model === "gpt-realtime-whisper";
  if (realtimeWhisper && input.turn_detection !== null && input.turn_detection !== undefined) {
    return {
      param: "session.audio.input.turn_detection",
      message: "Turn detection must be null for gpt-realtime-whisper; VAD is not supported.",
    };
  }
  if (t.prompt !== undefined && (realtimeWhisper || model.includes("diarize"))) {
    return {
      param: "session.audio.input.transcription.prompt",
      message: `Prompt is not supported with ${model}.`,
    };
  }
  if (
    (t.keywords !== undefined || t.languages !== undefined) &&
    model !== "gpt-transcribe" &&
    model !== "gpt-live-transcribe"
  ) {
    return {
      param: "session.audio.input.transcription.keywords",
      message: `keywords are not supported with ${model}.`,
    };
  }
  if (t.delay !== undefined && !realtimeWhisper) {
    return {
      param: "session.audio.input.transcription.delay",
      message: `delay is only supported with gpt-realtime-whisper.`,
    };
  }
  const td = input.turn_detection as { type?: string } | null | undefined;
  if (td && td.type !== "server_vad" && td.type !== "semantic_vad") {
    return {
      param: "session.audio.input.turn_detection.type",
      message: `Invalid value: '${String(td.type)}'.`,
    };
  }
  return undefined;
}

/** One Realtime session, with what tests assert on. */
export class RealtimeSttSession {
  readonly id = `sess_${randomUUID().replace(/-/g, "").slice(0, 20)}`;
  readonly authorization: string | undefined;
  readonly query: Record<string, string>;
  /** Client events received, parsed (`input_audio_buffer.append` counted, not kept). */
  readonly received: Array<Record<string, unknown>> = [];
  appends = 0;
  /** Everything sent, in order. */
  readonly sent: RealtimeServerEvent[] = [];
  closeCode: number | undefined;
  /** The accepted session configuration (after `session.update`). */
  session: Record<string, unknown> | undefined;

  readonly #ws: WebSocket;
  readonly #fake: FakeOpenAIRealtimeStt;
  #scanner: SpeechScanner;
  #format: "audio/pcm" | "audio/pcmu" | "audio/pcma" = "audio/pcm";
  #vad: Vad | undefined = { threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 };
  #model = "";
  #logprobs = false;
  #item: Item | undefined;
  #previousItem: string | null = null;
  /** Audio appended since the last commit, in ms. */
  #bufferedMs = 0;
  #ended = false;

  constructor(ws: WebSocket, req: IncomingMessage, fake: FakeOpenAIRealtimeStt) {
    this.#ws = ws;
    this.#fake = fake;
    this.authorization = headerValue(req, "authorization");
    this.query = Object.fromEntries(new URL(req.url ?? "/", "http://x").searchParams);
    this.#scanner = this.#newScanner();
    ws.on("message", (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on("close", (code) => {
      this.closeCode = code;
      this.#ended = true;
    });
    ws.on("error", () => {});
    this.#send("session.created", {
      session: {
        object: "realtime.session",
        type: "transcription",
        id: this.id,
        audio: { input: { format: { type: "audio/pcm", rate: 24000 } } },
      },
    });
  }

  /** Transcripts completed so far. */
  get transcripts(): string[] {
    return this.sent
      .filter((e) => e.type === "conversation.item.input_audio_transcription.completed")
      .map((e) => String(e.transcript));
  }

  /** An `error` event (a server error: `server_error`). */
  sendError(error: Partial<RealtimeErrorBody>): void {
    this.#send("error", {
      error: {
        type: "server_error",
        code: null,
        message: "The server had an error.",
        param: null,
        event_id: null,
        ...error,
      },
    });
  }

  drop(code = 1011, reason = "fake drop"): void {
    this.#ws.close(code, reason);
  }

  #newScanner(): SpeechScanner {
    const format =
      this.#format === "audio/pcm"
        ? ({ encoding: "linear16", sampleRate: 24000 } as const)
        : ({ encoding: "mulaw", sampleRate: 8000 } as const);
    return new SpeechScanner(format, (voiced, endMs) => this.#onWindow(voiced, endMs));
  }

  #invalid(message: string, param: string | null, code: string | null, eventId: unknown): void {
    this.#send("error", {
      error: {
        type: "invalid_request_error",
        code,
        message,
        param,
        event_id: typeof eventId === "string" ? eventId : null,
      },
    });
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    let msg: Record<string, unknown>;
    try {
      if (isBinary) throw new Error("binary");
      msg = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      if (msg === null || typeof msg !== "object") throw new Error("not an object");
    } catch {
      this.#invalid("Invalid JSON: the event could not be parsed.", null, "invalid_json", null);
      return;
    }
    if (msg.type === "input_audio_buffer.append") this.appends++;
    else this.received.push(msg);
    switch (msg.type) {
      case "session.update":
        this.#update(msg);
        return;
      case "input_audio_buffer.append": {
        if (typeof msg.audio !== "string") {
          this.#invalid(
            "Missing required parameter: 'audio'.",
            "audio",
            "missing_required_parameter",
            msg.event_id,
          );
          return;
        }
        const audio = Buffer.from(msg.audio, "base64");
        this.#bufferedMs += (audio.length * 1000) / this.#scanner.bytesPerSecond;
        this.#scanner.push(audio);
        return;
      }
      case "input_audio_buffer.commit":
        this.#commitNow(msg.event_id);
        return;
      case "input_audio_buffer.clear":
        this.#item = undefined;
        this.#bufferedMs = 0;
        this.#send("input_audio_buffer.cleared", {});
        return;
      default:
        this.#invalid(
          `Invalid value: '${String(msg.type)}'. Supported values are: session.update, input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear …`,
          "type",
          "invalid_value",
          msg.event_id,
        );
    }
  }

  #update(msg: Record<string, unknown>): void {
    const session = (msg.session ?? {}) as Record<string, unknown>;
    if (this.query.intent !== "transcription" && session.type === "transcription") {
      this.#invalid(
        "Transcription sessions are created on an intent=transcription connection.",
        "session.type",
        "invalid_value",
        msg.event_id,
      );
      return;
    }
    const refusal = transcriptionSessionRefusal(session);
    if (refusal) {
      this.#invalid(refusal.message, refusal.param, "invalid_value", msg.event_id);
      return;
    }
    const input = ((session.audio as Record<string, unknown> | undefined)?.input ?? {}) as Record<
      string,
      unknown
    >;
    const format = (input.format ?? { type: "audio/pcm" }) as {
      type: "audio/pcm" | "audio/pcmu" | "audio/pcma";
    };
    if (format.type !== this.#format) {
      this.#format = format.type;
      this.#scanner = this.#newScanner();
    }
    this.#model = String((input.transcription as { model?: string }).model);
    const td = input.turn_detection as
      | { threshold?: number; prefix_padding_ms?: number; silence_duration_ms?: number }
      | null
      | undefined;
    this.#vad =
      td === null
        ? undefined
        : {
            threshold: td?.threshold ?? 0.5,
            prefixPaddingMs: td?.prefix_padding_ms ?? 300,
            silenceDurationMs: td?.silence_duration_ms ?? 500,
          };
    this.#logprobs =
      Array.isArray(session.include) && session.include.includes("item.input_audio_transcription.logprobs");
    this.session = session;
    this.#send("session.updated", { session: { object: "realtime.session", id: this.id, ...session } });
  }

  #onWindow(voiced: boolean, endMs: number): void {
    const vad = this.#vad;
    if (!vad) return;
    let item = this.#item;
    if (voiced) {
      if (!item) {
        const p = this.#scanner.pending;
        this.#scanner.pending = undefined;
        item = {
          itemId: `item_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
          id: p?.id,
          durationMs: p?.durationMs ?? 0,
          startMs: endMs - 20,
          voicedMs: 0,
          lastVoiceEndMs: endMs,
        };
        this.#item = item;
        this.#send("input_audio_buffer.speech_started", {
          audio_start_ms: Math.max(0, Math.round(item.startMs - vad.prefixPaddingMs)),
          item_id: item.itemId,
        });
      }
      item.voicedMs += 20;
      item.lastVoiceEndMs = endMs;
      return;
    }
    if (item && endMs - item.lastVoiceEndMs >= vad.silenceDurationMs) {
      this.#send("input_audio_buffer.speech_stopped", {
        audio_end_ms: Math.round(endMs),
        item_id: item.itemId,
      });
      this.#commit(item);
    }
  }

  #commitNow(eventId: unknown): void {
    if (this.#bufferedMs < 100) {
      this.#invalid(
        `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${this.#bufferedMs.toFixed(2)}ms of audio.`,
        null,
        "input_audio_buffer_commit_empty",
        eventId,
      );
      return;
    }
    const item = this.#item ?? {
      itemId: `item_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
      id: undefined,
      durationMs: 0,
      startMs: this.#scanner.audioMs,
      voicedMs: 0,
      lastVoiceEndMs: this.#scanner.audioMs,
    };
    this.#commit(item);
  }

  #commit(item: Item): void {
    this.#item = undefined;
    this.#bufferedMs = 0;
    this.#send("input_audio_buffer.committed", {
      item_id: item.itemId,
      previous_item_id: this.#previousItem,
    });
    this.#previousItem = item.itemId;
    const words = scriptedWords(this.#fake.utterances, item.id, true);
    const transcript = words.join(" ");
    const deliver = (): void => {
      for (const [i, w] of words.entries()) {
        this.#send("conversation.item.input_audio_transcription.delta", {
          item_id: item.itemId,
          content_index: 0,
          delta: i === 0 ? w : ` ${w}`,
        });
      }
      this.#send("conversation.item.input_audio_transcription.completed", {
        item_id: item.itemId,
        content_index: 0,
        transcript,
        usage: { type: "duration", seconds: Math.max(1, Math.round(item.voicedMs / 1000)) },
        ...(this.#logprobs
          ? { logprobs: words.map((w) => ({ token: w, logprob: -0.05, bytes: [...Buffer.from(w)] })) }
          : {}),
      });
    };
    const delay = this.#fake.transcriptionDelayMs;
    if (delay > 0) setTimeout(deliver, delay);
    else deliver();
  }

  #send(type: string, body: Record<string, unknown>): void {
    const event: RealtimeServerEvent = {
      type,
      event_id: `event_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
      ...body,
    };
    this.sent.push(event);
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(JSON.stringify(event));
  }

  /** The model of the session (after `session.update`). */
  get model(): string {
    return this.#model;
  }
}

export class FakeOpenAIRealtimeStt {
  readonly sessions: RealtimeSttSession[] = [];
  readonly rejectKeys: Set<string>;
  utterances: UtteranceSource;
  readonly registry = new UtteranceRegistry();
  transcriptionDelayMs: number;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #port: number;
  readonly #arrivals = new Arrivals<RealtimeSttSession>("FakeOpenAIRealtimeStt: no session");

  private constructor(
    server: Server,
    wss: WebSocketServer,
    port: number,
    opts: FakeOpenAIRealtimeSttOptions,
  ) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.utterances = this.registry;
    this.transcriptionDelayMs = opts.transcriptionDelayMs ?? 0;
  }

  static async start(opts: FakeOpenAIRealtimeSttOptions = {}): Promise<FakeOpenAIRealtimeStt> {
    const server = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { message: "Not found", type: "invalid_request_error", param: null, code: null },
        }),
      );
    });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const port = await listenLoopback(server);
    const fake = new FakeOpenAIRealtimeStt(server, wss, port, opts);
    server.on("upgrade", (req, socket, head) => fake.#onUpgrade(req, socket, head));
    return fake;
  }

  /** `ws://127.0.0.1:PORT/v1/realtime` (OPENAI_REALTIME_URL). */
  get realtimeUrl(): string {
    return `ws://127.0.0.1:${this.#port}/v1/realtime`;
  }

  allocateUtterance(text: string): number {
    return this.registry.allocateUtterance(text);
  }

  waitForSession(timeoutMs = 5000): Promise<RealtimeSttSession> {
    return this.#arrivals.next(timeoutMs);
  }

  async close(): Promise<void> {
    await closeWebSocketServer(this.#wss, this.#server);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/v1/realtime") {
      rejectUpgrade(
        socket,
        404,
        "Not Found",
        JSON.stringify({
          error: { message: "Not found", type: "invalid_request_error", param: null, code: null },
        }),
      );
      return;
    }
    const auth = headerValue(req, "authorization");
    const key = /^Bearer (.+)$/.exec(auth ?? "")?.[1];
    if (!key || this.rejectKeys.has(key)) {
      rejectUpgrade(
        socket,
        401,
        "Unauthorized",
        JSON.stringify({
          error: {
            message: key
              ? `Incorrect API key provided: ${key.slice(0, 3)}***. You can find your API key at https://platform.openai.com/account/api-keys.`
              : "You didn't provide an API key.",
            type: "invalid_request_error",
            param: null,
            code: key ? "invalid_api_key" : null,
          },
        }),
      );
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new RealtimeSttSession(ws, req, this);
      this.sessions.push(session);
      this.#arrivals.arrived(session);
    });
  }
}
