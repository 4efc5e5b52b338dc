// OpenAI Chat Completions streaming through the official SDK (v6). The SDK's own retries are off:
// a voice turn cannot wait for backoff, and the call session decides what to retry.
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import type { Stream } from "openai/streaming";
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

// One client per (baseURL, key): the SDK's fetch keeps HTTP connections alive per client, so a
// call's second turn skips TCP/TLS setup. Bounded, oldest out first (keys are per org).
const MAX_CLIENTS = 256;
const clients = new Map<string, OpenAI>();

function clientFor(baseURL: string, apiKey: string, timeout: number): OpenAI {
  const id = `${baseURL}\u0000${apiKey}`;
  let client = clients.get(id);
  if (client) return client;
  if (clients.size >= MAX_CLIENTS) {
    const oldest = clients.keys().next().value;
    if (oldest !== undefined) clients.delete(oldest);
  }
  client = new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout });
  clients.set(id, client);
  return client;
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

/** SDK error → ProviderError; aborts stay AbortErrors so the caller can tell a barge-in from a failure. */
export function toProviderError(err: unknown): ProviderError | DOMException {
  if (err instanceof APIUserAbortError || isAbortError(err)) return abortError();
  if (err instanceof ProviderError) return err;
  if (err instanceof APIConnectionError) {
    return new ProviderError("openai", "llm", `openai connection failed: ${err.message}`, true);
  }
  if (err instanceof APIError) {
    const status = err.status;
    // A status-less APIError is an `error` event inside the stream: a server-side failure.
    const retryable = status === undefined ? true : isRetryableStatus(status);
    return new ProviderError("openai", "llm", `openai request failed: ${err.message}`, retryable, status);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError("openai", "llm", `openai request failed: ${message}`, false);
}

interface PendingToolCall {
  id: string;
  name: string;
  arguments: string;
}

export class OpenAiLlm implements LanguageModel {
  readonly provider = "openai";
  readonly #baseUrl: string;
  readonly #timeoutMs: number;

  constructor(config: OpenAiLlmConfig) {
    this.#baseUrl = config.baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = config.timeoutMs ?? 60_000;
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const { signal } = request;
    if (signal.aborted) throw abortError();
    const client = clientFor(this.#baseUrl, request.apiKey, this.#timeoutMs);
    const body: ChatCompletionCreateParamsStreaming = {
      model: request.model,
      messages: toOpenAiMessages(request.messages),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (request.tools && request.tools.length > 0) body.tools = toOpenAiTools(request.tools);
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.maxTokens !== undefined) body.max_completion_tokens = request.maxTokens;

    let stream: Stream<ChatCompletionChunk>;
    try {
      stream = await client.chat.completions.create(body, { signal });
    } catch (err) {
      throw toProviderError(err);
    }

    const toolCalls: PendingToolCall[] = [];
    let finishReason = "stop";
    let usage = { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 };
    let finished = false;
    try {
      for await (const chunk of stream) {
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
      // The SDK ends the iteration quietly when the signal aborts mid-stream.
      if (signal.aborted) throw abortError();
      finished = true;
    } catch (err) {
      throw toProviderError(err);
    } finally {
      // The consumer stopped early (break / return): release the HTTP response now.
      if (!finished) stream.controller.abort();
    }

    for (const tc of toolCalls) {
      if (tc) yield { type: "tool-call", id: tc.id, name: tc.name, arguments: tc.arguments };
    }
    yield { type: "done", finishReason, usage };
  }
}
