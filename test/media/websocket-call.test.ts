import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import type { CallUsage } from "../../libs/billing/usage.ts";
import { WEBSOCKET_CALL_TYPE } from "../../libs/calls/transport.ts";
import type { Call, Prisma } from "../../libs/db/index.ts";
import { issueMediaToken } from "../../libs/telephony/media-token.ts";
import type { ChatRequest, FakeAudioFormat, Script } from "../fakes/index.ts";
import { sleep } from "../fakes/util.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";
import { createAssistant, type MediaEnv, type StoredMessage, startMediaEnv, waitUntil } from "./harness.ts";
import { WebCallClient } from "./web-call-client.ts";

// Web calls over Vapi's `vapi.websocket` transport, end to end: the real media app, the real
// Deepgram/OpenAI/ElevenLabs adapters against their loopback fakes, and a client that speaks the
// protocol as a browser page would (binary audio both ways, JSON text frames).

const PCM_16K: FakeAudioFormat = { encoding: "linear16", sampleRate: 16000 };
const MULAW_8K: FakeAudioFormat = { encoding: "mulaw", sampleRate: 8000 };
const PCM_44K: FakeAudioFormat = { encoding: "linear16", sampleRate: 44100 };

const responders = new Map<string, (req: ChatRequest) => Script>();
function model(name: string, respond?: (req: ChatRequest) => Script, extra: Record<string, unknown> = {}) {
  if (respond) responders.set(name, respond);
  return {
    provider: "openai",
    model: "gpt-4o",
    messages: [{ role: "system", content: `TEST ${name}.` }],
    ...extra,
  };
}
function requestsOf(env: MediaEnv, name: string) {
  return env.openai.requests.filter((r) =>
    String(r.body.messages[0]?.content ?? "").startsWith(`TEST ${name}.`),
  );
}

interface WebCall {
  callId: string;
  token: string;
  url: string;
}

/**
 * A websocket call as `POST /call` with `transport: {provider: "vapi.websocket", audioFormat}`
 * records it (apps/api web-call-service): the row, its token and its `websocketCallUrl`.
 */
async function createWebCall(
  env: MediaEnv,
  assistantId: string,
  format: { format: "pcm_s16le" | "mulaw"; sampleRate: number },
  opts: { allowedOrigins?: string[]; tokenIssuedAt?: number } = {},
): Promise<WebCall> {
  const assistant = await env.t.db.assistant.findUniqueOrThrow({ where: { id: assistantId } });
  const issuedAt = opts.tokenIssuedAt ?? Date.now();
  const row = await env.t.db.call.create({
    data: {
      orgId: env.org.orgId,
      type: WEBSOCKET_CALL_TYPE,
      status: "queued",
      assistantId,
      assistant: assistant.config as Prisma.InputJsonValue,
      transport: {
        provider: "vapi.websocket",
        audioFormat: { ...format, container: "raw" },
        ...(opts.allowedOrigins ? { allowedOrigins: opts.allowedOrigins } : {}),
      },
      createdAt: new Date(issuedAt),
    },
  });
  const token = issueMediaToken(env.t.config.secretsKey, row.id, issuedAt);
  const address = env.media.server.address();
  if (!address || typeof address !== "object") throw new Error("media is not listening");
  return {
    callId: row.id,
    token,
    url: `ws://127.0.0.1:${address.port}/${row.id}/transport?token=${encodeURIComponent(token)}`,
  };
}

/** The transcriber connection that heard `text` (tests run at the same time on one fake). */
function transcriberOf(env: MediaEnv, text: string) {
  const conn = env.deepgram.connections.find((c) => c.transcripts.includes(text));
  assert.ok(conn, `a transcriber connection heard "${text}"`);
  return conn;
}

async function endedCall(env: MediaEnv, callId: string, timeoutMs = 8000): Promise<Call> {
  return waitUntil(
    async () => {
      const row = await env.t.db.call.findUnique({ where: { id: callId } });
      return row && row.status === "ended" && row.finalizedAt ? row : undefined;
    },
    timeoutMs,
    "the call to be finalised",
  );
}

/** Waits for `n` final transcripts of the assistant on the client (each one an utterance heard). */
function waitForSpoken(client: WebCallClient, n: number, timeoutMs = 8000): Promise<true> {
  return waitUntil(
    () =>
      client.messages.filter(
        (m) => m.type === "transcript" && m.role === "assistant" && m.transcriptType === "final",
      ).length >= n || undefined,
    timeoutMs,
    `${n} assistant utterances`,
  );
}

describe("web calls over the vapi.websocket transport", { concurrency: true }, () => {
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

  it("PCM 16 kHz: the transcriber takes the client's audio as sent, the voice makes pcm_16000, the client hears 640-byte frames and reads the live transcript", async () => {
    const assistantId = await createAssistant(env, { model: model("pcm16") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const client = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    const tts = env.elevenlabs.connections.find((c) => c.params.output_format === "pcm_16000");
    assert.ok(tts, "the voice was asked for pcm_16000");

    await client.say("What are your opening hours?");
    await waitForSpoken(client, 2);
    client.hangup();
    const closed = await client.closed;
    assert.deepEqual(closed, { code: 1000, reason: "call ended" });

    const row = await endedCall(env, call.callId);
    assert.equal(row.endedReason, "customer-ended-call");
    const dg = transcriberOf(env, "What are your opening hours?");
    assert.equal(dg.params.encoding, "linear16");
    assert.equal(dg.params.sample_rate, "16000");
    assert.match(
      row.transcript ?? "",
      /^AI: Hi, this is Riley from Acme\. How can I help\?\nUser: What are your opening hours\?\nAI: You said: What are your opening hours\?\./,
    );
    // Every frame is 20 ms of PCM 16 kHz but the last of an utterance, which may be short.
    assert.ok(client.frames.length > 10);
    const short = client.frames.filter((f) => f.length !== 640);
    assert.ok(short.length <= 2, `frames not 640 bytes: ${short.map((f) => f.length).join(",")}`);
    // The transcriber got exactly the client's bytes (no conversion; what it transcribed proves it).
    assert.ok(dg.audioBytes > 0 && dg.audioBytes <= client.sentBytes);
    assert.ok(dg.transcripts.includes("What are your opening hours?"));

    // The live transcript and the call's progress reached the client as JSON text frames.
    const finals = client.messages
      .filter((m) => m.type === "transcript" && m.transcriptType === "final")
      .map((m) => `${m.role}: ${m.transcript}`);
    assert.deepEqual(finals, [
      "assistant: Hi, this is Riley from Acme. How can I help?",
      "user: What are your opening hours?",
      "assistant: You said: What are your opening hours?.",
    ]);
    assert.ok(client.messagesOf("speech-update").some((m) => m.role === "user" && m.status === "started"));
    // The model's text reaches the client a clause at a time (not a message per token), all of it.
    const outputs = client.messagesOf("model-output").map((m) => m.output);
    assert.equal(outputs.join(""), "You said: What are your opening hours?.");
    assert.ok(outputs.length <= 2, `one message per clause, not per token: ${JSON.stringify(outputs)}`);
    assert.ok(client.messagesOf("conversation-update").length > 0, "conversation-update");
    const statuses = client.messagesOf("status-update").map((m) => m.status);
    assert.deepEqual(statuses, ["in-progress", "ended"]);
    assert.equal(client.messagesOf("status-update")[1]?.endedReason, "customer-ended-call");
    for (const m of client.messages) {
      assert.equal(m.call, undefined, "no call object on client messages");
      assert.equal(m.assistant, undefined, "no assistant configuration on client messages");
    }
    const convo = client.messagesOf("conversation-update").at(-1)?.messages as StoredMessage[];
    assert.ok(!convo.some((m) => m.role === "system"), "the system prompt stays on the server");

    const usage = row.usage as unknown as CallUsage;
    assert.equal(usage.transport.provider, "vapi.websocket");
    assert.equal(usage.transport.byo, false);
    // Seconds of transcribed audio: PCM 16 kHz is 32 000 bytes a second.
    assert.ok(Math.abs(usage.stt.audioSeconds - dg.audioBytes / 32000) < 0.01);
  });
  it("μ-law 8 kHz: μ-law to the transcriber and from the voice (ulaw_8000), 160-byte frames", async () => {
    const assistantId = await createAssistant(env, { model: model("mulaw") });
    const call = await createWebCall(env, assistantId, { format: "mulaw", sampleRate: 8000 });
    const client = await WebCallClient.connect(call.url, { format: MULAW_8K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    await client.say("Is anyone there?");
    await waitForSpoken(client, 2);
    client.control({ type: "end-call" });
    assert.equal((await client.closed).code, 1000);
    const row = await endedCall(env, call.callId);
    assert.equal(row.endedReason, "customer-ended-call");
    const dg = transcriberOf(env, "Is anyone there?");
    assert.equal(dg.params.encoding, "mulaw");
    assert.equal(dg.params.sample_rate, "8000");
    assert.match(row.transcript ?? "", /User: Is anyone there\?\nAI: You said: Is anyone there\?\./);
    assert.ok(env.elevenlabs.connections.some((c) => c.params.output_format === "ulaw_8000"));
    const short = client.frames.filter((f) => f.length !== 160);
    assert.ok(short.length <= 2, `frames not 160 bytes: ${short.map((f) => f.length).join(",")}`);
    const usage = row.usage as unknown as CallUsage;
    assert.ok(Math.abs(usage.stt.audioSeconds - dg.audioBytes / 8000) < 0.01);
  });

  it("PCM 44.1 kHz: the transcriber takes 44.1 kHz as sent; the voice's 24 kHz is resampled to 1764-byte frames", async () => {
    const assistantId = await createAssistant(env, { model: model("pcm44") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 44100 });
    const client = await WebCallClient.connect(call.url, { format: PCM_44K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    await client.say("Can you hear me?");
    await waitForSpoken(client, 2);
    client.hangup();
    await client.closed;
    const row = await endedCall(env, call.callId);
    const dg = transcriberOf(env, "Can you hear me?");
    assert.equal(dg.params.encoding, "linear16");
    assert.equal(dg.params.sample_rate, "44100");
    assert.match(row.transcript ?? "", /User: Can you hear me\?\nAI: You said: Can you hear me\?\./);
    // 44.1 kHz PCM is Pro-tier at ElevenLabs and its voices are made at 24 kHz: asked for 24 kHz.
    assert.ok(env.elevenlabs.connections.some((c) => c.params.output_format === "pcm_24000"));
    const short = client.frames.filter((f) => f.length !== 1764);
    assert.ok(short.length <= 2, `frames not 1764 bytes: ${short.map((f) => f.length).join(",")}`);
    // The converted audio lasts as long as the voice's (10 ms a character here), at 88.2 bytes a ms.
    const spokenChars =
      "Hi, this is Riley from Acme. How can I help? ".length + "You said: Can you hear me?. ".length;
    const ms = client.receivedBytes / 88.2;
    assert.ok(
      Math.abs(ms - spokenChars * 10) < 60,
      `${ms.toFixed(0)} ms of audio for ${spokenChars} characters`,
    );
    // And it is the voice's tone, not silence.
    const loud = client.frames.filter((f) => {
      let peak = 0;
      for (let i = 0; i + 1 < f.length; i += 2) peak = Math.max(peak, Math.abs(f.readInt16LE(i)));
      return peak > 1000;
    });
    assert.ok(loud.length > client.frames.length / 2);
  });

  it("a tool call: the tool server gets it, the client sees the call (without the tool's server), the reply follows", async () => {
    const name = "tool";
    const assistantId = await createAssistant(env, {
      model: model(
        name,
        (req) => {
          const last = req.messages[req.messages.length - 1];
          if (last?.role === "tool") return { text: "Your order shipped yesterday." };
          return {
            toolCalls: [{ id: "call_web_1", name: "lookup_order", arguments: { orderNumber: "42" } }],
          };
        },
        {
          tools: [
            {
              type: "function",
              function: {
                name: "lookup_order",
                description: "Look up an order",
                parameters: { type: "object", properties: { orderNumber: { type: "string" } } },
              },
              server: { url: `${env.customer.url}/tools`, secret: "per-tool-secret" },
            },
          ],
        },
      ),
    });
    env.customer.script([
      {
        status: 200,
        body: { results: [{ toolCallId: "call_web_1", result: "Order 42 shipped on Monday" }] },
      },
    ]);
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const client = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    await client.say("Where is my order?");
    await waitUntil(() => client.messagesOf("tool-calls").length > 0, 8000, "tool-calls on the client");
    await waitUntil(
      () => client.messagesOf("transcript").some((m) => m.transcript === "Your order shipped yesterday."),
      8000,
      "the answer after the tool",
    );
    client.hangup();
    const row = await endedCall(env, call.callId);
    assert.match(row.transcript ?? "", /AI: Your order shipped yesterday\./);
    const toolReq = env.customer.received.find(
      (r) => r.json.message?.type === "tool-calls" && JSON.stringify(r.json).includes("call_web_1"),
    );
    assert.equal(toolReq?.headers["x-vapi-secret"], "per-tool-secret");
    const seen = client.messagesOf("tool-calls")[0] as {
      toolCallList: Array<{ id: string; function: { name: string } }>;
      toolWithToolCallList: Array<Record<string, unknown>>;
    };
    assert.equal(seen.toolCallList[0]?.id, "call_web_1");
    assert.equal(seen.toolCallList[0]?.function.name, "lookup_order");
    assert.equal(seen.toolWithToolCallList[0]?.server, undefined, "the tool's server stays private");
    assert.ok(!JSON.stringify(client.messages).includes("per-tool-secret"));
  });

  it("barge-in: the client stops receiving the assistant at once; what it heard is what is kept", async () => {
    const name = "bargein";
    const story = `${"Once upon a time there was a very long story that kept going and going. ".repeat(6)}The end.`;
    const assistantId = await createAssistant(env, {
      model: model(name, (req) => {
        const users = req.messages.filter((m) => m.role === "user");
        return { text: users.length === 1 ? story : "Sure, stopping." };
      }),
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 1 },
    });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const client = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    const before = client.frames.length;
    await client.say("Tell me a story");
    await waitUntil(() => client.frames.length > before + 25, 8000, "the story playing");
    await client.say("Wait, stop");
    await waitUntil(() => client.messagesOf("user-interrupted").length > 0, 5000, "user-interrupted");
    const interruptedAt = Date.now();
    await waitForSpoken(client, 3);
    client.hangup();
    const row = await endedCall(env, call.callId);
    // Nothing of the story arrived after the interruption but frames already in flight.
    const late = client.frameTimes.filter((t) => t > interruptedAt + 100 && t < interruptedAt + 900).length;
    assert.ok(late <= 4, `${late} frames after the barge-in`);
    // The story was not all sent; the conversation keeps what the client was sent and played.
    const storyBytes = story.length * 10 * 32;
    assert.ok(client.receivedBytes < storyBytes, "the story was cut");
    const bots = (row.messages as unknown as StoredMessage[]).filter((m) => m.role === "bot");
    const cut = bots[1]?.message ?? "";
    assert.ok(cut.length > 0 && cut.length < story.length, `truncated: ${cut}`);
    assert.ok(story.startsWith(cut));
    assert.deepEqual(
      bots.map((m) => m.interrupted),
      bots.map((m) => m === bots[1]),
      "the story, and only the story, is marked as cut off",
    );
    assert.equal(requestsOf(env, name).length >= 2, true);
  });

  it("a clean close without a hangup message is the customer's ending; a dropped connection is the websocket closing; each is billed once", async () => {
    const assistantId = await createAssistant(env, { model: model("closes") });
    const polite = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const dropped = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const a = await WebCallClient.connect(polite.url, { format: PCM_16K, utterances: env.deepgram });
    const b = await WebCallClient.connect(dropped.url, { format: PCM_16K, utterances: env.deepgram });
    await Promise.all([waitForSpoken(a, 1), waitForSpoken(b, 1)]);
    a.close(1000);
    b.ws.terminate();
    const [rowA, rowB] = await Promise.all([endedCall(env, polite.callId), endedCall(env, dropped.callId)]);
    assert.equal(rowA.endedReason, "customer-ended-call");
    assert.equal(rowB.endedReason, "phone-call-provider-closed-websocket");
    for (const row of [rowA, rowB]) {
      const lines = await env.t.db.usageLine.findMany({ where: { callId: row.id } });
      assert.equal(lines.length, 5, "one line per category");
      assert.equal(lines.find((l) => l.category === "transport")?.provider, "vapi.websocket");
    }
  });

  it("malformed or unknown control, text where audio is expected and odd-length PCM frames are ignored; the call carries on", async () => {
    const assistantId = await createAssistant(env, { model: model("garbage") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    // The microphone's stream cut into odd-sized frames: samples straddle frames.
    const client = await WebCallClient.connect(call.url, {
      format: PCM_16K,
      utterances: env.deepgram,
      chunkBytes: 333,
    });
    await waitForSpoken(client, 1);
    client.ws.send("{not json");
    client.control({ type: "dance" });
    client.ws.send("AAECAwQFBgc=");
    client.ws.send(JSON.stringify(["hangup"]));
    await client.say("Are you still there?");
    await waitForSpoken(client, 2);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.hangup();
    const row = await endedCall(env, call.callId);
    assert.equal(row.endedReason, "customer-ended-call");
    assert.match(row.transcript ?? "", /User: Are you still there\?\nAI: You said: Are you still there\?\./);
    // The call's log says what the client did wrong, once per kind (two frames were not JSON, and
    // hundreds of frames had an odd length), never what the frames carried.
    const rows = await env.t.db.callLog.findMany({ where: { callId: call.callId } });
    const warnings = rows
      .flatMap(
        (r) => r.entries as { level: string; category: string; message: string; data?: { kind?: string } }[],
      )
      .filter((e) => e.level === "warn" && e.category === "transport")
      .map((e) => `${e.data?.kind}: ${e.message}`)
      .sort();
    assert.deepEqual(warnings, [
      "control:dance: websocket client sent an unknown control message",
      "control:undefined: websocket client sent an unknown control message",
      "not-json: websocket client sent a text frame that is not JSON (audio goes in binary frames)",
      "odd-frame: websocket client sent a PCM frame of odd length",
    ]);
    assert.ok(
      !JSON.stringify(rows.map((r) => r.entries)).includes("AAECAwQFBgc"),
      "no frame's content in the log",
    );
  });

  it("Vapi's say control from the client is spoken and shows in the live transcript", async () => {
    const assistantId = await createAssistant(env, { model: model("say") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const client = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    const before = client.receivedBytes;
    client.control({ type: "say", content: "A word from the page." });
    await waitForSpoken(client, 2);
    assert.ok(client.receivedBytes > before, "the client heard it");
    client.hangup();
    const row = await endedCall(env, call.callId);
    assert.match(row.transcript ?? "", /AI: A word from the page\./);
  });

  it("a frame over the size limit closes the socket with 1009 and ends the call", async () => {
    const assistantId = await createAssistant(env, { model: model("oversized") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const client = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(client, 1);
    client.ws.send(Buffer.alloc(65 * 1024), { binary: true });
    const closed = await client.closed;
    assert.equal(closed.code, 1009);
    const row = await endedCall(env, call.callId);
    assert.equal(row.endedReason, "phone-call-provider-closed-websocket");
    assert.equal(await env.t.db.usageLine.count({ where: { callId: row.id } }), 5);
  });

  it("the URL's token: used twice, expired or forged is refused with 1008 and a reason; the call is untouched by a refusal", async () => {
    const assistantId = await createAssistant(env, { model: model("tokens") });
    const call = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const first = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    await waitForSpoken(first, 1);
    const again = await WebCallClient.connect(call.url, { format: PCM_16K, utterances: env.deepgram });
    assert.deepEqual(await again.closed, { code: 1008, reason: "already used" });
    first.hangup();
    await endedCall(env, call.callId);

    const old = await createWebCall(
      env,
      assistantId,
      { format: "pcm_s16le", sampleRate: 16000 },
      { tokenIssuedAt: Date.now() - 61_000 },
    );
    const late = await WebCallClient.connect(old.url, { format: PCM_16K, utterances: env.deepgram });
    assert.deepEqual(await late.closed, { code: 1008, reason: "expired" });

    const forged = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const bad = await WebCallClient.connect(`${forged.url.slice(0, -4)}AAAA`, {
      format: PCM_16K,
      utterances: env.deepgram,
    });
    assert.deepEqual(await bad.closed, { code: 1008, reason: "invalid token" });
    for (const id of [old.callId, forged.callId]) {
      const row = await env.t.db.call.findUniqueOrThrow({ where: { id } });
      assert.equal(row.status, "queued");
      assert.equal(row.streamConnectedAt, null);
    }
  });

  it("allowed origins: another origin is refused (1008) and the call stays unclaimed; the allowed one connects", async () => {
    const assistantId = await createAssistant(env, { model: model("origins") });
    const call = await createWebCall(
      env,
      assistantId,
      { format: "pcm_s16le", sampleRate: 16000 },
      { allowedOrigins: ["https://app.example.com"] },
    );
    const evil = await WebCallClient.connect(call.url, {
      format: PCM_16K,
      utterances: env.deepgram,
      origin: "https://evil.example.com",
    });
    assert.deepEqual(await evil.closed, { code: 1008, reason: "origin not allowed" });
    const untouched = await env.t.db.call.findUniqueOrThrow({ where: { id: call.callId } });
    assert.equal(untouched.status, "queued");
    assert.equal(untouched.streamConnectedAt, null);

    const good = await WebCallClient.connect(call.url, {
      format: PCM_16K,
      utterances: env.deepgram,
      origin: "https://App.example.com",
    });
    await waitForSpoken(good, 1);
    good.hangup();
    assert.equal((await endedCall(env, call.callId)).endedReason, "customer-ended-call");
  });
});

describe("web calls: a client that never sends audio (the call's clock advanced by hand)", () => {
  let env: MediaEnv;
  const timers = new ManualTimers();
  before(async () => {
    env = await startMediaEnv({ media: { callSchedule: timers.schedule } });
    env.openai.respond = () => ({ text: "Hello." });
  });
  after(async () => {
    await env.close();
  });

  it("ends with call.in-progress.error-assistant-did-not-receive-customer-audio after 20 s; a client that sends audio is not ended", async () => {
    const assistantId = await createAssistant(env, { model: model("silent-client") });
    const mute = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const live = await createWebCall(env, assistantId, { format: "pcm_s16le", sampleRate: 16000 });
    const quiet = await WebCallClient.connect(mute.url, {
      format: PCM_16K,
      utterances: env.deepgram,
      microphone: false,
    });
    const talking = await WebCallClient.connect(live.url, { format: PCM_16K, utterances: env.deepgram });
    await waitUntil(
      () => quiet.messagesOf("status-update").length > 0 && talking.messagesOf("status-update").length > 0,
      5000,
      "both calls in progress",
    );
    // Let the talking client's microphone reach the media process.
    await sleep(200);
    timers.advance(19_000);
    await sleep(100);
    assert.equal(quiet.ws.readyState, WebSocket.OPEN, "not before the bound");
    timers.advance(1_000);
    const closed = await quiet.closed;
    assert.deepEqual(closed, { code: 1000, reason: "call ended" });
    const row = await endedCall(env, mute.callId);
    assert.equal(row.endedReason, "call.in-progress.error-assistant-did-not-receive-customer-audio");
    assert.equal(
      quiet.messagesOf("status-update").at(-1)?.endedReason,
      "call.in-progress.error-assistant-did-not-receive-customer-audio",
    );
    assert.equal(talking.ws.readyState, WebSocket.OPEN, "the other call goes on");
    talking.hangup();
    assert.equal((await endedCall(env, live.callId)).endedReason, "customer-ended-call");
  });
});
