// Vapi's `custom-llm` model provider: any OpenAI-compatible Chat Completions server at the
// assistant's `model.url`, streamed like OpenAI (the same chunk protocol and reader as openai.ts).
// What Vapi sends (../shared/docs/PROVIDERS.md §2.5, Vapi's CustomLLMModel):
// - `url` is the OpenAI client's base URL: requests go to `${url}/chat/completions`. Vapi's own
//   guides also show URLs that already end in `/chat/completions`; that path is not doubled.
// - `POST`, JSON, `stream: true`, `Accept: text/event-stream`; `Authorization: Bearer <apiKey>` of
//   the organisation's `custom-llm` credential when it has one (none otherwise); `model.headers` as
//   extra headers (they may not set Authorization: refused when the assistant is saved).
// - The body is an OpenAI chat request (`model`, `messages` with the system prompt first,
//   `temperature`, `max_tokens`, `tools`) plus, per `metadataSendMode`: `off` nothing; `variable`
//   (the default) `metadata` (the assistant's) and the `call`, `phoneNumber` and `customer` objects;
//   `destructured` the metadata's fields at the top level instead of `metadata`, with the same three
//   objects. The chat fields are set last, so metadata cannot replace them.
// - `timeoutSeconds` (default 20) bounds the wait for the server's answer to begin.
// - The answer must be an event stream: Vapi users report a plain JSON completion is never spoken.
//   Here it ends the call with a clear error (pipeline-error-custom-llm-llm-failed) rather than in
//   silence.
// The URL is the customer's, so it passes the webhooks' SSRF rule at every request (and when the
// assistant is saved): the request connects to the address that was checked.
import { validateHeaderName, validateHeaderValue } from "node:http";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { RESERVED_SERVER_HEADERS } from "../webhooks/server-config.ts";
import {
  assertPublicUrl,
  type HostLookup,
  pinnedLookup,
  type ResolvedTarget,
  UnsafeUrlError,
} from "../webhooks/ssrf.ts";
import { llmProviderError, parseJson, postSse, postTarget, type SseProtocol } from "./http-stream.ts";
import {
  type ChatCompletionStreamChunk,
  chatCompletionProtocol,
  readChatCompletion,
  toOpenAiMessages,
  toOpenAiTools,
} from "./openai.ts";
import {
  abortError,
  type LanguageModel,
  type LlmEvent,
  type LlmRequest,
  type OptionProblem,
  ProviderError,
} from "./types.ts";

export const CUSTOM_LLM_METADATA_SEND_MODES = ["off", "variable", "destructured"] as const;
export type CustomLlmMetadataSendMode = (typeof CUSTOM_LLM_METADATA_SEND_MODES)[number];

/** Vapi's default `timeoutSeconds`. */
export const CUSTOM_LLM_DEFAULT_TIMEOUT_SECONDS = 20;

/** Headers of `model.headers` the platform sets itself (besides RESERVED_SERVER_HEADERS). */
const OWN_HEADERS = new Set(["authorization", "accept"]);

export interface CustomLlmConfig {
  /** ALLOW_PRIVATE_WEBHOOK_URLS: private and loopback servers are allowed (tests, self-hosters on a LAN). */
  allowPrivate: boolean;
  /** DNS for the SSRF check (tests). */
  lookup?: HostLookup;
  /** Budget for the stream once the answer has begun. Default 60 s. */
  streamTimeoutMs?: number;
}

/** `${url}/chat/completions`, unless `url` already names that path (Vapi's guides show both forms). */
export function chatCompletionsUrl(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/\/+$/, "");
  u.pathname = /\/chat\/completions$/.test(path) ? path : `${path}/chat/completions`;
  return u.toString();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `model.headers` as sent: the valid ones the platform does not set itself. */
function customHeaders(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(headers)) return out;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (typeof value !== "string" || OWN_HEADERS.has(lower) || RESERVED_SERVER_HEADERS.has(lower)) continue;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      continue;
    }
    out[name] = value;
  }
  return out;
}

const PROTOCOL: SseProtocol<ChatCompletionStreamChunk> = {
  ...chatCompletionProtocol("custom-llm"),
  jsonBody(body) {
    const error = parseJson(body);
    if (isObject(error) && "error" in error) {
      // An error envelope sent with a 200: the server failed.
      return chatCompletionProtocol("custom-llm").statusError(500, body);
    }
    return new ProviderError(
      "custom-llm",
      "llm",
      "custom-llm request failed: the server answered with a plain JSON completion; a custom LLM must stream its answer as server-sent events (chat.completion.chunk objects ending with data: [DONE]), which the request asks for with stream: true and Accept: text/event-stream",
      false,
    );
  },
};

/**
 * Save-time check of a custom-llm `model` block (its URL and headers are checked with the server
 * rules, apps/api config-checks). `wordLevelConfidenceEnabled` asks for the transcriber's word
 * confidences in the request, which this platform does not send.
 */
export function customLlmModelProblems(model: { wordLevelConfidenceEnabled?: unknown }): OptionProblem[] {
  if (model.wordLevelConfidenceEnabled !== true) return [];
  return [
    {
      path: "model.wordLevelConfidenceEnabled",
      message:
        "is not supported: the transcriber's word-level confidences are not sent to a custom LLM on this platform; remove it or set it to false",
    },
  ];
}

export class CustomLlm implements LanguageModel {
  readonly provider = "custom-llm";
  readonly keyOptional = true;
  readonly #config: CustomLlmConfig;

  constructor(config: CustomLlmConfig) {
    this.#config = config;
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const { signal } = request;
    if (signal.aborted) throw abortError();
    const cfg = request.modelConfig ?? {};
    const seconds =
      typeof cfg.timeoutSeconds === "number" ? cfg.timeoutSeconds : CUSTOM_LLM_DEFAULT_TIMEOUT_SECONDS;
    const responseTimeoutMs = seconds > 0 ? seconds * 1000 : undefined;
    const target = await this.#target(cfg.url, responseTimeoutMs);
    if (signal.aborted) throw abortError();

    const body = { ...this.#metadataFields(cfg.metadataSendMode, request) } as Record<string, unknown>;
    const chat: ChatCompletionCreateParamsStreaming = {
      model: request.model,
      messages: toOpenAiMessages(request.messages),
      stream: true,
    };
    if (request.temperature !== undefined) chat.temperature = request.temperature;
    // `max_tokens`, as Vapi sends it: OpenAI-compatible servers know it (not all know
    // `max_completion_tokens`).
    if (request.maxTokens !== undefined) chat.max_tokens = request.maxTokens;
    if (request.tools && request.tools.length > 0) chat.tools = toOpenAiTools(request.tools);
    Object.assign(body, chat);

    const json = JSON.stringify(body);
    const headers: Record<string, string | number> = {
      ...customHeaders(cfg.headers),
      "Content-Type": "application/json",
      Accept: "text/event-stream",
      "Content-Length": Buffer.byteLength(json),
    };
    if (request.apiKey) headers.Authorization = `Bearer ${request.apiKey}`;
    const call = postSse(PROTOCOL, postTarget(target.url), {
      headers,
      body: json,
      timeoutMs: (responseTimeoutMs ?? 0) + (this.#config.streamTimeoutMs ?? 60_000),
      responseTimeoutMs,
      signal,
      lookup: pinnedLookup(target),
    });
    yield* readChatCompletion(call, signal);
  }

  /** The URL checked against the SSRF rule now, and the address to connect to. */
  async #target(url: unknown, lookupTimeoutMs: number | undefined): Promise<ResolvedTarget> {
    if (typeof url !== "string" || url === "") {
      throw new ProviderError(
        "custom-llm",
        "llm",
        "custom-llm request failed: the assistant has no model.url",
        false,
      );
    }
    try {
      return await assertPublicUrl(chatCompletionsUrl(url), {
        allowPrivate: this.#config.allowPrivate,
        lookup: this.#config.lookup,
        lookupTimeoutMs,
      });
    } catch (err) {
      if (err instanceof UnsafeUrlError) {
        // A name that does not resolve may be a passing DNS failure; a private address is not.
        throw new ProviderError(
          "custom-llm",
          "llm",
          `custom-llm request failed: model.url ${err.message}`,
          err.reason === "unresolvable",
        );
      }
      if (err instanceof TypeError) {
        throw new ProviderError(
          "custom-llm",
          "llm",
          "custom-llm request failed: model.url is not a valid URL",
          false,
        );
      }
      throw llmProviderError("custom-llm", err);
    }
  }

  #metadataFields(mode: unknown, request: LlmRequest): Record<string, unknown> {
    const sendMode: CustomLlmMetadataSendMode = mode === "off" || mode === "destructured" ? mode : "variable";
    if (sendMode === "off" || !request.callContext) return {};
    const ctx = request.callContext();
    const metadata = ctx.metadata ?? {};
    return {
      ...(sendMode === "destructured" ? metadata : { metadata }),
      call: ctx.call,
      ...(ctx.phoneNumber ? { phoneNumber: ctx.phoneNumber } : {}),
      ...(ctx.customer ? { customer: ctx.customer } : {}),
    };
  }
}
