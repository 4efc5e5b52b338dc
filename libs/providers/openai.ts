// OpenAI Chat Completions streaming over a lean HTTP client; the official SDK (v6) still supplies
// the wire types (`import type` only), so the request body and stream chunks stay typed.
//
// Why not the SDK's client for the streaming call: CPU. Profiling the media process under 100
// concurrent calls put the SDK's streaming path — Node's bundled undici fetch, WHATWG web streams,
// the SDK's SSE and line decoders, an async iterator per layer — at ~2.5 ms of CPU per streamed
// reply of ~20 chunks, ~12% of the process. On a loopback micro-benchmark (20 requests at a time,
// 20-chunk replies read to the end) the SDK cost ~800 µs of client CPU per reply (~850 µs with
// 1 ms between chunks) and this file ~200 µs (~310 µs). The protocol is one POST answered by an
// event stream: `node:http(s)` with a keep-alive agent per origin and the incremental parser in
// `./sse.ts` speak it directly, and the socket callbacks feed a queue the generator drains.
//
// No retries here (as with the SDK's `maxRetries: 0` before): a voice turn cannot wait for
// backoff, and the call session decides what to retry. The one exception: a request that died
// unanswered on a pooled connection the server had closed while idle is sent once more at once.
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { urlToHttpOptions } from "node:url";
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { openAiSamplingParams } from "./openai-rules.ts";
import { SseParser } from "./sse.ts";
import {
  abortError,
  isAbortError,
  isRetryableStatus,
  type LanguageModel,
  type LlmEvent,
  type LlmMessage,
  type LlmRequest,
  type LlmTool,
  ProviderError,
} from "./types.ts";

export interface OpenAiLlmConfig {
  /** `https://api.openai.com/v1` (config OPENAI_BASE_URL) or a fake's `http://127.0.0.1:PORT/v1`. */
  baseUrl: string;
  /** Whole-request budget (headers + stream). Default 60 s. */
  timeoutMs?: number;
}

// One keep-alive agent per origin, shared by every key and call, so a call's second turn (and
// most first turns under load) skips TCP/TLS setup. LIFO hands out the most recently used socket:
// the warmest, and the least likely to have been closed by the server while idle. Idle sockets
// close after IDLE_SOCKET_MS (or the server's Keep-Alive hint, when shorter). Bounded, oldest out
// first; a dropped agent is not destroyed (its requests in flight finish, its idle sockets expire).
const MAX_AGENTS = 32;
const IDLE_SOCKET_MS = 30_000;
const agents = new Map<string, HttpAgent>();

function agentFor(origin: string, https: boolean): HttpAgent {
  let agent = agents.get(origin);
  if (agent) return agent;
  if (agents.size >= MAX_AGENTS) {
    const oldest = agents.keys().next().value;
    if (oldest !== undefined) agents.delete(oldest);
  }
  const options = {
    keepAlive: true,
    maxSockets: Number.POSITIVE_INFINITY,
    maxFreeSockets: 256,
    scheduling: "lifo" as const,
    // Only idle (pooled) sockets are closed on this timeout; a quiet stream in flight is not.
    timeout: IDLE_SOCKET_MS,
  };
  agent = https ? new HttpsAgent(options) : new HttpAgent(options);
  agents.set(origin, agent);
  return agent;
}

export function toOpenAiMessages(messages: LlmMessage[]): ChatCompletionMessageParam[] {
  return messages.map((m): ChatCompletionMessageParam => {
    switch (m.role) {
      case "system":
        return { role: "system", content: m.content ?? "" };
      case "user":
        return m.name
          ? { role: "user", content: m.content ?? "", name: m.name }
          : { role: "user", content: m.content ?? "" };
      case "tool":
        return { role: "tool", content: m.content ?? "", tool_call_id: m.toolCallId ?? "" };
      case "assistant":
        return m.toolCalls && m.toolCalls.length > 0
          ? {
              role: "assistant",
              content: m.content,
              tool_calls: m.toolCalls.map((tc) => ({
                id: tc.id,
                type: "function",
                function: { name: tc.name, arguments: tc.arguments },
              })),
            }
          : { role: "assistant", content: m.content ?? "" };
      default:
        return { role: "user", content: m.content ?? "" };
    }
  });
}

function toOpenAiTools(tools: LlmTool[]): ChatCompletionTool[] {
  return tools.map((t) => ({
    type: "function",
    function: {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      ...(t.parameters !== undefined ? { parameters: t.parameters } : {}),
    },
  }));
}

/** Any error → ProviderError; aborts stay AbortErrors so the caller can tell a barge-in from a failure. */
export function toProviderError(err: unknown): ProviderError | DOMException {
  if (isAbortError(err)) return abortError();
  if (err instanceof ProviderError) return err;
  return new ProviderError("openai", "llm", `openai request failed: ${describe(err)}`, false);
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Node's happy-eyeballs connect fails with one error per address and an empty message.
    return err.errors.map(describe).join("; ");
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message || code || err.name;
  }
  return String(err);
}

/** The request never got a response, or the response broke off: worth another try. */
function connectionError(err: unknown): ProviderError {
  return new ProviderError("openai", "llm", `openai connection failed: ${describe(err)}`, true);
}

/** `{"error":{"message",…}}` (OpenAI's envelope) or whatever a proxy put in the body. */
function statusError(status: number, body: string): ProviderError {
  let detail: string | undefined;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  if (json !== null && typeof json === "object") {
    const { error, message } = json as { error?: unknown; message?: unknown };
    if (error !== null && typeof error === "object") detail = errorDetail(error);
    else if (typeof error === "string") detail = error;
    else if (typeof message === "string") detail = message;
  }
  if (detail === undefined) {
    const text = body.trim();
    if (text.length > 0) detail = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  }
  const message = `openai request failed: ${status} ${detail ?? "status code (no body)"}`;
  return new ProviderError("openai", "llm", message, isRetryableStatus(status), status);
}

function errorDetail(error: object): string {
  const { message } = error as { message?: unknown };
  if (typeof message === "string") return message;
  return JSON.stringify(message ?? error);
}

/**
 * An `error` inside a 200 stream (a data payload with a top-level `error`, or `event: error`):
 * the server failed after it started answering, so it is worth another try.
 */
function streamError(payload: unknown, raw: string): ProviderError {
  let detail = raw;
  if (payload !== null && typeof payload === "object") {
    const { error, message } = payload as { error?: unknown; message?: unknown };
    if (error !== null && typeof error === "object") detail = errorDetail(error);
    else if (typeof error === "string") detail = error;
    else if (typeof message === "string") detail = message;
  }
  return new ProviderError("openai", "llm", `openai request failed: ${detail}`, true);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Error bodies are read (so the socket can be reused) but only this much is kept. */
const MAX_ERROR_BODY = 64 * 1024;

type StreamChunk = ChatCompletionChunk & { error?: unknown };

/**
 * One streaming POST. Socket callbacks parse events into a queue; the adapter's generator drains
 * it and waits (one promise) only when it is empty. Every way out — the end of the stream, an
 * error, the caller's abort, the timeout, the consumer leaving early — goes through `#fail` /
 * `#finish` once, and anything not fully read is destroyed so the server sees the client go.
 */
class ChatStream {
  readonly #signal: AbortSignal;
  #req: ClientRequest;
  readonly #timer: NodeJS.Timeout;
  #response = false;
  #retried = false;
  readonly #queue: StreamChunk[] = [];
  #head = 0;
  /** No more chunks will be queued: `[DONE]`, the end of the body, or a failure (`#error`). */
  #ended = false;
  #error: ProviderError | DOMException | undefined;
  /** `data: [DONE]` arrived. */
  #done = false;
  /** The response body was read to its end (the socket went back to the agent). */
  #complete = false;
  #wake: (() => void) | undefined;

  constructor(options: RequestOptions, https: boolean, body: string, timeoutMs: number, signal: AbortSignal) {
    this.#signal = signal;
    this.#req = this.#send(options, https, body);
    signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#timer = setTimeout(this.#onTimeout, timeoutMs, timeoutMs);
    this.#timer.unref();
  }

  #send(options: RequestOptions, https: boolean, body: string): ClientRequest {
    const req = https ? httpsRequest(options) : httpRequest(options);
    req.on("response", (res) => {
      this.#response = true;
      this.#onResponse(res);
    });
    // Before a response, any error means the request never got an answer (refused, reset, DNS,
    // TLS); afterwards the response's own listeners report. Kept for the request's life.
    req.on("error", (err: NodeJS.ErrnoException) => {
      // A pooled connection the server had already closed while it sat idle: the request never
      // reached it, so it is sent once more on a fresh connection (Node's documented remedy).
      if (
        !this.#response &&
        !this.#retried &&
        !this.#ended &&
        req.reusedSocket &&
        (err.code === "ECONNRESET" || err.code === "EPIPE")
      ) {
        this.#retried = true;
        this.#req = this.#send(options, https, body);
        return;
      }
      this.#fail(connectionError(err));
    });
    req.end(body);
    return req;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get error(): ProviderError | DOMException | undefined {
    return this.#error;
  }

  /** The next buffered chunk, or undefined when none is buffered. */
  shift(): StreamChunk | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const chunk = this.#queue[this.#head++];
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    return chunk;
  }

  /** Resolves when a chunk is queued or the stream ends. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The consumer is finished with this stream (normally, by error, or by leaving early). */
  release(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#complete) return;
    // After `[DONE]` only the body's end is still to come: let it arrive so the socket is kept
    // (the timeout still guards it). Anything else unfinished is cut off.
    if (this.#done && this.#error === undefined) return;
    this.#ended = true;
    this.#close();
  }

  #notify(): void {
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
  }

  #close(): void {
    clearTimeout(this.#timer);
    if (!this.#complete) this.#req.destroy();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#notify();
  }

  #fail(err: ProviderError | DOMException): void {
    this.#close();
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    this.#notify();
  }

  readonly #onAbort = (): void => {
    this.#fail(abortError());
  };

  readonly #onTimeout = (ms: number): void => {
    this.#fail(new ProviderError("openai", "llm", `openai request timed out after ${ms} ms`, true));
  };

  #onResponse(res: IncomingMessage): void {
    const status = res.statusCode ?? 0;
    res.setEncoding("utf8");
    // The connection broke before the body's end (Node reports "aborted", then closes).
    res.on("error", (err) => this.#fail(connectionError(new Error(`response cut off (${describe(err)})`))));
    res.on("close", () => {
      if (!res.complete) this.#fail(connectionError(new Error("response cut off")));
    });
    if (status < 200 || status >= 300) {
      let body = "";
      res.on("data", (text: string) => {
        if (body.length < MAX_ERROR_BODY) body += text;
      });
      res.on("end", () => {
        this.#complete = true;
        this.#fail(statusError(status, body));
      });
      return;
    }
    const parser = new SseParser(this.#onEvent);
    res.on("data", (text: string) => parser.push(text));
    res.on("end", () => {
      this.#complete = true;
      clearTimeout(this.#timer);
      this.#finish();
    });
  }

  readonly #onEvent = (event: string, data: string): void => {
    if (this.#ended) return;
    if (event === "error") {
      this.#fail(streamError(parseJson(data), data));
      return;
    }
    if (data.startsWith("[DONE]")) {
      this.#done = true;
      this.#finish();
      return;
    }
    const chunk = parseJson(data);
    if (chunk === null || typeof chunk !== "object") {
      const sample = data.length > 200 ? `${data.slice(0, 200)}…` : data;
      this.#fail(
        new ProviderError("openai", "llm", `openai request failed: bad stream event: ${sample}`, false),
      );
      return;
    }
    const typed = chunk as StreamChunk;
    if (typed.error) {
      this.#fail(streamError(chunk, data));
      return;
    }
    this.#queue.push(typed);
    this.#notify();
  };
}

interface PendingToolCall {
  id: string;
  name: string;
  arguments: string;
}

export class OpenAiLlm implements LanguageModel {
  readonly provider = "openai";
  readonly #timeoutMs: number;
  readonly #url: URL;
  readonly #target: RequestOptions;
  readonly #https: boolean;

  constructor(config: OpenAiLlmConfig) {
    this.#timeoutMs = config.timeoutMs ?? 60_000;
    this.#url = new URL(`${config.baseUrl.replace(/\/+$/, "")}/chat/completions`);
    this.#https = this.#url.protocol === "https:";
    this.#target = urlToHttpOptions(this.#url);
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const { signal } = request;
    if (signal.aborted) throw abortError();
    const body: ChatCompletionCreateParamsStreaming = {
      model: request.model,
      messages: toOpenAiMessages(request.messages),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (request.tools && request.tools.length > 0) body.tools = toOpenAiTools(request.tools);
    // Per model (openai-rules.ts): no temperature for the reasoning models, `max_completion_tokens`.
    Object.assign(body, openAiSamplingParams(request.model, request));
    if (request.responseFormat === "json_object") body.response_format = { type: "json_object" };

    const json = JSON.stringify(body);
    const options: RequestOptions = {
      ...this.#target,
      method: "POST",
      agent: agentFor(this.#url.origin, this.#https),
      headers: {
        Authorization: `Bearer ${request.apiKey}`,
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        "Content-Length": Buffer.byteLength(json),
      },
    };
    let call: ChatStream;
    try {
      call = new ChatStream(options, this.#https, json, this.#timeoutMs, signal);
    } catch (err) {
      // Synchronous failures of `request()` (an invalid header value such as a key with a newline).
      throw toProviderError(err);
    }

    const toolCalls: PendingToolCall[] = [];
    let finishReason = "stop";
    let usage = { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 };
    try {
      for (;;) {
        if (signal.aborted) throw abortError();
        const chunk = call.shift();
        if (chunk === undefined) {
          if (!call.ended) {
            await call.wait();
            continue;
          }
          if (call.error) throw call.error;
          break;
        }
        const choice = chunk.choices[0];
        if (choice) {
          const delta = choice.delta;
          if (delta.content) yield { type: "text", delta: delta.content };
          if (delta.tool_calls) {
            for (const part of delta.tool_calls) {
              let tc = toolCalls[part.index];
              if (!tc) {
                tc = { id: "", name: "", arguments: "" };
                toolCalls[part.index] = tc;
              }
              if (part.id) tc.id = part.id;
              if (part.function?.name) tc.name += part.function.name;
              if (part.function?.arguments) tc.arguments += part.function.arguments;
            }
          }
          if (choice.finish_reason) finishReason = choice.finish_reason;
        }
        if (chunk.usage) {
          usage = {
            promptTokens: chunk.usage.prompt_tokens,
            completionTokens: chunk.usage.completion_tokens,
            cachedPromptTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
          };
        }
      }
    } finally {
      // Also when the consumer stopped early (break / return): the HTTP response is released now.
      call.release();
    }

    for (const tc of toolCalls) {
      if (tc) yield { type: "tool-call", id: tc.id, name: tc.name, arguments: tc.arguments };
    }
    yield { type: "done", finishReason, usage };
  }
}
