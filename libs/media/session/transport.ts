import type { OutboundSink } from "../pacer.ts";

// The call's media connection as the session sees it, whatever carries it: Twilio Media Streams
// today (JSON text frames, base64 μ-law), a raw websocket next (binary audio frames, JSON text
// control frames). A transport turns the wire into these events and the session's output into the
// wire; it knows nothing of turns, tools or billing.

/** The websocket under a transport. */
export interface MediaSocket {
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  readonly open: boolean;
}

/** What the far end sent to start the call: the call it claims and the token proving it. */
export interface TransportStart {
  callId: string;
  token: string;
  /** The carrier's id of the call (Twilio's CallSid), empty when there is none. */
  providerCallId: string;
}

/** What a transport reports to the session. */
export interface TransportEvents {
  /** The stream's first message: which call it is. */
  onStart(start: TransportStart): void;
  /**
   * Caller audio (μ-law 8 kHz), only while `acceptingAudio`. The hot path: 50 times a second per
   * call, so a transport hands over the decoded bytes and nothing else.
   */
  onAudio(audio: Buffer): void;
  /** The far end played audio up to this mark (playback position). */
  onMark(name: string): void;
  /** A keypad key the caller pressed. */
  onDigit(digit: string): void;
  /** The far end says the call is over (the caller hung up). */
  onHangup(): void;
}

/**
 * A call's media transport. As an `OutboundSink` it takes the pacer's frames and marks; `clear`
 * drops what the far end has buffered (barge-in); `close` hangs up the media connection.
 */
export interface CallTransport extends OutboundSink {
  /** Who carries the call, as the usage's `transport.provider`. */
  readonly provider: string;
  /** Whether caller audio is wanted now (set by the session as the call starts and ends). */
  acceptingAudio: boolean;
  /** Where the transport reports; set once by the session that owns it. */
  bind(events: TransportEvents): void;
  /** One websocket message as received. */
  receive(data: Buffer, isBinary: boolean): void;
  /** Stops what the far end has buffered from playing, at once. */
  clear(): void;
  close(code?: number, reason?: string): void;
  readonly open: boolean;
}
