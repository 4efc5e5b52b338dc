import assert from "node:assert/strict";
import { test } from "node:test";
import {
  durationMs,
  FRAME_BYTES,
  FrameSplitter,
  frames20ms,
  hasVoice,
  isSilence,
  MULAW_SILENCE,
  MULAW_TO_LINEAR,
  SILENCE_FRAME,
} from "../../libs/providers/audio.ts";
import { TONE_FRAME } from "../fakes/index.ts";

test("μ-law decodes with the G.711 table", () => {
  assert.equal(MULAW_SILENCE, 0xff);
  assert.equal(MULAW_TO_LINEAR[0xff], 0);
  assert.equal(MULAW_TO_LINEAR[0x7f], 0);
  assert.equal(MULAW_TO_LINEAR[0x00], -32124);
  assert.equal(MULAW_TO_LINEAR[0x80], 32124);
  assert.equal(MULAW_TO_LINEAR[0xfe], 8);
});

test("silence and quiet noise are silent; the caller's voice is not", () => {
  assert.equal(isSilence(SILENCE_FRAME), true);
  assert.equal(isSilence(Buffer.alloc(FRAME_BYTES, 0xfd)), true, "±16 is line noise");
  assert.equal(isSilence(TONE_FRAME), false);
  assert.equal(isSilence(Buffer.alloc(0)), true);
});

test("durationMs counts 8 bytes per ms", () => {
  assert.equal(durationMs(160), 20);
  assert.equal(durationMs(8000), 1000);
  assert.equal(durationMs(4), 0.5);
});

test("FrameSplitter carries remainders across chunks and keeps byte order", () => {
  const input = Buffer.alloc(1000);
  for (let i = 0; i < input.length; i++) input[i] = i % 251;
  const splitter = new FrameSplitter();
  const frames: Buffer[] = [];
  // Uneven chunks, like TTS output.
  for (const [from, to] of [
    [0, 70],
    [70, 300],
    [300, 301],
    [301, 1000],
  ] as const) {
    splitter.push(input.subarray(from, to), (f) => frames.push(f));
  }
  assert.equal(frames.length, 6);
  assert.equal(splitter.pendingBytes, 40);
  for (const f of frames) assert.equal(f.length, FRAME_BYTES);
  assert.deepEqual(Buffer.concat(frames), input.subarray(0, 960));
  const last = splitter.flush();
  assert.ok(last);
  assert.deepEqual(last.subarray(0, 40), input.subarray(960));
  assert.ok(
    last.subarray(40).every((b) => b === MULAW_SILENCE),
    "padded with silence",
  );
  assert.equal(splitter.flush(), undefined);
  // Frames handed out earlier are not overwritten by later pushes.
  const copy = Buffer.from(frames[0] as Buffer);
  splitter.push(Buffer.alloc(500, 7), () => {});
  assert.deepEqual(frames[0], copy);
});

test("frames20ms splits a whole buffer, padding the tail, or carries it with a splitter", () => {
  const frames = frames20ms(Buffer.alloc(400, 0x10));
  assert.deepEqual(
    frames.map((f) => f.length),
    [160, 160, 160],
  );
  assert.equal(frames[2]?.[79], 0x10);
  assert.equal(frames[2]?.[80], MULAW_SILENCE);

  const splitter = new FrameSplitter();
  assert.equal(frames20ms(Buffer.alloc(100), splitter).length, 0);
  assert.equal(frames20ms(Buffer.alloc(100), splitter).length, 1);
  assert.equal(splitter.pendingBytes, 40);
  splitter.reset();
  assert.equal(splitter.pendingBytes, 0);
});

test("hasVoice: speech-level frames have voice, silence and faint line noise do not", () => {
  assert.equal(hasVoice(Buffer.alloc(160, 0xff)), false);
  assert.equal(hasVoice(Buffer.alloc(160, 0x7f)), false);
  // μ-law 0xF0 is magnitude 15: faint noise.
  assert.equal(hasVoice(Buffer.alloc(160, 0xf0)), false);
  const speech = Buffer.alloc(160, 0xff);
  for (let i = 0; i < 160; i += 4) speech[i] = 0x20; // loud samples, every 4th
  assert.equal(hasVoice(speech), true);
});

test("sound loud enough for barge-in always shows on hasVoice's samples (the barge-in check skips isSilence without it)", () => {
  // Linear → μ-law by the nearest table entry.
  const encode = (x: number): number => {
    let best = 0xff;
    for (let b = 0; b < 256; b++) {
      if (Math.abs((MULAW_TO_LINEAR[b] as number) - x) < Math.abs((MULAW_TO_LINEAR[best] as number) - x))
        best = b;
    }
    return best;
  };
  let loud = 0;
  // Tones across the telephone band, every phase a frame can start at, just above isSilence's level
  // (mean |x| 150 needs an amplitude of ~236). The one signal that can hide between every 8th sample
  // is a pure tone at an exact multiple of 500 Hz with its zero crossings on the sampled points
  // (left out here); speech is not one.
  for (let hz = 150; hz <= 3400; hz += 50) {
    if (hz % 500 === 0) continue;
    for (let phase = 0; phase < 8; phase++) {
      const frame = Buffer.alloc(160);
      for (let i = 0; i < 160; i++)
        frame[i] = encode(300 * Math.sin((2 * Math.PI * hz * (i + phase)) / 8000));
      if (isSilence(frame)) continue;
      loud++;
      assert.equal(hasVoice(frame), true, `${hz} Hz, phase ${phase}`);
    }
  }
  assert.ok(loud > 400, `${loud} loud frames checked`);
});
