import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  type AnthropicRequestBody,
  type AnthropicScript,
  type CustomLlmRequestBody,
  type CustomLlmScript,
  defaultAnthropicResponder,
} from "../fakes/index.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// A call through each of the next LLM providers, end to end: the caller hears the reply, a function
// tool works (Anthropic tool_use → tool server → tool_result; a custom LLM's delta.tool_calls),
// what reaches the provider is what its API takes, the usage is priced, and a provider failure
// ends the call with Vapi's specific endedReason.

type CallCost = { type: string; model?: { provider?: string; model?: string }; cost?: number };

/** A tool whose server is `server` (each test its own: the tests run at once). */
function lookupTool(server: CustomerServer) {
  return {
    type: "function",
    function: {
      name: "lookup_order",
      description: "Look up an order",
      parameters: {
        type: "object",
        properties: { orderNumber: { type: "string" } },
        required: ["orderNumber"],
      },
    },
    server: { url: `${server.url}/tools`, secret: "tool-secret" },
  };
}

function userTexts(messages: unknown[]): string {
  return JSON.stringify(messages);
}

describe("media session: calls on Anthropic and on a custom LLM", { concurrency: true }, () => {
  let env: MediaEnv;
  /** Organisations with their own credentials (created before the tests run at once). */
  let byoAnthropic: MediaEnv;
  let byoCustom: MediaEnv;
  const servers: CustomerServer[] = [];
  async function toolServer(result: { toolCallId: string; result: string }): Promise<CustomerServer> {
    const s = await startCustomerServer();
    servers.push(s);
    s.script([{ status: 200, body: { results: [result] } }]);
    return s;
  }
  // The tests run at once on one environment: each answers the calls of its own prompt.
  const anthropicBy = new Map<string, (body: AnthropicRequestBody) => AnthropicScript>();
  const customBy = new Map<string, (body: CustomLlmRequestBody) => CustomLlmScript>();
  before(async () => {
    env = await startMediaEnv();
    env.anthropic.respond = (b) => anthropicBy.get(String(b.system))?.(b) ?? defaultAnthropicResponder(b);
    env.customLlm.respond = (b) =>
      customBy.get(String(b.messages[0]?.content))?.(b) ?? { text: "Hello from the custom LLM." };
    byoAnthropic = { ...env, org: await env.t.createOrg("Anthropic BYO") };
    byoCustom = { ...env, org: await env.t.createOrg("Custom LLM") };
  });
  after(async () => {
    await env.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  async function addCredential(e: MediaEnv, provider: string, apiKey: string): Promise<void> {
    const res = await e.t.request({
      method: "POST",
      url: "/credential",
      key: e.org.key,
      payload: { provider, apiKey },
    });
    assert.equal(res.statusCode, 201, res.body);
  }

  it("anthropic: the caller hears Claude's reply, and a tool call goes round through tool_use and tool_result", async () => {
    const prompt = "TEST anthropic-tool. You sell furniture.";
    anthropicBy.set(prompt, (body) => {
      const last = body.messages[body.messages.length - 1];
      const results = Array.isArray(last?.content) ? (last.content as Array<{ type: string }>) : [];
      if (results.some((b) => b.type === "tool_result")) return { text: "Your sofa ships on Monday." };
      return {
        text: "Let me check.",
        toolCalls: [{ id: "toolu_sofa", name: "lookup_order", input: { orderNumber: "42" } }],
      };
    });
    const tools = await toolServer({ toolCallId: "toolu_sofa", result: "Order 42: ships Monday" });
    const { sim } = await callAssistant(env, {
      model: {
        provider: "anthropic",
        model: "claude-sonnet-4-6",
        temperature: 0.3,
        messages: [{ role: "system", content: prompt }],
        tools: [lookupTool(tools)],
      },
    });
    await waitForSpoken(sim, 1);
    await sim.say("Where is my sofa?");
    await waitForSpoken(sim, 3, 10_000);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(call.transcript ?? "", /User: Where is my sofa\?\nAI: Let me check\./);
    assert.match(call.transcript ?? "", /AI: Your sofa ships on Monday\./);

    const requests = env.anthropic.requests.filter((r) => r.body.system === prompt);
    assert.ok(requests.length >= 2, "the model was asked again with the tool's result");
    for (const r of requests) {
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-api-key"], "sk-ant-platform");
      assert.equal(r.body.temperature, 0.3);
      assert.equal(r.body.max_tokens, 250);
    }
    const second = requests[1];
    assert.ok(second);
    assert.match(
      userTexts(second.body.messages),
      /"type":"tool_result","tool_use_id":"toolu_sofa","content":"Order 42: ships Monday"/,
    );
    const toolCall = tools.received.find(
      (r) => r.json.message?.type === "tool-calls" && JSON.stringify(r.json.message).includes("toolu_sofa"),
    );
    assert.ok(toolCall, "the tool server got tool-calls");

    const llmCost = (call.costs as unknown as CallCost[]).find((c) => c.type === "model");
    assert.equal(llmCost?.model?.provider, "anthropic");
    assert.equal(llmCost?.model?.model, "claude-sonnet-4-6");
    assert.ok((llmCost?.cost ?? 0) > 0, "Claude's tokens are priced");
  });

  it("anthropic on a thinking model: the tool round trip carries the thinking blocks back (else Anthropic answers 400)", async () => {
    const prompt = "TEST anthropic-thinking.";
    anthropicBy.set(prompt, (body) => {
      const last = body.messages[body.messages.length - 1];
      const results = Array.isArray(last?.content) ? (last.content as Array<{ type: string }>) : [];
      if (results.some((b) => b.type === "tool_result")) return { text: "Found it." };
      return { toolCalls: [{ id: "toolu_think", name: "lookup_order", input: { orderNumber: "7" } }] };
    });
    const e = byoAnthropic;
    await addCredential(e, "anthropic", "sk-ant-byo-1");
    const tools = await toolServer({ toolCallId: "toolu_think", result: "Order 7 found" });
    const { sim } = await callAssistant(e, {
      model: {
        provider: "anthropic",
        model: "claude-sonnet-5",
        maxTokens: 1000,
        messages: [{ role: "system", content: prompt }],
        tools: [lookupTool(tools)],
      },
    });
    await waitForSpoken(sim, 1);
    await sim.say("Find order seven");
    // The first message, the filler said while the tool runs, then the answer.
    await waitForSpoken(sim, 3, 10_000);
    await sim.hangup();
    const call = await finalizedCall(e, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(call.transcript ?? "", /AI: Found it\./);
    const requests = env.anthropic.requests.filter((r) => r.body.system === prompt);
    assert.deepEqual(
      requests.map((r) => r.status),
      [200, 200],
    );
    // The BYO credential paid, and Sonnet 5 (fixed sampling) got no temperature despite Vapi's 0.5.
    assert.equal(requests[0]?.headers["x-api-key"], "sk-ant-byo-1");
    assert.equal(requests[0]?.body.temperature, undefined);
  });

  for (const [status, type, reason] of [
    [401, "authentication_error", "pipeline-error-anthropic-401-unauthorized"],
    [429, "rate_limit_error", "pipeline-error-anthropic-429-exceeded-quota"],
    [500, "api_error", "pipeline-error-anthropic-500-server-error"],
  ] as const) {
    it(`anthropic answering ${status} ends the call with ${reason}`, async () => {
      const prompt = `TEST anthropic-${status}.`;
      anthropicBy.set(prompt, () => ({ error: { status, type, message: `${type} from the fake` } }));
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-speaks-first-with-model-generated-message",
        model: {
          provider: "anthropic",
          model: "claude-haiku-4-5",
          messages: [{ role: "system", content: prompt }],
        },
      });
      await sim.waitForEnd(15_000);
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(call.endedReason, reason);
    });
  }

  it("custom-llm: the caller hears the customer's server, which gets Vapi's body and headers; a tool call works; tokens cost nothing", async () => {
    const prompt = "TEST custom-tool.";
    const seen: CustomLlmRequestBody[] = [];
    customBy.set(prompt, (body) => {
      seen.push(body);
      const last = body.messages[body.messages.length - 1];
      if (last?.role === "tool") return { text: `Your table is booked: ${String(last.content)}.` };
      return { toolCalls: [{ id: "call_table", name: "lookup_order", arguments: { orderNumber: "9" } }] };
    });
    const e = byoCustom;
    await addCredential(e, "custom-llm", "cust-llm-key-9");
    const tools = await toolServer({ toolCallId: "call_table", result: "table 9 at eight" });
    const { sim, assistantId } = await callAssistant(e, {
      metadata: { crmId: "crm-77" },
      model: {
        provider: "custom-llm",
        url: `${env.customLlm.url}/v1`,
        model: "acme-agent",
        headers: { "X-Acme-Tenant": "north" },
        messages: [{ role: "system", content: prompt }],
        tools: [lookupTool(tools)],
      },
    });
    await waitForSpoken(sim, 1);
    await sim.say("Book a table");
    await waitUntil(() => seen.length >= 2, 10_000, "the second request to the custom LLM");
    // The first message, the filler said while the tool runs, then the answer.
    await waitForSpoken(sim, 3, 10_000);
    await sim.hangup();
    const call = await finalizedCall(e, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(
      call.transcript ?? "",
      /User: Book a table\n(AI: .*\n)?AI: Your table is booked: table 9 at eight\./,
    );

    const requests = env.customLlm.requests.filter((r) => r.body.messages[0]?.content === prompt);
    const first = requests[0];
    assert.ok(first);
    assert.equal(first.path, "/v1/chat/completions");
    assert.equal(first.headers.authorization, "Bearer cust-llm-key-9");
    assert.equal(first.headers["x-acme-tenant"], "north");
    assert.equal(first.headers.accept, "text/event-stream");
    assert.equal(first.body.model, "acme-agent");
    assert.equal(first.body.stream, true);
    assert.equal(first.body.max_tokens, 250);
    assert.equal(first.body.temperature, 0.5);
    assert.deepEqual(first.body.metadata, { crmId: "crm-77" });
    const sentCall = first.body.call as { id?: string; assistantId?: string };
    assert.equal(sentCall.id, call.id);
    assert.equal(sentCall.assistantId, assistantId);
    assert.equal((first.body.customer as { number?: string }).number, "+14155550100");
    assert.ok(first.body.phoneNumber, "the phone number is sent");
    assert.equal(requests[1]?.body.messages.find((m) => m.role === "tool")?.content, "table 9 at eight");

    const llmCost = (call.costs as unknown as CallCost[]).find((c) => c.type === "model");
    assert.equal(llmCost?.model?.provider, "custom-llm");
    assert.equal(llmCost?.cost, 0);
  });

  it("custom-llm answering a plain JSON completion ends the call pipeline-error-custom-llm-llm-failed", async () => {
    const prompt = "TEST custom-json.";
    customBy.set(prompt, () => ({ text: "not streamed", plainJson: true }));
    const { sim } = await callAssistant(env, {
      firstMessageMode: "assistant-speaks-first-with-model-generated-message",
      model: {
        provider: "custom-llm",
        url: env.customLlm.url,
        model: "acme-agent",
        messages: [{ role: "system", content: prompt }],
      },
    });
    await sim.waitForEnd(15_000);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "pipeline-error-custom-llm-llm-failed");
    assert.doesNotMatch(call.transcript ?? "", /not streamed/);
  });
});
