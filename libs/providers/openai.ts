// OpenAI Chat Completions streaming over the lean HTTP client in `./http-stream.ts` (why not the
// SDK's client: CPU, measured there); the official SDK (v6) still supplies the wire types
// (`import type` only), so the request body and stream chunks stay typed. The chunk protocol and
// the reading of a streamed completion are exported for `./custom-llm.ts`, which speaks the same
// wire format to a customer's server.
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import {
  badStreamEvent,
  type PostTarget,
  parseJson,
  postSse,
  postTarget,
  type SseProtocol,
  type SseStream,
  STREAM_END,
  statusFailure,
} from "./http-stream.ts";
import { openAiSamplingParams } from "./openai-rules.ts";
import {
  abortError,
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

export function toOpenAiTools(tools: LlmTool[]): ChatCompletionTool[] {
  return tools.map((t) => ({
    type: "function",
    function: {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      ...(t.parameters !== undefined ? { parameters: t.parameters } : {}),
    },
  }));
}

function errorDetail(error: object): string {
  const { message } = error as { message?: unknown };
  if (typeof message === "string") return message;
  return JSON.stringify(message ?? error);
}

/** The message of an `{"error":{"message",…}}` envelope (OpenAI's), a string `error`, or a `message`. */
function envelopeDetail(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== "object") return undefined;
  const { error, message } = payload as { error?: unknown; message?: unknown };
  if (error !== null && typeof error === "object") return errorDetail(error);
  if (typeof error === "string") return error;
  if (typeof message === "string") return message;
  return undefined;
}

export type ChatCompletionStreamChunk = ChatCompletionChunk & { error?: unknown };

/**
 * The Chat Completions event stream, for `provider` (`openai`, or `custom-llm` for a customer's
 * OpenAI-compatible server): chunks are queued, `data: [DONE]` ends it, and an `error` inside a 200
 * stream (a data payload with a top-level `error`, or `event: error`) fails it as retryable: the
 * server failed after it started answering.
 */
export function chatCompletionProtocol(provider: string): SseProtocol<ChatCompletionStreamChunk> {
  const streamError = (payload: unknown, raw: string): ProviderError =>
    new ProviderError(provider, "llm", `${provider} request failed: ${envelopeDetail(payload) ?? raw}`, true);
  return {
    provider,
    onEvent(event, data) {
      if (event === "error") return streamError(parseJson(data), data);
      if (data.startsWith("[DONE]")) return STREAM_END;
      const chunk = parseJson(data);
      if (chunk === null || typeof chunk !== "object") return badStreamEvent(provider, data);
      const typed = chunk as ChatCompletionStreamChunk;
      if (typed.error) return streamError(chunk, data);
      return typed;
    },
    /** `{"error":{"message",…}}` (OpenAI's envelope) or whatever a proxy put in the body. */
    statusError(status, body) {
      return statusFailure(provider, status, envelopeDetail(parseJson(body)), body);
    },
  };
}

function tokens(n: unknown): number {
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 0;
}

interface PendingToolCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * Reads a streamed chat completion: text deltas as they come, each tool call whole once the stream
 * has ended (its arguments are complete only then), then `done` with the usage when the server sent
 * it. Releases the HTTP response on every way out, also when the consumer stops early.
 */
export async function* readChatCompletion(
  call: SseStream<ChatCompletionStreamChunk>,
  signal: AbortSignal,
): AsyncGenerator<LlmEvent> {
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
      const choice = chunk.choices?.[0];
      if (choice) {
        const delta = choice.delta;
        if (delta?.content) yield { type: "text", delta: delta.content };
        if (delta?.tool_calls) {
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
        // Counts as integers whatever an OpenAI-compatible server put there (billing stores them).
        usage = {
          promptTokens: tokens(chunk.usage.prompt_tokens),
          completionTokens: tokens(chunk.usage.completion_tokens),
          cachedPromptTokens: tokens(chunk.usage.prompt_tokens_details?.cached_tokens),
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

const OPENAI_PROTOCOL = chatCompletionProtocol("openai");

export class OpenAiLlm implements LanguageModel {
  readonly provider = "openai";
  readonly #timeoutMs: number;
  readonly #target: PostTarget;

  constructor(config: OpenAiLlmConfig) {
    this.#timeoutMs = config.timeoutMs ?? 60_000;
    this.#target = postTarget(new URL(`${config.baseUrl.replace(/\/+$/, "")}/chat/completions`));
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
    const call = postSse(OPENAI_PROTOCOL, this.#target, {
      headers: {
        Authorization: `Bearer ${request.apiKey}`,
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        "Content-Length": Buffer.byteLength(json),
      },
      body: json,
      timeoutMs: this.#timeoutMs,
      signal,
    });
    yield* readChatCompletion(call, signal);
  }
}
