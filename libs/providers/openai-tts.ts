// OpenAI speech (`POST /v1/audio/speech`) through the official SDK pointed at a base URL. The
// endpoint takes a whole text and streams its audio back (chunked raw bytes with `stream_format`
// audio, the default), so an utterance is one request per clause: each clause's request starts as
// soon as the clause exists (at most MAX_IN_FLIGHT at once) and its audio is passed on in clause
// order, a later clause's held until the earlier one is complete. `response_format: "pcm"` is the
// only raw format: 24 kHz 16-bit little-endian mono, so `outputFor` is always that and the session
// converts it for the call. Network chunks can split a sample: an odd byte is carried to the next.
//
// `abort()` (barge-in) aborts every request of the utterance; the call's signal aborts them too.
// Errors: the SDK's APIError carries the HTTP status (401/403/400 not retryable; 408/429/5xx
// retryable), a connection error or timeout is retryable.
import OpenAI from "openai";
import { OPENAI_TTS_FORMAT, OPENAI_TTS_MAX_INPUT } from "./openai-tts-rules.ts";
import {
  type AudioFormat,
  abortError,
  isAbortError,
  isRetryableStatus,
  ProviderError,
  type TextToSpeech,
  type TtsEvent,
  type TtsOptions,
  type TtsStream,
  type VoiceOf,
  voiceOf,
} from "./types.ts";

export interface OpenAiTtsConfig {
  /** `https://api.openai.com/v1` (config OPENAI_TTS_BASE_URL, else OPENAI_BASE_URL) or a fake's. */
  baseUrl: string;
  /** Budget of one clause's request, headers and audio. Default 30 s. */
  timeoutMs?: number;
}

/** Clause requests of one utterance running at once (the next clause is ready when one ends). */
const MAX_IN_FLIGHT = 2;

/** OpenAI's built-in voice names; anything else is a custom voice's id (`{"id": …}`). */
const BUILT_IN_VOICES = new Set([
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

function speechError(err: unknown): ProviderError | DOMException {
  if (err instanceof OpenAI.APIUserAbortError || isAbortError(err)) return abortError();
  if (err instanceof OpenAI.APIConnectionError) {
    // Includes APIConnectionTimeoutError.
    return new ProviderError("openai", "voice", `openai speech request failed: ${err.message}`, true);
  }
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    return new ProviderError(
      "openai",
      "voice",
      `openai speech request failed: ${err.message}`,
      isRetryableStatus(err.status),
      err.status,
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError("openai", "voice", `openai speech request failed: ${message}`, true);
}

/** One clause's request: its audio, and whether it is complete. */
class Clause {
  readonly chunks: Buffer[] = [];
  complete = false;
  /** An odd byte held back from the last network chunk. */
  carry: Buffer | undefined;
}

class OpenAiSpeechStream implements TtsStream {
  readonly connectMs = 0;
  readonly #client: OpenAI;
  readonly #voice: VoiceOf<"openai">;
  readonly #onEvent: (e: TtsEvent) => void;
  readonly #abort = new AbortController();
  readonly #detach: () => void;
  /** Clauses in order; the first is the one whose audio is being passed on. */
  readonly #clauses: Clause[] = [];
  /** Texts waiting for a request slot. */
  readonly #waiting: { clause: Clause; text: string }[] = [];
  #inFlight = 0;
  #characters = 0;
  #ended = false;
  #finished = false;

  constructor(client: OpenAI, voice: VoiceOf<"openai">, signal: AbortSignal, onEvent: (e: TtsEvent) => void) {
    this.#client = client;
    this.#voice = voice;
    this.#onEvent = onEvent;
    const onCallAbort = (): void => this.abort();
    signal.addEventListener("abort", onCallAbort, { once: true });
    this.#detach = () => signal.removeEventListener("abort", onCallAbort);
  }

  sendText(text: string, _flush?: boolean): void {
    if (this.#ended || this.#finished) return;
    const trimmed = text.trim();
    if (trimmed === "") return;
    // OpenAI takes at most 4096 characters per request; a clause is far shorter, but never send more.
    for (let i = 0; i < trimmed.length; i += OPENAI_TTS_MAX_INPUT) {
      const piece = trimmed.slice(i, i + OPENAI_TTS_MAX_INPUT);
      this.#characters += piece.length;
      const clause = new Clause();
      this.#clauses.push(clause);
      this.#waiting.push({ clause, text: piece });
    }
    this.#pump();
  }

  end(): void {
    if (this.#ended || this.#finished) return;
    this.#ended = true;
    this.#drain();
  }

  abort(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#detach();
    this.#abort.abort();
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#waiting.length > 0 && !this.#finished) {
      const next = this.#waiting.shift() as { clause: Clause; text: string };
      this.#inFlight++;
      void this.#request(next.clause, next.text).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #request(clause: Clause, input: string): Promise<void> {
    const v = this.#voice;
    try {
      const response = await this.#client.audio.speech.create(
        {
          model: v.model,
          voice: BUILT_IN_VOICES.has(v.voiceId) ? v.voiceId : { id: v.voiceId },
          input,
          response_format: "pcm",
          ...(v.speed !== undefined ? { speed: v.speed } : {}),
          ...(v.instructions !== undefined ? { instructions: v.instructions } : {}),
        },
        { signal: this.#abort.signal },
      );
      if (!response.body) throw new Error("no audio in the response");
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (this.#finished) return;
        this.#onChunk(clause, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      clause.complete = true;
      this.#drain();
    } catch (err) {
      if (this.#finished) return;
      const e = speechError(err);
      if (e instanceof ProviderError) this.#fail(e);
    }
  }

  #onChunk(clause: Clause, chunk: Buffer): void {
    let bytes = clause.carry ? Buffer.concat([clause.carry, chunk]) : chunk;
    clause.carry = undefined;
    if (bytes.length % 2 === 1) {
      clause.carry = Buffer.from(bytes.subarray(bytes.length - 1));
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length === 0) return;
    if (this.#clauses[0] === clause) this.#onEvent({ type: "audio", audio: bytes });
    else clause.chunks.push(bytes);
  }

  /** Passes on the audio of completed clauses in order; `done` after the last. */
  #drain(): void {
    while (!this.#finished) {
      const head = this.#clauses[0];
      if (!head) {
        if (this.#ended && this.#waiting.length === 0) this.#done();
        return;
      }
      if (!head.complete) return;
      this.#clauses.shift();
      const next = this.#clauses[0];
      // The next clause becomes the live one: what it buffered so far goes out now.
      if (next) {
        for (const audio of next.chunks.splice(0)) this.#onEvent({ type: "audio", audio });
      }
    }
  }

  #done(): void {
    this.#finished = true;
    this.#detach();
    this.#onEvent({ type: "done", characters: this.#characters });
  }

  #fail(err: ProviderError): void {
    this.#finished = true;
    this.#detach();
    this.#abort.abort();
    this.#onEvent({ type: "error", error: err });
  }
}

export class OpenAiTts implements TextToSpeech {
  readonly provider = "openai";
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  /** One SDK client per call and key (the client holds the key; calls never share one). */
  readonly #clients = new WeakMap<AbortSignal, Map<string, OpenAI>>();

  constructor(config: OpenAiTtsConfig) {
    this.#baseUrl = config.baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = config.timeoutMs ?? 30_000;
  }

  outputFor(_want: AudioFormat): AudioFormat {
    return OPENAI_TTS_FORMAT;
  }

  async open(options: TtsOptions, onEvent: (e: TtsEvent) => void): Promise<TtsStream> {
    if (options.signal.aborted) throw abortError();
    const voice = voiceOf(options, "openai");
    return new OpenAiSpeechStream(this.#client(options), voice, options.signal, onEvent);
  }

  #client(options: TtsOptions): OpenAI {
    let byKey = this.#clients.get(options.signal);
    if (!byKey) {
      byKey = new Map();
      this.#clients.set(options.signal, byKey);
    }
    let client = byKey.get(options.apiKey);
    if (!client) {
      // Retries are the session's business (issue 14's resilience), not the SDK's.
      client = new OpenAI({
        apiKey: options.apiKey,
        baseURL: this.#baseUrl,
        maxRetries: 0,
        timeout: this.#timeoutMs,
      });
      byKey.set(options.apiKey, client);
    }
    return client;
  }
}
