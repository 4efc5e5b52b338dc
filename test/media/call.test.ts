import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import twilio from "twilio";
import { WebSocket } from "ws";
import type { CallUsage } from "../../libs/billing/usage.ts";
import type { ChatRequest, Script } from "../fakes/index.ts";
import { closeServer, listenLoopback, sleep } from "../fakes/util.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  callAssistant,
  createAssistant,
  finalizedCall,
  importNumber,
  type MediaEnv,
  type StoredArtifact,
  type StoredMessage,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// Each test's assistant has its own system prompt; the fake OpenAI answers per prompt, so the
// tests can share one environment and run at the same time.
const responders = new Map<string, (req: ChatRequest) => Script>();
function systemPrompt(name: string, respond?: (req: ChatRequest) => Script): Record<string, unknown> {
  if (respond) responders.set(name, respond);
  return {
    provider: "openai",
    model: "gpt-4o",
    messages: [{ role: "system", content: `TEST ${name}. Caller: {{customer.number}}.` }],
  };
}
function lastMessage(req: ChatRequest) {
  return req.messages[req.messages.length - 1];
}
function requestsOf(env: MediaEnv, name: string) {
  return env.openai.requests.filter((r) =>
    String(r.body.messages[0]?.content ?? "").startsWith(`TEST ${name}.`),
  );
}

function assertComplete(call: {
  endedReason: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
  transcript: string | null;
  messages: unknown;
  artifact: unknown;
  usage: unknown;
  finalizedAt: Date | null;
}): void {
  assert.ok(call.endedReason, "endedReason");
  assert.ok(call.startedAt && call.endedAt, "timestamps");
  assert.equal(typeof call.transcript, "string");
  assert.ok(Array.isArray(call.messages));
  const artifact = call.artifact as StoredArtifact;
  assert.ok(Array.isArray(artifact.performanceMetrics.turnLatencies));
  const usage = call.usage as CallUsage;
  assert.equal(typeof usage.durationSeconds, "number");
  assert.ok(call.finalizedAt, "cost recorded");
}

describe("media session: live calls end to end", { concurrency: true }, () => {
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv();
    env.openai.respond = (req) => {
      const first = String(req.messages[0]?.content ?? "");
      const name = /^TEST ([\w-]+)\./.exec(first)?.[1] ?? "";
      const r = responders.get(name);
      if (r) return r(req);
      const last = [...req.messages].reverse().find((m) => m.role === "user");
      return { text: last ? `You said: ${String(last.content)}.` : "Hello." };
    };
  });
  after(async () => {
    await env.close();
  });

  it("the caller hears the first message, gets an answer to what they say, and hangs up; the call is finalised", async () => {
    const { sim } = await callAssistant(env, { model: systemPrompt("basic") });
    await sim.waitForAudio({ since: 0, timeoutMs: 5000 });
    await waitForSpoken(sim, 1);

    const turn = await sim.say("What are your opening hours?");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await waitForSpoken(sim, 2);
    assert.ok(
      turn.latencyMs !== undefined && turn.latencyMs > 0,
      "the caller heard the reply after speaking",
    );

    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.ok(call.startedAt && call.endedAt && call.endedAt > call.startedAt);
    assert.match(
      call.transcript ?? "",
      /^AI: Hi, this is Riley from Acme\. How can I help\?\nUser: What are your opening hours\?\nAI: You said: What are your opening hours\?\./,
    );
    const messages = call.messages as unknown as StoredMessage[];
    assert.deepEqual(
      messages.map((m) => m.role),
      ["system", "bot", "user", "bot"],
    );
    assert.equal(
      messages[0]?.message,
      "TEST basic. Caller: +14155550100.",
      "{{customer.number}} substituted",
    );
    const artifact = call.artifact as unknown as StoredArtifact;
    assert.equal(artifact.transcript, call.transcript);
    const turns = artifact.performanceMetrics.turnLatencies;
    assert.equal(turns.length, 1);
    const t0 = turns[0] ?? {};
    for (const k of [
      "modelLatency",
      "voiceLatency",
      "transcriberLatency",
      "endpointingLatency",
      "turnLatency",
    ]) {
      assert.equal(typeof t0[k], "number", k);
    }
    assert.ok((t0.turnLatency ?? 0) > 0);
    assert.ok((t0.turnLatency ?? 0) >= (t0.modelLatency ?? 0) + (t0.voiceLatency ?? 0));
    assert.equal(artifact.performanceMetrics.turnLatencyAverage, t0.turnLatency);
    // Switchboard's split of the turn: what the providers took, and the little the platform added.
    // (Each figure is rounded on its own: allow for that.)
    assert.equal(typeof t0.providerLatency, "number");
    assert.equal(typeof t0.platformLatency, "number");
    assert.ok((t0.providerLatency ?? 0) + 2 >= (t0.modelLatency ?? 0) + (t0.voiceLatency ?? 0));
    assert.ok((t0.platformLatency ?? -1) >= 0);

    const usage = call.usage as unknown as CallUsage;
    assert.ok(usage.durationSeconds > 0);
    assert.ok(usage.stt.audioSeconds > 1, "the caller's audio went to the transcriber");
    assert.ok(usage.llm.promptTokens > 0 && usage.llm.completionTokens > 0);
    assert.ok(usage.tts.characters > 40);
    assert.equal(usage.stt.byo, false);
    assert.ok(call.cost !== null);
    const req = requestsOf(env, "basic")[0];
    assert.equal(req?.authorization, "Bearer sk-platform-openai");

    // status-update in-progress and ended reached the customer's server through the queue.
    await waitUntil(
      () =>
        env.customer.received.some(
          (r) =>
            r.json.message?.type === "status-update" &&
            r.json.message.status === "ended" &&
            (r.json.message.call as { id?: string } | undefined)?.id === call.id,
        ),
      5000,
      "status-update ended",
    );
  });

  it("a function tool call reaches the tool server with tool-calls and X-Vapi-Secret, and its result reaches the model", async () => {
    const name = "tool";
    const { sim } = await callAssistant(env, {
      model: {
        ...systemPrompt(name, (req) => {
          const last = lastMessage(req);
          if (last?.role === "tool") return { text: "Your order shipped yesterday." };
          return {
            toolCalls: [{ id: "call_order_1", name: "lookup_order", arguments: { orderNumber: "42" } }],
          };
        }),
        tools: [
          {
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
            server: { url: `${env.customer.url}/tools`, secret: "per-tool-secret" },
            messages: [{ type: "request-start", content: "Let me check." }],
          },
        ],
      },
    });
    env.customer.script([
      {
        status: 200,
        body: { results: [{ toolCallId: "call_order_1", result: "Order 42 shipped on Monday" }] },
      },
    ]);
    await waitForSpoken(sim, 1);
    await sim.say("Where is my order?");
    await waitUntil(() => requestsOf(env, name).length >= 2, 8000, "the second model request");
    await waitForSpoken(sim, 3);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);

    const toolReq = env.customer.received.find((r) => r.json.message?.type === "tool-calls");
    assert.ok(toolReq, "tool-calls was posted");
    assert.equal(toolReq.path, "/webhook/tools");
    assert.equal(toolReq.headers["x-vapi-secret"], "per-tool-secret");
    assert.ok(toolReq.headers["x-signature"], "HMAC signature header");
    const msg = toolReq.json.message as {
      toolCallList: Array<{ id: string; function: { name: string; arguments: unknown } }>;
      call: { id: string };
    };
    assert.equal(msg.toolCallList[0]?.id, "call_order_1");
    assert.deepEqual(msg.toolCallList[0]?.function.arguments, { orderNumber: "42" });
    assert.equal(msg.call.id, call.id);

    const second = requestsOf(env, name)[1];
    const toolMsg = second?.body.messages.find((m) => m.role === "tool");
    assert.equal(toolMsg?.content, "Order 42 shipped on Monday");
    assert.equal(toolMsg?.tool_call_id, "call_order_1");
    assert.match(call.transcript ?? "", /AI: Let me check\./);
    assert.match(call.transcript ?? "", /AI: Your order shipped yesterday\./);
    const roles = (call.messages as unknown as StoredMessage[]).map((m) => m.role);
    assert.ok(roles.includes("tool_calls") && roles.includes("tool_call_result"));
  });

  it("a tool result with text Postgres cannot store (NUL, an unpaired surrogate) still ends and prices the call", async () => {
    // The customer's tool server is outside our control: what it answers is stored as near as
    // Postgres allows (U+FFFD for what it cannot hold) instead of the call never being written.
    const name = "unstorable";
    // A tool server of its own: the shared customer server's script belongs to the other tests.
    const toolServer = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            results: [{ toolCallId: "call_nul", result: "Order 7\u0000 shipped \ud800 Monday" }],
          }),
        );
      });
    });
    const toolPort = await listenLoopback(toolServer);
    try {
      const { sim } = await callAssistant(env, {
        model: {
          ...systemPrompt(name, (req) => {
            const last = lastMessage(req);
            if (last?.role === "tool") return { text: "It shipped." };
            return { toolCalls: [{ id: "call_nul", name: "lookup_order", arguments: { orderNumber: "7" } }] };
          }),
          tools: [
            {
              type: "function",
              function: { name: "lookup_order", parameters: { type: "object", properties: {} } },
              server: { url: `http://127.0.0.1:${toolPort}/tools` },
            },
          ],
        },
      });
      await waitForSpoken(sim, 1);
      await sim.say("Where is my order?");
      await waitUntil(() => requestsOf(env, name).length >= 2, 8000, "the second model request");
      await waitForSpoken(sim, 2);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assertComplete(call);
      const messages = call.messages as unknown as Array<StoredMessage & { result?: string }>;
      const stored = messages.find((m) => m.role === "tool_call_result");
      assert.equal(stored?.result, "Order 7\ufffd shipped \ufffd Monday");
    } finally {
      await closeServer(toolServer);
    }
  });

  it("barge-in sends clear, aborts the model and truncates the assistant's message to what was heard", async () => {
    const name = "bargein";
    const story =
      "Once upon a time there was a small robot who lived in a lighthouse by the sea, and every night it counted the ships that passed, one by one, until the morning came and the fishermen sailed home again with their nets full of silver fish.";
    const { sim } = await callAssistant(env, {
      model: systemPrompt(name, (req) => {
        const last = lastMessage(req);
        if (String(last?.content).includes("story")) return { text: story, interTokenDelayMs: 60 };
        return { text: "Okay, stopping." };
      }),
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 0 },
    });
    await waitForSpoken(sim, 1);
    const turn = await sim.say("Tell me a story");
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await sleep(400);
    assert.equal(sim.clears, 0);
    await sim.say("Wait, stop");
    await waitUntil(() => sim.clears > 0, 3000, "clear");
    await waitUntil(() => requestsOf(env, name).length >= 2, 5000, "the next model request");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(requestsOf(env, name)[0]?.aborted, true, "the story's LLM request was aborted");
    const bots = (call.messages as unknown as StoredMessage[]).filter((m) => m.role === "bot");
    const cut = bots[1]?.message ?? "";
    assert.ok(cut.length > 0 && cut.length < story.length, `truncated: ${cut}`);
    assert.ok(story.startsWith(cut), "the kept text is what was spoken first");
    assert.equal((call.artifact as unknown as StoredArtifact).performanceMetrics.numAssistantInterrupted, 1);
    // The record says which line the caller cut off: the story, and no other bot line.
    assert.deepEqual(
      bots.map((m) => m.interrupted),
      bots.map((m) => m === bots[1]),
    );
    // The model's next request sees only what the caller heard.
    const next = requestsOf(env, name)[1];
    const assistantMsg = next?.body.messages.filter((m) => m.role === "assistant").pop();
    assert.equal(assistantMsg?.content, cut);
    await waitUntil(
      () => env.customer.received.some((r) => r.json.message?.type === "user-interrupted"),
      5000,
      "user-interrupted",
    );
  });

  it("the endCall tool speaks the end-call message and hangs up (assistant-ended-call)", async () => {
    const { sim } = await callAssistant(env, {
      model: {
        ...systemPrompt("endcall", () => ({
          toolCalls: [{ id: "call_end", name: "endCall", arguments: {} }],
        })),
        tools: [{ type: "endCall" }],
      },
    });
    await waitForSpoken(sim, 1);
    await sim.say("That's all, thanks.");
    await sim.waitForEnd(8000);
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "assistant-ended-call");
    assert.match(call.transcript ?? "", /AI: Thanks for calling\. Goodbye!$/);
  });

  it("an end-call phrase said by the assistant ends the call after it was heard", async () => {
    const { sim } = await callAssistant(env, {
      model: systemPrompt("phrase", () => ({ text: "Alright, talk to you later!" })),
    });
    await waitForSpoken(sim, 1);
    await sim.say("Bye.");
    await sim.waitForEnd(8000);
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "assistant-said-end-call-phrase");
    assert.match(call.transcript ?? "", /AI: Alright, talk to you later!$/);
  });

  it("keypad input off (Vapi's default): the caller's digits do not reach the model", async () => {
    const name = "keypad-off";
    const { sim } = await callAssistant(env, { model: systemPrompt(name) });
    await waitForSpoken(sim, 1);
    for (const d of "7#") sim.pressDigit(d);
    // Twilio's messages arrive in order: by the time the speech is answered, the digits were handled.
    await sim.say("Hello?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const requests = requestsOf(env, name);
    assert.equal(requests.length, 1, "one model request: for the speech");
    const users = (requests[0]?.body.messages ?? []).filter((m) => m.role === "user");
    assert.deepEqual(
      users.map((m) => m.content),
      ["Hello?"],
    );
    assert.doesNotMatch(call.transcript ?? "", /Keypad|User: 7/);
  });

  it("keypad input on: five presses ending in the delimiter are ONE user message and ONE model request", async () => {
    const name = "keypad-delim";
    const { sim } = await callAssistant(env, {
      model: systemPrompt(name),
      keypadInputPlan: { enabled: true, timeoutSeconds: 10, delimiters: "#" },
    });
    await waitForSpoken(sim, 1);
    for (const d of "4521#") sim.pressDigit(d);
    await waitUntil(() => requestsOf(env, name).length >= 1, 5000, "model request");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const requests = requestsOf(env, name);
    assert.equal(requests.length, 1, "one model request for five presses");
    assert.equal(lastMessage(requests[0]?.body as ChatRequest)?.content, "User's Keypad Entry: 4521");
    assert.match(
      call.transcript ?? "",
      /User: User's Keypad Entry: 4521\nAI: You said: User's Keypad Entry: 4521\./,
    );
  });

  it("keypad input on: the dtmf tool still presses keys for the assistant, and the entry routes the call", async () => {
    const name = "keypad-tool";
    const { sim } = await callAssistant(env, {
      model: {
        ...systemPrompt(name, (req) => {
          const last = lastMessage(req);
          if (last?.role === "tool") return { text: "Done, I pressed 9 for you." };
          return { toolCalls: [{ id: "call_keys", name: "dtmf", arguments: { keys: "9" } }] };
        }),
        tools: [{ type: "dtmf" }],
      },
      keypadInputPlan: { enabled: true },
    });
    await waitForSpoken(sim, 1);
    for (const d of "1#") sim.pressDigit(d);
    await waitUntil(() => requestsOf(env, name).length >= 2, 5000, "the model's second request");
    await waitForSpoken(sim, 3);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    const [first, second] = requestsOf(env, name);
    assert.equal(lastMessage(first?.body as ChatRequest)?.content, "User's Keypad Entry: 1");
    assert.equal(lastMessage(second?.body as ChatRequest)?.content, "Sent 9");
    assert.match(
      call.transcript ?? "",
      /User: User's Keypad Entry: 1\n(.|\n)*AI: Done, I pressed 9 for you\.$/,
    );
  });

  it("a model failure mid-call ends the call with a spoken apology and a specific endedReason", async () => {
    const { sim } = await callAssistant(env, {
      model: systemPrompt("fail", () => ({ error: { status: 500, message: "The server had an error" } })),
    });
    await waitForSpoken(sim, 1);
    await sim.say("Hello?");
    await sim.waitForEnd(10_000);
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "pipeline-error-openai-500-server-error");
    assert.match(call.transcript ?? "", /AI: I'm sorry, I'm having some technical difficulties/);
    assert.equal(call.status, "ended");
  });

  it("a dropped media socket ends the call with phone-call-provider-closed-websocket", async () => {
    const assistantId = await createAssistant(env, { model: systemPrompt("drop") });
    const number = await importNumber(env, { assistantId });
    const stream = await rawInbound(env, number);
    const ws = new WebSocket(stream.url);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    let media = 0;
    ws.on("message", (data) => {
      if (String(data).includes('"event":"media"')) media++;
    });
    ws.send(startMessage(stream.callId, stream.token, stream.callSid));
    await waitUntil(() => media > 0, 5000, "first message audio");
    const live = await env.t.db.call.findUniqueOrThrow({ where: { id: stream.callId } });
    assert.equal(live.status, "in-progress");
    ws.terminate();
    const call = await finalizedCall(env, stream.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "phone-call-provider-closed-websocket");
  });

  it("a bad or reused stream token closes the socket and bills nothing", async () => {
    const { sim } = await callAssistant(env, { model: systemPrompt("token") });
    await waitForSpoken(sim, 1);
    const { callId, token } = sim.customParameters as { callId: string; token: string };
    const url = `${sim.streamUrl}`;

    for (const badToken of [`${token}x`, token]) {
      const code = await openStream(url, callId, badToken);
      assert.equal(code, 1008, "refused with policy violation");
    }
    // A token for a call that does not exist.
    assert.equal(await openStream(url, "00000000-0000-4000-8000-000000000000", "v1.x.y.z.w"), 1008);
    const live = await env.t.db.call.findUniqueOrThrow({ where: { id: callId } });
    assert.equal(live.status, "in-progress", "the real call carries on");
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    assert.equal(call.endedReason, "customer-ended-call");
    assert.equal(await env.t.db.usageLine.count({ where: { callId } }), 5);
  });
});

/** Opens a media stream like Twilio with the given parameters; resolves with the close code. */
async function openStream(url: string, callId: string, token: string): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.send(JSON.stringify({ event: "connected", protocol: "Call", version: "1.0.0" }));
  ws.send(startMessage(callId, token, "CAbad"));
  return closed;
}

function startMessage(callId: string, token: string, callSid: string): string {
  return JSON.stringify({
    event: "start",
    sequenceNumber: "1",
    start: {
      accountSid: ACCOUNT_SID,
      streamSid: "MZ0123",
      callSid,
      tracks: ["inbound"],
      mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      customParameters: { callId, token },
    },
    streamSid: "MZ0123",
  });
}

/** Twilio's inbound webhook, posted and signed by hand; returns the stream the TwiML asks for. */
async function rawInbound(
  env: MediaEnv,
  to: string,
): Promise<{ url: string; callId: string; token: string; callSid: string }> {
  const callSid = `CA${randomBytes(16).toString("hex")}`;
  const url = `${env.t.config.publicUrl}/twilio/inbound`;
  const params = {
    AccountSid: ACCOUNT_SID,
    CallSid: callSid,
    CallStatus: "ringing",
    Direction: "inbound",
    From: "+14155550111",
    To: to,
    ApiVersion: "2010-04-01",
  };
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params),
    },
    body: new URLSearchParams(params).toString(),
  });
  const xml = await res.text();
  const streamUrl = /<Stream url="([^"]+)"/.exec(xml)?.[1];
  const callId = /<Parameter name="callId" value="([^"]+)"/.exec(xml)?.[1];
  const token = /<Parameter name="token" value="([^"]+)"/.exec(xml)?.[1];
  assert.ok(streamUrl && callId && token, xml);
  return { url: streamUrl, callId, token, callSid };
}

describe("media session: the call's timers, advanced by hand", () => {
  const timers = new ManualTimers();
  let scheduled = 0;
  /** Durations of the timers armed so far, in order. */
  const armed: number[] = [];
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv({
      media: {
        // Every timer of the call runs on it (silence, max duration…): the keypad entry's are the
        // ones of its timeoutSeconds.
        callSchedule: (fn, ms) => {
          armed.push(ms);
          if (ms === 3000) scheduled += 1;
          return timers.schedule(fn, ms);
        },
      },
    });
  });
  after(async () => {
    await env.close();
  });

  it("digits without a delimiter are processed once timeoutSeconds pass without a new one", async () => {
    const name = "keypad-timeout";
    const { sim } = await callAssistant(env, {
      model: systemPrompt(name),
      keypadInputPlan: { enabled: true, timeoutSeconds: 3 },
    });
    await waitForSpoken(sim, 1);
    const before = scheduled;
    for (const d of "12345") sim.pressDigit(d);
    // Each press re-arms the entry's wait: once the fifth is armed, 2.9 s on, nothing has gone yet.
    await waitUntil(() => scheduled === before + 5, 5000, "the keypad entry's timer");
    timers.advance(2_900);
    assert.equal(requestsOf(env, name).length, 0, "no request before timeoutSeconds");
    timers.advance(100);
    await waitUntil(() => requestsOf(env, name).length >= 1, 5000, "model request");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    await finalizedCall(env, sim.callSid);
    const requests = requestsOf(env, name);
    assert.equal(requests.length, 1);
    assert.equal(lastMessage(requests[0]?.body as ChatRequest)?.content, "User's Keypad Entry: 12345");
  });

  it("silence: a reminder halfway, then the call ends with silence-timed-out", async () => {
    armed.length = 0;
    const { sim } = await callAssistant(env, { model: systemPrompt("silence"), silenceTimeoutSeconds: 10 });
    await waitForSpoken(sim, 1);
    // The silence clock starts once the first message has been heard.
    await waitUntil(() => armed.includes(10_000), 5000, "the silence timer");
    timers.advance(4_999);
    assert.equal(sim.ended, false);
    timers.advance(1);
    await waitForSpoken(sim, 2);
    // The caller's echo of the reminder's end mark is on its way back to the media process, which
    // keeps the reminder in the transcript when it arrives; the jump below must not overtake it
    // (in a real call 5 s pass first). A short real wait for that one socket hop.
    await sleep(300);
    // The reminder does not restart the clock.
    timers.advance(5_000);
    await sim.waitForEnd(5000);
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "silence-timed-out");
    assert.match(call.transcript ?? "", /AI: Are you still there\?/);
  });

  it("the call ends at maxDurationSeconds with exceeded-max-duration", async () => {
    armed.length = 0;
    const { sim } = await callAssistant(env, {
      model: systemPrompt("maxdur"),
      maxDurationSeconds: 10,
      silenceTimeoutSeconds: 60,
    });
    await waitForSpoken(sim, 1);
    await waitUntil(() => armed.includes(10_000), 5000, "the max-duration timer");
    timers.advance(9_999);
    await sleep(50);
    assert.equal(sim.ended, false, "still in progress before maxDurationSeconds");
    timers.advance(1);
    await sim.waitForEnd(5000);
    const call = await finalizedCall(env, sim.callSid);
    assertComplete(call);
    assert.equal(call.endedReason, "exceeded-max-duration");
  });
});
