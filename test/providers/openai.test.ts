import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { after, before, test } from "node:test";
import { OpenAiLlm } from "../../libs/providers/openai.ts";
import { SseParser } from "../../libs/providers/sse.ts";
import { isAbortError, type LlmEvent, type LlmRequest, ProviderError } from "../../libs/providers/types.ts";
import { FakeOpenAI } from "../fakes/index.ts";
import { closeServer, listenLoopback, readBody, sleep } from "../fakes/util.ts";

let fake: FakeOpenAI;
let llm: OpenAiLlm;

before(async () => {
  fake = await FakeOpenAI.start({ rejectKeys: ["sk-revoked"] });
  llm = new OpenAiLlm({ baseUrl: fake.baseUrl });
});
after(() => fake.close());

function request(over: Partial<LlmRequest> = {}): LlmRequest {
  return {
    apiKey: "sk-test",
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "You are a booking assistant." },
      { role: "user", content: "Book a table" },
    ],
    signal: new AbortController().signal,
    ...over,
  };
}

async function collect(req: LlmRequest, model: OpenAiLlm = llm): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const e of model.stream(req)) events.push(e);
  return events;
}

async function failure(req: LlmRequest, model: OpenAiLlm = llm): Promise<unknown> {
  try {
    await collect(req, model);
  } catch (err) {
    return err;
  }
  return undefined;
}

function texts(events: LlmEvent[]): string[] {
  return events.flatMap((e) => (e.type === "text" ? [e.delta] : []));
}

async function until(check: () => boolean, what: string, ms = 1000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

test("streams text deltas in order, then done with usage", async () => {
  fake.respond = () => ({
    text: "Sure, for how many people? And what time works for you?",
    usage: { promptTokens: 42, completionTokens: 13, cachedTokens: 32 },
  });
  const events = await collect(request({ temperature: 0.3, maxTokens: 200 }));
  const deltas = events.flatMap((e) => (e.type === "text" ? [e.delta] : []));
  assert.ok(deltas.length > 5, "arrives token by token");
  assert.equal(deltas.join(""), "Sure, for how many people? And what time works for you?");
  assert.deepEqual(events[events.length - 1], {
    type: "done",
    finishReason: "stop",
    usage: { promptTokens: 42, completionTokens: 13, cachedPromptTokens: 32 },
  });
  const body = fake.lastRequest?.body;
  assert.equal(body?.stream, true);
  assert.deepEqual(body?.stream_options, { include_usage: true });
  assert.equal(body?.temperature, 0.3);
  assert.equal(body?.max_completion_tokens, 200);
  assert.equal(fake.lastRequest?.authorization, "Bearer sk-test");
});

test("responseFormat json_object is sent as response_format; without it no response_format is sent", async () => {
  fake.respond = () => ({ text: '{"booked":true}' });
  const events = await collect(request({ responseFormat: "json_object" }));
  assert.equal(texts(events).join(""), '{"booked":true}');
  assert.deepEqual(fake.lastRequest?.body.response_format, { type: "json_object" });
  await collect(request());
  assert.equal(fake.lastRequest?.body.response_format, undefined);
});

test("assembles a tool call from argument chunks and sends tools in OpenAI's shape", async () => {
  fake.respond = () => ({
    text: "Let me check.",
    toolCalls: [
      { id: "call_1", name: "lookup_order", arguments: { order_id: "42", include_items: true } },
      { id: "call_2", name: "get_time", arguments: {} },
    ],
  });
  const parameters = { type: "object", properties: { order_id: { type: "string" } } };
  const events = await collect(
    request({
      tools: [{ name: "lookup_order", description: "Find an order", parameters }, { name: "get_time" }],
      messages: [
        { role: "user", content: "Where is my order?" },
        {
          role: "assistant",
          content: null,
          toolCalls: [{ id: "call_0", name: "lookup_order", arguments: '{"order_id":"1"}' }],
        },
        { role: "tool", content: '{"status":"shipped"}', toolCallId: "call_0" },
      ],
    }),
  );
  assert.deepEqual(
    events.map((e) => e.type),
    ["text", "text", "text", "tool-call", "tool-call", "done"],
  );
  const calls = events.filter((e) => e.type === "tool-call");
  assert.deepEqual(calls[0], {
    type: "tool-call",
    id: "call_1",
    name: "lookup_order",
    arguments: '{"order_id":"42","include_items":true}',
  });
  assert.deepEqual(calls[1], { type: "tool-call", id: "call_2", name: "get_time", arguments: "{}" });
  const done = events[events.length - 1];
  assert.ok(done?.type === "done");
  assert.equal(done.finishReason, "tool_calls");
  assert.ok(done.usage.promptTokens > 0 && done.usage.completionTokens > 0);

  const body = fake.lastRequest?.body;
  assert.deepEqual(body?.tools, [
    { type: "function", function: { name: "lookup_order", description: "Find an order", parameters } },
    { type: "function", function: { name: "get_time" } },
  ]);
  assert.deepEqual(body?.messages, [
    { role: "user", content: "Where is my order?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_0", type: "function", function: { name: "lookup_order", arguments: '{"order_id":"1"}' } },
      ],
    },
    { role: "tool", content: '{"status":"shipped"}', tool_call_id: "call_0" },
  ]);
});

test("abort mid-stream stops quickly with a recognisable AbortError", async () => {
  // The next token is a second away: stopping well before it proves the read was cancelled.
  fake.respond = () => ({ text: "one two three four five", interTokenDelayMs: 1000 });
  const ac = new AbortController();
  const seen: string[] = [];
  let abortedAt = 0;
  let caught: unknown;
  try {
    for await (const e of llm.stream(request({ signal: ac.signal }))) {
      if (e.type === "text") seen.push(e.delta);
      if (seen.length === 1 && abortedAt === 0) {
        abortedAt = Date.now();
        ac.abort();
      }
    }
  } catch (err) {
    caught = err;
  }
  const stopMs = Date.now() - abortedAt;
  assert.ok(isAbortError(caught), `expected AbortError, got ${String(caught)}`);
  assert.ok(stopMs < 500, `stops without waiting for the next token (${stopMs} ms)`);
  assert.deepEqual(seen, ["one"]);
  const record = fake.lastRequest;
  const deadline = Date.now() + 1000;
  while (!record?.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(record?.aborted, true, "the HTTP stream was cancelled");
});

test("breaking out of the loop cancels the HTTP stream", async () => {
  fake.respond = () => ({ text: "alpha beta gamma delta epsilon", interTokenDelayMs: 50 });
  for await (const e of llm.stream(request())) {
    if (e.type === "text") break;
  }
  const record = fake.lastRequest;
  const deadline = Date.now() + 1000;
  while (!record?.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(record?.aborted, true);
});

test("an already aborted signal throws AbortError without a request", async () => {
  const before = fake.requests.length;
  const ac = new AbortController();
  ac.abort();
  assert.ok(isAbortError(await failure(request({ signal: ac.signal }))));
  assert.equal(fake.requests.length, before);
});

test("maps HTTP errors to ProviderError with retryable set", async () => {
  const bad = await failure(request({ apiKey: "sk-revoked" }));
  assert.ok(bad instanceof ProviderError);
  assert.equal(bad.status, 401);
  assert.equal(bad.retryable, false);
  assert.equal(bad.provider, "openai");
  assert.equal(bad.kind, "llm");

  for (const [status, retryable] of [
    [500, true],
    [429, true],
    [400, false],
    [403, false],
  ] as const) {
    fake.respond = () => ({ error: { status, message: "scripted failure" } });
    const err = await failure(request());
    assert.ok(err instanceof ProviderError, `status ${status}`);
    assert.equal(err.status, status);
    assert.equal(err.retryable, retryable, `status ${status}`);
  }
  assert.equal(fake.requests.filter((r) => r.status === 500).length, 1, "no SDK retries");
});

test("an unreachable endpoint is a retryable ProviderError", async () => {
  const down = new OpenAiLlm({ baseUrl: "http://127.0.0.1:9/v1" });
  const err = await (async () => {
    try {
      for await (const _ of down.stream(request())) {
        // no events expected
      }
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof ProviderError);
  assert.equal(err.retryable, true);
  assert.equal(err.status, undefined);
});

test("error messages carry the status and OpenAI's message", async () => {
  const revoked = await failure(request({ apiKey: "sk-revoked" }));
  assert.ok(revoked instanceof ProviderError);
  assert.equal(revoked.message, "openai request failed: 401 Incorrect API key provided.");
  assert.equal(revoked.retryable, false);

  fake.respond = () => ({ error: { status: 503, message: "The engine is currently overloaded" } });
  const overloaded = await failure(request());
  assert.ok(overloaded instanceof ProviderError);
  assert.equal(overloaded.message, "openai request failed: 503 The engine is currently overloaded");
  assert.equal(overloaded.status, 503);
  assert.equal(overloaded.retryable, true);
});

test("an aborted wait for the next token ends at once and closes the HTTP stream", async () => {
  fake.respond = () => ({ text: "one two three", interTokenDelayMs: 2000 });
  const ac = new AbortController();
  const seen: string[] = [];
  let abortedAt = 0;
  const caught = await (async () => {
    try {
      for await (const e of llm.stream(request({ signal: ac.signal }))) {
        if (e.type === "text") seen.push(e.delta);
        if (seen.length === 1 && abortedAt === 0) {
          // Abort while the adapter is waiting on the socket, not inside the loop body.
          setTimeout(() => {
            abortedAt = Date.now();
            ac.abort();
          }, 30);
        }
      }
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  assert.ok(isAbortError(caught), `expected AbortError, got ${String(caught)}`);
  assert.ok(Date.now() - abortedAt < 500, "does not wait for the next token");
  assert.deepEqual(seen, ["one"]);
  const record = fake.lastRequest;
  await until(() => record?.aborted === true, "the fake to see the client go");
});

// ---------- against a raw HTTP server: exact bytes, timing and connections ----------

interface RawServer {
  baseUrl: string;
  /** TCP connections accepted. */
  connections: number;
  requests: { headers: IncomingMessage["headers"]; body: string }[];
  /** Responses whose client went away before the server ended them. */
  clientGone: number;
  close(): Promise<void>;
}

async function rawServer(
  handle: (res: ServerResponse, n: number) => void | Promise<void>,
): Promise<RawServer> {
  const raw: RawServer = {
    baseUrl: "",
    connections: 0,
    requests: [],
    clientGone: 0,
    close: () => closeServer(server),
  };
  const server = createServer(async (req, res) => {
    const body = (await readBody(req)).toString("utf8");
    raw.requests.push({ headers: req.headers, body });
    res.on("close", () => {
      if (!res.writableFinished) raw.clientGone++;
    });
    await handle(res, raw.requests.length);
  });
  server.on("connection", () => raw.connections++);
  const port = await listenLoopback(server);
  raw.baseUrl = `http://127.0.0.1:${port}/v1`;
  return raw;
}

function chunkJson(delta: Record<string, unknown>, finishReason: string | null = null): string {
  return JSON.stringify({
    id: "chatcmpl-raw",
    object: "chat.completion.chunk",
    created: 0,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  });
}

const USAGE_CHUNK = JSON.stringify({
  id: "chatcmpl-raw",
  object: "chat.completion.chunk",
  created: 0,
  model: "gpt-4o-mini",
  choices: [],
  usage: {
    prompt_tokens: 7,
    completion_tokens: 3,
    total_tokens: 10,
    prompt_tokens_details: { cached_tokens: 0 },
  },
});

function sse(...payloads: string[]): string {
  return payloads.map((p) => `data: ${p}\n\n`).join("");
}

test("events split across TCP writes, several per write, CRLF and comments all arrive intact", async () => {
  const first = `data: ${chunkJson({ role: "assistant", content: "" })}\r\n\r\n: keep-alive comment\r\n\r\n`;
  const hello = `data: ${chunkJson({ content: "Hello" })}\n\n`;
  const splitAt = hello.indexOf("Hel") + 2;
  // A two-byte character cut between its bytes.
  const cafe = Buffer.from(`data: ${chunkJson({ content: " café" })}\n\n`, "utf8");
  const cut = cafe.indexOf(0xc3) + 1;
  const server = await rawServer(async (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(first + hello.slice(0, splitAt));
    await sleep(20);
    res.write(`${hello.slice(splitAt)}da`);
    await sleep(20);
    res.write(`ta: ${chunkJson({ content: "," })}\n\nevent: message\nid: 7\nretry: 100\n`);
    await sleep(20);
    res.write(`data: ${chunkJson({ content: " there" })}\n\n`);
    await sleep(20);
    res.write(cafe.subarray(0, cut));
    await sleep(20);
    res.write(cafe.subarray(cut));
    res.end(sse(chunkJson({}, "stop"), USAGE_CHUNK, "[DONE]"));
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    const events = await collect(request({ apiKey: "sk-raw", temperature: 0.5 }), model);
    assert.deepEqual(texts(events), ["Hello", ",", " there", " café"]);
    assert.deepEqual(events[events.length - 1], {
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: 7, completionTokens: 3, cachedPromptTokens: 0 },
    });
    const sent = server.requests[0];
    assert.equal(sent?.headers.authorization, "Bearer sk-raw");
    assert.equal(sent?.headers["content-type"], "application/json");
    assert.equal(sent?.headers.accept, "text/event-stream");
    assert.deepEqual(JSON.parse(sent?.body ?? "{}"), {
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "You are a booking assistant." },
        { role: "user", content: "Book a table" },
      ],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
    });
  } finally {
    await server.close();
  }
});

test("[DONE] ends the reply even while the body stays open, and later events are ignored", async () => {
  const server = await rawServer(async (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(
      sse(chunkJson({ content: "Done." }), chunkJson({}, "stop"), "[DONE]", chunkJson({ content: "late" })),
    );
    await sleep(2000);
    res.end();
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    const started = Date.now();
    const events = await collect(request(), model);
    assert.ok(Date.now() - started < 1000, "does not wait for the body to end");
    assert.deepEqual(texts(events), ["Done."]);
    assert.deepEqual(events[events.length - 1], {
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 },
    });
  } finally {
    await server.close();
  }
});

test("an error inside the stream is a retryable ProviderError after the text before it", async () => {
  const server = await rawServer((res, n) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(sse(chunkJson({ content: "Let me" })));
    if (n === 1) {
      res.end(sse(JSON.stringify({ error: { message: "The server had an error", type: "server_error" } })));
    } else {
      res.end(`event: error\ndata: ${JSON.stringify({ error: { message: "Overloaded" } })}\n\n`);
    }
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    for (const message of ["The server had an error", "Overloaded"]) {
      const seen: string[] = [];
      let caught: unknown;
      try {
        for await (const e of model.stream(request())) if (e.type === "text") seen.push(e.delta);
      } catch (err) {
        caught = err;
      }
      assert.deepEqual(seen, ["Let me"]);
      assert.ok(caught instanceof ProviderError, `expected ProviderError, got ${String(caught)}`);
      assert.equal(caught.message, `openai request failed: ${message}`);
      assert.equal(caught.retryable, true);
      assert.equal(caught.status, undefined);
    }
  } finally {
    await server.close();
  }
});

test("a non-JSON error body keeps its status and text", async () => {
  const server = await rawServer((res) => {
    res.writeHead(502, { "content-type": "text/html" });
    res.end("<html>Bad gateway</html>");
  });
  try {
    const err = await failure(request(), new OpenAiLlm({ baseUrl: server.baseUrl }));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.message, "openai request failed: 502 <html>Bad gateway</html>");
    assert.equal(err.status, 502);
    assert.equal(err.retryable, true);
  } finally {
    await server.close();
  }
});

test("abort before the response headers ends at once and the server sees the client go", async () => {
  const server = await rawServer(() => {
    // Never answers.
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    const ac = new AbortController();
    const pending = failure(request({ signal: ac.signal }), model);
    await until(() => server.requests.length === 1, "the request to arrive");
    const abortedAt = Date.now();
    ac.abort();
    const err = await pending;
    assert.ok(isAbortError(err), `expected AbortError, got ${String(err)}`);
    assert.ok(Date.now() - abortedAt < 500, "does not wait for an answer");
    await until(() => server.clientGone === 1, "the server to see the client go");
  } finally {
    await server.close();
  }
});

test("the whole-request timeout is a retryable ProviderError, before headers and mid-stream", async () => {
  const server = await rawServer(async (res, n) => {
    if (n === 1) return; // no headers, ever
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(sse(chunkJson({ content: "Hmm" })));
    // …and nothing more.
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl, timeoutMs: 150 });
    for (const expected of [[], ["Hmm"]]) {
      const seen: string[] = [];
      const started = Date.now();
      let caught: unknown;
      try {
        for await (const e of model.stream(request())) if (e.type === "text") seen.push(e.delta);
      } catch (err) {
        caught = err;
      }
      const took = Date.now() - started;
      assert.deepEqual(seen, expected);
      assert.ok(caught instanceof ProviderError, `expected ProviderError, got ${String(caught)}`);
      assert.equal(caught.retryable, true);
      assert.match(caught.message, /timed out after 150 ms/);
      assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
    }
    await until(() => server.clientGone === 2, "the server to see both requests dropped");
  } finally {
    await server.close();
  }
});

test("a connection cut mid-stream is a retryable ProviderError", async () => {
  const server = await rawServer(async (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(sse(chunkJson({ content: "Half" })));
    await sleep(20);
    res.socket?.destroy();
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    const seen: string[] = [];
    let caught: unknown;
    try {
      for await (const e of model.stream(request())) if (e.type === "text") seen.push(e.delta);
    } catch (err) {
      caught = err;
    }
    assert.deepEqual(seen, ["Half"]);
    assert.ok(caught instanceof ProviderError, `expected ProviderError, got ${String(caught)}`);
    assert.equal(caught.retryable, true);
    assert.equal(caught.status, undefined);
    assert.match(caught.message, /^openai connection failed: response cut off/);
  } finally {
    await server.close();
  }
});

test("sequential requests to one origin reuse one keep-alive connection, error answers included", async () => {
  const server = await rawServer((res, n) => {
    if (n === 2) {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "Slow down", type: "server_error", code: null } }));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(sse(chunkJson({ content: `reply ${n}` }), chunkJson({}, "stop"), USAGE_CHUNK, "[DONE]"));
  });
  try {
    // Two adapter instances for the same base URL share the pool.
    const a = new OpenAiLlm({ baseUrl: server.baseUrl });
    const b = new OpenAiLlm({ baseUrl: `${server.baseUrl}/` });
    assert.deepEqual(texts(await collect(request(), a)), ["reply 1"]);
    const err = await failure(request(), b);
    assert.ok(err instanceof ProviderError && err.status === 503);
    assert.deepEqual(texts(await collect(request(), b)), ["reply 3"]);
    assert.equal(server.requests.length, 3);
    assert.equal(server.connections, 1);
  } finally {
    await server.close();
  }
});

test("a pooled connection the server dropped while idle is retried once on a fresh one", async () => {
  const server = await rawServer((res, n) => {
    if (n === 2) {
      // The server had closed this keep-alive connection: the request dies unanswered.
      res.socket?.destroy();
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(sse(chunkJson({ content: `reply ${n}` }), chunkJson({}, "stop"), USAGE_CHUNK, "[DONE]"));
  });
  try {
    const model = new OpenAiLlm({ baseUrl: server.baseUrl });
    assert.deepEqual(texts(await collect(request(), model)), ["reply 1"]);
    // The second turn of the call still gets its answer, on a new connection.
    assert.deepEqual(texts(await collect(request(), model)), ["reply 3"]);
    assert.equal(server.requests.length, 3);
    assert.equal(server.connections, 2);
  } finally {
    await server.close();
  }
});

// ---------- the SSE parser on its own ----------

function parseAll(chunks: string[]): [string, string][] {
  const events: [string, string][] = [];
  const parser = new SseParser((event, data) => events.push([event, data]));
  for (const c of chunks) parser.push(c);
  return events;
}

test("SseParser: any split of the same stream gives the same events", () => {
  const stream =
    ': hello\r\ndata: one\r\n\r\nevent: error\ndata: {"a":\ndata: 1}\n\nid: 3\nretry: 10\n\n' +
    "data:no-space\rdata:  two spaces\r\rdata\n\ndata: [DONE]\n\ndata: unterminated";
  const expected: [string, string][] = [
    ["message", "one"],
    ["error", '{"a":\n1}'],
    ["message", "no-space\n two spaces"],
    ["message", ""],
    ["message", "[DONE]"],
  ];
  assert.deepEqual(parseAll([stream]), expected);
  assert.deepEqual(parseAll([...stream]), expected, "one character at a time");
  for (let i = 1; i < stream.length; i++) {
    assert.deepEqual(parseAll([stream.slice(0, i), stream.slice(i)]), expected, `split at ${i}`);
  }
});
