import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CustomLlm, chatCompletionsUrl, customLlmModelProblems } from "../../libs/providers/custom-llm.ts";
import { type LlmEvent, type LlmRequest, ProviderError } from "../../libs/providers/types.ts";
import { FakeCustomLlm } from "../fakes/custom-llm.ts";

let fake: FakeCustomLlm;
const llm = new CustomLlm({ allowPrivate: true });

before(async () => {
  fake = await FakeCustomLlm.start();
});
after(() => fake.close());

const CALL = { id: "call-1", orgId: "org-1", type: "inboundPhoneCall" };

function request(over: Partial<LlmRequest> = {}, model: Record<string, unknown> = {}): LlmRequest {
  return {
    apiKey: "",
    model: "my-agent",
    messages: [
      { role: "system", content: "You are Acme's agent." },
      { role: "user", content: "Where is my order" },
    ],
    temperature: 0.5,
    maxTokens: 250,
    modelConfig: { provider: "custom-llm", url: `${fake.url}/v1`, model: "my-agent", ...model },
    callContext: () => ({
      call: CALL,
      customer: { number: "+14155550100" },
      phoneNumber: { id: "pn-1", number: "+14155550199" },
      metadata: { tier: "gold", region: "eu" },
    }),
    signal: new AbortController().signal,
    ...over,
  };
}

async function collect(req: LlmRequest, model = llm): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const e of model.stream(req)) events.push(e);
  return events;
}

async function failure(req: LlmRequest, model = llm): Promise<unknown> {
  try {
    await collect(req, model);
  } catch (err) {
    return err;
  }
  return assert.fail("the request should have failed");
}

const text = (events: LlmEvent[]) => events.flatMap((e) => (e.type === "text" ? [e.delta] : [])).join("");

describe("custom-llm adapter against a customer's OpenAI-compatible server", () => {
  test("streams from url + /chat/completions with Vapi's body: chat fields, metadata, call, phone number, customer", async () => {
    fake.respond = () => ({ text: "It ships tomorrow.", usage: { prompt_tokens: 30, completion_tokens: 5 } });
    const events = await collect(request({ apiKey: "cust-key-1" }, { headers: { "X-Tenant": "acme" } }));
    assert.equal(text(events), "It ships tomorrow.");
    const sent = fake.lastRequest;
    assert.ok(sent);
    assert.equal(sent.path, "/v1/chat/completions");
    assert.equal(sent.headers.authorization, "Bearer cust-key-1");
    assert.equal(sent.headers["x-tenant"], "acme");
    assert.equal(sent.headers.accept, "text/event-stream");
    assert.equal(sent.body.model, "my-agent");
    assert.equal(sent.body.stream, true);
    assert.equal(sent.body.temperature, 0.5);
    assert.equal(sent.body.max_tokens, 250);
    assert.deepEqual(sent.body.messages, [
      { role: "system", content: "You are Acme's agent." },
      { role: "user", content: "Where is my order" },
    ]);
    // metadataSendMode "variable", Vapi's default.
    assert.deepEqual(sent.body.metadata, { tier: "gold", region: "eu" });
    assert.deepEqual(sent.body.call, CALL);
    assert.deepEqual(sent.body.customer, { number: "+14155550100" });
    assert.deepEqual(sent.body.phoneNumber, { id: "pn-1", number: "+14155550199" });
    const done = events.find((e) => e.type === "done");
    assert.deepEqual(done?.type === "done" && done.usage, {
      promptTokens: 30,
      completionTokens: 5,
      cachedPromptTokens: 0,
    });
  });

  test("metadataSendMode destructured spreads the metadata (chat fields win); off sends none of it", async () => {
    fake.respond = () => ({ text: "Ok." });
    await collect(
      request(
        {
          callContext: () => ({ call: CALL, metadata: { tier: "gold", model: "not-this", stream: false } }),
        },
        { metadataSendMode: "destructured" },
      ),
    );
    const d = fake.lastRequest?.body;
    assert.equal(d?.tier, "gold");
    assert.equal(d?.model, "my-agent");
    assert.equal(d?.stream, true);
    assert.equal(d?.metadata, undefined);
    assert.deepEqual(d?.call, CALL);

    await collect(request({}, { metadataSendMode: "off" }));
    const off = fake.lastRequest?.body ?? {};
    for (const k of ["metadata", "call", "customer", "phoneNumber", "tier"]) assert.equal(k in off, false, k);
  });

  test("no credential: no Authorization header; a URL ending in /chat/completions is not doubled", async () => {
    fake.respond = () => ({ text: "Hi." });
    await collect(request({}, { url: `${fake.url}/agent/chat/completions/` }));
    assert.equal(fake.lastRequest?.path, "/agent/chat/completions");
    assert.equal(fake.lastRequest?.headers.authorization, undefined);
    assert.equal(
      chatCompletionsUrl("https://openrouter.ai/api/v1"),
      "https://openrouter.ai/api/v1/chat/completions",
    );
    assert.equal(chatCompletionsUrl("https://x.example/v1?k=1"), "https://x.example/v1/chat/completions?k=1");
  });

  test("tool calls come back whole from the streamed delta.tool_calls", async () => {
    fake.respond = () => ({
      toolCalls: [{ name: "lookup_order", arguments: { order_id: "4521", rush: true } }],
    });
    const events = await collect(
      request({ tools: [{ name: "lookup_order", parameters: { type: "object" } }] }),
    );
    const call = events.find((e) => e.type === "tool-call");
    assert.ok(call && call.type === "tool-call");
    assert.equal(call.name, "lookup_order");
    assert.deepEqual(JSON.parse(call.arguments), { order_id: "4521", rush: true });
    assert.deepEqual(fake.lastRequest?.body.tools, [
      { type: "function", function: { name: "lookup_order", parameters: { type: "object" } } },
    ]);
  });

  test("a plain JSON completion fails clearly (a custom LLM must stream), not retried", async () => {
    fake.respond = () => ({ text: "never spoken", plainJson: true });
    const err = await failure(request());
    assert.ok(err instanceof ProviderError);
    assert.equal(err.provider, "custom-llm");
    assert.equal(err.retryable, false);
    assert.match(err.message, /plain JSON completion; a custom LLM must stream/);
  });

  test("HTTP errors keep their status; 5xx retryable, 401 not", async () => {
    fake.respond = () => ({ error: { status: 503, message: "busy" } });
    const busy = await failure(request());
    assert.ok(busy instanceof ProviderError);
    assert.equal(busy.status, 503);
    assert.equal(busy.retryable, true);
    fake.requireKey = "right";
    try {
      const denied = await failure(request({ apiKey: "wrong" }));
      assert.ok(denied instanceof ProviderError);
      assert.equal(denied.status, 401);
      assert.equal(denied.retryable, false);
    } finally {
      fake.requireKey = undefined;
    }
  });

  test("timeoutSeconds bounds the wait for the answer to begin", async () => {
    fake.respond = () => ({ text: "late", stallMs: 1500 });
    const started = Date.now();
    const err = await failure(request({}, { timeoutSeconds: 0.3 }));
    assert.ok(err instanceof ProviderError);
    assert.equal(err.retryable, true);
    assert.match(err.message, /did not answer within 300 ms/);
    assert.ok(Date.now() - started < 1400);
  });

  test("a private or loopback URL is refused at send unless private URLs are allowed", async () => {
    const strict = new CustomLlm({ allowPrivate: false });
    const before = fake.requests.length;
    const err = await failure(request(), strict);
    assert.ok(err instanceof ProviderError);
    assert.equal(err.retryable, false);
    assert.match(err.message, /model\.url is 127\.0\.0\.1 .*not a public address/);
    assert.equal(fake.requests.length, before, "nothing was sent");
    // A public name that resolves to a private address (DNS rebinding) is refused the same way.
    const rebinding = new CustomLlm({
      allowPrivate: false,
      lookup: async () => [{ address: "10.0.0.5", family: 4 }],
    });
    const rebound = await failure(request({}, { url: "https://llm.example.com/v1" }), rebinding);
    assert.match(String((rebound as Error).message), /resolves to 10\.0\.0\.5/);
  });

  test("wordLevelConfidenceEnabled: true is refused at save (not sent on this platform)", () => {
    assert.deepEqual(customLlmModelProblems({ wordLevelConfidenceEnabled: false }), []);
    assert.equal(
      customLlmModelProblems({ wordLevelConfidenceEnabled: true })[0]?.path,
      "model.wordLevelConfidenceEnabled",
    );
  });
});
