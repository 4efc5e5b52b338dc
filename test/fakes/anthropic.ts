/**
 * FakeAnthropic — loopback Anthropic Messages API (`POST /v1/messages`), streaming (SSE) and not,
 * written from Anthropic's published material (../../../shared/docs/PROVIDERS.md §2.3 and the pages
 * it names: Messages API reference, streaming, errors, tool use, extended thinking, the Opus 4.7
 * and Sonnet 5 migration notes, model deprecations), not from our adapter.
 *
 * Wire behaviour:
 * - Auth: `x-api-key` (or `Authorization: Bearer`); missing or listed in `rejectKeys` → 401
 *   `authentication_error`. `anthropic-version` is required (400 without it).
 * - Errors: `{"type":"error","error":{"type","message"},"request_id"}` with a `request-id` header.
 * - Stream: named events (`event:` line and a `type` in the data): message_start, ping,
 *   content_block_start / _delta / _stop (text_delta, input_json_delta split anywhere,
 *   thinking_delta, signature_delta), message_delta (cumulative usage), message_stop. A script's
 *   `streamError` sends `event: error` after the 200.
 * - What the real API refuses: no `max_tokens`; a `system` role in `messages`; empty text blocks;
 *   a temperature outside 0–1; retired models (404 not_found_error); on Opus 4.7+ and the Claude 5
 *   generation a temperature other than 1, manual thinking, and a final assistant message
 *   (prefill); `budget_tokens` below 1024 or not below `max_tokens`; a modified temperature with
 *   thinking; a tool_result whose id is not a tool_use of the assistant turn before it; on API
 *   version 2026-10-21 any temperature/top_p/top_k; and, when the model thinks (the Claude 5
 *   generation by default, others with `thinking`), an assistant turn with tool_use that does not
 *   start with the thinking block this server signed for it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, headerValue, listenLoopback, randomHex, readBody } from "./util.ts";

export interface AnthropicRequestBody {
  model: string;
  max_tokens?: number;
  system?: unknown;
  messages: Array<{ role: string; content: unknown }>;
  tools?: Array<{ name: string; description?: string; input_schema: unknown }>;
  temperature?: number;
  thinking?: { type: string; budget_tokens?: number };
  stream?: boolean;
  [key: string]: unknown;
}

export type AnthropicScript =
  | {
      text?: string;
      toolCalls?: Array<{ name: string; input: Record<string, unknown>; id?: string }>;
      /** Emit a thinking block first (default: when the model thinks). */
      thinking?: boolean;
      /** Send `event: error` with this after the text. */
      streamError?: { type: string; message: string };
      usage?: {
        inputTokens?: number;
        outputTokens?: number;
        cacheReadTokens?: number;
        cacheWriteTokens?: number;
      };
      ttftMs?: number;
    }
  | { error: { status: number; type: string; message: string } };

export type AnthropicResponder = (body: AnthropicRequestBody) => AnthropicScript | Promise<AnthropicScript>;

export interface RecordedAnthropicRequest {
  path: string;
  headers: IncomingMessage["headers"];
  body: AnthropicRequestBody;
  status: number;
  /** The client went away before the stream finished. */
  aborted: boolean;
  completedAt?: number;
}

export interface FakeAnthropicOptions {
  respond?: AnthropicResponder;
  rejectKeys?: Iterable<string>;
  /** Characters of `partial_json` per input_json_delta. */
  jsonChunkChars?: number;
}

/** Model ids the API no longer serves (model deprecations page; SDK 1.17.0 model list). */
const RETIRED = new Set([
  "claude-3-opus-20240229",
  "claude-3-sonnet-20240229",
  "claude-3-haiku-20240307",
  "claude-3-5-sonnet-20240620",
  "claude-3-5-sonnet-20241022",
  "claude-3-5-haiku-20241022",
  "claude-3-7-sonnet-20250219",
  "claude-opus-4-20250514",
  "claude-opus-4-1-20250805",
  "claude-sonnet-4-20250514",
  "claude-sonnet-4-5-20250929",
  "claude-mythos-preview",
]);

/** Opus 4.7 and later, and every Claude 5 model (Sonnet, Opus, Haiku, Fable, Mythos). */
function isAdaptiveModel(model: string): boolean {
  if (/^claude-(fable|mythos)-/.test(model)) return true;
  if (/^claude-[a-z]+-([5-9]|\d{2})(-|$)/.test(model)) return true;
  const opus = /^claude-opus-4-(\d+)/.exec(model);
  return opus !== null && Number(opus[1]) >= 7;
}

const WORD_RE = /\s*\S+|\s+/g;

function lastUserText(body: AnthropicRequestBody): string {
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) {
      const text = m.content
        .filter((b): b is { type: string; text: string } => b?.type === "text" && typeof b.text === "string")
        .map((b) => b.text)
        .join(" ");
      if (text) return text;
    }
  }
  return "";
}

export function defaultAnthropicResponder(body: AnthropicRequestBody): AnthropicScript {
  const said = lastUserText(body);
  return { text: said ? `You said: ${said}.` : "Hello." };
}

function blocksOf(content: unknown): Array<Record<string, unknown>> {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? (content as Array<Record<string, unknown>>) : [];
}

export class FakeAnthropic {
  readonly requests: RecordedAnthropicRequest[] = [];
  respond: AnthropicResponder;
  readonly rejectKeys: Set<string>;
  readonly #server: Server;
  readonly #port: number;
  readonly #jsonChunk: number;
  /** Signatures this server gave its thinking blocks (a client must send them back unmodified). */
  readonly #signatures = new Set<string>();

  private constructor(server: Server, port: number, opts: FakeAnthropicOptions) {
    this.#server = server;
    this.#port = port;
    this.respond = opts.respond ?? defaultAnthropicResponder;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.#jsonChunk = opts.jsonChunkChars ?? 5;
  }

  static async start(opts: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
    let fake: FakeAnthropic | undefined;
    const server = createServer((req, res) => {
      fake?.handle(req, res).catch(() => {
        if (!res.headersSent) fake?.error(res, 500, "api_error", "Internal server error");
        else res.end();
      });
    });
    const port = await listenLoopback(server);
    fake = new FakeAnthropic(server, port, opts);
    return fake;
  }

  /** `http://127.0.0.1:PORT` — the base URL (`/v1/messages` is the path). */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get lastRequest(): RecordedAnthropicRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  error(
    res: ServerResponse,
    status: number,
    type: string,
    message: string,
    record?: RecordedAnthropicRequest,
  ): void {
    if (record) record.status = status;
    const requestId = `req_${randomHex(12)}`;
    const text = JSON.stringify({ type: "error", error: { type, message }, request_id: requestId });
    res.writeHead(status, {
      "content-type": "application/json",
      "request-id": requestId,
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  /** What the API answers 400 (or 404) for this body, or undefined. */
  refusal(
    body: AnthropicRequestBody,
    version: string,
  ): { status: number; type: string; message: string } | undefined {
    const bad = (message: string) => ({ status: 400, type: "invalid_request_error", message });
    if (typeof body.model !== "string") return bad("model: Field required");
    if (typeof body.max_tokens !== "number") return bad("max_tokens: Field required");
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return bad("messages: at least one message is required");
    }
    if (version === "2026-10-21") {
      for (const p of ["temperature", "top_p", "top_k"]) {
        if (p in body) return bad(`${p}: Extra inputs are not permitted`);
      }
    }
    if (RETIRED.has(body.model)) {
      return { status: 404, type: "not_found_error", message: `model: ${body.model}` };
    }
    const adaptive = isAdaptiveModel(body.model);
    const t = body.temperature;
    if (t !== undefined && (t < 0 || t > 1))
      return bad("temperature: Input should be less than or equal to 1");
    if (adaptive && t !== undefined && t !== 1) {
      return bad("temperature: only the default value (1) is supported for this model");
    }
    const thinking = body.thinking?.type === "enabled";
    if (thinking) {
      if (adaptive)
        return bad(`thinking.type.enabled is not supported for this model. Use thinking.type.adaptive`);
      const budget = body.thinking?.budget_tokens ?? 0;
      if (budget < 1024)
        return bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024");
      if (budget >= body.max_tokens) return bad("`max_tokens` must be greater than `thinking.budget_tokens`");
      if (t !== undefined && t !== 1) {
        return bad("`temperature` may only be set to 1 when thinking is enabled");
      }
    }
    const thinks = adaptive || thinking;
    // Only the turn the model continues (the last assistant one) needs its thinking back.
    let lastAssistant = -1;
    for (const [i, m] of body.messages.entries()) if (m.role === "assistant") lastAssistant = i;
    let previous: Array<Record<string, unknown>> = [];
    for (const [i, m] of body.messages.entries()) {
      if (m.role !== "user" && m.role !== "assistant") {
        return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
      }
      const blocks = blocksOf(m.content);
      for (const b of blocks) {
        if (b.type === "text" && (typeof b.text !== "string" || b.text === "")) {
          return bad(`messages.${i}: text content blocks must be non-empty`);
        }
      }
      if (m.role === "user") {
        const ids = new Set(previous.filter((b) => b.type === "tool_use").map((b) => b.id));
        for (const b of blocks) {
          if (b.type === "tool_result" && !ids.has(b.tool_use_id)) {
            return bad(
              `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(b.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
            );
          }
        }
      } else if (thinks && i === lastAssistant && blocks.some((b) => b.type === "tool_use")) {
        const first = blocks[0];
        const signed =
          first?.type === "redacted_thinking" ||
          (first?.type === "thinking" && this.#signatures.has(String(first.signature)));
        if (!signed) {
          return bad(
            `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${String(first?.type)}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks).`,
          );
        }
      }
      previous = blocks;
    }
    const last = body.messages[body.messages.length - 1];
    if (adaptive && last?.role === "assistant") {
      return bad(
        "This model does not support assistant message prefill. The conversation must end with a user message.",
      );
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "POST" || path !== "/v1/messages") {
      this.error(res, 404, "not_found_error", "Not Found");
      return;
    }
    const raw = (await readBody(req)).toString("utf8");
    let body: AnthropicRequestBody;
    try {
      body = JSON.parse(raw) as AnthropicRequestBody;
    } catch {
      this.error(res, 400, "invalid_request_error", "There was an issue with the request body: invalid JSON");
      return;
    }
    const record: RecordedAnthropicRequest = {
      path,
      headers: req.headers,
      body,
      status: 200,
      aborted: false,
    };
    this.requests.push(record);

    const bearer = headerValue(req, "authorization");
    const key =
      headerValue(req, "x-api-key") ?? (bearer?.startsWith("Bearer ") ? bearer.slice(7) : undefined);
    if (!key) {
      this.error(res, 401, "authentication_error", "x-api-key header is required", record);
      return;
    }
    if (this.rejectKeys.has(key)) {
      this.error(res, 401, "authentication_error", "invalid x-api-key", record);
      return;
    }
    const version = headerValue(req, "anthropic-version");
    if (!version) {
      this.error(res, 400, "invalid_request_error", "anthropic-version: header is required", record);
      return;
    }
    const refusal = this.refusal(body, version);
    if (refusal) {
      this.error(res, refusal.status, refusal.type, refusal.message, record);
      return;
    }
    const script = await this.respond(body);
    if ("error" in script) {
      this.error(res, script.error.status, script.error.type, script.error.message, record);
      return;
    }
    const thinks = script.thinking ?? (isAdaptiveModel(body.model) || body.thinking?.type === "enabled");
    const words = script.text ? (script.text.match(WORD_RE) ?? []) : [];
    const calls = (script.toolCalls ?? []).map((c) => ({
      id: c.id ?? `toolu_${randomHex(12)}`,
      name: c.name,
      json: JSON.stringify(c.input),
    }));
    const promptChars = JSON.stringify(body.messages).length + JSON.stringify(body.system ?? "").length;
    const input = script.usage?.inputTokens ?? Math.max(1, Math.ceil(promptChars / 4));
    const outputTokens = script.usage?.outputTokens ?? words.length + calls.length * 10 + (thinks ? 8 : 0);
    const stopReason = calls.length > 0 ? "tool_use" : "end_turn";
    const messageId = `msg_${randomHex(12)}`;
    const signature = `sig_${randomHex(16)}`;
    if (thinks) this.#signatures.add(signature);

    if (!body.stream) {
      const content: unknown[] = [];
      if (thinks) content.push({ type: "thinking", thinking: "Let me think.", signature });
      if (script.text) content.push({ type: "text", text: script.text });
      for (const c of calls)
        content.push({ type: "tool_use", id: c.id, name: c.name, input: JSON.parse(c.json) });
      const text = JSON.stringify({
        id: messageId,
        type: "message",
        role: "assistant",
        model: body.model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: outputTokens },
      });
      record.completedAt = Date.now();
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "request-id": `req_${randomHex(12)}`,
    });
    res.on("close", () => {
      if (!record.completedAt) record.aborted = true;
    });
    const send = (event: string, data: Record<string, unknown>): boolean => {
      if (record.aborted || res.destroyed) return false;
      res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
      return true;
    };
    if (script.ttftMs) await new Promise((r) => setTimeout(r, script.ttftMs));
    const cacheRead = script.usage?.cacheReadTokens ?? 0;
    const cacheWrite = script.usage?.cacheWriteTokens ?? 0;
    send("message_start", {
      message: {
        id: messageId,
        type: "message",
        role: "assistant",
        content: [],
        model: body.model,
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: input,
          cache_creation_input_tokens: cacheWrite,
          cache_read_input_tokens: cacheRead,
          output_tokens: 1,
        },
      },
    });
    send("ping", {});
    let index = 0;
    if (thinks) {
      send("content_block_start", {
        index,
        content_block: { type: "thinking", thinking: "", signature: "" },
      });
      send("content_block_delta", { index, delta: { type: "thinking_delta", thinking: "The caller " } });
      send("content_block_delta", { index, delta: { type: "thinking_delta", thinking: "asked something." } });
      send("content_block_delta", { index, delta: { type: "signature_delta", signature } });
      send("content_block_stop", { index });
      index++;
    }
    if (words.length > 0) {
      send("content_block_start", { index, content_block: { type: "text", text: "" } });
      for (const w of words) {
        if (!send("content_block_delta", { index, delta: { type: "text_delta", text: w } })) return;
        await new Promise((r) => setImmediate(r));
      }
      send("content_block_stop", { index });
      index++;
    }
    if (script.streamError) {
      send("error", { error: script.streamError });
      record.completedAt = Date.now();
      res.end();
      return;
    }
    for (const c of calls) {
      send("content_block_start", {
        index,
        content_block: { type: "tool_use", id: c.id, name: c.name, input: {} },
      });
      for (let off = 0; off < c.json.length; off += this.#jsonChunk) {
        send("content_block_delta", {
          index,
          delta: { type: "input_json_delta", partial_json: c.json.slice(off, off + this.#jsonChunk) },
        });
      }
      send("content_block_stop", { index });
      index++;
    }
    send("message_delta", {
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: outputTokens },
    });
    send("message_stop", {});
    record.completedAt = Date.now();
    res.end();
  }
}
