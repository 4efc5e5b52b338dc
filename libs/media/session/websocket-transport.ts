import { Value } from "@sinclair/typebox/value";
import { callTransport, originAllowed } from "../../calls/transport.ts";
import type { Call as CallRow } from "../../db/index.ts";
import { CallControlMessage } from "../../telephony/control-bus.ts";
import { type AudioFormat, durationMs, LINEAR16_16K } from "../audio-format.ts";
import { ENDED } from "../ended-reasons.ts";
import type { ScheduleTimer } from "../stream-guard.ts";
import type { MediaLogger } from "./context.ts";
import type {
  CallTransport,
  MediaSocket,
  StartRefusal,
  TransportAudio,
  TransportEvents,
} from "./transport.ts";

// Vapi's `vapi.websocket` transport: the client opens `websocketCallUrl`
// (`/<callId>/transport?token=…`) and the call starts at once. Binary frames carry raw audio both
// ways in the call's format (`Call.transport.audioFormat`: PCM s16le or μ-law, mono, at its rate);
// text frames carry JSON: control from the client (`{"type":"hangup"}`, `{"type":"end-call"}`,
// Vapi's `say` and `add-message`), the assistant's client messages (`clientMessages`) to it.
//
// The client echoes no marks, so playback is timed by the clock of the audio already sent: a frame
// plays from when the previous one ends (or from when it is sent, after a gap), and a mark is
// "echoed" once the audio queued before it has played by that clock. A barge-in stops sending at
// once; marks not yet due are dropped, so what counts as heard is what was sent and played.

/** A call whose client has sent no audio this long after it was claimed ends (Vapi's reason). */
export const NO_CUSTOMER_AUDIO_MS = 20_000;

/** Close reasons a refused client reads (the socket's close frame; browsers see nothing else). */
const REFUSALS: Record<StartRefusal, { code: number; reason: string }> = {
  malformed: { code: 1008, reason: "invalid token" },
  "bad-signature": { code: 1008, reason: "invalid token" },
  "wrong-call": { code: 1008, reason: "invalid token" },
  "call-not-found": { code: 1008, reason: "invalid token" },
  "wrong-transport": { code: 1008, reason: "not a websocket call" },
  expired: { code: 1008, reason: "expired" },
  "already-used": { code: 1008, reason: "already used" },
  "call-ended": { code: 1008, reason: "call ended" },
  "origin-not-allowed": { code: 1008, reason: "origin not allowed" },
  error: { code: 1011, reason: "internal error" },
};

/** The call's audio format from its row (`Call.transport.audioFormat`). */
export function websocketAudioFormat(call: Pick<CallRow, "transport">): AudioFormat | undefined {
  const t = callTransport(call.transport);
  if (!t) return undefined;
  const { format, sampleRate } = t.audioFormat;
  return { encoding: format === "mulaw" ? "mulaw" : "linear16", sampleRate };
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

export interface RawWebsocketOptions {
  socket: MediaSocket;
  /** From the URL the client opened. */
  callId: string;
  token: string;
  /** The upgrade request's `Origin` header (browsers always send one). */
  origin: string | undefined;
  /** The call's timers (mark echoes, the no-audio bound): tests advance their own. */
  schedule: ScheduleTimer;
  now: () => number;
  log: Pick<MediaLogger, "warn">;
  /** Default NO_CUSTOMER_AUDIO_MS. */
  noAudioTimeoutMs?: number;
}

export class RawWebsocketTransport implements CallTransport {
  readonly provider = "vapi.websocket";
  acceptingAudio = false;
  #audio: TransportAudio = { caller: LINEAR16_16K, playback: LINEAR16_16K };
  readonly #socket: MediaSocket;
  readonly #start: { callId: string; token: string };
  readonly #origin: string | undefined;
  readonly #schedule: ScheduleTimer;
  readonly #now: () => number;
  readonly #log: Pick<MediaLogger, "warn">;
  readonly #noAudioTimeoutMs: number;
  #events: TransportEvents = UNBOUND;
  #linear16 = true;
  /** linear16: the first byte of a sample whose second byte is in the next frame. */
  #oddByte: number | undefined;
  #audioReceived = false;
  #cancelNoAudio: (() => void) | undefined;
  /** Wall time the audio sent so far will have played by (the far end's playback clock). */
  #playedUntil = 0;
  /** Mark echoes waiting for their audio to play. */
  readonly #marks = new Set<() => void>();
  /** What was already reported once (malformed control, text where audio is expected). */
  readonly #warned = new Set<string>();

  constructor(options: RawWebsocketOptions) {
    this.#socket = options.socket;
    this.#start = { callId: options.callId, token: options.token };
    this.#origin = options.origin;
    this.#schedule = options.schedule;
    this.#now = options.now;
    this.#log = options.log;
    this.#noAudioTimeoutMs = options.noAudioTimeoutMs ?? NO_CUSTOMER_AUDIO_MS;
  }

  get audio(): TransportAudio {
    return this.#audio;
  }

  get open(): boolean {
    return this.#socket.open;
  }

  bind(events: TransportEvents): void {
    this.#events = events;
  }

  /** The client connected: the URL named the call and carried its token. */
  start(): void {
    this.#events.onStart({ ...this.#start, providerCallId: "" });
  }

  admit(call: Pick<CallRow, "transport">): StartRefusal | undefined {
    const t = callTransport(call.transport);
    if (!t) return "wrong-transport";
    return originAllowed(t.allowedOrigins, this.#origin) ? undefined : "origin-not-allowed";
  }

  useCall(call: CallRow): void {
    const format = websocketAudioFormat(call) ?? LINEAR16_16K;
    this.#audio = { caller: format, playback: format };
    this.#linear16 = format.encoding === "linear16";
    // A client that never sends audio cannot be heard: the call ends instead of waiting for silence.
    this.#cancelNoAudio = this.#schedule(() => {
      this.#cancelNoAudio = undefined;
      if (!this.#audioReceived) this.#events.onEnded(ENDED.noCustomerAudio);
    }, this.#noAudioTimeoutMs);
  }

  /**
   * A client that closes cleanly (1000, or 1001 when the page goes away) without a hangup message
   * has still ended the call itself; any other close (a dropped connection, a protocol error) is
   * the transport's websocket closing under the call.
   */
  endedReasonOnClose(code: number): string {
    return code === 1000 || code === 1001 ? ENDED.customerEnded : ENDED.socketClosed;
  }

  refuse(reason: StartRefusal): void {
    const { code, reason: text } = REFUSALS[reason];
    this.close(code, text);
  }

  receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.#onAudio(data);
      return;
    }
    this.#onText(data);
  }

  /** Caller audio: whole samples only (a PCM frame of odd length carries its last byte over). */
  #onAudio(data: Buffer): void {
    if (!this.#audioReceived && data.length > 0) {
      this.#audioReceived = true;
      this.#cancelNoAudio?.();
      this.#cancelNoAudio = undefined;
    }
    if (!this.acceptingAudio) return;
    let frame = data;
    if (this.#linear16) {
      if (this.#oddByte !== undefined) {
        frame = Buffer.concat([Buffer.of(this.#oddByte), data]);
        this.#oddByte = undefined;
      }
      if (frame.length % 2 === 1) {
        this.#oddByte = frame[frame.length - 1];
        frame = frame.subarray(0, frame.length - 1);
        this.#warnOnce("odd-frame", "websocket client sent a PCM frame of odd length");
      }
    }
    if (frame.length > 0) this.#events.onAudio(frame);
  }

  /** A text frame: JSON control. Anything else is ignored (and reported once per kind). */
  #onText(data: Buffer): void {
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString("utf8"));
    } catch {
      this.#warnOnce(
        "not-json",
        "websocket client sent a text frame that is not JSON (audio goes in binary frames)",
      );
      return;
    }
    const type = typeof msg === "object" && msg !== null ? (msg as { type?: unknown }).type : undefined;
    if (type === "hangup" || type === "end-call") {
      this.#events.onHangup();
      return;
    }
    if ((type === "say" || type === "add-message") && Value.Check(CallControlMessage, msg)) {
      this.#events.onControl(msg);
      return;
    }
    this.#warnOnce(
      `control:${String(type).slice(0, 40)}`,
      "websocket client sent an unknown control message",
    );
  }

  #warnOnce(kind: string, message: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    // The kind only (a message type), never the payload: it may carry what the caller said.
    this.#log.warn({ callId: this.#start.callId.slice(0, 36), kind }, message);
    this.#events.onProtocolWarning(kind, message);
  }

  sendMedia(frame: Buffer): void {
    if (!this.#socket.open) return;
    const now = this.#now();
    this.#playedUntil = Math.max(this.#playedUntil, now) + durationMs(frame.length, this.#audio.playback);
    this.#socket.send(frame);
  }

  /** Echoed once the audio sent before it has played by the playback clock. */
  sendMark(name: string): void {
    const wait = Math.max(0, this.#playedUntil - this.#now());
    const cancel = this.#schedule(() => {
      this.#marks.delete(cancel);
      this.#events.onMark(name);
    }, wait);
    this.#marks.add(cancel);
  }

  /** Barge-in: nothing more is heard of what was sent; its marks never come. */
  clear(): void {
    for (const cancel of this.#marks) cancel();
    this.#marks.clear();
    this.#playedUntil = this.#now();
  }

  /** One of the assistant's client messages (`clientMessages`), as a JSON text frame. */
  sendClientMessage(message: Record<string, unknown>): void {
    if (this.#socket.open) this.#socket.send(JSON.stringify(message));
  }

  close(code?: number, reason?: string): void {
    this.#cancelNoAudio?.();
    this.#cancelNoAudio = undefined;
    for (const cancel of this.#marks) cancel();
    this.#marks.clear();
    this.#socket.close(code, reason);
  }
}
