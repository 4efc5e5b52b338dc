// Anthropic Messages API streaming (`POST /v1/messages`, `stream: true`) over the lean HTTP client
// in `./http-stream.ts`, with tool use. The wire format (../shared/docs/PROVIDERS.md §2.3):
// named SSE events `message_start`, `content_block_start` / `_delta` / `_stop`, `message_delta`,
// `message_stop`, `ping`, and `error` (a failure after the 200); errors as
// `{"type":"error","error":{"type","message"},"request_id"}`.
//
// Why not @anthropic-ai/sdk: CPU, as for OpenAI (http-stream.ts), and the API version. Its majors
// from 1.0.0 send `anthropic-version: 2026-10-21`, which removed `temperature` on every model, and
// their types describe that version; this adapter speaks 2023-06-01 (anthropic-rules.ts says why),
// so it carries the few wire types it needs itself.
//
// How the session's conversation maps onto Anthropic's:
// - `system` messages (the prompt, and notes added mid-call) go to the top-level `system`, joined:
//   the Messages API has no system role.
// - An assistant message with tool calls becomes text + `tool_use` blocks (arguments parsed back
//   to objects), after any thinking blocks the same model produced for it (`LlmMessage.replay`);
//   tool results become `tool_result` blocks of the next user message.
// - The messages must start with a user turn and, on the newer models, must not end with an
//   assistant turn (that would be a prefill, a 400 there): a short user turn is added where needed.
import { ANTHROPIC_API_VERSION, anthropicSamplingParams, thinkingBudget } from "./anthropic-rules.ts";
import {
  badStreamEvent,
  type PostTarget,
  parseJson,
  postSse,
  postTarget,
  type SseProtocol,
  STREAM_END,
  sample,
  statusFailure,
} from "./http-stream.ts";
import {
  abortError,
  isRetryableStatus,
  type LanguageModel,
  type LlmEvent,
  type LlmMessage,
  type LlmReplay,
  type LlmRequest,
  type LlmTool,
  ProviderError,
} from "./types.ts";

/** Anthropic's API (the SDK's default base URL; ANTHROPIC_BASE_URL replaces it). */
export const ANTHROPIC_API_URL = "https://api.anthropic.com";

export interface AnthropicLlmConfig {
  /** `https://api.anthropic.com` (config ANTHROPIC_BASE_URL) or a fake's `http://127.0.0.1:PORT`. */
  baseUrl: string;
  /** Whole-request budget (headers + stream). Default 60 s. */
  timeoutMs?: number;
}

// ---------- wire types (Messages API, version 2023-06-01) ----------

type TextBlock = { type: "text"; text: string };
type ToolUseBlock = { type: "tool_use"; id: string; name: string; input: unknown };
type ToolResultBlock = { type: "tool_result"; tool_use_id: string; content: string };
type ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock | Record<string, unknown>;

export interface AnthropicMessageParam {
  role: "user" | "assistant";
  content: string | ContentBlock[];
}

export interface AnthropicTool {
  name: string;
  description?: string;
  input_schema: Record<string, unknown>;
}

interface Usage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

type StreamEvent =
  | { type: "message_start"; message: { usage?: Usage } }
  | { type: "content_block_start"; index: number; content_block: { type: string; [k: string]: unknown } }
  | { type: "content_block_delta"; index: number; delta: { type: string; [k: string]: unknown } }
  | { type: "content_block_stop"; index: number }
  | { type: "message_delta"; delta: { stop_reason?: string | null }; usage?: Usage };

/** What the conversation adds where Anthropic needs a user turn the conversation does not have. */
export const SYNTHETIC_USER_TURN = "(The caller is listening.)";

function parseArguments(args: string): unknown {
  const v = parseJson(args || "{}");
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v : {};
}

/** The conversation as the Messages API takes it (`model`: whose thinking blocks may be replayed). */
export function toAnthropicMessages(
  messages: LlmMessage[],
  model: string,
): { system: string | undefined; messages: AnthropicMessageParam[] } {
  const system: string[] = [];
  const out: AnthropicMessageParam[] = [];
  /** Appends blocks to the last message when it has `role`, else starts a message. */
  const push = (role: "user" | "assistant", blocks: ContentBlock[]): void => {
    if (blocks.length === 0) return;
    const last = out[out.length - 1];
    if (last && last.role === role && Array.isArray(last.content)) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    const text = m.content ?? "";
    switch (m.role) {
      case "system":
        if (text) system.push(text);
        break;
      case "user":
        // Empty text blocks are a 400.
        if (text) push("user", [{ type: "text", text }]);
        break;
      case "tool":
        push("user", [{ type: "tool_result", tool_use_id: m.toolCallId ?? "", content: text }]);
        break;
      case "assistant": {
        const blocks: ContentBlock[] = [];
        const calls = m.toolCalls ?? [];
        if (calls.length > 0 && m.replay?.provider === "anthropic" && m.replay.model === model) {
          blocks.push(...(m.replay.blocks as ContentBlock[]));
        }
        if (text) blocks.push({ type: "text", text });
        for (const c of calls) {
          blocks.push({ type: "tool_use", id: c.id, name: c.name, input: parseArguments(c.arguments) });
        }
        push("assistant", blocks);
        break;
      }
    }
  }
  if (out[0]?.role !== "user")
    out.unshift({ role: "user", content: [{ type: "text", text: SYNTHETIC_USER_TURN }] });
  if (out[out.length - 1]?.role === "assistant") {
    out.push({ role: "user", content: [{ type: "text", text: SYNTHETIC_USER_TURN }] });
  }
  return { system: system.length > 0 ? system.join("\n\n") : undefined, messages: out };
}

export function toAnthropicTools(tools: LlmTool[]): AnthropicTool[] {
  return tools.map((t) => ({
    name: t.name,
    ...(t.description !== undefined ? { description: t.description } : {}),
    // `input_schema` is required and must describe an object.
    input_schema: t.parameters ?? { type: "object", properties: {} },
  }));
}

// ---------- errors ----------

/** Anthropic's error types and the HTTP status each comes with (docs: errors). */
const ERROR_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

function errorParts(payload: unknown): { type?: string; message?: string } {
  if (payload === null || typeof payload !== "object") return {};
  const { error } = payload as { error?: unknown };
  if (error === null || typeof error !== "object") return {};
  const { type, message } = error as { type?: unknown; message?: unknown };
  return {
    type: typeof type === "string" ? type : undefined,
    message: typeof message === "string" ? message : undefined,
  };
}

const PROTOCOL: SseProtocol<StreamEvent> = {
  provider: "anthropic",
  onEvent(event, data) {
    const payload = parseJson(data);
    if (payload === null || typeof payload !== "object") return badStreamEvent("anthropic", data);
    const type = event === "message" ? (payload as { type?: unknown }).type : event;
    switch (type) {
      case "message_start":
      case "content_block_start":
      case "content_block_delta":
      case "content_block_stop":
      case "message_delta":
        return payload as StreamEvent;
      case "message_stop":
        return STREAM_END;
      case "error": {
        // A failure after the 200 (an overload mid-stream): retryable unless the request was at fault.
        const { type: errorType, message } = errorParts(payload);
        const status = errorType ? ERROR_STATUS[errorType] : undefined;
        return new ProviderError(
          "anthropic",
          "llm",
          `anthropic request failed: ${errorType ?? "error"}: ${message ?? sample(data, 200)}`,
          status === undefined || isRetryableStatus(status),
          status,
        );
      }
      default:
        // `ping`, and event types added later (the API's versioning policy allows new ones).
        return undefined;
    }
  },
  statusError(status, body) {
    const { type, message } = errorParts(parseJson(body));
    return statusFailure("anthropic", status, message ? `${type ?? "error"}: ${message}` : undefined, body);
  },
};

// ---------- adapter ----------

interface OpenBlock {
  type: string;
  /** tool_use */
  id?: string;
  name?: string;
  json?: string;
  /** thinking / redacted_thinking, kept whole to replay */
  thinking?: string;
  signature?: string;
  data?: string;
}

function count(v: number | null | undefined): number | undefined {
  return typeof v === "number" ? v : undefined;
}

export class AnthropicLlm implements LanguageModel {
  readonly provider = "anthropic";
  readonly #timeoutMs: number;
  readonly #target: PostTarget;

  constructor(config: AnthropicLlmConfig) {
    this.#timeoutMs = config.timeoutMs ?? 60_000;
    this.#target = postTarget(new URL(`${config.baseUrl.replace(/\/+$/, "")}/v1/messages`));
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const { signal, model } = request;
    if (signal.aborted) throw abortError();
    const { system, messages } = toAnthropicMessages(request.messages, model);
    const body: Record<string, unknown> = {
      model,
      ...anthropicSamplingParams(model, {
        temperature: request.temperature,
        maxTokens: request.maxTokens,
        thinkingBudgetTokens: request.modelConfig ? thinkingBudget(request.modelConfig) : undefined,
      }),
      ...(system !== undefined ? { system } : {}),
      messages,
      stream: true,
    };
    if (request.tools && request.tools.length > 0) body.tools = toAnthropicTools(request.tools);

    const json = JSON.stringify(body);
    const call = postSse(PROTOCOL, this.#target, {
      headers: {
        "x-api-key": request.apiKey,
        "anthropic-version": ANTHROPIC_API_VERSION,
        "content-type": "application/json",
        accept: "text/event-stream",
        "content-length": Buffer.byteLength(json),
      },
      body: json,
      timeoutMs: this.#timeoutMs,
      signal,
    });

    const blocks = new Map<number, OpenBlock>();
    /** Thinking blocks of this turn, in order, to send back with its tool calls. */
    const thoughts: Record<string, unknown>[] = [];
    let toolCalls = 0;
    let stopReason = "end_turn";
    let input = 0;
    let cacheWrite = 0;
    let cacheRead = 0;
    let output = 0;
    try {
      for (;;) {
        if (signal.aborted) throw abortError();
        const ev = call.shift();
        if (ev === undefined) {
          if (!call.ended) {
            await call.wait();
            continue;
          }
          if (call.error) throw call.error;
          break;
        }
        switch (ev.type) {
          case "message_start": {
            const u = ev.message?.usage ?? {};
            input = count(u.input_tokens) ?? input;
            cacheWrite = count(u.cache_creation_input_tokens) ?? cacheWrite;
            cacheRead = count(u.cache_read_input_tokens) ?? cacheRead;
            output = count(u.output_tokens) ?? output;
            break;
          }
          case "content_block_start": {
            const b = ev.content_block;
            const open: OpenBlock = { type: b.type };
            if (b.type === "tool_use") {
              open.id = String(b.id ?? "");
              open.name = String(b.name ?? "");
              open.json = "";
            } else if (b.type === "thinking") {
              open.thinking = typeof b.thinking === "string" ? b.thinking : "";
              open.signature = typeof b.signature === "string" ? b.signature : "";
            } else if (b.type === "redacted_thinking") {
              open.data = typeof b.data === "string" ? b.data : "";
            } else if (b.type === "text" && typeof b.text === "string" && b.text) {
              yield { type: "text", delta: b.text };
            }
            blocks.set(ev.index, open);
            break;
          }
          case "content_block_delta": {
            const d = ev.delta;
            const open = blocks.get(ev.index);
            if (d.type === "text_delta" && typeof d.text === "string") {
              if (d.text) yield { type: "text", delta: d.text };
            } else if (!open) {
              break;
            } else if (d.type === "input_json_delta" && typeof d.partial_json === "string") {
              open.json = (open.json ?? "") + d.partial_json;
            } else if (d.type === "thinking_delta" && typeof d.thinking === "string") {
              open.thinking = (open.thinking ?? "") + d.thinking;
            } else if (d.type === "signature_delta" && typeof d.signature === "string") {
              open.signature = (open.signature ?? "") + d.signature;
            }
            break;
          }
          case "content_block_stop": {
            const open = blocks.get(ev.index);
            blocks.delete(ev.index);
            if (!open) break;
            if (open.type === "tool_use") {
              toolCalls++;
              // The arguments are whole only now; a tool without input streams none.
              yield {
                type: "tool-call",
                id: open.id ?? "",
                name: open.name ?? "",
                arguments: open.json || "{}",
              };
            } else if (open.type === "thinking") {
              thoughts.push({
                type: "thinking",
                thinking: open.thinking ?? "",
                signature: open.signature ?? "",
              });
            } else if (open.type === "redacted_thinking") {
              thoughts.push({ type: "redacted_thinking", data: open.data ?? "" });
            }
            break;
          }
          case "message_delta": {
            if (ev.delta?.stop_reason) stopReason = ev.delta.stop_reason;
            // Cumulative counts; a field may be absent or null.
            const u = ev.usage ?? {};
            input = count(u.input_tokens) ?? input;
            cacheWrite = count(u.cache_creation_input_tokens) ?? cacheWrite;
            cacheRead = count(u.cache_read_input_tokens) ?? cacheRead;
            output = count(u.output_tokens) ?? output;
            break;
          }
        }
      }
    } finally {
      // Also when the consumer stopped early (break / return): the HTTP response is released now.
      call.release();
    }
    // Anthropic's `input_tokens` leaves out the cached and cache-writing parts; the session counts
    // the prompt OpenAI's way (cached included).
    const replay: LlmReplay | undefined =
      toolCalls > 0 && thoughts.length > 0 ? { provider: "anthropic", model, blocks: thoughts } : undefined;
    yield {
      type: "done",
      finishReason: stopReason,
      usage: {
        promptTokens: input + cacheWrite + cacheRead,
        completionTokens: output,
        cachedPromptTokens: cacheRead,
      },
      ...(replay ? { replay } : {}),
    };
  }
}
