import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AnthropicLlm } from "../../libs/providers/anthropic.ts";
import {
  anthropicModelProblems,
  anthropicModelRules,
  anthropicSamplingParams,
} from "../../libs/providers/anthropic-rules.ts";
import {
  isAbortError,
  type LlmEvent,
  type LlmMessage,
  type LlmReplay,
  type LlmRequest,
  ProviderError,
} from "../../libs/providers/types.ts";
import { FakeAnthropic } from "../fakes/anthropic.ts";

let fake: FakeAnthropic;
let llm: AnthropicLlm;

before(async () => {
  fake = await FakeAnthropic.start({ rejectKeys: ["sk-ant-revoked"] });
  llm = new AnthropicLlm({ baseUrl: fake.url });
});
after(() => fake.close());

function request(over: Partial<LlmRequest> = {}): LlmRequest {
  return {
    apiKey: "sk-ant-test",
    model: "claude-sonnet-4-6",
    messages: [
      { role: "system", content: "You are a booking assistant." },
      { role: "user", content: "Book a table" },
    ],
    temperature: 0.5,
    maxTokens: 250,
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
  return assert.fail("the request should have failed");
}

const text = (events: LlmEvent[]) => events.flatMap((e) => (e.type === "text" ? [e.delta] : [])).join("");
const done = (events: LlmEvent[]) => events.find((e) => e.type === "done");

describe("Anthropic adapter against the loopback Messages API", () => {
  test("streams the reply; the prompt goes as top-level system, with the key and API version headers", async () => {
    fake.respond = () => ({
      text: "A table for two, at eight.",
      usage: { inputTokens: 40, outputTokens: 9 },
    });
    const events = await collect(request());
    assert.equal(text(events), "A table for two, at eight.");
    const sent = fake.lastRequest;
    assert.ok(sent);
    assert.equal(sent.status, 200);
    assert.equal(sent.headers["x-api-key"], "sk-ant-test");
    assert.equal(sent.headers["anthropic-version"], "2023-06-01");
    assert.equal(sent.body.system, "You are a booking assistant.");
    assert.deepEqual(sent.body.messages, [
      { role: "user", content: [{ type: "text", text: "Book a table" }] },
    ]);
    assert.equal(sent.body.max_tokens, 250);
    assert.equal(sent.body.temperature, 0.5);
    assert.equal(sent.body.stream, true);
    assert.deepEqual(done(events), {
      type: "done",
      finishReason: "end_turn",
      usage: { promptTokens: 40, completionTokens: 9, cachedPromptTokens: 0 },
    });
  });

  test("usage counts cache reads and writes within the prompt, cache reads as cached", async () => {
    fake.respond = () => ({
      text: "Done.",
      usage: { inputTokens: 10, outputTokens: 2, cacheReadTokens: 300, cacheWriteTokens: 50 },
    });
    const d = done(await collect(request()));
    assert.deepEqual(d?.type === "done" && d.usage, {
      promptTokens: 360,
      completionTokens: 2,
      cachedPromptTokens: 300,
    });
  });

  test("tool use: complete JSON arguments from input_json_delta, then the result goes back as tool_result", async () => {
    fake.respond = () => ({
      text: "Let me check.",
      toolCalls: [{ name: "lookup_order", input: { order_id: "4521", items: [1, 2], note: 'a "quoted" é' } }],
    });
    const tools = [
      {
        name: "lookup_order",
        description: "Find an order",
        parameters: { type: "object", properties: { order_id: { type: "string" } } },
      },
    ];
    const first = await collect(request({ tools }));
    const call = first.find((e) => e.type === "tool-call");
    assert.ok(call && call.type === "tool-call");
    assert.equal(call.name, "lookup_order");
    assert.deepEqual(JSON.parse(call.arguments), { order_id: "4521", items: [1, 2], note: 'a "quoted" é' });
    assert.equal(
      done(first)?.type === "done" && (done(first) as { finishReason: string }).finishReason,
      "tool_use",
    );
    assert.deepEqual(fake.lastRequest?.body.tools, [
      {
        name: "lookup_order",
        description: "Find an order",
        input_schema: { type: "object", properties: { order_id: { type: "string" } } },
      },
    ]);

    fake.respond = () => ({ text: "Order 4521 ships tomorrow." });
    const messages: LlmMessage[] = [
      ...request().messages,
      {
        role: "assistant",
        content: "Let me check.",
        toolCalls: [{ id: call.id, name: call.name, arguments: call.arguments }],
      },
      { role: "tool", toolCallId: call.id, name: call.name, content: "ships tomorrow" },
    ];
    const second = await collect(request({ tools, messages }));
    assert.equal(fake.lastRequest?.status, 200);
    assert.equal(text(second), "Order 4521 ships tomorrow.");
    const sent = fake.lastRequest?.body.messages ?? [];
    assert.deepEqual(sent[1], {
      role: "assistant",
      content: [
        { type: "text", text: "Let me check." },
        { type: "tool_use", id: call.id, name: "lookup_order", input: JSON.parse(call.arguments) },
      ],
    });
    assert.deepEqual(sent[2], {
      role: "user",
      content: [{ type: "tool_result", tool_use_id: call.id, content: "ships tomorrow" }],
    });
  });

  test("a model that thinks gets its signed thinking blocks back in front of its tool calls", async () => {
    fake.respond = () => ({ toolCalls: [{ name: "lookup_order", input: { order_id: "7" } }] });
    const model = "claude-sonnet-5";
    const first = await collect(request({ model, temperature: undefined }));
    const d = done(first);
    assert.ok(d && d.type === "done" && d.replay, "the thinking blocks are handed back to the session");
    const replay = d.replay as LlmReplay;
    assert.equal(replay.provider, "anthropic");
    assert.equal((replay.blocks[0] as { type: string }).type, "thinking");
    const call = first.find((e) => e.type === "tool-call");
    assert.ok(call && call.type === "tool-call");

    fake.respond = () => ({ text: "Order seven is on its way." });
    const history = (withReplay: boolean): LlmMessage[] => [
      ...request().messages,
      {
        role: "assistant",
        content: null,
        toolCalls: [{ id: call.id, name: call.name, arguments: call.arguments }],
        ...(withReplay ? { replay } : {}),
      },
      { role: "tool", toolCallId: call.id, content: "on its way" },
    ];
    assert.equal(
      text(await collect(request({ model, temperature: undefined, messages: history(true) }))),
      "Order seven is on its way.",
    );
    assert.equal(
      ((fake.lastRequest?.body.messages[1]?.content ?? []) as Array<{ type: string }>)[0]?.type,
      "thinking",
    );
    // Without them, Anthropic refuses the continuation: that is what the replay is for.
    const err = await failure(request({ model, temperature: undefined, messages: history(false) }));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.status, 400);
    assert.match(err.message, /thinking/);
  });

  test("a conversation that starts or ends with the assistant gets a user turn (no prefill)", async () => {
    fake.respond = () => ({ text: "Anything else?" });
    const events = await collect(
      request({
        model: "claude-opus-4-7",
        temperature: undefined,
        messages: [
          { role: "system", content: "Be brief." },
          { role: "assistant", content: "Hi, this is Acme." },
        ],
      }),
    );
    assert.equal(text(events), "Anything else?");
    const sent = fake.lastRequest?.body.messages ?? [];
    assert.equal(sent[0]?.role, "user");
    assert.equal(sent[sent.length - 1]?.role, "user");
  });

  test("fixed-sampling models get no temperature (the fake refuses one); others get the assistant's", async () => {
    fake.respond = () => ({ text: "Sure." });
    for (const model of [
      "claude-opus-4-7",
      "claude-opus-4-8",
      "claude-sonnet-5",
      "claude-sonnet-5-5",
      "claude-haiku-5-5",
    ]) {
      await collect(request({ model, temperature: 0.5 }));
      assert.equal(fake.lastRequest?.status, 200, model);
      assert.equal(fake.lastRequest?.body.temperature, undefined, model);
    }
    await collect(request({ model: "claude-haiku-4-5-20251001", temperature: 0.2 }));
    assert.equal(fake.lastRequest?.body.temperature, 0.2);
  });

  test("manual thinking reaches the models that take it, without a temperature", async () => {
    fake.respond = () => ({ text: "Thought about it." });
    const events = await collect(
      request({
        model: "claude-sonnet-4-6",
        maxTokens: 3000,
        modelConfig: { thinking: { type: "enabled", budgetTokens: 2048 } },
      }),
    );
    assert.equal(text(events), "Thought about it.");
    assert.deepEqual(fake.lastRequest?.body.thinking, { type: "enabled", budget_tokens: 2048 });
    assert.equal(fake.lastRequest?.body.temperature, undefined);
  });

  test("HTTP errors become ProviderErrors with the status, retryable for 429/5xx/529 only", async () => {
    const cases: Array<[number, string, boolean]> = [
      [400, "invalid_request_error", false],
      [403, "permission_error", false],
      [429, "rate_limit_error", true],
      [500, "api_error", true],
      [529, "overloaded_error", true],
    ];
    for (const [status, type, retryable] of cases) {
      fake.respond = () => ({ error: { status, type, message: `${type} happened` } });
      const err = await failure(request());
      assert.ok(err instanceof ProviderError, type);
      assert.equal(err.provider, "anthropic");
      assert.equal(err.status, status);
      assert.equal(err.retryable, retryable, type);
      assert.match(err.message, new RegExp(`${status} ${type}: ${type} happened`));
    }
  });

  test("a bad key is a 401 that is not retried", async () => {
    const err = await failure(request({ apiKey: "sk-ant-revoked" }));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    assert.match(err.message, /authentication_error/);
  });

  test("a retired model is refused by the API (404) and at save", async () => {
    const err = await failure(request({ model: "claude-3-5-sonnet-20241022" }));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.status, 404);
    assert.match(
      anthropicModelProblems({ model: "claude-3-5-sonnet-20241022" })[0]?.message ?? "",
      /retired/,
    );
  });

  test("an error event after the 200 fails the stream as retryable, with the type's status", async () => {
    fake.respond = () => ({
      text: "Let me",
      streamError: { type: "overloaded_error", message: "Overloaded" },
    });
    const err = await failure(request());
    assert.ok(err instanceof ProviderError);
    assert.equal(err.retryable, true);
    assert.equal(err.status, 529);
    assert.match(err.message, /overloaded_error: Overloaded/);
  });

  test("an abort stops the stream with an AbortError, and the server sees the client go", async () => {
    fake.respond = () => ({
      text: "one two three four five six seven eight nine ten eleven twelve",
      ttftMs: 200,
    });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 50);
    const err = await failure(request({ signal: ctrl.signal }));
    assert.ok(isAbortError(err));
  });

  test("a connection refused is a retryable connection failure", async () => {
    const down = new AnthropicLlm({ baseUrl: "http://127.0.0.1:9" });
    let err: unknown;
    try {
      for await (const _ of down.stream(request())) {
        // nothing arrives
      }
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ProviderError);
    assert.equal(err.retryable, true);
    assert.match(err.message, /anthropic connection failed/);
  });
});

describe("Anthropic per-model rules (anthropic-rules.ts)", () => {
  test("each model family: fixed sampling and manual thinking", () => {
    const rows: Array<[string, boolean, boolean]> = [
      ["claude-haiku-4-5-20251001", false, true],
      ["claude-sonnet-4-6", false, true],
      ["claude-opus-4-6", false, true],
      ["claude-opus-4-5", false, true],
      ["claude-opus-4-7", true, false],
      ["claude-opus-4-8", true, false],
      ["claude-sonnet-5", true, false],
      ["claude-sonnet-5-5", true, false],
      ["claude-opus-5-5", true, false],
      ["claude-haiku-5-5", true, false],
      ["claude-fable-5-1", true, false],
      ["claude-mythos-5", true, false],
    ];
    for (const [model, fixed, manual] of rows) {
      const r = anthropicModelRules(model);
      assert.equal(r.unsupported, undefined, model);
      assert.equal(r.fixedSampling, fixed, model);
      assert.equal(r.manualThinking, manual, model);
    }
  });

  test("save-time problems name the field, the model and what it takes", () => {
    assert.deepEqual(anthropicModelProblems({ model: "claude-sonnet-4-6", temperature: 0.7 }), []);
    const fixed = anthropicModelProblems({ model: "claude-opus-4-7", temperature: 0.7 });
    assert.equal(fixed[0]?.path, "model.temperature");
    assert.match(fixed[0]?.message ?? "", /claude-opus-4-7 takes only the default temperature \(1\)/);
    assert.deepEqual(anthropicModelProblems({ model: "claude-opus-4-7", temperature: 1 }), []);
    assert.match(
      anthropicModelProblems({ model: "claude-sonnet-4-6", temperature: 1.5 })[0]?.message ?? "",
      /0 to 1/,
    );
    const thinking = anthropicModelProblems({
      model: "claude-sonnet-5",
      thinking: { type: "enabled", budgetTokens: 2000 },
    });
    assert.equal(thinking[0]?.path, "model.thinking");
    assert.match(thinking[0]?.message ?? "", /claude-sonnet-5 thinks adaptively/);
    const budget = anthropicModelProblems({
      model: "claude-sonnet-4-6",
      thinking: { type: "enabled", budgetTokens: 2000 },
    });
    assert.equal(budget[0]?.path, "model.maxTokens");
    assert.match(
      budget[0]?.message ?? "",
      /greater than thinking.budgetTokens \(2000\).*250, Vapi's default/,
    );
    const hot = anthropicModelProblems({
      model: "claude-sonnet-4-6",
      maxTokens: 4000,
      temperature: 0.3,
      thinking: { type: "enabled", budgetTokens: 2000 },
    });
    assert.equal(hot[0]?.path, "model.temperature");
    for (const retired of [
      "claude-3-7-sonnet-20250219",
      "claude-sonnet-4-5-20250929",
      "claude-3-haiku-20240307",
    ]) {
      assert.equal(anthropicModelProblems({ model: retired })[0]?.path, "model.model", retired);
    }
  });

  test("sampling params: max_tokens always (Vapi's 250 by default), temperature only where taken", () => {
    assert.deepEqual(anthropicSamplingParams("claude-sonnet-4-6", {}), { max_tokens: 250 });
    assert.deepEqual(anthropicSamplingParams("claude-sonnet-4-6", { temperature: 0.5, maxTokens: 100 }), {
      max_tokens: 100,
      temperature: 0.5,
    });
    assert.deepEqual(anthropicSamplingParams("claude-sonnet-5", { temperature: 0.5 }), { max_tokens: 250 });
  });
});
