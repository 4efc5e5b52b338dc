import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { linear16ToMulaw, MULAW_8K } from "../../libs/media/audio-format.ts";
import { CallRecorder, recordingRate } from "../../libs/media/recorder.ts";
import { MULAW_TO_LINEAR } from "../../libs/providers/audio.ts";

// The recorder on a clock of its own (the tap's times are given, not read): what it lays in its
// spool, and where. The spool is a stereo WAV at the call's rate, sample 0 at the call's start.

const RATE = 8000;

/** 20 ms of μ-law tone (a square wave of ±8000). */
function tone(): Buffer {
  const pcm = Buffer.alloc(320);
  for (let i = 0; i < 160; i++) pcm.writeInt16LE(i % 20 < 10 ? 8000 : -8000, i * 2);
  return linear16ToMulaw(pcm);
}

function spoolChannels(buf: Buffer): [Int16Array, Int16Array] {
  assert.equal(buf.toString("ascii", 0, 4), "RIFF");
  assert.equal(buf.readUInt16LE(22), 2);
  assert.equal(buf.readUInt32LE(24), RATE);
  const n = (buf.length - 44) / 4;
  const l = new Int16Array(n);
  const r = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = buf.readInt16LE(44 + i * 4);
    r[i] = buf.readInt16LE(46 + i * 4);
  }
  return [l, r];
}

/** Whether 20 ms block `b` of a channel is voiced. */
function voiced(ch: Int16Array, b: number): boolean {
  let sum = 0;
  for (let i = b * 160; i < (b + 1) * 160; i++) sum += Math.abs(ch[i] ?? 0);
  return sum / 160 > 500;
}

describe("the call recorder", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "recorder-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps time through the call's setup and through seconds with no audio at all: silence is laid where nothing came", async () => {
    const file = path.join(dir, "gap.wav");
    const start = 1_000_000;
    const rec = new CallRecorder(file, RATE, start);
    const frame = tone();
    // Setup: nothing for the first 3 s (longer than the mix holds). Then the caller for a second,
    // nothing for 5 s, the assistant for a second; the call ends at 10 s.
    for (let t = 3000; t < 4000; t += 20) rec.callerAudio(frame, MULAW_8K, start + t + 20);
    for (let t = 9000; t < 10_000; t += 20) rec.assistantAudio(frame, MULAW_8K, start + t);
    const done = await rec.finish(start + 10_000);
    assert.deepEqual(done, { ok: true, sampleRate: RATE });
    const [caller, assistant] = spoolChannels(await readFile(file));
    assert.equal(caller.length, 10 * RATE, "ten seconds, sample 0 at the call's start");
    const blocks = (ch: Int16Array) => Array.from({ length: 500 }, (_, b) => voiced(ch, b));
    const c = blocks(caller);
    const a = blocks(assistant);
    assert.deepEqual(
      [c.indexOf(true), c.lastIndexOf(true), c.filter(Boolean).length],
      [150, 199, 50],
      "the caller from 3 s to 4 s",
    );
    assert.deepEqual(
      [a.indexOf(true), a.lastIndexOf(true), a.filter(Boolean).length],
      [450, 499, 50],
      "the assistant from 9 s to 10 s",
    );
  });

  it("every sample the caller sent is in the spool, in order, across many writes (nothing lost or doubled)", async () => {
    const file = path.join(dir, "exact.wav");
    const start = 3_000_000;
    const rec = new CallRecorder(file, RATE, start);
    // 6 s of caller audio whose bytes never repeat within a frame's neighbourhood (never μ-law's
    // silence, 0xff/0x7f): six writes of a second, each a few of the recorder's blocks.
    const sent: number[] = [];
    for (let t = 0; t < 6000; t += 20) {
      const frame = Buffer.alloc(160);
      for (let i = 0; i < 160; i++) frame[i] = 1 + ((sent.length + i) % 120);
      for (const b of frame) sent.push(MULAW_TO_LINEAR[b] as number);
      rec.callerAudio(frame, MULAW_8K, start + t + 20);
    }
    await rec.finish(start + 6100);
    const [caller] = spoolChannels(await readFile(file));
    const first = caller.findIndex((v) => v !== 0);
    assert.ok(first >= 0 && first <= 20 * 8, `the caller's audio starts with the call: ${first}`);
    assert.deepEqual(Array.from(caller.subarray(first, first + sent.length)), sent);
    assert.ok(
      caller.subarray(first + sent.length).every((v) => v === 0),
      "silence after it",
    );
  });

  it("a clear drops what the far end had not played yet: the assistant's channel is silent from the cut", async () => {
    const file = path.join(dir, "clear.wav");
    const start = 5_000_000;
    const rec = new CallRecorder(file, RATE, start);
    const frame = tone();
    // The pacer sends 3 frames ahead: at 1 s the assistant has sent up to 1.06 s; the caller barges
    // in at 1 s and the far end drops the rest.
    for (let t = 0; t <= 1000; t += 20) {
      rec.callerAudio(frame.fill(0xff), MULAW_8K, start + t);
      rec.assistantAudio(tone(), MULAW_8K, start + t);
    }
    rec.clear(start + 1000);
    for (let t = 1020; t <= 2000; t += 20) rec.callerAudio(frame, MULAW_8K, start + t);
    await rec.finish(start + 2000);
    const [, assistant] = spoolChannels(await readFile(file));
    const a = Array.from({ length: 100 }, (_, b) => voiced(assistant, b));
    assert.equal(a.lastIndexOf(true), 49, "voiced up to the cut at 1 s");
    assert.equal(a.slice(50).filter(Boolean).length, 0);
  });

  it("records at the caller's rate: μ-law at 8 kHz, PCM at its own (8-48 kHz)", () => {
    assert.equal(recordingRate(MULAW_8K), 8000);
    assert.equal(recordingRate({ encoding: "linear16", sampleRate: 16000 }), 16000);
    assert.equal(recordingRate({ encoding: "linear16", sampleRate: 44100 }), 44000);
    assert.equal(recordingRate({ encoding: "linear16", sampleRate: 96000 }), 48000);
  });

  it("a spool that cannot be opened fails the recording, not the caller of the tap", async () => {
    const rec = new CallRecorder(path.join(dir, "missing-parent", "\0bad"), RATE, 0);
    rec.callerAudio(tone(), MULAW_8K, 20);
    const done = await rec.finish(1000);
    assert.equal(done.ok, false);
  });
});
