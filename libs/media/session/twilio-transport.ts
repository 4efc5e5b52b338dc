import { MULAW_8K } from "../audio-format.ts";
import type {
  CallTransport,
  MediaSocket,
  StartRefusal,
  TransportAudio,
  TransportEvents,
} from "./transport.ts";

// Twilio Media Streams (https://www.twilio.com/docs/voice/media-streams/websocket-messages): JSON
// text frames both ways; caller audio arrives as base64 μ-law 8 kHz in `media` events, ours leaves
// the same way; `mark` echoes tell how far playback got; `clear` drops Twilio's buffer; `stop` is
// the hang-up.

type Json = Record<string, unknown>;

interface TwilioStart {
  streamSid?: string;
  callSid?: string;
  accountSid?: string;
  customParameters?: Record<string, string>;
}

const MEDIA_EVENT = Buffer.from('"event":"media"');
const PAYLOAD_KEY = Buffer.from('"payload":"');
const QUOTE = 0x22;

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Until the session binds: events go nowhere. */
const UNBOUND: TransportEvents = {
  onStart() {},
  onAudio() {},
  onMark() {},
  onDigit() {},
  onHangup() {},
  onEnded() {},
  onControl() {},
  onProtocolWarning() {},
};

export class TwilioMediaStream implements CallTransport {
  readonly provider = "twilio";
  /** Twilio streams μ-law 8 kHz both ways. */
  readonly audio: TransportAudio = { caller: MULAW_8K, playback: MULAW_8K };
  acceptingAudio = false;
  readonly #socket: MediaSocket;
  #events: TransportEvents = UNBOUND;
  #streamSid = "";
  #started = false;

  constructor(socket: MediaSocket) {
    this.#socket = socket;
  }

  bind(events: TransportEvents): void {
    this.#events = events;
  }

  get open(): boolean {
    return this.#socket.open;
  }

  /**
   * A websocket text message as received. The hot path, 50 per second per call: a `media` frame's
   * payload is cut out of the bytes and decoded without turning the whole message into a string;
   * anything else goes to `#onEvent`. Binary messages are not part of the protocol.
   */
  receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) return;
    if (data.indexOf(MEDIA_EVENT) >= 0) {
      // While the call starts, the caller's audio is kept for the transcriber.
      if (!this.acceptingAudio) return;
      const at = data.indexOf(PAYLOAD_KEY);
      if (at < 0) return;
      const from = at + PAYLOAD_KEY.length;
      const end = data.indexOf(QUOTE, from);
      if (end < 0) return;
      this.#events.onAudio(Buffer.from(data.toString("latin1", from, end), "base64"));
      return;
    }
    this.#onEvent(data.toString("utf8"));
  }

  /** Every message but `media` (connected, start, mark, dtmf, stop): parsed in full. */
  #onEvent(raw: string): void {
    let msg: Json;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!isObj(parsed)) return;
      msg = parsed;
    } catch {
      return;
    }
    switch (msg.event) {
      case "start": {
        // Only the first `start` counts; a repeat cannot re-point the stream.
        if (this.#started || !isObj(msg.start)) return;
        this.#started = true;
        const start = msg.start as TwilioStart;
        this.#streamSid =
          (typeof msg.streamSid === "string" ? msg.streamSid : undefined) ?? start.streamSid ?? "";
        const params = start.customParameters ?? {};
        this.#events.onStart({
          callId: params.callId ?? "",
          token: params.token ?? "",
          providerCallId: start.callSid ?? "",
        });
        return;
      }
      case "mark":
        if (isObj(msg.mark) && typeof msg.mark.name === "string") this.#events.onMark(msg.mark.name);
        return;
      case "dtmf":
        if (isObj(msg.dtmf) && typeof msg.dtmf.digit === "string") this.#events.onDigit(msg.dtmf.digit);
        return;
      case "stop":
        this.#events.onHangup();
        return;
      default:
        return;
    }
  }

  sendMedia(frame: Buffer): void {
    const payload = frame.toString("base64");
    this.#socket.send(`{"event":"media","streamSid":"${this.#streamSid}","media":{"payload":"${payload}"}}`);
  }

  sendMark(name: string): void {
    this.#socket.send(`{"event":"mark","streamSid":"${this.#streamSid}","mark":{"name":"${name}"}}`);
  }

  clear(): void {
    this.#socket.send(`{"event":"clear","streamSid":"${this.#streamSid}"}`);
  }

  /** Twilio shows the close reason in its debugger only: one wording for every refusal. */
  refuse(_reason: StartRefusal): void {
    this.#socket.close(1008, "stream refused");
  }

  close(code?: number, reason?: string): void {
    this.#socket.close(code, reason);
  }
}
