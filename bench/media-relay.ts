// The BARE RELAY baseline of `npm run bench:media`, run in its own node process: the least a
// websocket server must do to carry a phone call between Twilio and the providers, with no turn
// logic, no database, no LLM. Per Twilio media stream:
//   - `start` → one Deepgram `/v1/listen` socket (same query as the platform) and one ElevenLabs
//     `stream-input` socket (BOS sent); the first message text goes to TTS at once.
//   - inbound `media` → base64-decoded μ-law bytes to Deepgram (payload cut out of the message's bytes,
//     like the platform's hot path).
//   - a Deepgram final with `speech_final` and words → the fixed reply text to TTS (`flush`).
//   - TTS audio → 160-byte frames sent to Twilio as `media` off ONE shared 20 ms timer with 3 frames
//     of lead (the same wire output as the platform's pacer), and a `mark` when the queue runs dry.
//   - `stop` / close → both provider sockets closed.
// `POST /voice` answers TwiML `<Connect><Stream>` to this server, so the same TwilioCallSimulator
// drives it.
// Web calls (bench:media's websocket variant), the same with Vapi's `vapi.websocket` transport in PCM
// s16le 16 kHz: `POST /call` answers `{id, transport: {websocketCallUrl}}` (a URL on this server, as
// the API's answer names the media process), and per websocket
//   - inbound binary frames → to Deepgram as they are (`linear16` at 16 kHz: no conversion, as the
//     platform sends a format the transcriber takes);
//   - ElevenLabs asked for `pcm_16000`; its audio → 640-byte binary frames (20 ms) off the same
//     shared timer, and `{"type":"speech-update","status":"stopped","role":"assistant"}` when the queue
//     runs dry (where the platform's client hears the assistant stopped);
//   - a text frame `{"type":"hangup"}` / close → both provider sockets closed. Env: BENCH_DEEPGRAM_URL, BENCH_ELEVENLABS_URL, BENCH_ENDPOINTING_MS, BENCH_FIRST_TEXT,
// BENCH_REPLY_TEXT. Sends `{ready, port}` to the parent over IPC.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { answerParent } from "./child-ipc.ts";

const FRAME_MS = 20;
const LEAD_FRAMES = 3;
const DG = process.env.BENCH_DEEPGRAM_URL ?? "";
const EL = process.env.BENCH_ELEVENLABS_URL ?? "";
const ENDPOINTING = process.env.BENCH_ENDPOINTING_MS ?? "100";
const FIRST = process.env.BENCH_FIRST_TEXT ?? "Hello.";
const REPLY = process.env.BENCH_REPLY_TEXT ?? "Hello.";

const listenQuery = (encoding: string, rate: number) =>
  new URLSearchParams({
    encoding,
    sample_rate: String(rate),
    channels: "1",
    model: "nova-3",
    language: "en",
    interim_results: "true",
    endpointing: ENDPOINTING,
    utterance_end_ms: "1000",
    vad_events: "true",
    smart_format: "true",
    punctuate: "true",
  }).toString();
/** What each kind of call speaks: Twilio's μ-law 8 kHz (base64 in JSON), or a web call's PCM 16 kHz (binary). */
const KINDS = {
  twilio: { listen: listenQuery("mulaw", 8000), output: "ulaw_8000", frameBytes: 160 },
  web: { listen: listenQuery("linear16", 16000), output: "pcm_16000", frameBytes: 640 },
} as const;
type Kind = keyof typeof KINDS;
const MEDIA_EVENT = Buffer.from('"event":"media"');
const PAYLOAD_KEY = Buffer.from('"payload":"');
const ttsPath = (output: string) =>
  `/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input?model_id=eleven_turbo_v2_5&output_format=${output}&inactivity_timeout=60`;
const SPEECH_STOPPED = '{"type":"speech-update","status":"stopped","role":"assistant"}';

class RelayCall {
  readonly #twilio: WebSocket;
  readonly #kind: Kind;
  readonly #frameBytes: number;
  #streamSid = "";
  #dg: WebSocket | undefined;
  #tts: WebSocket | undefined;
  readonly #queue: Buffer[] = [];
  #off = 0;
  #playStartAt = 0;
  #framesSent = 0;

  constructor(ws: WebSocket, kind: Kind) {
    this.#twilio = ws;
    this.#kind = kind;
    this.#frameBytes = KINDS[kind].frameBytes;
    if (kind === "web") {
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (isBinary) {
          const dg = this.#dg;
          if (dg && dg.readyState === WebSocket.OPEN) dg.send(data);
        } else if (data.includes('"hangup"')) this.#close();
      });
      this.#open();
    } else
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (!isBinary) this.#onTwilio(data);
      });
    ws.on("close", () => this.#close());
    ws.on("error", () => {});
  }

  get active(): boolean {
    return this.#queue.length > 0;
  }

  #onTwilio(data: Buffer): void {
    // The payload is cut out of the bytes, as the platform does (no string of the whole message).
    if (data.indexOf(MEDIA_EVENT) >= 0) {
      const at = data.indexOf(PAYLOAD_KEY);
      if (at < 0) return;
      const end = data.indexOf(0x22, at + PAYLOAD_KEY.length);
      const dg = this.#dg;
      if (end > 0 && dg && dg.readyState === WebSocket.OPEN)
        dg.send(Buffer.from(data.toString("latin1", at + PAYLOAD_KEY.length, end), "base64"));
      return;
    }
    let msg: { event?: string; streamSid?: string };
    try {
      msg = JSON.parse(data.toString("utf8")) as typeof msg;
    } catch {
      return;
    }
    if (msg.event === "start") {
      this.#streamSid = msg.streamSid ?? "";
      this.#open();
    } else if (msg.event === "stop") this.#close();
  }

  #open(): void {
    const dg = new WebSocket(`${DG}/v1/listen?${KINDS[this.#kind].listen}`, {
      headers: { Authorization: "Token platform-deepgram" },
      perMessageDeflate: false,
    });
    dg.on("error", () => {});
    dg.on("message", (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      const msg = JSON.parse(data.toString()) as {
        type?: string;
        speech_final?: boolean;
        channel?: { alternatives?: Array<{ transcript?: string }> };
      };
      if (msg.type === "Results" && msg.speech_final && msg.channel?.alternatives?.[0]?.transcript)
        this.#say(REPLY);
    });
    this.#dg = dg;
    const tts = new WebSocket(`${EL}${ttsPath(KINDS[this.#kind].output)}`, {
      headers: { "xi-api-key": "platform-elevenlabs" },
      perMessageDeflate: false,
    });
    tts.on("error", () => {});
    tts.on("open", () => {
      tts.send('{"text":" ","generation_config":{"chunk_length_schedule":[50,120,160,250]}}');
      this.#say(FIRST);
    });
    tts.on("message", (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      const msg = JSON.parse(data.toString()) as { audio?: string | null };
      if (typeof msg.audio === "string" && msg.audio.length > 0)
        this.#enqueue(Buffer.from(msg.audio, "base64"));
    });
    this.#tts = tts;
  }

  #say(text: string): void {
    const tts = this.#tts;
    if (tts && tts.readyState === WebSocket.OPEN) tts.send(JSON.stringify({ text: `${text} `, flush: true }));
  }

  #enqueue(audio: Buffer): void {
    const wasIdle = this.#queue.length === 0;
    this.#queue.push(audio);
    if (wasIdle) {
      this.#off = 0;
      this.#playStartAt = Date.now();
      this.#framesSent = 0;
      active.add(this);
      this.pump(this.#playStartAt);
    }
  }

  pump(now: number): void {
    const due = Math.floor((now - this.#playStartAt) / FRAME_MS) + 1 + LEAD_FRAMES;
    let budget = due - this.#framesSent;
    while (budget > 0 && this.#queue.length > 0) {
      const head = this.#queue[0] as Buffer;
      const n = Math.min(this.#frameBytes, head.length - this.#off);
      if (this.#kind === "web") {
        if (this.#twilio.readyState === WebSocket.OPEN)
          this.#twilio.send(head.subarray(this.#off, this.#off + n));
      } else
        this.#send(
          `{"event":"media","streamSid":"${this.#streamSid}","media":{"payload":"${head.toString("base64", this.#off, this.#off + n)}"}}`,
        );
      const lateBy = now - (this.#playStartAt + Math.max(0, this.#framesSent - LEAD_FRAMES) * FRAME_MS);
      pacing.framesSent++;
      if (lateBy > 40) {
        pacing.lateFrames++;
        pacing.maxLateMs = Math.max(pacing.maxLateMs, lateBy);
      }
      this.#off += n;
      if (this.#off >= head.length) {
        this.#queue.shift();
        this.#off = 0;
      }
      this.#framesSent++;
      budget--;
    }
    if (this.#queue.length === 0) {
      active.delete(this);
      this.#send(
        this.#kind === "web"
          ? SPEECH_STOPPED
          : `{"event":"mark","streamSid":"${this.#streamSid}","mark":{"name":"relay:end"}}`,
      );
    }
  }

  #send(text: string): void {
    if (this.#twilio.readyState === WebSocket.OPEN) this.#twilio.send(text);
  }

  #close(): void {
    active.delete(this);
    this.#queue.length = 0;
    this.#dg?.close(1000);
    this.#tts?.terminate();
    this.#dg = undefined;
    this.#tts = undefined;
    if (this.#twilio.readyState === WebSocket.OPEN) this.#twilio.close(1000);
  }
}

const active = new Set<RelayCall>();
/** Frames sent and how many left more than 40 ms behind their schedule (as the platform's pacer counts). */
const pacing = { framesSent: 0, lateFrames: 0, maxLateMs: 0 };
setInterval(() => {
  const now = Date.now();
  for (const call of active) call.pump(now);
}, FRAME_MS);

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
let webCalls = 0;
const server = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/call") {
    req.resume();
    const { port } = server.address() as AddressInfo;
    const id = `relay-${++webCalls}`;
    res.writeHead(201, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id,
        transport: { websocketCallUrl: `ws://127.0.0.1:${port}/${id}/transport?token=relay` },
      }),
    );
    return;
  }
  if (req.method === "POST" && req.url?.startsWith("/voice")) {
    req.resume();
    const { port } = server.address() as AddressInfo;
    res.writeHead(200, { "content-type": "text/xml" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://127.0.0.1:${port}/twilio/stream"/></Connect></Response>`,
    );
    return;
  }
  res.writeHead(404);
  res.end();
});
server.on("upgrade", (req, socket, head) => {
  const kind: Kind | undefined = req.url?.startsWith("/twilio/stream")
    ? "twilio"
    : /^\/[^/]+\/transport\?/.test(req.url ?? "")
      ? "web"
      : undefined;
  if (!kind) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => new RelayCall(ws, kind));
});
server.listen(0, "127.0.0.1", () => {
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
});
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));

answerParent(pacing);
