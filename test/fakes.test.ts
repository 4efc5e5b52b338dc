// Exercises each loopback fake with the provider's official SDK (or a plain `ws` client where the
// SDK has no client for that protocol), plus one small end-to-end "app" that wires them together.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { DeepgramClient } from "@deepgram/sdk";
import { ElevenLabsClient } from "@elevenlabs/elevenlabs-js";
import OpenAI from "openai";
import twilio from "twilio";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import {
  type DeepgramMessage,
  decodeUtteranceHeader,
  encodeUtteranceFrames,
  FakeDeepgram,
  FakeElevenLabs,
  FakeOpenAI,
  FakeTwilio,
  parseTwiml,
  SILENCE_FRAME,
} from "./fakes/index.ts";

const AC = `AC${"a".repeat(32)}`;
const TOKEN = "twilio-token-1";
const OUR_NUMBER = "+15550001111";

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function readForm(req: IncomingMessage): Promise<Record<string, string>> {
  let body = "";
  for await (const chunk of req) body += String(chunk);
  return Object.fromEntries(new URLSearchParams(body));
}

function collect(ws: WebSocket): DeepgramMessage[] {
  const all: DeepgramMessage[] = [];
  ws.on("message", (data: RawData) => all.push(JSON.parse(String(data)) as DeepgramMessage));
  return all;
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ------------------------------------------------------------------------------------------ OpenAI

test("FakeOpenAI streams text with usage to the official SDK and records the request", async () => {
  const fake = await FakeOpenAI.start({ ttftMs: 30, cachedTokens: 3 });
  try {
    const client = new OpenAI({ apiKey: "sk-test", baseURL: fake.baseUrl, maxRetries: 0 });
    const t0 = Date.now();
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "what time is it" },
      ],
    });
    let text = "";
    let firstTokenAt = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content;
      if (delta) {
        firstTokenAt ||= Date.now();
        text += delta;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, "You said: what time is it.");
    assert.equal(finish, "stop");
    assert.ok(firstTokenAt - t0 >= 25, "time to first token honours ttftMs");
    assert.ok(usage && usage.completion_tokens > 0 && usage.prompt_tokens > 0);
    assert.equal(usage?.total_tokens, (usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    assert.equal(usage?.prompt_tokens_details?.cached_tokens, 3);
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.lastRequest?.authorization, "Bearer sk-test");
    assert.equal(fake.lastRequest?.body.model, "gpt-4o-mini");
    assert.equal(fake.lastRequest?.aborted, false);
  } finally {
    await fake.close();
  }
});

test("FakeOpenAI streams chunked tool calls, errors and non-stream answers", async () => {
  const fake = await FakeOpenAI.start({
    respond: (req) => {
      const last = req.messages[req.messages.length - 1];
      if (last?.content === "fail") return { error: { status: 429, message: "Rate limit reached" } };
      if (req.tools && req.tools.length > 0) {
        return {
          toolCalls: [
            { name: "lookup_order", arguments: { order_id: "42" }, id: "call_1" },
            { name: "transferCall", arguments: '{"destination":"+15550002222"}' },
          ],
        };
      }
      return { text: "plain answer" };
    },
  });
  try {
    const client = new OpenAI({ apiKey: "sk-test", baseURL: fake.baseUrl, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: "where is my order" }],
      tools: [{ type: "function", function: { name: "lookup_order", parameters: { type: "object" } } }],
    });
    const calls: Array<{ id: string; name: string; args: string }> = [];
    let finish: string | null = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
        let slot = calls[tc.index];
        if (!slot) {
          slot = { id: "", name: "", args: "" };
          calls[tc.index] = slot;
        }
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.name = tc.function.name;
        slot.args += tc.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.ok(chunks > 5, "arguments arrive in several fragments");
    assert.deepEqual(calls[0], { id: "call_1", name: "lookup_order", args: '{"order_id":"42"}' });
    assert.equal(calls[1]?.name, "transferCall");
    assert.deepEqual(JSON.parse(calls[1]?.args ?? ""), { destination: "+15550002222" });
    assert.match(calls[1]?.id ?? "", /^call_/);

    await assert.rejects(
      client.chat.completions.create({
        model: "m",
        stream: true,
        messages: [{ role: "user", content: "fail" }],
      }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 429,
    );

    const plain = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(plain.choices[0]?.message.content, "plain answer");
    assert.equal(plain.choices[0]?.finish_reason, "stop");

    const denied = new OpenAI({ apiKey: "sk-bad", baseURL: fake.baseUrl, maxRetries: 0 });
    fake.rejectKeys.add("sk-bad");
    await assert.rejects(
      denied.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      (err: unknown) => err instanceof OpenAI.AuthenticationError,
    );
  } finally {
    await fake.close();
  }
});

// ---------------------------------------------------------------------------------------- Deepgram

test("encodeUtteranceFrames produces 20 ms frames with a decodable header", () => {
  const frames = encodeUtteranceFrames(77, 390);
  assert.equal(frames.length, 20);
  assert.ok(frames.every((f) => f.length === 160));
  assert.deepEqual(decodeUtteranceHeader(frames[0] as Buffer), { id: 77, durationMs: 400 });
  assert.equal(decodeUtteranceHeader(frames[1] as Buffer), undefined);
  assert.notDeepEqual(frames[1], SILENCE_FRAME);
});

test("FakeDeepgram: official v5 SDK gets SpeechStarted, interims, final and UtteranceEnd", async () => {
  const fake = await FakeDeepgram.start({ interimIntervalMs: 200 });
  try {
    const id = fake.allocateUtterance("Hello there, I need help");
    const dg = new DeepgramClient({ apiKey: "dg-key", environment: fake.environment });
    const socket = await dg.listen.v1.connect({
      model: "nova-3",
      encoding: "mulaw",
      sample_rate: 8000,
      interim_results: "true",
      endpointing: 300,
      utterance_end_ms: 1000,
      vad_events: "true",
      reconnectAttempts: 0,
    });
    const got: Array<{ type: string; transcript?: string; isFinal?: boolean; speechFinal?: boolean }> = [];
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    const metadata = new Promise<void>((resolve) => {
      socket.on("message", (m) => {
        if (m.type === "Results") {
          got.push({
            type: m.type,
            transcript: m.channel.alternatives[0]?.transcript,
            isFinal: m.is_final,
            speechFinal: m.speech_final,
          });
        } else got.push({ type: m.type });
        if (m.type === "Metadata") resolve();
      });
    });
    socket.connect();
    await socket.waitForOpen();
    // Audio time drives the fake, so the test can push faster than real time.
    for (let i = 0; i < 5; i++) socket.sendMedia(SILENCE_FRAME);
    for (const f of encodeUtteranceFrames(id, 800)) socket.sendMedia(f);
    for (let i = 0; i < 60; i++) socket.sendMedia(SILENCE_FRAME);
    socket.sendKeepAlive({ type: "KeepAlive" });
    socket.sendCloseStream({ type: "CloseStream" });
    await metadata;
    await closed;

    const types = got.map((g) => g.type);
    assert.equal(types[0], "SpeechStarted");
    const interims = got.filter((g) => g.type === "Results" && !g.isFinal);
    assert.ok(interims.length >= 2, `interims: ${interims.length}`);
    assert.ok((interims[0]?.transcript ?? "").length < "Hello there, I need help".length);
    const finals = got.filter((g) => g.type === "Results" && g.isFinal);
    assert.deepEqual(finals, [
      { type: "Results", transcript: "Hello there, I need help", isFinal: true, speechFinal: true },
    ]);
    assert.ok(types.indexOf("UtteranceEnd") > types.indexOf("Results"));
    assert.equal(types[types.length - 1], "Metadata");

    const conn = fake.connections[0];
    await until(() => conn?.closeCode !== undefined);
    assert.equal(conn?.authorization, "Token dg-key");
    assert.equal(conn?.params.endpointing, "300");
    assert.equal(conn?.audioBytes, (5 + 40 + 60) * 160);
    assert.deepEqual(
      conn?.controls.map((c) => c.type),
      ["KeepAlive", "CloseStream"],
    );
    assert.equal(conn?.closeCode, 1000);
  } finally {
    await fake.close();
  }
});

test("FakeDeepgram: plain ws client, odd chunking, Finalize, and 401 for rejected keys", async () => {
  const fake = await FakeDeepgram.start({ rejectKeys: ["revoked"], transcriberDelayMs: 20 });
  try {
    const query =
      "encoding=mulaw&sample_rate=8000&interim_results=true&endpointing=200&vad_events=true&model=nova-3";
    const bad = new WebSocket(`${fake.url}/v1/listen?${query}`, {
      headers: { Authorization: "Token revoked" },
    });
    const status = await new Promise<number>((resolve) => {
      bad.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      bad.on("error", () => {});
    });
    assert.equal(status, 401);
    assert.equal(fake.rejected[0]?.status, 401);

    const ws = new WebSocket(`${fake.url}/v1/listen?${query}`, { headers: { Authorization: "Token good" } });
    const msgs = collect(ws);
    await new Promise((resolve) => ws.once("open", resolve));
    const id = fake.allocateUtterance("book a table");
    // 100-byte chunks: the header straddles chunk boundaries.
    const audio = Buffer.concat([SILENCE_FRAME.subarray(0, 70), ...encodeUtteranceFrames(id, 400)]);
    for (let off = 0; off < audio.length; off += 100) ws.send(audio.subarray(off, off + 100));
    ws.send(JSON.stringify({ type: "Finalize" }));
    await until(() => msgs.some((m) => m.type === "Results" && m.is_final));
    const f = msgs.find((m) => m.type === "Results" && m.is_final);
    assert.ok(f?.type === "Results");
    assert.equal(f.channel.alternatives[0]?.transcript, "book a table");
    assert.equal(f.from_finalize, true);
    assert.equal(f.speech_final, false);
    assert.deepEqual(
      f.channel.alternatives[0]?.words.map((w) => w.word),
      ["book", "a", "table"],
    );
    assert.ok(msgs.some((m) => m.type === "SpeechStarted"));
    ws.close();
  } finally {
    await fake.close();
  }
});

test("FakeDeepgram: linear16 voice without a header transcribes by its pitch (a browser's microphone)", async () => {
  const fake = await FakeDeepgram.start();
  fake.registerToneUtterance(440, "hello from the browser");
  /** `ms` of a `hz` sine at `rate` (16-bit PCM), between silences, with a level a microphone gives. */
  const tone = (rate: number, hz: number, ms: number): Buffer => {
    const lead = rate / 5;
    const n = (rate * ms) / 1000;
    const pcm = Buffer.alloc((lead + n + rate / 2) * 2);
    for (let i = 0; i < n; i++) {
      pcm.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * hz * i) / rate)), (lead + i) * 2);
    }
    return pcm;
  };
  const say = async (audio: Buffer, sampleRate: number): Promise<string[]> => {
    const query = `encoding=linear16&sample_rate=${sampleRate}&interim_results=true&endpointing=300&model=nova-3`;
    const ws = new WebSocket(`${fake.url}/v1/listen?${query}`, { headers: { Authorization: "Token good" } });
    const msgs = collect(ws);
    await new Promise((resolve) => ws.once("open", resolve));
    // 20 ms chunks of an odd byte length now and then: samples split across messages.
    for (let off = 0; off < audio.length; off += 641) ws.send(audio.subarray(off, off + 641));
    await until(() => msgs.some((m) => m.type === "Results" && m.is_final));
    ws.close();
    return msgs.flatMap((m) =>
      m.type === "Results" && m.is_final ? [m.channel.alternatives[0]?.transcript ?? ""] : [],
    );
  };
  try {
    assert.deepEqual(await say(tone(16000, 440, 600), 16000), ["hello from the browser"]);
    assert.deepEqual(await say(tone(44100, 440, 600), 44100), ["hello from the browser"]);
    // The same sound at 48 kHz sent as if it were 16 kHz: three times the pitch, not recognised.
    assert.deepEqual(await say(tone(48000, 440, 600), 16000), [""]);
    // Another pitch is not the registered one either.
    assert.deepEqual(await say(tone(16000, 500, 600), 16000), [""]);
  } finally {
    await fake.close();
  }
});

// -------------------------------------------------------------------------------------- ElevenLabs

test("FakeElevenLabs: HTTP stream through the official SDK", async () => {
  const fake = await FakeElevenLabs.start({
    voices: ["voice123"],
    msPerChar: 50,
    ttfbMs: 20,
    chunkMs: 100,
    rejectKeys: ["xi-bad"],
  });
  try {
    const client = new ElevenLabsClient({ apiKey: "xi-key", baseUrl: fake.baseUrl, maxRetries: 0 });
    const audio = await client.textToSpeech.stream("voice123", {
      text: "Hello",
      modelId: "eleven_flash_v2_5",
      outputFormat: "ulaw_8000",
    });
    let bytes = 0;
    let chunks = 0;
    const reader = audio.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      bytes += r.value.length;
      chunks++;
    }
    assert.equal(bytes, 5 * 50 * 8);
    assert.ok(chunks >= 1);
    const req = fake.requests[0];
    assert.equal(req?.voiceId, "voice123");
    assert.equal(req?.query.output_format, "ulaw_8000");
    assert.equal(req?.headers["xi-api-key"], "xi-key");
    assert.equal(req?.body.model_id, "eleven_flash_v2_5");
    assert.equal(fake.totalCharacters, 5);

    const denied = new ElevenLabsClient({ apiKey: "xi-bad", baseUrl: fake.baseUrl, maxRetries: 0 });
    await assert.rejects(async () => {
      const s = await denied.textToSpeech.stream("voice123", { text: "Hi", outputFormat: "ulaw_8000" });
      await new Response(s).arrayBuffer();
    });
    assert.equal(fake.requests[1]?.status, 401);
  } finally {
    await fake.close();
  }
});

test("FakeElevenLabs: stream-input websocket with flush, alignment and EOS", async () => {
  const fake = await FakeElevenLabs.start({ msPerChar: 40, ttfbMs: 30, chunkMs: 200, voices: ["v1ce"] });
  try {
    const ws = new WebSocket(
      `${fake.url}/v1/text-to-speech/v1ce/stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000`,
    );
    const received: Array<{
      audio?: string | null;
      isFinal?: boolean | null;
      alignment?: { chars: string[] };
    }> = [];
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    ws.on("message", (d: RawData) => received.push(JSON.parse(String(d)) as (typeof received)[number]));
    await new Promise((resolve) => ws.once("open", resolve));
    const t0 = Date.now();
    ws.send(
      JSON.stringify({
        text: " ",
        voice_settings: { stability: 0.5, similarity_boost: 0.75 },
        xi_api_key: "xi-key",
      }),
    );
    ws.send(JSON.stringify({ text: "Hi there. " }));
    ws.send(JSON.stringify({ text: "", flush: true }));
    ws.send(JSON.stringify({ text: "Bye. " }));
    ws.send(JSON.stringify({ text: "" }));
    assert.equal(await closed, 1000);

    const audioMsgs = received.filter((m) => typeof m.audio === "string");
    const bytes = audioMsgs.reduce((n, m) => n + Buffer.from(m.audio ?? "", "base64").length, 0);
    assert.equal(bytes, 15 * 40 * 8);
    assert.ok(audioMsgs.every((m) => m.isFinal === null));
    assert.equal(audioMsgs.map((m) => m.alignment?.chars.join("")).join(""), "Hi there. Bye. ");
    assert.deepEqual(received[received.length - 1], { isFinal: true });
    const conn = fake.connections[0];
    assert.equal(conn?.key, "xi-key");
    assert.equal(conn?.charsReceived, 15);
    assert.deepEqual(
      conn?.generations.map((g) => g.text),
      ["Hi there. ", "Bye. "],
    );
    assert.ok((conn?.generations[0]?.firstAudioAt ?? 0) - t0 >= 25, "ttfb honoured");
    assert.deepEqual(conn?.voiceSettings, { stability: 0.5, similarity_boost: 0.75 });
  } finally {
    await fake.close();
  }
});

// ------------------------------------------------------------------------------------------ Twilio

test("FakeTwilio REST through the official SDK: numbers, calls, auth errors, signed callbacks", async () => {
  const callbacks: Array<{ params: Record<string, string>; valid: boolean }> = [];
  const cbServer = createServer(async (req, res) => {
    const params = await readForm(req);
    const url = `http://127.0.0.1:${(cbServer.address() as AddressInfo).port}${req.url}`;
    const sig = String(req.headers["x-twilio-signature"] ?? "");
    callbacks.push({ params, valid: twilio.validateRequest(TOKEN, sig, url, params) });
    res.end();
  });
  const cbPort = await listen(cbServer);
  const fake = await FakeTwilio.start({
    accounts: [{ accountSid: AC, authToken: TOKEN, numbers: [OUR_NUMBER, "+15550009999"] }],
    outboundOutcome: (p) => (p.To === "+15557770000" ? "busy" : "answer"),
    ringMs: 5,
  });
  try {
    const client = twilio(AC, TOKEN, { httpClient: fake.loopbackHttpClient() });
    const found = await client.incomingPhoneNumbers.list({ phoneNumber: OUR_NUMBER });
    assert.equal(found.length, 1);
    const pn = found[0];
    assert.ok(pn);
    assert.match(pn.sid, /^PN[0-9a-f]{32}$/);
    const updated = await client.incomingPhoneNumbers(pn.sid).update({
      voiceUrl: "https://app.example/twilio/inbound",
      voiceMethod: "POST",
      statusCallback: "https://app.example/twilio/status",
      statusCallbackMethod: "POST",
    });
    assert.equal(updated.voiceUrl, "https://app.example/twilio/inbound");
    assert.equal(fake.findNumber(OUR_NUMBER)?.statusCallback, "https://app.example/twilio/status");

    const wrong = twilio(AC, "nope", { httpClient: fake.loopbackHttpClient() });
    await assert.rejects(
      wrong.calls.list(),
      (e: unknown) => e instanceof twilio.RestException && e.status === 401,
    );
    await assert.rejects(
      client.calls(`CA${"0".repeat(32)}`).fetch(),
      (e: unknown) => e instanceof twilio.RestException && e.status === 404 && e.code === 20404,
    );
    await assert.rejects(
      client.calls.create({ to: "+15551230000", from: "+19999999999", twiml: "<Response/>" }),
      (e: unknown) => e instanceof twilio.RestException && e.code === 21210,
    );

    const statusCallback = `http://127.0.0.1:${cbPort}/status`;
    const busy = await client.calls.create({
      to: "+15557770000",
      from: OUR_NUMBER,
      twiml: "<Response><Hangup/></Response>",
      statusCallback,
      statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
    });
    assert.match(busy.sid, /^CA[0-9a-f]{32}$/);
    assert.equal(busy.status, "queued");
    assert.equal(busy.direction, "outbound-api");
    await fake.calls.get(busy.sid)?.waitForEnd();
    await new Promise((r) => setTimeout(r, 50));
    const busyCbs = callbacks.filter((c) => c.params.CallSid === busy.sid);
    assert.deepEqual(
      busyCbs.map((c) => c.params.CallStatus),
      ["initiated", "ringing", "busy"],
    );
    assert.ok(
      busyCbs.every((c) => c.valid),
      "status callbacks carry a valid X-Twilio-Signature",
    );
    assert.deepEqual(
      busyCbs.map((c) => c.params.SequenceNumber),
      ["0", "1", "2"],
    );

    const answered = await client.calls.create({
      to: "+15551230000",
      from: OUR_NUMBER,
      twiml: '<Response><Say>Hi</Say><Pause length="5"/><Dial>+15550002222</Dial></Response>',
      statusCallback,
    });
    const sim = fake.calls.get(answered.sid);
    await sim?.waitForEnd();
    assert.deepEqual(sim?.said, ["Hi"]);
    assert.equal(sim?.dialed?.target, "+15550002222");
    const fetched = await client.calls(answered.sid).fetch();
    assert.equal(fetched.status, "completed");
  } finally {
    await fake.close();
    await new Promise<void>((r) => cbServer.close(() => r()));
  }
});

/**
 * A minimal "app": answers the voice webhook with <Connect><Stream>, checks both signatures,
 * pipes caller audio to FakeDeepgram and, on speech_final, sends 300 ms of tone + a mark back.
 */
async function startMiniApp(deepgram: FakeDeepgram) {
  const seen = {
    webhookValid: false,
    upgradeValid: false,
    start: undefined as Record<string, unknown> | undefined,
    events: [] as string[],
    transcripts: [] as string[],
    dtmf: [] as string[],
    statusCallbacks: [] as Record<string, string>[],
  };
  let base = "";
  const server = createServer(async (req, res) => {
    const params = await readForm(req);
    const sig = String(req.headers["x-twilio-signature"] ?? "");
    if (req.url === "/status") {
      if (twilio.validateRequest(TOKEN, sig, `${base}/status`, params)) seen.statusCallbacks.push(params);
      res.end();
      return;
    }
    seen.webhookValid = twilio.validateRequest(TOKEN, sig, `${base}/voice`, params);
    if (!seen.webhookValid) {
      res.writeHead(403).end();
      return;
    }
    const vr = new twilio.twiml.VoiceResponse();
    vr.connect()
      .stream({ url: `${base.replace("http", "ws")}/media` })
      .parameter({ name: "callId", value: `call-for-${params.CallSid}` });
    res.writeHead(200, { "content-type": "text/xml" }).end(vr.toString());
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const sig = String(req.headers["x-twilio-signature"] ?? "");
    seen.upgradeValid = twilio.validateRequest(TOKEN, sig, `${base.replace("http", "ws")}/media`, {});
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stt = new WebSocket(
        `${deepgram.url}/v1/listen?encoding=mulaw&sample_rate=8000&interim_results=true&endpointing=100&vad_events=true&model=nova-3`,
        { headers: { Authorization: "Token app-key" } },
      );
      let streamSid = "";
      let replies = 0;
      stt.on("message", (d: RawData) => {
        const m = JSON.parse(String(d)) as DeepgramMessage;
        if (m.type !== "Results" || !m.speech_final) return;
        seen.transcripts.push(m.channel.alternatives[0]?.transcript ?? "");
        const n = ++replies;
        const payload = Buffer.alloc(2400, 0x1f).toString("base64"); // 300 ms of loud audio
        ws.send(JSON.stringify({ event: "media", streamSid, media: { payload } }));
        ws.send(JSON.stringify({ event: "mark", streamSid, mark: { name: `reply-${n}` } }));
      });
      ws.on("message", (d: RawData) => {
        const m = JSON.parse(String(d)) as {
          event: string;
          start?: Record<string, unknown>;
          streamSid?: string;
          media?: { payload: string };
          dtmf?: { digit: string };
          mark?: { name: string };
        };
        seen.events.push(m.event);
        if (m.event === "start") {
          seen.start = m.start;
          streamSid = m.streamSid ?? "";
        } else if (m.event === "media" && m.media && stt.readyState === WebSocket.OPEN) {
          stt.send(Buffer.from(m.media.payload, "base64"));
        } else if (m.event === "dtmf" && m.dtmf) {
          seen.dtmf.push(m.dtmf.digit);
          // Long audio then clear: the pending mark must come back at once.
          ws.send(
            JSON.stringify({
              event: "media",
              streamSid,
              media: { payload: Buffer.alloc(80_000, 0x1f).toString("base64") },
            }),
          );
          ws.send(JSON.stringify({ event: "mark", streamSid, mark: { name: "long" } }));
          setTimeout(() => ws.send(JSON.stringify({ event: "clear", streamSid })), 100);
        }
      });
      ws.on("close", () => stt.close());
    });
  });
  const port = await listen(server);
  base = `http://127.0.0.1:${port}`;
  return {
    seen,
    base,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test("TwilioCallSimulator: inbound call end to end through an app, latency, marks, clear, transfer", async () => {
  const deepgram = await FakeDeepgram.start({ interimIntervalMs: 100 });
  const app = await startMiniApp(deepgram);
  const fake = await FakeTwilio.start({
    accounts: [{ accountSid: AC, authToken: TOKEN, numbers: [OUR_NUMBER] }],
    simulator: { utterances: deepgram, recordAudio: true },
  });
  try {
    const client = twilio(AC, TOKEN, { httpClient: fake.loopbackHttpClient() });
    const pn = fake.findNumber(OUR_NUMBER);
    assert.ok(pn);
    await client
      .incomingPhoneNumbers(pn.sid)
      .update({ voiceUrl: `${app.base}/voice`, statusCallback: `${app.base}/status` });

    const sim = await fake.placeInboundCall({ to: OUR_NUMBER, from: "+15559998888" });
    assert.equal(sim.status, "in-progress");
    assert.ok(app.seen.webhookValid, "voice webhook signature validates");
    assert.equal(sim.webhooks[0]?.params.CallStatus, "ringing");
    assert.equal(sim.webhooks[0]?.params.Direction, "inbound");
    assert.match(sim.callSid, /^CA[0-9a-f]{32}$/);
    assert.equal(parseTwiml(sim.twiml ?? "").children[0]?.name, "Connect");
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(app.seen.upgradeValid, "stream upgrade signature validates");
    assert.deepEqual(app.seen.events.slice(0, 2), ["connected", "start"]);
    assert.deepEqual(app.seen.start?.customParameters, { callId: `call-for-${sim.callSid}` });
    assert.equal(app.seen.start?.callSid, sim.callSid);
    assert.match(String(app.seen.start?.streamSid), /^MZ[0-9a-f]{32}$/);

    const turn = await sim.say("hello there", 400);
    await sim.waitForMark("reply-1", 3000);
    assert.deepEqual(app.seen.transcripts, ["hello there"]);
    // Measured and plausible; no lower bound: under load the shared frame timer sends catch-up frames
    // in a burst, so the caller's last voiced frame can leave later than its audio time.
    assert.ok(turn.latencyMs !== undefined && turn.latencyMs > 0, `latency ${turn.latencyMs}`);
    assert.ok(turn.latencyMs < 1000, `latency ${turn.latencyMs}`);
    // The mark is echoed only after the 300 ms reply finished playing.
    assert.ok(Date.now() - (turn.firstHeardAt ?? 0) >= 280);
    assert.equal(sim.heardBytes, 2400);
    assert.equal(sim.heardAudio().length, 2400);

    sim.pressDigit("5");
    await sim.waitForMark("long", 2000);
    assert.deepEqual(app.seen.dtmf, ["5"]);
    assert.equal(sim.clears, 1);
    assert.ok(sim.clearedBytes > 70_000, `cleared ${sim.clearedBytes}`);
    assert.equal(sim.queuedBytes, 0);

    const framesBefore = sim.framesSent;
    await new Promise((r) => setTimeout(r, 200));
    const pace = sim.framesSent - framesBefore;
    assert.ok(pace >= 7 && pace <= 14, `~50 frames/s (got ${pace} in 200 ms)`);

    // Transfer: the app replaces the TwiML over REST; the stream stops and the Dial is recorded.
    await client.calls(sim.callSid).update({ twiml: "<Response><Dial>+15550002222</Dial></Response>" });
    await sim.waitForEnd();
    assert.equal(sim.dialed?.target, "+15550002222");
    assert.equal(sim.endedReason, "dial");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(app.seen.events[app.seen.events.length - 1], "stop");
    assert.equal(app.seen.statusCallbacks.length, 1);
    assert.equal(app.seen.statusCallbacks[0]?.CallStatus, "completed");
  } finally {
    await fake.close();
    await app.close();
    await deepgram.close();
  }
});

test("TwilioCallSimulator: outbound call answered into a stream, then the caller hangs up", async () => {
  const deepgram = await FakeDeepgram.start();
  const app = await startMiniApp(deepgram);
  const fake = await FakeTwilio.start({
    accounts: [{ accountSid: AC, authToken: TOKEN, numbers: [OUR_NUMBER] }],
    ringMs: 10,
  });
  try {
    const client = twilio(AC, TOKEN, { httpClient: fake.loopbackHttpClient() });
    const next = fake.nextCall();
    const twiml = `<Response><Connect><Stream url="${app.base.replace("http", "ws")}/media"><Parameter name="callId" value="out-1"/></Stream></Connect></Response>`;
    const call = await client.calls.create({
      to: "+15551230000",
      from: OUR_NUMBER,
      twiml,
      statusCallback: `${app.base}/status`,
      statusCallbackEvent: ["initiated", "ringing", "answered", "completed"],
    });
    const sim = await next;
    assert.equal(sim.callSid, call.sid);
    await sim.waitForStreamStart();
    assert.deepEqual(sim.customParameters, { callId: "out-1" });
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(app.seen.events.includes("media"));
    await sim.hangup();
    assert.equal(sim.status, "completed");
    assert.equal(sim.endedReason, "caller-hangup");
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(app.seen.events[app.seen.events.length - 1], "stop");
    assert.deepEqual(
      app.seen.statusCallbacks.map((c) => c.CallStatus),
      ["initiated", "ringing", "in-progress", "completed"],
    );
    assert.equal(app.seen.statusCallbacks[3]?.Direction, "outbound-api");
    assert.ok(Number(app.seen.statusCallbacks[3]?.CallDuration) >= 0);
  } finally {
    await fake.close();
    await app.close();
    await deepgram.close();
  }
});
