/**
 * Loopback fake of OpenAI's speech endpoint (`POST /v1/audio/speech`), written from openai-node's
 * `resources/audio/speech.ts` (SpeechCreateParams), OpenAI's text-to-speech guide and error-code
 * guide (PROVIDERS.md §2.4):
 *
 * - `Authorization: Bearer <key>`; a key in `rejectKeys` is 401 `invalid_api_key`.
 * - Body: `model` (tts-1, tts-1-hd, gpt-4o-mini-tts, gpt-4o-mini-tts-2025-12-15), `voice` (a built-in
 *   name; tts-1 and tts-1-hd "support a smaller set": no ballad, verse, marin, cedar; or `{id}` of a
 *   custom voice), `input` (1–4096 characters), `instructions` ("does not work with tts-1 or
 *   tts-1-hd"), `response_format` (mp3 default, opus, aac, flac, wav, pcm), `speed` (0.25–4.0),
 *   `stream_format` (audio | sse; sse not for tts-1/-hd). Violations are 400 in OpenAI's envelope
 *   `{"error":{"message","type":"invalid_request_error","param","code"}}`.
 * - The answer streams `msPerChar` ms of audio per input character in chunks; `pcm` is raw 24 kHz
 *   16-bit little-endian mono (other formats are recorded and answered with the same bytes). Chunks
 *   have an odd length on purpose: the network does not respect sample boundaries.
 * - `failNext(status)` answers the next request with that status (429 `rate_limit_exceeded`, 500…).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, headerValue, listenLoopback, makePcmToneBuffer, readBody, sendJson } from "./util.ts";

const MODELS = new Set(["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15"]);
const VOICES = new Set([
  "alloy",
  "ash",
  "ballad",
  "coral",
  "echo",
  "fable",
  "onyx",
  "nova",
  "sage",
  "shimmer",
  "verse",
  "marin",
  "cedar",
]);
const NOT_ON_TTS_1 = new Set(["ballad", "verse", "marin", "cedar"]);
const FORMATS = new Set(["mp3", "opus", "aac", "flac", "wav", "pcm"]);

export interface FakeOpenAiTtsOptions {
  rejectKeys?: Iterable<string>;
  /** Audio per character. Default 10 ms. */
  msPerChar?: number;
  /** Wall time between chunks. Default 5 ms. */
  chunkIntervalMs?: number;
  /** Time to the first audio after the request. Default 0. */
  ttfbMs?: number;
}

export interface SpeechRequest {
  authorization: string | undefined;
  body: Record<string, unknown>;
  status: number;
  /** The client went away before the audio was all sent. */
  aborted: boolean;
  audioBytes: number;
}

export class FakeOpenAiTts {
  readonly requests: SpeechRequest[] = [];
  readonly rejectKeys: Set<string>;
  msPerChar: number;
  chunkIntervalMs: number;
  ttfbMs: number;
  readonly #failures: number[] = [];
  readonly #server: Server;
  readonly #port: number;

  private constructor(server: Server, port: number, opts: FakeOpenAiTtsOptions) {
    this.#server = server;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.msPerChar = opts.msPerChar ?? 10;
    this.chunkIntervalMs = opts.chunkIntervalMs ?? 5;
    this.ttfbMs = opts.ttfbMs ?? 0;
  }

  static async start(opts: FakeOpenAiTtsOptions = {}): Promise<FakeOpenAiTts> {
    let fake: FakeOpenAiTts | undefined;
    const server = createServer((req, res) => {
      void fake?.handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: "fake error", type: "server_error" } });
        else res.destroy();
      });
    });
    const port = await listenLoopback(server);
    fake = new FakeOpenAiTts(server, port, opts);
    return fake;
  }

  /** `http://127.0.0.1:PORT/v1` (OPENAI_TTS_BASE_URL). */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}/v1`;
  }

  /** Characters of the inputs answered with audio (OpenAI bills tts-1 by the character). */
  get totalCharacters(): number {
    return this.requests.filter((r) => r.status === 200).reduce((n, r) => n + String(r.body.input).length, 0);
  }

  failNext(status: number): void {
    this.#failures.push(status);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
  }

  /** @internal */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method !== "POST" || url.pathname !== "/v1/audio/speech") {
      sendJson(res, 404, { error: { message: "Not found", type: "invalid_request_error" } });
      return;
    }
    const arrivedAt = Date.now();
    const authorization = headerValue(req, "authorization");
    const raw = (await readBody(req)).toString("utf8");
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      // An unparsable body is answered below like a missing field.
    }
    const record: SpeechRequest = { authorization, body, status: 200, aborted: false, audioBytes: 0 };
    this.requests.push(record);
    const refuse = (
      status: number,
      message: string,
      param: string | null,
      code: string | null,
      type = "invalid_request_error",
    ): void => {
      record.status = status;
      sendJson(res, status, { error: { message, type, param, code } });
    };
    const key = authorization?.replace(/^Bearer /, "");
    if (!key || this.rejectKeys.has(key)) {
      refuse(401, "Incorrect API key provided.", null, "invalid_api_key");
      return;
    }
    const failure = this.#failures.shift();
    if (failure !== undefined) {
      if (failure === 429)
        refuse(429, "Rate limit reached for requests", null, "rate_limit_exceeded", "requests");
      else
        refuse(failure, "The server had an error while processing your request.", null, null, "server_error");
      return;
    }
    const model = String(body.model ?? "");
    const legacy = model === "tts-1" || model === "tts-1-hd";
    if (!MODELS.has(model)) {
      refuse(
        400,
        `Invalid value: '${model}'. Supported values are: 'tts-1', 'tts-1-hd' and 'gpt-4o-mini-tts'.`,
        "model",
        "invalid_value",
      );
      return;
    }
    const input = body.input;
    if (typeof input !== "string" || input.length === 0 || input.length > 4096) {
      refuse(400, "input must be a string of 1 to 4096 characters.", "input", "invalid_value");
      return;
    }
    const voice = body.voice;
    const voiceOk =
      typeof voice === "string"
        ? VOICES.has(voice) && !(legacy && NOT_ON_TTS_1.has(voice))
        : typeof voice === "object" && voice !== null && typeof (voice as { id?: unknown }).id === "string";
    if (!voiceOk) {
      refuse(
        400,
        `Invalid value for voice: ${JSON.stringify(voice)} is not a voice ${model} supports.`,
        "voice",
        "invalid_value",
      );
      return;
    }
    if (body.instructions !== undefined && legacy) {
      refuse(
        400,
        `instructions is not supported with the model ${model}.`,
        "instructions",
        "unsupported_parameter",
      );
      return;
    }
    if (body.speed !== undefined && (typeof body.speed !== "number" || body.speed < 0.25 || body.speed > 4)) {
      refuse(400, "speed must be between 0.25 and 4.0.", "speed", "invalid_value");
      return;
    }
    const format = body.response_format ?? "mp3";
    if (!FORMATS.has(String(format))) {
      refuse(400, `Invalid value: '${String(format)}'.`, "response_format", "invalid_value");
      return;
    }
    if (body.stream_format === "sse" && legacy) {
      refuse(
        400,
        `stream_format sse is not supported with the model ${model}.`,
        "stream_format",
        "unsupported_value",
      );
      return;
    }
    res.writeHead(200, {
      "content-type": format === "pcm" ? "audio/pcm" : `audio/${String(format)}`,
      "transfer-encoding": "chunked",
    });
    res.on("close", () => {
      if (!res.writableEnded) record.aborted = true;
    });
    const wait = arrivedAt + this.ttfbMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // 24 kHz 16-bit: 48 bytes per ms.
    const audio = makePcmToneBuffer(input.length * this.msPerChar * 48);
    const chunk = 4801; // an odd number of bytes per write
    for (let at = 0; at < audio.length; at += chunk) {
      if (res.destroyed) return;
      const piece = audio.subarray(at, Math.min(audio.length, at + chunk));
      record.audioBytes += piece.length;
      res.write(piece);
      await new Promise((r) => setTimeout(r, this.chunkIntervalMs));
    }
    res.end();
  }
}
