import assert from "node:assert/strict";
import { test } from "node:test";
import { AudioJournal, JOURNAL_CHUNK_BYTES, journalPoolSize } from "../../libs/media/audio-journal.ts";

// Frames whose bytes say where they were in the stream: byte i of the stream is i % 251.
function stream(from: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (from + i) % 251;
  return b;
}

test("the journal gives back exactly the bytes appended, across chunks, in pieces of the size asked", () => {
  const j = new AudioJournal();
  let sent = 0;
  for (let i = 0; i < 200; i++) {
    const frame = stream(sent, 640);
    j.append(frame);
    frame.fill(0); // the caller's frame is reused or changed after it was appended: the journal kept a copy
    sent += 640;
  }
  assert.equal(j.bytes, 128_000);
  const parts = j.read(32_000);
  assert.deepEqual(
    parts.map((p) => p.length),
    [32_000, 32_000, 32_000, 32_000],
  );
  assert.deepEqual(Buffer.concat(parts), stream(0, 128_000));
  j.clear();
});

test("dropping from the front keeps the newest audio and returns whole chunks to the pool", () => {
  const j = new AudioJournal();
  j.clear();
  const poolBefore = journalPoolSize();
  j.append(stream(0, JOURNAL_CHUNK_BYTES * 3 + 100));
  const afterAppend = journalPoolSize();
  j.drop(JOURNAL_CHUNK_BYTES * 2 + 10);
  assert.equal(j.bytes, JOURNAL_CHUNK_BYTES + 90);
  assert.deepEqual(
    Buffer.concat(j.read(1 << 20)),
    stream(JOURNAL_CHUNK_BYTES * 2 + 10, JOURNAL_CHUNK_BYTES + 90),
  );
  assert.equal(journalPoolSize(), afterAppend + 2, "the two chunks dropped are back in the pool");
  // Appending again reuses them.
  j.append(stream(JOURNAL_CHUNK_BYTES * 3 + 100, JOURNAL_CHUNK_BYTES * 2));
  assert.deepEqual(
    Buffer.concat(j.read(5000)),
    stream(JOURNAL_CHUNK_BYTES * 2 + 10, JOURNAL_CHUNK_BYTES * 3 + 90),
  );
  j.clear();
  assert.ok(journalPoolSize() >= poolBefore, "clear gives every chunk back");
  assert.equal(j.bytes, 0);
  assert.deepEqual(j.read(100), []);
});

test("trimTo keeps at most the bound, newest last; dropping more than is held empties it", () => {
  const j = new AudioJournal();
  j.append(stream(0, 10_000));
  j.trimTo(4000);
  assert.deepEqual(Buffer.concat(j.read(1000)), stream(6000, 4000));
  j.trimTo(5000);
  assert.equal(j.bytes, 4000);
  j.drop(0);
  j.drop(-5);
  assert.equal(j.bytes, 4000);
  j.drop(1_000_000);
  assert.equal(j.bytes, 0);
  j.append(stream(7, 3));
  assert.deepEqual(Buffer.concat(j.read(1)), stream(7, 3));
  j.clear();
});
