/**
 * FakeCustomLlm — a customer's OpenAI-compatible Chat Completions server, as Vapi's custom-llm
 * guides describe one (../../../shared/docs/PROVIDERS.md §2.5): it answers `POST <any
 * path>/chat/completions` with `chat.completion.chunk` objects as server-sent events
 * (`data: {...}\n\n`, no `event:` lines) ending `data: [DONE]`, tool calls as `delta.tool_calls`.
 * It records every request's path, headers and body so tests can check what the platform sends
 * (`call`, `metadata`, headers, the Bearer key).
 *
 * Scripts (`respond(body)`): `{ text }`, `{ toolCalls: [{ name, arguments }] }`, `{ error: {
 * status, message } }`, `{ plainJson: true }` (a non-streamed `chat.completion`, which Vapi users
 * report is never spoken), `{ stallMs }` (headers only after that long), `{ usage }`.
 * `requireKey`: requests without `Authorization: Bearer <requireKey>` get 401.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, headerValue, listenLoopback, randomHex, readBody, sendJson } from "./util.ts";

export interface CustomLlmRequestBody {
  model: string;
  messages: Array<{ role: string; content?: unknown; tool_calls?: unknown; tool_call_id?: string }>;
  stream?: boolean;
  [key: string]: unknown;
}

export type CustomLlmScript =
  | {
      text?: string;
      toolCalls?: Array<{ name: string; arguments: Record<string, unknown>; id?: string }>;
      plainJson?: boolean;
      stallMs?: number;
      usage?: { prompt_tokens: number; completion_tokens: number };
    }
  | { error: { status: number; message: string } };

export interface RecordedCustomLlmRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: CustomLlmRequestBody;
  status: number;
}

export interface FakeCustomLlmOptions {
  respond?: (body: CustomLlmRequestBody) => CustomLlmScript | Promise<CustomLlmScript>;
  requireKey?: string;
}

function lastUserText(body: CustomLlmRequestBody): string {
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i];
    if (m?.role === "user" && typeof m.content === "string") return m.content;
  }
  return "";
}

export class FakeCustomLlm {
  readonly requests: RecordedCustomLlmRequest[] = [];
  respond: (body: CustomLlmRequestBody) => CustomLlmScript | Promise<CustomLlmScript>;
  requireKey: string | undefined;
  readonly #server: Server;
  readonly #port: number;

  private constructor(server: Server, port: number, opts: FakeCustomLlmOptions) {
    this.#server = server;
    this.#port = port;
    this.respond = opts.respond ?? ((b) => ({ text: `Custom says: ${lastUserText(b) || "hello"}.` }));
    this.requireKey = opts.requireKey;
  }

  static async start(opts: FakeCustomLlmOptions = {}): Promise<FakeCustomLlm> {
    let fake: FakeCustomLlm | undefined;
    const server = createServer((req, res) => {
      fake?.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(err) } });
        else res.end();
      });
    });
    const port = await listenLoopback(server);
    fake = new FakeCustomLlm(server, port, opts);
    return fake;
  }

  /** `http://127.0.0.1:PORT` */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get lastRequest(): RecordedCustomLlmRequest | undefined {
    return this.requests[this.requests.length - 1];
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "POST" || !path.endsWith("/chat/completions")) {
      sendJson(res, 404, { error: { message: `no route ${req.method} ${path}` } });
      return;
    }
    const body = JSON.parse((await readBody(req)).toString("utf8")) as CustomLlmRequestBody;
    const record: RecordedCustomLlmRequest = {
      method: req.method,
      path,
      headers: req.headers,
      body,
      status: 200,
    };
    this.requests.push(record);
    if (this.requireKey !== undefined && headerValue(req, "authorization") !== `Bearer ${this.requireKey}`) {
      record.status = 401;
      sendJson(res, 401, { error: { message: "Unauthorized", type: "invalid_request_error" } });
      return;
    }
    const script = await this.respond(body);
    if ("error" in script) {
      record.status = script.error.status;
      sendJson(res, script.error.status, { error: { message: script.error.message } });
      return;
    }
    if (script.stallMs) await new Promise((r) => setTimeout(r, script.stallMs));
    if (res.destroyed) return;
    const id = `chatcmpl-${randomHex(8)}`;
    const created = Math.floor(Date.now() / 1000);
    const calls = (script.toolCalls ?? []).map((c, index) => ({
      index,
      id: c.id ?? `call_${randomHex(8)}`,
      type: "function",
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    }));
    const finish = calls.length > 0 ? "tool_calls" : "stop";
    if (script.plainJson) {
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: script.text ?? null,
              ...(calls.length ? { tool_calls: calls } : {}),
            },
            finish_reason: finish,
          },
        ],
      });
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const chunk = (delta: Record<string, unknown>, finishReason: string | null, extra = {}): void => {
      const c = { id, object: "chat.completion.chunk", created, model: body.model, ...extra };
      res.write(
        `data: ${JSON.stringify({ ...c, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`,
      );
    };
    chunk({ role: "assistant", content: "" }, null);
    for (const word of script.text?.match(/\s*\S+|\s+/g) ?? []) chunk({ content: word }, null);
    for (const c of calls) {
      chunk(
        {
          tool_calls: [
            {
              index: c.index,
              id: c.id,
              type: "function",
              function: { name: c.function.name, arguments: "" },
            },
          ],
        },
        null,
      );
      const args = c.function.arguments;
      for (let off = 0; off < args.length; off += 7) {
        chunk({ tool_calls: [{ index: c.index, function: { arguments: args.slice(off, off + 7) } }] }, null);
      }
    }
    chunk({}, finish);
    if (script.usage) {
      res.write(
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage: script.usage })}\n\n`,
      );
    }
    res.end("data: [DONE]\n\n");
  }
}
