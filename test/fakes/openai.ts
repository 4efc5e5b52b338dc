/**
 * FakeOpenAI — loopback Chat Completions server (`POST /v1/chat/completions`), streaming (SSE) and not.
 *
 * Point the official SDK at it: `new OpenAI({ apiKey, baseURL: fake.baseUrl, maxRetries: 0 })`
 * (`baseUrl` already ends in `/v1`).
 *
 * The test scripts each answer with `respond(request) => Script` (sync or async):
 *   { text }                              → `delta.content` tokens, finish_reason "stop"
 *   { toolCalls: [{ name, arguments }] }  → chunked `delta.tool_calls`, finish_reason "tool_calls"
 *   { text, toolCalls }                   → both (content first)
 *   { error: { status, message } }        → HTTP error with OpenAI's error envelope
 * Failure injection (a connection that breaks, a server that stops answering):
 *   { text, dropAfterTokens: n }          → n content tokens, then the connection is destroyed
 *                                           (no finish_reason, no [DONE]: the client sees it cut off)
 *   { stall: true }                       → 200 and the event-stream headers, then nothing until the
 *                                           client goes away
 * Default: `You said: <last user message>.`
 * Per-model refusals (`chatRefusal`): reasoning models (o-series, gpt-5 family but `*-chat*`) answer
 * 400 `unsupported_value` to a temperature other than 1 and `unsupported_parameter` to `max_tokens`.
 * Timing: headers go out at once; the first token after `ttftMs`, then one token every
 * `interTokenDelayMs` on a fixed schedule from the request (both overridable per script). A client abort stops the stream and is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, headerValue, listenLoopback, randomHex, readBody, sendJson } from "./util.ts";

export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: string;
  name?: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: unknown[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  [key: string]: unknown;
}

export interface ScriptToolCall {
  name: string;
  /** A JSON string, or an object that is serialised. */
  arguments: string | Record<string, unknown>;
  id?: string;
}

export interface ScriptUsage {
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
}

export type Script =
  | {
      text?: string;
      toolCalls?: ScriptToolCall[];
      finishReason?: "stop" | "length" | "content_filter";
      ttftMs?: number;
      interTokenDelayMs?: number;
      usage?: ScriptUsage;
      /** Destroy the connection after this many content tokens. */
      dropAfterTokens?: number;
      /** Answer 200 with the stream's headers, then send nothing. */
      stall?: boolean;
    }
  | { error: { status: number; message: string; type?: string; code?: string | null } };

export type Responder = (request: ChatRequest) => Script | Promise<Script>;

export interface RecordedOpenAIRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  authorization: string | undefined;
  body: ChatRequest;
  receivedAt: number;
  /** Wall time the first content/tool token was written (stream only). */
  firstTokenAt?: number;
  completedAt?: number;
  /** The client went away before the stream finished (e.g. barge-in abort). */
  aborted: boolean;
  /** The fake broke the connection mid-stream (`dropAfterTokens`). */
  dropped?: boolean;
  status: number;
}

export interface FakeOpenAIOptions {
  respond?: Responder;
  ttftMs?: number;
  interTokenDelayMs?: number;
  /** Characters of tool-call arguments per chunk. */
  argumentsChunkChars?: number;
  /** Bearer keys answered with 401 invalid_api_key. */
  rejectKeys?: Iterable<string>;
  /** `prompt_tokens_details.cached_tokens` reported when the script does not say. */
  cachedTokens?: number;
}

const TOKEN_RE = /\s*\S+|\s+/g;

export function defaultResponder(request: ChatRequest): Script {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i];
    if (m?.role === "user") return { text: `You said: ${contentText(m.content)}.` };
  }
  return { text: "Hello." };
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === "object" && "text" in p && typeof p.text === "string" ? p.text : ""))
      .join("");
  }
  return "";
}

/**
 * The reasoning models (o-series; gpt-5 and later except the `*-chat*` models): OpenAI's per-model
 * rules, from ../shared/docs/PROVIDERS.md §1.1 (sources named there).
 */
function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || (/^gpt-5/.test(model) && !model.includes("-chat"));
}

/**
 * What Chat Completions answers 400 for this model, in OpenAI's error shape (`message`, `type`,
 * `param`, `code`): a temperature other than the default 1 and `max_tokens` on reasoning models;
 * `parallel_tool_calls` on o3 / o4-mini.
 */
export function chatRefusal(
  body: ChatRequest,
): { message: string; type: string; param: string; code: string } | undefined {
  if (!isReasoningModel(body.model)) return undefined;
  if (body.temperature !== undefined && body.temperature !== 1) {
    return {
      message: `Unsupported value: 'temperature' does not support ${JSON.stringify(body.temperature)} with this model. Only the default (1) value is supported.`,
      type: "invalid_request_error",
      param: "temperature",
      code: "unsupported_value",
    };
  }
  if (body.max_tokens !== undefined) {
    return {
      message:
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      type: "invalid_request_error",
      param: "max_tokens",
      code: "unsupported_parameter",
    };
  }
  if (/^o[34]/.test(body.model) && body.parallel_tool_calls !== undefined) {
    return {
      message: "Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
      type: "invalid_request_error",
      param: "parallel_tool_calls",
      code: "unsupported_parameter",
    };
  }
  return undefined;
}

/** Rough token estimate (4 chars/token), good enough for usage assertions to be non-zero and stable. */
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export class FakeOpenAI {
  readonly requests: RecordedOpenAIRequest[] = [];
  respond: Responder;
  ttftMs: number;
  interTokenDelayMs: number;
  readonly rejectKeys: Set<string>;
  readonly #server: Server;
  readonly #port: number;
  readonly #argsChunk: number;
  readonly #cachedTokens: number;
  #seq = 0;

  private constructor(server: Server, port: number, opts: FakeOpenAIOptions) {
    this.#server = server;
    this.#port = port;
    this.respond = opts.respond ?? defaultResponder;
    this.ttftMs = opts.ttftMs ?? 0;
    this.interTokenDelayMs = opts.interTokenDelayMs ?? 0;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.#argsChunk = opts.argumentsChunkChars ?? 8;
    this.#cachedTokens = opts.cachedTokens ?? 0;
  }

  static async start(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
    let fake: FakeOpenAI | undefined;
    const server = createServer((req, res) => {
      fake?.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(err), type: "server_error" } });
        else res.end();
      });
    });
    const port = await listenLoopback(server);
    fake = new FakeOpenAI(server, port, opts);
    return fake;
  }

  /** `http://127.0.0.1:PORT` */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** `http://127.0.0.1:PORT/v1` — what `new OpenAI({ baseURL })` wants. */
  get baseUrl(): string {
    return `${this.url}/v1`;
  }

  get lastRequest(): RecordedOpenAIRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  reset(): void {
    this.requests.length = 0;
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      sendJson(res, 404, {
        error: {
          message: `Unknown request URL: ${req.method} ${path}`,
          type: "invalid_request_error",
          code: null,
        },
      });
      return;
    }
    const raw = await readBody(req);
    let body: ChatRequest;
    try {
      body = JSON.parse(raw.toString("utf8")) as ChatRequest;
    } catch {
      sendJson(res, 400, {
        error: { message: "Invalid JSON body", type: "invalid_request_error", code: null },
      });
      return;
    }
    const authorization = headerValue(req, "authorization");
    const record: RecordedOpenAIRequest = {
      method: req.method,
      path,
      headers: req.headers,
      authorization,
      body,
      receivedAt: Date.now(),
      aborted: false,
      status: 200,
    };
    this.requests.push(record);

    const key = authorization?.startsWith("Bearer ") ? authorization.slice(7) : undefined;
    if (!key || this.rejectKeys.has(key)) {
      record.status = 401;
      sendJson(res, 401, {
        error: {
          message: "Incorrect API key provided.",
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        },
      });
      return;
    }
    if (!Array.isArray(body.messages)) {
      record.status = 400;
      sendJson(res, 400, {
        error: {
          message: "Missing required parameter: 'messages'.",
          type: "invalid_request_error",
          code: null,
        },
      });
      return;
    }

    const refusal = chatRefusal(body);
    if (refusal) {
      record.status = 400;
      sendJson(res, 400, { error: refusal });
      return;
    }

    const script = await this.respond(body);
    if ("error" in script) {
      record.status = script.error.status;
      sendJson(res, script.error.status, {
        error: {
          message: script.error.message,
          type: script.error.type ?? (script.error.status >= 500 ? "server_error" : "invalid_request_error"),
          param: null,
          code: script.error.code ?? null,
        },
      });
      return;
    }

    const id = `chatcmpl-${++this.#seq}${randomHex(6)}`;
    const created = Math.floor(Date.now() / 1000);
    const tokens = script.text ? (script.text.match(TOKEN_RE) ?? []) : [];
    const toolCalls = (script.toolCalls ?? []).map((tc, i) => ({
      id: tc.id ?? `call_${randomHex(12)}`,
      name: tc.name,
      arguments: typeof tc.arguments === "string" ? tc.arguments : JSON.stringify(tc.arguments),
      index: i,
    }));
    const finishReason = toolCalls.length > 0 ? "tool_calls" : (script.finishReason ?? "stop");
    const promptText = body.messages.map((m) => contentText(m.content)).join("\n");
    const completionTokens =
      script.usage?.completionTokens ??
      tokens.length + toolCalls.reduce((n, tc) => n + estimateTokens(tc.name + tc.arguments), 0);
    const promptTokens = script.usage?.promptTokens ?? estimateTokens(promptText);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: {
        cached_tokens: script.usage?.cachedTokens ?? this.#cachedTokens,
        audio_tokens: 0,
      },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };

    if (!body.stream) {
      record.firstTokenAt = Date.now();
      record.completedAt = record.firstTokenAt;
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: body.model,
        system_fingerprint: "fp_fake",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: script.text ?? null,
              refusal: null,
              ...(toolCalls.length > 0
                ? {
                    tool_calls: toolCalls.map((tc) => ({
                      id: tc.id,
                      type: "function",
                      function: { name: tc.name, arguments: tc.arguments },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
      });
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    let closed = false;
    res.on("close", () => {
      if (!record.completedAt) {
        closed = true;
        record.aborted = true;
      }
    });
    const includeUsage = body.stream_options?.include_usage === true;
    const head = `{"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(
      body.model,
    )},"system_fingerprint":"fp_fake","choices":[`;
    const tail = includeUsage ? `],"usage":null}` : "]}";
    const write = (choice: string): void => {
      res.write(`data: ${head}${choice}${tail}\n\n`);
    };
    const ttft = script.ttftMs ?? this.ttftMs;
    const gap = script.interTokenDelayMs ?? this.interTokenDelayMs;
    // Each chunk is due at a fixed offset from the request (TTFT + n × gap), not `gap` after the
    // previous one: chained timers would drift by the event loop's lag on every token.
    let dueAt = Date.now();
    const wait = (ms: number): Promise<void> | undefined => {
      dueAt += ms;
      const left = dueAt - Date.now();
      return left > 0 ? new Promise((r) => setTimeout(r, left)) : undefined;
    };

    if (script.stall) {
      // Headers out, nothing after: the request stays open until the client gives up on it.
      res.flushHeaders();
      return;
    }
    await wait(ttft);
    if (closed) return;
    record.firstTokenAt = Date.now();
    // First chunk carries the role, like the real API.
    const role = toolCalls.length > 0 && tokens.length === 0 ? `"content":null` : `"content":""`;
    write(
      `{"index":0,"delta":{"role":"assistant",${role},"refusal":null},"logprobs":null,"finish_reason":null}`,
    );
    for (let i = 0; i < tokens.length; i++) {
      if (i > 0) await wait(gap);
      if (closed) return;
      if (script.dropAfterTokens !== undefined && i >= script.dropAfterTokens) {
        // The connection breaks mid-stream (a reset): the chunked body never ends. The tokens
        // written before it reach the client first (a reset can discard what it has not read).
        await new Promise((r) => setTimeout(r, 30));
        record.dropped = true;
        res.socket?.destroy();
        return;
      }
      write(
        `{"index":0,"delta":{"content":${JSON.stringify(tokens[i])}},"logprobs":null,"finish_reason":null}`,
      );
    }
    for (const tc of toolCalls) {
      if (tokens.length > 0 || tc.index > 0) await wait(gap);
      if (closed) return;
      write(
        `{"index":0,"delta":{"tool_calls":[{"index":${tc.index},"id":"${tc.id}","type":"function","function":{"name":${JSON.stringify(
          tc.name,
        )},"arguments":""}}]},"logprobs":null,"finish_reason":null}`,
      );
      for (let off = 0; off < tc.arguments.length; off += this.#argsChunk) {
        await wait(gap);
        if (closed) return;
        const piece = tc.arguments.slice(off, off + this.#argsChunk);
        write(
          `{"index":0,"delta":{"tool_calls":[{"index":${tc.index},"function":{"arguments":${JSON.stringify(
            piece,
          )}}}]},"logprobs":null,"finish_reason":null}`,
        );
      }
    }
    if (closed) return;
    write(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finishReason}"}`);
    if (includeUsage) {
      res.write(`data: ${head}],"usage":${JSON.stringify(usage)}}\n\n`);
    }
    record.completedAt = Date.now();
    res.end("data: [DONE]\n\n");
  }
}
