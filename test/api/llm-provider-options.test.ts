// Anthropic and custom-llm assistants: what each Claude model does not take, and a custom LLM's
// URL and headers, are refused when the assistant is saved (400 naming the field, the model and
// the rule); their BYO credentials are accepted with the secret never returned.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

let t: TestApi;
let org: TestOrg;

before(async () => {
  // As in production: private and loopback URLs are not allowed.
  t = await startTestApi({ ALLOW_PRIVATE_WEBHOOK_URLS: "false" });
  org = await t.createOrg("LLM providers");
});
after(async () => {
  await t.close();
});

function post(url: string, payload: object) {
  return t.request({ method: "POST", url, key: org.key, payload });
}

async function refused(payload: object): Promise<string> {
  const res = await post("/assistant", payload);
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().error, "Bad Request");
  return res.json().message as string;
}

const customLlm = (over: Record<string, unknown> = {}) => ({
  provider: "custom-llm",
  url: "https://llm.example.com/v1",
  model: "acme-agent",
  ...over,
});

describe("anthropic assistants", () => {
  test("a current model with a temperature is saved as sent", async () => {
    const res = await post(
      "/assistant",
      assistantBody({
        model: { provider: "anthropic", model: "claude-sonnet-4-6", temperature: 0.4, maxTokens: 300 },
      }),
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().model, {
      provider: "anthropic",
      model: "claude-sonnet-4-6",
      temperature: 0.4,
      maxTokens: 300,
    });
  });

  test("Opus 4.7 and the Claude 5 models refuse a temperature other than 1", async () => {
    const message = await refused(
      assistantBody({ model: { provider: "anthropic", model: "claude-opus-4-7", temperature: 0.7 } }),
    );
    assert.match(
      message,
      /^body\.model\.temperature: claude-opus-4-7 takes only the default temperature \(1\)/,
    );
    assert.match(message, /claude-sonnet-4-6/);
    const ok = await post(
      "/assistant",
      assistantBody({ model: { provider: "anthropic", model: "claude-sonnet-5" } }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test("a retired model is refused with its replacement", async () => {
    const message = await refused(
      assistantBody({ model: { provider: "anthropic", model: "claude-3-5-sonnet-20241022" } }),
    );
    assert.match(
      message,
      /^body\.model\.model: claude-3-5-sonnet-20241022 has been retired by Anthropic.*use claude-sonnet-4-6/,
    );
  });

  test("thinking: refused on adaptive models; elsewhere maxTokens must exceed the budget", async () => {
    const adaptive = await refused(
      assistantBody({
        model: {
          provider: "anthropic",
          model: "claude-opus-4-8",
          thinking: { type: "enabled", budgetTokens: 2048 },
        },
      }),
    );
    assert.match(adaptive, /^body\.model\.thinking: claude-opus-4-8 thinks adaptively/);
    const budget = await refused(
      assistantBody({
        model: {
          provider: "anthropic",
          model: "claude-haiku-4-5",
          thinking: { type: "enabled", budgetTokens: 2048 },
        },
      }),
    );
    assert.match(budget, /^body\.model\.maxTokens: must be greater than thinking\.budgetTokens \(2048\)/);
    const ok = await post(
      "/assistant",
      assistantBody({
        model: {
          provider: "anthropic",
          model: "claude-haiku-4-5",
          maxTokens: 4000,
          thinking: { type: "enabled", budgetTokens: 2048 },
        },
      }),
    );
    assert.equal(ok.statusCode, 201, ok.body);
  });

  test("a model id Anthropic does not list is refused by the schema", async () => {
    const message = await refused(assistantBody({ model: { provider: "anthropic", model: "claude-9" } }));
    assert.match(message, /model\.model/);
  });
});

describe("custom-llm assistants", () => {
  test("a public URL with headers is saved as sent", async () => {
    const model = customLlm({
      headers: { "X-Tenant": "north" },
      metadataSendMode: "destructured",
      timeoutSeconds: 30,
    });
    const res = await post("/assistant", assistantBody({ model }));
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().model, model);
  });

  test("a loopback or private URL is refused like a server URL", async () => {
    const message = await refused(assistantBody({ model: customLlm({ url: "http://127.0.0.1:8080/v1" }) }));
    assert.match(message, /^body\.model\.url is 127\.0\.0\.1 .*not a public address/);
    const metadata = await refused(
      assistantBody({ model: customLlm({ url: "http://169.254.169.254/latest" }) }),
    );
    assert.match(metadata, /^body\.model\.url /);
  });

  test("headers may not carry Authorization (the key belongs in a custom-llm credential) nor break HTTP", async () => {
    const auth = await refused(
      assistantBody({ model: customLlm({ headers: { Authorization: "Bearer x" } }) }),
    );
    assert.match(auth, /^body\.model\.headers\["Authorization"\] cannot be set: .*custom-llm credential/);
    const host = await refused(assistantBody({ model: customLlm({ headers: { Host: "evil.example" } }) }));
    assert.match(host, /^body\.model\.headers\["Host"\] is set by the platform/);
  });

  test("url and model are required; metadataSendMode takes Vapi's values", async () => {
    assert.match(await refused(assistantBody({ model: { provider: "custom-llm", model: "x" } })), /url/);
    assert.match(
      await refused(assistantBody({ model: customLlm({ metadataSendMode: "all" }) })),
      /metadataSendMode/,
    );
  });

  test("wordLevelConfidenceEnabled: true is refused (not sent on this platform)", async () => {
    const message = await refused(assistantBody({ model: customLlm({ wordLevelConfidenceEnabled: true }) }));
    assert.match(message, /^body\.model\.wordLevelConfidenceEnabled: is not supported/);
  });
});

describe("credentials", () => {
  test("anthropic and custom-llm credentials are created; the key is never returned", async () => {
    for (const provider of ["anthropic", "custom-llm"]) {
      const res = await post("/credential", { provider, apiKey: `${provider}-secret-key`, name: "mine" });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().provider, provider);
      assert.doesNotMatch(res.body, /secret-key/);
    }
    const oauth = await post("/credential", {
      provider: "custom-llm",
      apiKey: "k",
      authenticationPlan: { type: "oauth2", url: "https://auth.example.com/token" },
    });
    assert.equal(oauth.statusCode, 400, oauth.body);
    assert.match(oauth.json().message, /authenticationPlan/);
  });
});
