// One streaming POST answered by a server-sent event stream, over a lean `node:http(s)` client:
// the transport under every HTTP language model (OpenAI, a customer's OpenAI-compatible server,
// Anthropic). Each adapter supplies a protocol (how an event becomes an item, how an error body
// reads) and drains the queue of items this fills.
//
// Why not the providers' SDKs for the streaming call: CPU. Profiling the media process under 100
// concurrent calls put the OpenAI SDK's streaming path — Node's bundled undici fetch, WHATWG web
// streams, the SDK's SSE and line decoders, an async iterator per layer — at ~2.5 ms of CPU per
// streamed reply of ~20 chunks, ~12% of the process. On a loopback micro-benchmark (20 requests at a
// time, 20-chunk replies read to the end) the SDK cost ~800 µs of client CPU per reply (~850 µs with
// 1 ms between chunks) and this client ~200 µs (~310 µs). Anthropic's SDK is generated the same way
// (fetch, web streams, its own SSE decoder). The protocol is one POST answered by an event stream:
// `node:http(s)` with a keep-alive agent per origin and the incremental parser in `./sse.ts` speak
// it directly, and the socket callbacks feed a queue the adapter's generator drains.
//
// No retries here: a voice turn cannot wait for backoff, and the call session decides what to
// retry. The one exception: a request that died unanswered on a pooled connection the server had
// closed while idle is sent once more at once.
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type RequestOptions,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { urlToHttpOptions } from "node:url";
import { SseParser } from "./sse.ts";
import { abortError, isAbortError, isRetryableStatus, ProviderError } from "./types.ts";

// One keep-alive agent per origin, shared by every key and call, so a call's second turn (and
// most first turns under load) skips TCP/TLS setup. LIFO hands out the most recently used socket:
// the warmest, and the least likely to have been closed by the server while idle. Idle sockets
// close after IDLE_SOCKET_MS (or the server's Keep-Alive hint, when shorter). Bounded, oldest out
// first; a dropped agent is not destroyed (its requests in flight finish, its idle sockets expire).
const MAX_AGENTS = 32;
const IDLE_SOCKET_MS = 30_000;
const agents = new Map<string, HttpAgent>();

export function agentFor(origin: string, https: boolean): HttpAgent {
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

/** A readable reason for any error, including Node's happy-eyeballs AggregateError. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Node's happy-eyeballs connect fails with one error per address and an empty message.
    return err.errors.map(describeError).join("; ");
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message || code || err.name;
  }
  return String(err);
}

/** Any error → ProviderError; aborts stay AbortErrors so the caller can tell a barge-in from a failure. */
export function llmProviderError(provider: string, err: unknown): ProviderError | DOMException {
  if (isAbortError(err)) return abortError();
  if (err instanceof ProviderError) return err;
  return new ProviderError(provider, "llm", `${provider} request failed: ${describeError(err)}`, false);
}

/** The request never got a response, or the response broke off: worth another try. */
function connectionError(provider: string, err: unknown): ProviderError {
  return new ProviderError(provider, "llm", `${provider} connection failed: ${describeError(err)}`, true);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The start of a body for an error message. */
export function sample(text: string, max = 300): string {
  const t = text.trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** An event that is no JSON object: it fails the stream, not retryable. */
export function badStreamEvent(provider: string, data: string): ProviderError {
  return new ProviderError(
    provider,
    "llm",
    `${provider} request failed: bad stream event: ${sample(data, 200)}`,
    false,
  );
}

/** A non-2xx answer: the provider's `detail` read from its error body, else the body's start. */
export function statusFailure(
  provider: string,
  status: number,
  detail: string | undefined,
  body: string,
): ProviderError {
  const message = `${provider} request failed: ${status} ${detail ?? (sample(body) || "status code (no body)")}`;
  return new ProviderError(provider, "llm", message, isRetryableStatus(status), status);
}

/** Error bodies are read (so the socket can be reused) but only this much is kept. */
const MAX_ERROR_BODY = 64 * 1024;

/** What `onEvent` returns to end the stream normally (OpenAI's `[DONE]`, Anthropic's `message_stop`). */
export const STREAM_END: unique symbol = Symbol("stream end");

export interface SseProtocol<T> {
  /** Names the provider in errors (`openai`, `custom-llm`, `anthropic`). */
  readonly provider: string;
  /**
   * One complete event: an item to queue, STREAM_END, a ProviderError that fails the stream, or
   * undefined to skip it (pings, comments, events the adapter does not need).
   */
  onEvent(event: string, data: string): T | typeof STREAM_END | ProviderError | undefined;
  /** A non-2xx answer, from its (capped) body. */
  statusError(status: number, body: string): ProviderError;
  /**
   * A 2xx answer with a JSON body (`application/json`) instead of an event stream, such as a plain
   * completion: the error to fail with. Without it, any 2xx body is parsed as an event stream.
   */
  jsonBody?(body: string): ProviderError;
}

export interface SseRequest {
  /** `urlToHttpOptions(url)` plus `method`, `agent`, `headers` (and a pinned `lookup`, if any). */
  options: RequestOptions;
  https: boolean;
  body: string;
  /** Whole-request budget (headers + stream). */
  timeoutMs: number;
  /** Budget until the response headers arrive; default: `timeoutMs` alone. */
  responseTimeoutMs?: number;
  signal: AbortSignal;
}

/** An endpoint parsed once: what every POST to it starts from. */
export interface PostTarget {
  readonly url: URL;
  readonly https: boolean;
  /** `urlToHttpOptions(url)`. */
  readonly options: RequestOptions;
}

export function postTarget(url: URL): PostTarget {
  return { url, https: url.protocol === "https:", options: urlToHttpOptions(url) };
}

export interface SsePost {
  headers: OutgoingHttpHeaders;
  body: string;
  /** Whole-request budget (headers + stream). */
  timeoutMs: number;
  /** Budget until the response headers arrive; default: `timeoutMs` alone. */
  responseTimeoutMs?: number;
  signal: AbortSignal;
  /** A pinned address lookup (a custom LLM's URL checked against the SSRF rule). */
  lookup?: RequestOptions["lookup"];
}

/**
 * POSTs `post.body` to `target` on its origin's keep-alive agent and streams the answer's events.
 * A synchronous failure of `request()` (an invalid header value such as a key with a newline) is
 * thrown as the provider's error.
 */
export function postSse<T>(protocol: SseProtocol<T>, target: PostTarget, post: SsePost): SseStream<T> {
  const options: RequestOptions = {
    ...target.options,
    method: "POST",
    agent: agentFor(target.url.origin, target.https),
    headers: post.headers,
    ...(post.lookup ? { lookup: post.lookup } : {}),
  };
  try {
    return new SseStream(protocol, {
      options,
      https: target.https,
      body: post.body,
      timeoutMs: post.timeoutMs,
      responseTimeoutMs: post.responseTimeoutMs,
      signal: post.signal,
    });
  } catch (err) {
    throw llmProviderError(protocol.provider, err);
  }
}

/**
 * One streaming POST. Socket callbacks parse events into a queue; the adapter's generator drains
 * it and waits (one promise) only when it is empty. Every way out — the end of the stream, an
 * error, the caller's abort, a timeout, the consumer leaving early — goes through `#fail` /
 * `#finish` once, and anything not fully read is destroyed so the server sees the client go.
 */
export class SseStream<T> {
  readonly #protocol: SseProtocol<T>;
  readonly #signal: AbortSignal;
  #req: ClientRequest;
  readonly #timer: NodeJS.Timeout;
  #responseTimer: NodeJS.Timeout | undefined;
  #response = false;
  #retried = false;
  readonly #queue: T[] = [];
  #head = 0;
  /** No more items will be queued: the end, the end of the body, or a failure (`#error`). */
  #ended = false;
  #error: ProviderError | DOMException | undefined;
  /** The protocol's end event arrived. */
  #done = false;
  /** The response body was read to its end (the socket went back to the agent). */
  #complete = false;
  #wake: (() => void) | undefined;

  constructor(protocol: SseProtocol<T>, request: SseRequest) {
    this.#protocol = protocol;
    this.#signal = request.signal;
    this.#req = this.#send(request.options, request.https, request.body);
    request.signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#timer = setTimeout(this.#onTimeout, request.timeoutMs, request.timeoutMs);
    this.#timer.unref();
    const responseMs = request.responseTimeoutMs;
    if (responseMs !== undefined && responseMs < request.timeoutMs) {
      this.#responseTimer = setTimeout(this.#onResponseTimeout, responseMs, responseMs);
      this.#responseTimer.unref();
    }
  }

  #send(options: RequestOptions, https: boolean, body: string): ClientRequest {
    const req = https ? httpsRequest(options) : httpRequest(options);
    req.on("response", (res) => {
      this.#response = true;
      clearTimeout(this.#responseTimer);
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
      this.#fail(connectionError(this.#protocol.provider, err));
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

  /** The next buffered item, or undefined when none is buffered. */
  shift(): T | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const item = this.#queue[this.#head++];
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
    return item;
  }

  /** Resolves when an item is queued or the stream ends. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The consumer is finished with this stream (normally, by error, or by leaving early). */
  release(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    clearTimeout(this.#responseTimer);
    if (this.#complete) return;
    // After the end event only the body's end is still to come: let it arrive so the socket is
    // kept (the timeout still guards it). Anything else unfinished is cut off.
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
    clearTimeout(this.#responseTimer);
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
    const p = this.#protocol.provider;
    this.#fail(new ProviderError(p, "llm", `${p} request timed out after ${ms} ms`, true));
  };

  readonly #onResponseTimeout = (ms: number): void => {
    if (this.#response) return;
    const p = this.#protocol.provider;
    this.#fail(new ProviderError(p, "llm", `${p} did not answer within ${ms} ms`, true));
  };

  #readBody(res: IncomingMessage, then: (body: string) => void): void {
    let body = "";
    res.on("data", (text: string) => {
      if (body.length < MAX_ERROR_BODY) body += text;
    });
    res.on("end", () => {
      this.#complete = true;
      then(body);
    });
  }

  #onResponse(res: IncomingMessage): void {
    const status = res.statusCode ?? 0;
    const provider = this.#protocol.provider;
    res.setEncoding("utf8");
    // The connection broke before the body's end (Node reports "aborted", then closes).
    res.on("error", (err) =>
      this.#fail(connectionError(provider, new Error(`response cut off (${describeError(err)})`))),
    );
    res.on("close", () => {
      if (!res.complete) this.#fail(connectionError(provider, new Error("response cut off")));
    });
    if (status < 200 || status >= 300) {
      this.#readBody(res, (body) => this.#fail(this.#protocol.statusError(status, body)));
      return;
    }
    const protocol = this.#protocol;
    if (protocol.jsonBody && /^application\/json\b/i.test(String(res.headers["content-type"] ?? ""))) {
      this.#readBody(res, (body) =>
        this.#fail(protocol.jsonBody?.(body) ?? protocol.statusError(status, body)),
      );
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
    const out = this.#protocol.onEvent(event, data);
    if (out === undefined) return;
    if (out === STREAM_END) {
      this.#done = true;
      this.#finish();
      return;
    }
    if (out instanceof ProviderError) {
      this.#fail(out);
      return;
    }
    this.#queue.push(out);
    this.#notify();
  };
}
