import assert from "node:assert/strict";
import { test } from "node:test";
import { SILENCE_BATCH_FRAMES, SilenceBatcher } from "../../libs/media/silence-batcher.ts";

const frame = (byte: number) => Buffer.alloc(160, byte);

test("silent frames are gathered ten at a time, in order", () => {
  const b = new SilenceBatcher();
  const sent: Buffer[] = [];
  for (let i = 0; i < 22; i++) {
    const out = b.hold(frame(i));
    if (out) sent.push(out);
  }
  assert.equal(SILENCE_BATCH_FRAMES, 10);
  assert.deepEqual(
    sent.map((s) => s.length),
    [1600, 1600],
  );
  const [first, second] = sent;
  assert.deepEqual([first?.[0], first?.[1440], second?.[0]], [0, 9, 10], "frame order kept");
  assert.equal(b.heldBytes, 320, "two frames still held");
});

test("a frame that may not wait goes at once, after what was gathered, in one message", () => {
  const b = new SilenceBatcher();
  const voice = frame(0x7f);
  assert.equal(b.release(voice), voice, "nothing gathered: the frame itself, no copy");
  b.hold(frame(1));
  b.hold(frame(2));
  const out = b.release(voice);
  assert.equal(out.length, 480);
  assert.deepEqual([out[0], out[160], out[320]], [1, 2, 0x7f]);
  assert.equal(b.heldBytes, 0);
});

test("flush hands over what is gathered, once", () => {
  const b = new SilenceBatcher();
  assert.equal(b.flush(), undefined);
  b.hold(frame(3));
  assert.equal(b.flush()?.length, 160);
  assert.equal(b.flush(), undefined);
});

test("a batch is its own copy: frames may be reused after hold, and a handed-over batch is never written again", () => {
  const b = new SilenceBatcher();
  const reused = frame(1);
  for (let i = 0; i < SILENCE_BATCH_FRAMES - 1; i++) {
    assert.equal(b.hold(reused), undefined);
    reused.fill(i + 2);
  }
  const batch = b.hold(reused);
  assert.equal(batch?.length, SILENCE_BATCH_FRAMES * 160);
  assert.deepEqual(
    [batch?.[0], batch?.[160], batch?.[SILENCE_BATCH_FRAMES * 160 - 1]],
    [1, 2, SILENCE_BATCH_FRAMES],
  );
  b.hold(frame(0xee));
  assert.equal(batch?.[0], 1, "the next batch does not write into the one handed over");
  // Frames of another size are kept whole too.
  const big = b.release(Buffer.alloc(3000, 7));
  assert.equal(big.length, 160 + 3000);
  assert.deepEqual([big[0], big[160], big[3159]], [0xee, 7, 7]);
});
