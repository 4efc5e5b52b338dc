import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { WebhookError } from "../../libs/webhooks/http.ts";
import { hangMessage, toolCall, toolCallsMessage, toolWithToolCall } from "../../libs/webhooks/messages.ts";
import { resolveServer, sendServerMessage } from "../../libs/webhooks/server.ts";
import { type CustomerServer, messageOf, startCustomerServer, verifySignature } from "./customer-server.ts";

const call = {
  id: "3f1d2c4b-0000-4000-8000-000000000001",
  orgId: "o",
  type: "inboundPhoneCall",
  status: "in-progress",
};

function toolCallsBody() {
  const tc = toolCall("call_abc", "get_weather", '{"location":"San Francisco"}');
  return toolCallsMessage(
    { call, assistant: { name: "Weather" } },
    {
      toolCallList: [tc],
      toolWithToolCallList: [toolWithToolCall({ type: "function", function: { name: "get_weather" } }, tc)],
    },
  );
}

function expectWebhookError(kind: WebhookError["kind"], status?: number) {
  return (err: unknown) => {
    assert.ok(err instanceof WebhookError, String(err));
    assert.equal(err.kind, kind);
    if (status !== undefined) assert.equal(err.status, status);
    return true;
  };
}

describe("resolveServer", () => {
  const s = (url: string) => ({ server: { url } });
  it("follows tool → assistant → phone number → org", () => {
    const all = {
      tool: s("https://t"),
      assistant: s("https://a"),
      phoneNumber: s("https://p"),
      org: s("https://o"),
    };
    assert.equal(resolveServer(all)?.url, "https://t");
    assert.equal(resolveServer({ ...all, tool: undefined })?.url, "https://a");
    assert.equal(resolveServer({ ...all, tool: { server: {} }, assistant: null })?.url, "https://p");
    assert.equal(resolveServer({ org: s("https://o"), phoneNumber: { server: null } })?.url, "https://o");
    assert.equal(resolveServer({ assistant: { server: { timeoutSeconds: 5 } } }), undefined);
  });
});

describe("sendServerMessage", () => {
  let customer: CustomerServer;
  before(async () => {
    customer = await startCustomerServer();
  });
  after(async () => {
    await customer.close();
  });
  beforeEach(() => {
    customer.received.length = 0;
    customer.script([{ status: 200, body: {} }]);
  });

  it("POSTs the message with the secret, custom headers and a signature the customer can verify", async () => {
    customer.script([{ status: 200, body: { results: [{ toolCallId: "call_abc", result: "62F" }] } }]);
    const body = toolCallsBody();
    const answer = await sendServerMessage(
      { url: customer.url, secret: "s3cret", headers: { "X-Team": "blue", Authorization: "Bearer abc" } },
      body,
      { allowPrivate: true },
    );
    assert.deepEqual(answer, { results: [{ toolCallId: "call_abc", result: "62F" }] });
    const [req] = customer.received;
    assert.ok(req);
    assert.equal(req.method, "POST");
    assert.equal(req.path, "/webhook");
    assert.equal(req.headers["content-type"], "application/json");
    assert.equal(req.headers["x-vapi-secret"], "s3cret");
    assert.equal(req.headers["x-team"], "blue");
    assert.equal(req.headers.authorization, "Bearer abc");
    assert.ok(verifySignature("s3cret", req));
    assert.ok(!verifySignature("wrong", req));
    assert.ok(Math.abs(Number(req.headers["x-timestamp"]) - Date.now()) < 5000);
    assert.equal(req.headers["x-vapi-idempotency-key"], undefined);
    const m = messageOf(req);
    assert.equal(m.type, "tool-calls");
    assert.deepEqual(m.toolCallList, [
      {
        id: "call_abc",
        type: "function",
        function: { name: "get_weather", arguments: { location: "San Francisco" } },
      },
    ]);
    assert.deepEqual(m.toolWithToolCallList, [
      {
        type: "function",
        function: { name: "get_weather" },
        toolCall: {
          id: "call_abc",
          type: "function",
          function: { name: "get_weather", parameters: { location: "San Francisco" } },
        },
      },
    ]);
    assert.deepEqual(m.call, call);
    assert.deepEqual(m.assistant, { name: "Weather" });
    assert.equal(typeof m.timestamp, "number");
  });

  it("sends no secret or signature headers when the server has no secret", async () => {
    await sendServerMessage({ url: customer.url }, hangMessage({ call }), { allowPrivate: true });
    const [req] = customer.received;
    assert.ok(req);
    assert.equal(req.headers["x-vapi-secret"], undefined);
    assert.equal(req.headers["x-signature"], undefined);
    assert.equal(req.headers["x-timestamp"], undefined);
  });

  it("fails with a timeout when the server is slower than the timeout", async () => {
    customer.script([{ status: 200, delayMs: 1500 }]);
    const started = Date.now();
    await assert.rejects(
      sendServerMessage({ url: customer.url }, toolCallsBody(), { allowPrivate: true, timeoutMs: 200 }),
      expectWebhookError("timeout"),
    );
    assert.ok(Date.now() - started < 1000);
  });

  it("uses the server's timeoutSeconds by default", async () => {
    customer.script([{ status: 200, delayMs: 1500 }]);
    await assert.rejects(
      sendServerMessage({ url: customer.url, timeoutSeconds: 1 }, toolCallsBody(), { allowPrivate: true }),
      expectWebhookError("timeout"),
    );
  });

  it("fails on a non-2xx status without retrying", async () => {
    customer.script([{ status: 500, body: { error: "boom" } }]);
    await assert.rejects(
      sendServerMessage({ url: customer.url }, toolCallsBody(), { allowPrivate: true }),
      expectWebhookError("status", 500),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(customer.received.length, 1);
  });

  it("fails on a body that is not JSON", async () => {
    customer.script([{ status: 200, body: "<html>ok</html>" }]);
    await assert.rejects(
      sendServerMessage({ url: customer.url }, toolCallsBody(), { allowPrivate: true }),
      expectWebhookError("invalid-json", 200),
    );
  });

  it("stops when the signal aborts", async () => {
    customer.script([{ status: 200, delayMs: 2000 }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(
      sendServerMessage({ url: customer.url }, toolCallsBody(), { allowPrivate: true, signal: ac.signal }),
      expectWebhookError("aborted"),
    );
  });

  it("refuses a loopback server when private targets are not allowed", async () => {
    await assert.rejects(
      sendServerMessage({ url: customer.url }, toolCallsBody(), { allowPrivate: false }),
      expectWebhookError("unsafe-url"),
    );
    assert.equal(customer.received.length, 0);
  });

  it("retries per backoffPlan, skipping excluded status codes", async () => {
    customer.script([{ status: 503 }, { status: 502 }, { status: 200, body: { ok: true } }]);
    const answer = await sendServerMessage(
      { url: customer.url, backoffPlan: { type: "exponential", maxRetries: 3, baseDelaySeconds: 0.01 } },
      toolCallsBody(),
      { allowPrivate: true },
    );
    assert.deepEqual(answer, { ok: true });
    assert.equal(customer.received.length, 3);
    assert.equal(customer.received[0]?.raw, customer.received[2]?.raw);

    customer.received.length = 0;
    customer.script([{ status: 404 }]);
    await assert.rejects(
      sendServerMessage(
        {
          url: customer.url,
          backoffPlan: { type: "fixed", maxRetries: 3, baseDelaySeconds: 0, excludedStatusCodes: [404] },
        },
        toolCallsBody(),
        { allowPrivate: true },
      ),
      expectWebhookError("status", 404),
    );
    assert.equal(customer.received.length, 1);

    customer.received.length = 0;
    customer.script([{ status: 500 }]);
    await assert.rejects(
      sendServerMessage(
        { url: customer.url, backoffPlan: { type: "fixed", maxRetries: 2, baseDelaySeconds: 0 } },
        toolCallsBody(),
        { allowPrivate: true },
      ),
      expectWebhookError("status", 500),
    );
    assert.equal(customer.received.length, 3);
  });
});
