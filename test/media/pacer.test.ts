import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FRAME_BYTES, OutboundAudio, SharedPacer } from "../../libs/media/pacer.ts";

// The outbound pacer on a manual clock: what Twilio receives, frame by frame.
function setup() {
  let now = 1_000;
  const clock = (t: number) => {
    now = 1_000 + t;
  };
  const sent: string[] = [];
  const pacer = new SharedPacer(() => now);
  const out = new OutboundAudio({
    sendMedia: (frame) => sent.push(`media:${frame.length}`),
    sendMark: (name) => sent.push(`mark:${name}`),
  });
  pacer.add(out);
  return {
    pacer,
    out,
    sent,
    clock,
    at: (t: number) => {
      now = 1_000 + t;
      pacer.tick();
    },
    enqueue: (frames: number, t = 0) => out.enqueueAudio(Buffer.alloc(frames * FRAME_BYTES, 0x10), 1_000 + t),
  };
}

describe("outbound pacing", () => {
  test("a reply starts with three frames of lead, then one frame per 20 ms, its mark after the last frame", () => {
    const p = setup();
    p.enqueue(10);
    p.out.enqueueMark("u1:end", 1_000);
    assert.equal(p.sent.length, 4);
    p.at(10);
    assert.equal(p.sent.length, 4);
    p.at(20);
    assert.equal(p.sent.length, 5);
    for (let t = 30; t <= 120; t += 10) p.at(t);
    assert.equal(p.sent.filter((s) => s.startsWith("media")).length, 10);
    assert.equal(p.sent.at(-1), "mark:u1:end");
    assert.equal(p.pacer.stats.framesSent, 10);
    assert.equal(p.pacer.stats.lateFrames, 0);
    p.pacer.stop();
  });

  test("a stall is counted: frames that leave more than 40 ms behind their schedule are late", () => {
    const p = setup();
    p.enqueue(20);
    // Frames 0–3 leave at t=0; frame k ≥ 3 is due at (k − 3) × 20 ms. The loop stalls until t=130,
    // then sends frames 4–9 at once: 110, 90, 70, 50, 30 and 10 ms behind; four of them by > 40 ms.
    p.at(130);
    assert.equal(p.pacer.stats.framesSent, 10);
    assert.equal(p.pacer.stats.lateFrames, 4);
    assert.equal(p.pacer.stats.maxLateMs, 110);
    p.at(140);
    assert.equal(p.pacer.stats.lateFrames, 4);
    p.pacer.stop();
  });

  test("clear drops what was not sent; the next audio starts a fresh schedule with its own lead", () => {
    const p = setup();
    p.enqueue(50);
    p.at(40);
    assert.equal(p.out.clear(), (50 - 6) * FRAME_BYTES);
    p.at(60);
    assert.equal(p.sent.length, 6);
    p.enqueue(2, 500);
    assert.equal(p.sent.length, 8);
    assert.equal(p.pacer.stats.lateFrames, 0);
    p.pacer.stop();
  });

  test("a poke from the inbound path sends what is due when the timer has not run, and nothing twice", () => {
    const p = setup();
    p.enqueue(20);
    assert.equal(p.sent.length, 4);
    // The timer is held back (a burst of inbound messages); inbound frames keep arriving and poke:
    // a tick runs at t = 5, 15, …, 95. Frame k ≥ 3 is due at (k − 3) × 20 ms: frames 0–7 are out,
    // none of them late.
    for (let t = 5; t <= 95; t += 5) {
      p.clock(t);
      p.pacer.poke();
    }
    assert.equal(p.sent.length, 8);
    assert.equal(p.pacer.stats.lateFrames, 0);
    // Within a tick period of the last one, a poke does nothing.
    p.clock(100);
    p.pacer.poke();
    assert.equal(p.sent.length, 8);
    p.at(110);
    assert.equal(p.sent.length, 9);
    p.pacer.stop();
  });
});
