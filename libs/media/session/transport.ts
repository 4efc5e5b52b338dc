import type { Call as CallRow } from "../../db/index.ts";
import type { CallControlMessage } from "../../telephony/control-bus.ts";
import type { AudioFormat } from "../audio-format.ts";
import type { OutboundSink } from "../pacer.ts";

// The call's media connection as the session sees it, whatever carries it: Twilio Media Streams
// (JSON text frames, base64 μ-law 8 kHz) or Vapi's raw websocket (binary audio frames in the call's
// format, JSON text control frames). A transport turns the wire into these events and the session's
// output into the wire; it knows nothing of turns, tools or billing.

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

/** Why a stream's start was refused (the call is untouched). */
export type StartRefusal =
  | "malformed"
  | "bad-signature"
  | "wrong-call"
  | "expired"
  | "call-not-found"
  | "already-used"
  | "call-ended"
  | "wrong-transport"
  | "origin-not-allowed"
  | "error";

/** The call's audio on a transport, both ways. */
export interface TransportAudio {
  /** What the caller's audio (`onAudio`) is in. */
  caller: AudioFormat;
  /** What `sendMedia` takes (what the far end plays). */
  playback: AudioFormat;
}

/** What a transport reports to the session. */
export interface TransportEvents {
  /** The stream's first message: which call it is. */
  onStart(start: TransportStart): void;
  /**
   * Caller audio in `audio.caller` (whole samples), only while `acceptingAudio`. The hot path: 50
   * times a second per call, so a transport hands over the decoded bytes and nothing else.
   */
  onAudio(audio: Buffer): void;
  /** The far end played audio up to this mark (playback position). */
  onMark(name: string): void;
  /** A keypad key the caller pressed. */
  onDigit(digit: string): void;
  /** The far end says the call is over (the caller hung up). */
  onHangup(): void;
  /** The transport ends the call for a reason of its own protocol (an endedReason). */
  onEnded(endedReason: string): void;
  /** Live control from the far end (Vapi's `say`, `add-message`). */
  onControl(msg: CallControlMessage): void;
  /** The far end broke the protocol in a way the call survives (reported once per kind per call). */
  onProtocolWarning(kind: string, message: string): void;
}

/**
 * A call's media transport. As an `OutboundSink` it takes the pacer's frames and marks; `clear`
 * drops what the far end has buffered (barge-in); `close` hangs up the media connection.
 */
export interface CallTransport extends OutboundSink {
  /** Who carries the call, as the usage's `transport.provider`. */
  readonly provider: string;
  /** The call's audio formats; final once `useCall` has been given the claimed row. */
  readonly audio: TransportAudio;
  /**
   * Optional: whether this transport may carry the call, judged from its row before the call is
   * claimed (the token's signature is already good). A refusal leaves the call untouched.
   */
  admit?(call: Pick<CallRow, "transport">): StartRefusal | undefined;
  /** Optional: the call was claimed; the transport takes its settings (its audio format) from the row. */
  useCall?(call: CallRow): void;
  /** The start was refused: closes the connection saying why, as the far end expects. */
  refuse(reason: StartRefusal): void;
  /** Optional: the endedReason of a call whose connection closed with `code` (default phone-call-provider-closed-websocket). */
  endedReasonOnClose?(code: number): string;
  /** Optional: one of the assistant's client messages (`clientMessages`) for the far end. */
  sendClientMessage?(message: Record<string, unknown>): void;
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
