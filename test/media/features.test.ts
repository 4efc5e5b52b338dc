import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { recordCallCost } from "../../libs/billing/index.ts";
import type { CallUsage } from "../../libs/billing/usage.ts";
import { FakeCartesia } from "../fakes/cartesia.ts";
import type { ChatRequest, Script, TwilioCallSimulator } from "../fakes/index.ts";
import { sleep } from "../fakes/util.ts";
import { uniqueNumber } from "../helpers/bodies.ts";
import { type CustomerServer, startCustomerServer } from "../webhooks/customer-server.ts";
import {
  callAssistant,
  createAssistant,
  finalizedCall,
  importNumber,
  type MediaEnv,
  type StoredMessage,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// Issue-3 behaviours end to end, beyond the basics in call.test.ts: transfers, squads, live control,
// first-message modes, numWords, async and failing tools, BYO keys, provider failures, outbound
// calls and server-message filtering. Each test's assistant has its own system prompt (the fake
// OpenAI answers per prompt), so the tests share one environment and run at the same time.

const responders = new Map<string, (req: ChatRequest) => Script>();
function model(name: string, respond?: (req: ChatRequest) => Script, extra: Record<string, unknown> = {}) {
  if (respond) responders.set(name, respond);
  return {
    provider: "openai",
    model: "gpt-4o",
    messages: [{ role: "system", content: `TEST ${name}. Caller: {{customer.number}}.` }],
    ...extra,
  };
}
function requestsOf(env: MediaEnv, name: string) {
  return env.openai.requests.filter((r) =>
    String(r.body.messages[0]?.content ?? "").startsWith(`TEST ${name}.`),
  );
}
function lastUser(req: ChatRequest): string {
  const m = [...req.messages].reverse().find((x) => x.role === "user");
  return typeof m?.content === "string" ? m.content : "";
}
function messagesOf(call: { messages: unknown }): StoredMessage[] {
  return call.messages as unknown as StoredMessage[];
}
function callIdOf(sim: TwilioCallSimulator): string {
  const id = sim.customParameters.callId;
  assert.ok(id, "the stream carries the call id");
  return id;
}
async function phoneNumberId(env: MediaEnv, number: string): Promise<string> {
  const row = await env.t.db.phoneNumber.findUniqueOrThrow({ where: { number } });
  return row.id;
}

describe("media session: issue-3 features end to end", { concurrency: true }, () => {
  let env: MediaEnv;
  /** Cartesia has no platform key here: only an organisation's own credential reaches it. */
  let cartesia: FakeCartesia;
  const servers: CustomerServer[] = [];
  /** A customer server of the test's own (its replies are scripted per test). */
  async function ownServer(): Promise<CustomerServer> {
    const s = await startCustomerServer();
    servers.push(s);
    return s;
  }
  /** The shared environment seen from another organisation (its own credentials). */
  async function inOrg(name: string): Promise<MediaEnv> {
    const org = await env.t.createOrg(name);
    return { ...env, org };
  }
  async function addCredential(e: MediaEnv, provider: string, apiKey: string): Promise<void> {
    const res = await e.t.request({
      method: "POST",
      url: "/credential",
      key: e.org.key,
      payload: { provider, apiKey },
    });
    assert.equal(res.statusCode, 201, res.body);
  }
  /** A squad whose greeter hands off to the billing assistant (by name), on a number of its own, and a call to it. */
  async function callSquad(
    e: MediaEnv,
    name: string,
    m: { greeterId: string; billingId: string; billingName: string },
  ) {
    const squad = await e.t.request({
      method: "POST",
      url: "/squad",
      key: e.org.key,
      payload: {
        name,
        members: [
          {
            assistantId: m.greeterId,
            assistantDestinations: [
              { type: "assistant", assistantName: m.billingName, message: "Let me get billing for you." },
            ],
          },
          { assistantId: m.billingId },
        ],
      },
    });
    assert.equal(squad.statusCode, 201, squad.body);
    const number = await importNumber(e, { squadId: squad.json().id });
    return e.twilio.placeInboundCall({
      to: number,
      from: "+14155550100",
      simulator: { utterances: e.deepgram, recordAudio: false },
    });
  }
  function control(e: MediaEnv, callId: string, payload: object) {
    return e.t.request({ method: "POST", url: `/call/${callId}/control`, key: e.org.key, payload });
  }

  before(async () => {
    cartesia = await FakeCartesia.start({ msPerChar: 10 });
    env = await startMediaEnv({ env: { CARTESIA_API_URL: cartesia.url } });
    env.openai.respond = (req) => {
      const first = String(req.messages[0]?.content ?? "");
      const name = /^TEST ([\w-]+)\./.exec(first)?.[1] ?? "";
      const r = responders.get(name);
      if (r) return r(req);
      const last = lastUser(req);
      return { text: last ? `You said: ${last}.` : "Hello." };
    };
    // Outbound calls answered by simulators that can speak (through FakeDeepgram).
    env.twilio.simulatorOptions = { utterances: env.deepgram, recordAudio: false };
  });
  after(async () => {
    await env.close();
    await Promise.all([cartesia.close(), ...servers.map((s) => s.close())]);
  });

  // ------------------------------------------------------------------ 1. transferCall to a number

  it("transferCall to a number: the destination's message is heard, Twilio <Dial>s it, the call ends assistant-forwarded-call", async () => {
    const name = "xfer";
    const { sim } = await callAssistant(env, {
      model: model(
        name,
        () => ({
          toolCalls: [{ id: "call_xfer", name: "transferCall", arguments: { destination: "+14155550199" } }],
        }),
        {
          tools: [
            {
              type: "transferCall",
              destinations: [
                {
                  type: "number",
                  number: "+14155550199",
                  message: "Connecting you to a human now.",
                  description: "the front desk",
                },
              ],
            },
          ],
        },
      ),
    });
    await waitForSpoken(sim, 1);
    await sim.say("Can I talk to a person?");
    await sim.waitForEnd(10_000);
    assert.equal(sim.dialed?.target, "+14155550199", "Twilio dialled the destination");
    assert.equal(sim.endedReason, "dial");
    const update = env.twilio.requests.find(
      (r) => r.method === "POST" && r.path.endsWith(`/Calls/${sim.callSid}.json`),
    );
    assert.match(String(update?.params.Twiml), /<Dial[^>]*><Number>\+14155550199<\/Number><\/Dial>/);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "assistant-forwarded-call");
    assert.match(call.transcript ?? "", /AI: Connecting you to a human now\.$/);
    // The message was heard before the transfer: its end mark came back before the REST update.
    assert.ok(sim.echoedMarks.filter((m) => m.endsWith(":end")).length >= 2);
  });

  it("transferCall whose Twilio update fails ends the call with call.in-progress.error-transfer-failed", async () => {
    const name = "xferfail";
    // A Twilio account of its own, whose token is rotated at Twilio mid-call (the update gets 401).
    const accountSid = `AC${"0123456789abcdef".repeat(2)}`;
    const authToken = "xfer-fail-account-token-000000001";
    env.twilio.addAccount({ accountSid, authToken });
    const number = uniqueNumber();
    env.twilio.addNumber(accountSid, number);
    const assistantId = await createAssistant(env, {
      model: model(
        name,
        () => ({
          toolCalls: [{ id: "call_xf", name: "transferCall", arguments: { destination: "+14155550198" } }],
        }),
        {
          tools: [
            {
              type: "transferCall",
              destinations: [{ type: "number", number: "+14155550198", message: "Transferring you." }],
            },
          ],
        },
      ),
    });
    const imported = await env.t.request({
      method: "POST",
      url: "/phone-number",
      key: env.org.key,
      payload: {
        provider: "twilio",
        number,
        twilioAccountSid: accountSid,
        twilioAuthToken: authToken,
        assistantId,
      },
    });
    assert.equal(imported.statusCode, 201, imported.body);
    const sim = await env.twilio.placeInboundCall({
      to: number,
      from: "+14155550100",
      simulator: { utterances: env.deepgram, recordAudio: false },
    });
    await waitForSpoken(sim, 1);
    const account = env.twilio.accounts.get(accountSid);
    assert.ok(account);
    account.authToken = "rotated-at-twilio";
    await sim.say("Transfer me please.");
    const call = await finalizedCall(env, sim.callSid, 10_000);
    assert.equal(call.endedReason, "call.in-progress.error-transfer-failed");
    assert.equal(sim.dialed, undefined);
    assert.match(call.transcript ?? "", /AI: Transferring you\./);
  });

  // ------------------------------------------------------------------ 2. squad hand-off

  it("squad hand-off: the second assistant takes over with the conversation carried over", async () => {
    const a = "squadA";
    const b = "squadB";
    const suffix = Math.random().toString(36).slice(2, 8);
    const billingName = `Billing ${suffix}`;
    const greeterId = await createAssistant(env, {
      name: `Greeter ${suffix}`,
      firstMessage: "Welcome to Acme, front desk speaking.",
      model: model(a, (req) => {
        if (lastUser(req).includes("billing"))
          return {
            toolCalls: [
              { id: "call_handoff", name: "transferCall", arguments: { destination: billingName } },
            ],
          };
        return { text: "Anything else?" };
      }),
    });
    const billingId = await createAssistant(env, {
      name: billingName,
      firstMessage: "Billing here, what can I do for you?",
      model: model(b, (req) => ({ text: `Billing answer to: ${lastUser(req)}.` })),
    });
    const sim = await callSquad(env, `Squad ${suffix}`, { greeterId, billingId, billingName });
    await waitForSpoken(sim, 1);
    await sim.say("I have a billing question.");
    // The hand-off message, then the billing assistant's first message.
    await waitForSpoken(sim, 3, 10_000);
    await sim.say("Why was I charged twice?");
    await waitUntil(() => requestsOf(env, b).length >= 1, 8000, "the billing assistant's model request");
    await waitForSpoken(sim, 4, 10_000);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(
      call.transcript ?? "",
      /AI: Welcome to Acme, front desk speaking\.\nUser: I have a billing question\.\nAI: Let me get billing for you\.\nAI: Billing here, what can I do for you\?\nUser: Why was I charged twice\?\nAI: Billing answer to: Why was I charged twice\?\./,
    );
    const second = requestsOf(env, b)[0];
    assert.ok(second, "the billing assistant's model was asked");
    const msgs = second.body.messages;
    assert.equal(msgs[0]?.role, "system");
    assert.match(String(msgs[0]?.content), /^TEST squadB\./, "the new assistant's system prompt");
    assert.equal(msgs.filter((m) => m.role === "system").length, 1, "only the new system prompt");
    const texts = msgs.map((m) => `${m.role}:${typeof m.content === "string" ? m.content : ""}`);
    assert.ok(texts.includes("assistant:Welcome to Acme, front desk speaking."), texts.join(" | "));
    assert.ok(texts.includes("user:I have a billing question."), texts.join(" | "));
    assert.ok(texts.includes("user:Why was I charged twice?"), texts.join(" | "));
    // The billing member has no destinations of its own: no hand-off tool (not the greeter's).
    assert.equal(second.body.tools, undefined, JSON.stringify(second.body.tools));
    assert.ok(requestsOf(env, a)[0]?.body.tools?.length === 1, "the greeter can hand off");
    // The first assistant's model never answered the billing question.
    assert.ok(requestsOf(env, a).every((r) => !lastUser(r.body).includes("charged")));
  });

  it("squad hand-off between two voices, ElevenLabs on the platform's key and Cartesia on the org's own: a voice cost each, billed as what it was", async () => {
    const e = await inOrg("Squad voices");
    await addCredential(e, "cartesia", "sk_car_customer_byo");
    const a = "voicesA";
    const b = "voicesB";
    const suffix = Math.random().toString(36).slice(2, 8);
    const billingName = `Billing voice ${suffix}`;
    const greeterId = await createAssistant(e, {
      name: `Greeter voice ${suffix}`,
      firstMessage: "Welcome to Acme, front desk speaking.",
      model: model(a, () => ({
        toolCalls: [{ id: "call_voices", name: "transferCall", arguments: { destination: billingName } }],
      })),
      voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM" },
    });
    const billingId = await createAssistant(e, {
      name: billingName,
      firstMessage: "Billing here, what can I do for you?",
      model: model(b, (req) => ({ text: `Billing answer to: ${lastUser(req)}.` })),
      voice: { provider: "cartesia", voiceId: "a0e99841-438c-4a64-b679-ae501e7d6091" },
    });
    const sim = await callSquad(e, `Squad voices ${suffix}`, { greeterId, billingId, billingName });
    await waitForSpoken(sim, 1);
    await sim.say("I have a billing question.");
    await waitForSpoken(sim, 3, 10_000);
    await sim.say("Why was I charged twice?");
    await waitForSpoken(sim, 4, 10_000);
    await sim.hangup();
    const ended = await finalizedCall(e, sim.callSid);
    assert.ok(
      cartesia.connections.some((c) => c.apiKey === "sk_car_customer_byo"),
      "the billing member spoke with the organisation's Cartesia key",
    );

    const res = await e.t.request({ method: "GET", url: `/call/${ended.id}`, key: e.org.key });
    assert.equal(res.statusCode, 200, res.body);
    const call = res.json() as {
      costs: { type: string; cost: number; billedBy: string; model?: unknown }[];
      costBreakdown: { tts: number; llm: number; ttsCharacters: number; total: number };
      cost: number;
    };
    // Each voice is priced at $0.05 per 1,000 characters of what it spoke (its first message and
    // answers; the greeter's hand-off message is the greeter's).
    const greeterChars = "Welcome to Acme, front desk speaking.Let me get billing for you.".length;
    const billingChars = "Billing here, what can I do for you?Billing answer to: Why was I charged twice?."
      .length;
    const voices = call.costs.filter((c) => c.type === "voice");
    assert.deepEqual(voices, [
      {
        type: "voice",
        voice: { provider: "11labs", model: "eleven_turbo_v2" },
        characters: greeterChars,
        cost: (greeterChars * 50) / 1e6,
        billedBy: "platform",
      },
      {
        type: "voice",
        voice: { provider: "cartesia", model: "sonic-3" },
        characters: billingChars,
        cost: (billingChars * 50) / 1e6,
        billedBy: "passthrough",
      },
    ]);
    assert.equal(call.costBreakdown.tts, ((greeterChars + billingChars) * 50) / 1e6);
    assert.equal(call.costBreakdown.ttsCharacters, greeterChars + billingChars);
    // Both members ran gpt-4o on the platform's key: one model cost for the two.
    const models = call.costs.filter((c) => c.type === "model");
    assert.deepEqual(
      models.map((c) => [c.model, c.billedBy]),
      [[{ provider: "openai", model: "gpt-4o" }, "platform"]],
    );
    assert.equal(models[0]?.cost, call.costBreakdown.llm);
    const sum = call.costs.reduce((n, c) => n + Math.round(c.cost * 1e6), 0);
    assert.equal(sum, Math.round(call.cost * 1e6), "cost = the sum of its items");

    // Priced again (a retried job): the same two voice lines, written once. (The post-call analysis
    // may add its own line meanwhile.)
    const again = await recordCallCost(e.t.db, ended.id);
    assert.equal(again.created, false);
    assert.deepEqual(
      again.costs.filter((c) => c.type === "voice"),
      voices,
    );
    const tts = await e.t.db.usageLine.findMany({ where: { callId: ended.id, category: "tts" } });
    assert.deepEqual(tts.map((l) => [l.provider, l.billedBy, l.amountMicros]).sort(), [
      ["11labs", "platform", BigInt(greeterChars * 50)],
      ["cartesia", "passthrough", BigInt(billingChars * 50)],
    ]);
  });

  // ------------------------------------------------------------------ 3. live control

  it("live control: say is heard, add-message triggers a reply, end-call ends the call manually-canceled", async () => {
    const name = "ctl";
    const { sim } = await callAssistant(env, {
      model: model(name, (req) => ({ text: `Noted: ${lastUser(req)}.` })),
    });
    await waitForSpoken(sim, 1);
    const callId = callIdOf(sim);
    const say = await control(env, callId, { type: "say", content: "A supervisor is listening in." });
    assert.equal(say.statusCode, 202, say.body);
    await waitForSpoken(sim, 2);

    const add = await control(env, callId, {
      type: "add-message",
      message: { role: "user", content: "Please confirm my appointment." },
      triggerResponseEnabled: true,
    });
    assert.equal(add.statusCode, 202, add.body);
    await waitUntil(() => requestsOf(env, name).length >= 1, 5000, "the model request");
    await waitForSpoken(sim, 3);
    assert.equal(lastUser(requestsOf(env, name)[0]?.body as ChatRequest), "Please confirm my appointment.");

    const end = await control(env, callId, { type: "end-call" });
    assert.equal(end.statusCode, 202, end.body);
    await sim.waitForEnd(5000);
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "manually-canceled");
    assert.match(
      call.transcript ?? "",
      /AI: A supervisor is listening in\.\nUser: Please confirm my appointment\.\nAI: Noted: Please confirm my appointment\.\./,
    );
    const late = await control(env, callId, { type: "say", content: "Too late" });
    assert.equal(late.statusCode, 409);
  });

  it("live control: transfer speaks its content, then Twilio <Dial>s the number (assistant-forwarded-call)", async () => {
    const { sim } = await callAssistant(env, { model: model("ctlxfer") });
    await waitForSpoken(sim, 1);
    const res = await control(env, callIdOf(sim), {
      type: "transfer",
      destination: { type: "number", number: "+14155550197" },
      content: "Transferring you to a specialist.",
    });
    assert.equal(res.statusCode, 202, res.body);
    await sim.waitForEnd(8000);
    assert.equal(sim.dialed?.target, "+14155550197");
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "assistant-forwarded-call");
    assert.match(call.transcript ?? "", /AI: Transferring you to a specialist\.$/);
  });

  // ------------------------------------------------------------------ 4. firstMessageMode

  it("assistant-waits-for-user: nothing is heard until the caller speaks", async () => {
    const name = "waits";
    const { sim } = await callAssistant(env, {
      firstMessageMode: "assistant-waits-for-user",
      model: model(name),
    });
    await sim.waitForStreamStart();
    await sleep(1200);
    assert.equal(sim.heardBytes, 0, "silence until the caller speaks");
    assert.equal(sim.outboundMediaMessages, 0);
    assert.equal(requestsOf(env, name).length, 0);
    const turn = await sim.say("Hello, anyone there?");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 8000 });
    await waitForSpoken(sim, 1);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.match(
      call.transcript ?? "",
      /^User: Hello, anyone there\?\nAI: You said: Hello, anyone there\?\.$/,
    );
  });

  it("assistant-speaks-first-with-model-generated-message: the model writes the opener", async () => {
    const name = "genfirst";
    const { sim } = await callAssistant(env, {
      firstMessageMode: "assistant-speaks-first-with-model-generated-message",
      model: model(name, () => ({ text: "Good morning from the model." })),
    });
    await waitForSpoken(sim, 1);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const req = requestsOf(env, name)[0];
    assert.ok(req, "the model was asked for the opener");
    assert.deepEqual(
      req.body.messages.map((m) => m.role),
      ["system"],
    );
    assert.equal(call.transcript, "AI: Good morning from the model.");
  });

  // ------------------------------------------------------------------ 5. stopSpeakingPlan.numWords

  it("stopSpeakingPlan.numWords: a short interjection does not interrupt; enough words do", async () => {
    const name = "numwords";
    const story = [
      "Let me tell you about our plans in detail, because there are quite a few of them.",
      "Each one has its own features, prices and conditions that you will want to hear about before you decide anything at all today.",
      "The basic plan covers one line and a modest amount of data, which suits people who mostly call and text.",
      "The family plan covers four lines with shared data, and the premium plan adds international calling and a new phone every year.",
      "On top of that there are seasonal discounts, loyalty rewards for customers who stay with us for more than two years, and bundles with home internet.",
      "Finally, every plan can be cancelled at any time without a fee, and unused data rolls over to the next month.",
    ].join(" ");
    const { sim } = await callAssistant(env, {
      model: model(name, (req) => {
        if (lastUser(req).includes("plans")) return { text: story, interTokenDelayMs: 20 };
        return { text: "Sure, go ahead." };
      }),
      stopSpeakingPlan: { numWords: 4, voiceSeconds: 0.2, backoffSeconds: 0 },
    });
    await waitForSpoken(sim, 1);
    const turn = await sim.say("Tell me about your plans.");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await sleep(200);
    await sim.say("Hmm interesting");
    // Longer than the endpointing wait (onNoPunctuationSeconds 1.5): the interjection stands alone.
    await sleep(2000);
    assert.equal(sim.clears, 0, "two words do not interrupt");
    assert.equal(requestsOf(env, name).length, 1, "nor start a new reply");
    const endsBefore = sim.echoedMarks.filter((m) => m.endsWith(":end")).length;
    await sim.say("Can you tell me the cheapest one");
    await waitUntil(() => sim.clears > 0, 4000, "clear");
    await waitUntil(() => requestsOf(env, name).length >= 2, 5000, "the next model request");
    await waitForSpoken(sim, endsBefore + 1);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const bots = messagesOf(call).filter((m) => m.role === "bot");
    const cut = bots[1]?.message ?? "";
    assert.ok(cut.length > 0 && cut.length < story.length, `truncated: ${cut}`);
    assert.ok(story.startsWith(cut));
    // The interjection is in the transcript but got no reply of its own.
    assert.match(
      call.transcript ?? "",
      /\nUser: Hmm interesting\nUser: Can you tell me the cheapest one\nAI: Sure, go ahead\.$/,
    );
  });

  // ------------------------------------------------------------------ 6. async and failing tools

  it("an async function tool does not wait for the tool server", async () => {
    const name = "asynctool";
    const tools = await ownServer();
    tools.script([{ status: 200, body: { results: [] }, delayMs: 4000 }]);
    const { sim } = await callAssistant(env, {
      model: model(
        name,
        (req) => {
          const last = req.messages[req.messages.length - 1];
          if (last?.role === "tool") return { text: "I have logged that for you." };
          return { toolCalls: [{ id: "call_log", name: "log_event", arguments: { event: "callback" } }] };
        },
        {
          tools: [
            {
              type: "function",
              async: true,
              function: {
                name: "log_event",
                parameters: { type: "object", properties: { event: { type: "string" } } },
              },
              server: { url: tools.url },
            },
          ],
        },
      ),
    });
    await waitForSpoken(sim, 1);
    await sim.say("Please call me back tomorrow.");
    await waitUntil(
      () => requestsOf(env, name).length >= 2,
      3000,
      "the model asked again without the tool's answer",
    );
    const [first, second] = requestsOf(env, name);
    assert.ok(first && second);
    assert.ok(
      second.receivedAt - (first.completedAt ?? first.receivedAt) < 1500,
      "no wait for the tool server",
    );
    await waitUntil(() => tools.received.length > 0, 3000, "the tool server to get the call");
    assert.equal(tools.received[0]?.json.message?.type, "tool-calls");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.match(call.transcript ?? "", /AI: I have logged that for you\.$/);
    assert.doesNotMatch(call.transcript ?? "", /Hold on|One moment|Just a sec|Give me a moment|take a sec/);
  });

  for (const mode of ["error", "timeout"] as const) {
    it(`a tool server ${mode === "error" ? "answering 500" : "timing out"}: request-failed is spoken and the error reaches the model`, async () => {
      const name = `toolfail-${mode}`;
      const tools = await ownServer();
      tools.script(
        mode === "error"
          ? [{ status: 500, body: { message: "database down" } }]
          : [{ status: 200, body: { results: [] }, delayMs: 3000 }],
      );
      const { sim } = await callAssistant(env, {
        model: model(
          name,
          (req) => {
            if (req.messages.some((m) => m.role === "tool"))
              return { text: "Sorry, I could not look that up." };
            return { toolCalls: [{ id: "call_lookup", name: "lookup", arguments: { q: "x" } }] };
          },
          {
            tools: [
              {
                type: "function",
                function: {
                  name: "lookup",
                  parameters: { type: "object", properties: { q: { type: "string" } } },
                },
                server: { url: tools.url, timeoutSeconds: 1 },
                messages: [
                  { type: "request-start", content: "Checking." },
                  { type: "request-failed", content: "That lookup failed." },
                ],
              },
            ],
          },
        ),
      });
      await waitForSpoken(sim, 1);
      await sim.say("Look it up please.");
      await waitUntil(() => requestsOf(env, name).length >= 2, 8000, "the model asked again");
      await waitForSpoken(sim, 4, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      const toolMsg = requestsOf(env, name)[1]?.body.messages.find((m) => m.role === "tool");
      assert.equal(toolMsg?.tool_call_id, "call_lookup");
      assert.match(String(toolMsg?.content), /^Error: /, String(toolMsg?.content));
      if (mode === "timeout") assert.match(String(toolMsg?.content), /within 1000 ms/);
      else assert.match(String(toolMsg?.content), /500/);
      assert.match(
        call.transcript ?? "",
        /AI: Checking\.\nAI: That lookup failed\.\nAI: Sorry, I could not look that up\.$/,
      );
      // OpenAI's rule: the tool result comes right after the assistant message that called the tool.
      const sent = requestsOf(env, name)[1]?.body.messages ?? [];
      const at = sent.findIndex((m) => m.role === "tool");
      assert.ok(Array.isArray(sent[at - 1]?.tool_calls), sent.map((m) => m.role).join(","));
      assert.equal(sent[at - 1]?.content, "Checking.", "the filler is the calling message's content");
    });
  }

  // ------------------------------------------------------------------ 7. BYO credentials

  it("BYO OpenAI key: the model is called with the customer's key and its usage line is passthrough", async () => {
    const e = await inOrg("BYO");
    await addCredential(e, "openai", "sk-customer-byo-openai");
    const name = "byo";
    const { sim } = await callAssistant(e, { model: model(name) });
    await waitForSpoken(sim, 1);
    await sim.say("Who pays for this?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(e, sim.callSid);
    const req = requestsOf(env, name)[0];
    assert.equal(req?.authorization, "Bearer sk-customer-byo-openai");
    const usage = call.usage as unknown as CallUsage;
    assert.equal(usage.llm.byo, true);
    assert.equal(usage.stt.byo, false);
    assert.equal(usage.tts.byo, false);
    const lines = await env.t.db.usageLine.findMany({ where: { callId: call.id } });
    const by = Object.fromEntries(lines.map((l) => [l.category, l.billedBy]));
    assert.equal(by.llm, "passthrough");
    assert.equal(by.stt, "platform");
    assert.equal(by.tts, "platform");
    assert.equal(by.platform, "platform");
  });

  // ------------------------------------------------------------------ 8. provider failures

  it("the transcriber dropping mid-call and refusing the reconnect: an apology is heard and the call ends with a transcriber endedReason", async () => {
    const e = await inOrg("DG drop");
    const key = `dg-drop-${Math.random().toString(36).slice(2)}`;
    await addCredential(e, "deepgram", key);
    const { sim } = await callAssistant(e, { model: model("dgdrop") });
    await waitForSpoken(sim, 1);
    const conn = env.deepgram.connections.find((c) => c.key === key);
    assert.ok(conn, "the call's transcriber connection used the BYO key");
    // A drop alone is retried (test/media/resilience.test.ts); here the key is refused when it reconnects.
    env.deepgram.rejectKeys.add(key);
    conn.drop(1011);
    await sim.waitForEnd(10_000);
    const call = await finalizedCall(e, sim.callSid);
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "pipeline-error-deepgram-returning-401-invalid-credentials");
    assert.match(call.transcript ?? "", /AI: I'm sorry, I'm having some technical difficulties/);
  });

  it("a rejected transcriber key ends the call with pipeline-error-deepgram-returning-401-invalid-credentials; it never stays in-progress", async () => {
    const e = await inOrg("DG bad key");
    const key = `dg-bad-${Math.random().toString(36).slice(2)}`;
    env.deepgram.rejectKeys.add(key);
    await addCredential(e, "deepgram", key);
    const { sim } = await callAssistant(e, { model: model("dgbad") });
    await sim.waitForEnd(10_000);
    const call = await finalizedCall(e, sim.callSid);
    assert.equal(call.endedReason, "pipeline-error-deepgram-returning-401-invalid-credentials");
    assert.ok(env.deepgram.rejected.some((r) => r.authorization === `Token ${key}`));
  });

  it("a rejected voice key ends the call with pipeline-error-eleven-labs-voice-failed", async () => {
    const e = await inOrg("11labs bad key");
    const key = `el-bad-${Math.random().toString(36).slice(2)}`;
    env.elevenlabs.rejectKeys.add(key);
    await addCredential(e, "11labs", key);
    const { sim } = await callAssistant(e, { model: model("elbad") });
    await sim.waitForEnd(10_000);
    const call = await finalizedCall(e, sim.callSid);
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "pipeline-error-eleven-labs-voice-failed");
    assert.equal(sim.heardBytes, 0);
  });

  // ------------------------------------------------------------------ 9. outbound

  it("outbound: POST /call dials, the callee hears the first message, talks, hangs up; statuses queued → ringing → in-progress → ended", async () => {
    const name = "outbound";
    const assistantId = await createAssistant(env, {
      firstMessage: "Hi, this is Acme calling about your order.",
      model: model(name),
    });
    const number = await importNumber(env, {});
    const callee = "+14155550177";
    const seen: string[] = [];
    const res = await env.t.request({
      method: "POST",
      url: "/call",
      key: env.org.key,
      payload: { assistantId, phoneNumberId: await phoneNumberId(env, number), customer: { number: callee } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const callId = res.json().id as string;
    seen.push(res.json().status as string);
    const watching = (async () => {
      for (let i = 0; i < 1000; i++) {
        const row = await env.t.db.call.findUnique({ where: { id: callId }, select: { status: true } });
        if (row && seen[seen.length - 1] !== row.status) seen.push(row.status);
        if (row?.status === "ended") return;
        await sleep(5);
      }
    })();
    const callSid = String(res.json().phoneCallProviderId);
    const sim = await waitUntil(() => env.twilio.calls.get(callSid), 5000, "Twilio's call");
    assert.equal(sim.to, callee);
    assert.equal(sim.from, number);
    await sim.waitForStreamStart();
    await waitForSpoken(sim, 1);
    await sim.say("Yes, what about it?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    await watching;
    assert.equal(call.id, callId);
    assert.equal(call.type, "outboundPhoneCall");
    assert.equal(call.endedReason, "customer-ended-call");
    assert.match(
      call.transcript ?? "",
      /^AI: Hi, this is Acme calling about your order\.\nUser: Yes, what about it\?\nAI: You said: Yes, what about it\?\./,
    );
    assert.equal(messagesOf(call)[0]?.message, `TEST ${name}. Caller: ${callee}.`);
    assert.equal((call.usage as unknown as CallUsage).transport.direction, "outbound");
    // Twilio's callbacks drove the status; the media plane ended it.
    assert.deepEqual(sim.statusCallbacks.map((c) => c.params.CallStatus).slice(0, 3), [
      "initiated",
      "ringing",
      "in-progress",
    ]);
    assert.ok(sim.statusCallbacks.every((c) => c.responseStatus === 200 || c.responseStatus === undefined));
    assert.equal(seen[0], "queued");
    assert.equal(seen[seen.length - 1], "ended");
    const order = ["queued", "ringing", "in-progress", "ended"];
    for (let i = 1; i < seen.length; i++)
      assert.ok(
        order.indexOf(seen[i] ?? "") > order.indexOf(seen[i - 1] ?? ""),
        `never backwards: ${seen.join(" → ")}`,
      );
    assert.ok(seen.includes("in-progress"), seen.join(" → "));
  });

  for (const [outcome, reason] of [
    ["busy", "customer-busy"],
    ["no-answer", "customer-did-not-answer"],
  ] as const) {
    it(`outbound: a ${outcome} callee ends the call with ${reason}`, async () => {
      const callee = uniqueNumber();
      const previous = env.twilio.outboundOutcome;
      env.twilio.outboundOutcome = (p) => (p.To === callee ? outcome : previous(p));
      const assistantId = await createAssistant(env, { model: model(`out-${outcome}`) });
      const number = await importNumber(env, {});
      const res = await env.t.request({
        method: "POST",
        url: "/call",
        key: env.org.key,
        payload: {
          assistantId,
          phoneNumberId: await phoneNumberId(env, number),
          customer: { number: callee },
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      const row = await waitUntil(
        async () => {
          const c = await env.t.db.call.findUnique({ where: { id: res.json().id } });
          return c?.status === "ended" && c.finalizedAt ? c : undefined;
        },
        5000,
        "the call to end and be priced",
      );
      assert.equal(row.endedReason, reason);
      assert.equal(row.streamConnectedAt, null);
      assert.equal(Number(row.cost?.toString()), 0, "priced at zero");
    });
  }

  // ------------------------------------------------------------------ 10. server messages

  it("server messages: only the subscribed types are sent, in Vapi's shapes", async () => {
    const name = "servermsgs";
    const hooks = await ownServer();
    const { sim } = await callAssistant(env, {
      server: { url: hooks.url },
      serverMessages: ["transcript", "conversation-update", "speech-update", "end-of-call-report"],
      model: model(name),
    });
    await waitForSpoken(sim, 1);
    await sim.say("What time is it?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const report = await waitUntil(
      () => hooks.received.find((r) => r.json.message?.type === "end-of-call-report"),
      10_000,
      "end-of-call-report",
    );
    await sleep(300);
    const msgs = hooks.received.map((r) => r.json.message ?? {});
    const types = new Set(msgs.map((m) => String(m.type)));
    assert.deepEqual(
      [...types].sort(),
      ["conversation-update", "end-of-call-report", "speech-update", "transcript"],
      "nothing else (no status-update, tool-calls, hang, user-interrupted)",
    );
    for (const m of msgs) assert.equal((m.call as { id?: string } | undefined)?.id, call.id);

    const transcripts = msgs.filter((m) => m.type === "transcript");
    assert.ok(
      transcripts.some((m) => m.role === "user" && m.transcriptType === "partial"),
      "partial user transcript",
    );
    assert.ok(
      transcripts.some(
        (m) => m.role === "user" && m.transcriptType === "final" && m.transcript === "What time is it?",
      ),
      "final user transcript",
    );
    assert.ok(
      transcripts.some(
        (m) =>
          m.role === "assistant" &&
          m.transcriptType === "final" &&
          m.transcript === "You said: What time is it?.",
      ),
      "final assistant transcript",
    );
    const speech = msgs.filter((m) => m.type === "speech-update");
    assert.ok(speech.some((m) => m.status === "started" && m.role === "assistant"));
    assert.ok(speech.some((m) => m.status === "stopped" && m.role === "assistant"));
    const conv = msgs.filter((m) => m.type === "conversation-update").pop();
    const convMessages = conv?.messages as StoredMessage[] | undefined;
    assert.ok(convMessages?.some((m) => m.role === "user" && m.message === "What time is it?"));
    assert.ok(Array.isArray(conv?.messagesOpenAIFormatted));

    const r = report.json.message as Record<string, unknown>;
    assert.equal(r.endedReason, "customer-ended-call");
    const artifact = r.artifact as { messages: StoredMessage[]; transcript: string };
    assert.deepEqual(
      artifact.messages.map((m) => m.role),
      ["system", "bot", "user", "bot"],
    );
    assert.equal(artifact.transcript, call.transcript);
    assert.equal(typeof r.cost, "number");
    // The report goes after the post-call analysis, whose tokens are part of the call's cost.
    const reported = await env.t.db.call.findUniqueOrThrow({ where: { id: call.id } });
    assert.equal(r.cost, Number(reported.cost?.toString()));
    assert.deepEqual(r.analysis, reported.analysis);
    assert.equal(hooks.received.filter((x) => x.json.message?.type === "end-of-call-report").length, 1);
  });
});
