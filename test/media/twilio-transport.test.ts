import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type MediaSocket,
  type TransportEvents,
  type TransportStart,
  TwilioMediaStream,
} from "../../libs/media/session/index.ts";

// The Twilio Media Streams transport on its own: what Twilio's messages become for the session, and
// what the session's output becomes on the wire (https://www.twilio.com/docs/voice/media-streams/websocket-messages).

class Socket implements MediaSocket {
  sent: string[] = [];
  closed: { code?: number; reason?: string } | undefined;
  get open(): boolean {
    return this.closed === undefined;
  }
  send(data: string | Buffer): void {
    this.sent.push(data.toString());
  }
  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }
}

class Events implements TransportEvents {
  starts: TransportStart[] = [];
  audio: Buffer[] = [];
  marks: string[] = [];
  digits: string[] = [];
  hangups = 0;
  onStart(start: TransportStart): void {
    this.starts.push(start);
  }
  onAudio(audio: Buffer): void {
    this.audio.push(audio);
  }
  onMark(name: string): void {
    this.marks.push(name);
  }
  onDigit(digit: string): void {
    this.digits.push(digit);
  }
  onHangup(): void {
    this.hangups++;
  }
  onEnded(): void {}
  onControl(): void {}
  onProtocolWarning(): void {}
}

function frame(msg: object): Buffer {
  return Buffer.from(JSON.stringify(msg));
}

const START = {
  event: "start",
  streamSid: "MZ1",
  start: { streamSid: "MZ1", callSid: "CA1", customParameters: { callId: "call-1", token: "tok" } },
};

function media(payload: Buffer): Buffer {
  return frame({
    event: "media",
    streamSid: "MZ1",
    media: { track: "inbound", payload: payload.toString("base64") },
  });
}

describe("Twilio Media Streams transport", () => {
  it("start names the call once; caller audio is decoded only while the session accepts it", () => {
    const socket = new Socket();
    const events = new Events();
    const t = new TwilioMediaStream(socket);
    t.bind(events);
    const audio = Buffer.from([0xff, 0x7f, 0x00, 0x80]);
    t.receive(media(audio), false);
    assert.equal(events.audio.length, 0, "no audio before the session accepts it");
    t.receive(frame(START), false);
    t.receive(frame({ ...START, start: { ...START.start, customParameters: { callId: "other" } } }), false);
    assert.deepEqual(events.starts, [{ callId: "call-1", token: "tok", providerCallId: "CA1" }]);
    t.acceptingAudio = true;
    t.receive(media(audio), false);
    t.receive(media(audio), true);
    assert.deepEqual(events.audio, [audio], "binary messages are not Twilio's");
  });

  it("marks, keypad digits and stop reach the session; malformed messages are ignored", () => {
    const events = new Events();
    const t = new TwilioMediaStream(new Socket());
    t.bind(events);
    t.receive(frame({ event: "mark", streamSid: "MZ1", mark: { name: "u1-3" } }), false);
    t.receive(
      frame({ event: "dtmf", streamSid: "MZ1", dtmf: { track: "inbound_track", digit: "7" } }),
      false,
    );
    t.receive(frame({ event: "mark", mark: { name: 3 } }), false);
    t.receive(Buffer.from("{not json"), false);
    t.receive(Buffer.from("[1,2]"), false);
    t.receive(frame({ event: "stop", streamSid: "MZ1" }), false);
    assert.deepEqual(events.marks, ["u1-3"]);
    assert.deepEqual(events.digits, ["7"]);
    assert.equal(events.hangups, 1);
  });

  it("audio, marks and clear go out on the stream the start named; close closes the socket", () => {
    const socket = new Socket();
    const t = new TwilioMediaStream(socket);
    t.receive(frame(START), false);
    t.sendMedia(Buffer.from([0, 1, 2]));
    t.sendMark("u1-end");
    t.clear();
    assert.deepEqual(
      socket.sent.map((s) => JSON.parse(s)),
      [
        { event: "media", streamSid: "MZ1", media: { payload: "AAEC" } },
        { event: "mark", streamSid: "MZ1", mark: { name: "u1-end" } },
        { event: "clear", streamSid: "MZ1" },
      ],
    );
    assert.equal(t.open, true);
    t.close(1000, "call ended");
    assert.deepEqual(socket.closed, { code: 1000, reason: "call ended" });
    assert.equal(t.open, false);
  });
});
