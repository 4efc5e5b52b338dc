import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { OpenAiLlm } from "../../libs/providers/openai.ts";
import { isAbortError, type LlmEvent, type LlmRequest, ProviderError } from "../../libs/providers/types.ts";
import { FakeOpenAI } from "../fakes/index.ts";

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

async function collect(req: LlmRequest): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const e of llm.stream(req)) events.push(e);
  return events;
}

async function failure(req: LlmRequest): Promise<unknown> {
  try {
    await collect(req);
  } catch (err) {
    return err;
  }
  return undefined;
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
