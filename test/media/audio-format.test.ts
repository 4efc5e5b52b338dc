import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AudioConverter,
  bytesPerMs,
  durationMs,
  frameBytes,
  hasVoice,
  isSilence,
  LINEAR16_16K,
  linear16ToMulaw,
  MULAW_8K,
  mulawToLinear16,
  Resampler,
  toPcm16k,
} from "../../libs/media/audio-format.ts";
import { MULAW_TO_LINEAR } from "../../libs/providers/audio.ts";
import { TONE_FRAME } from "../fakes/index.ts";

/** `seconds` of a sine at `hz`, amplitude `amp`, as 16-bit LE PCM at `rate`. */
function sine(rate: number, hz: number, seconds: number, amp = 10000): Buffer {
  const n = Math.round(rate * seconds);
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++)
    buf.writeInt16LE(Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  return buf;
}

function samples(pcm: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < pcm.length; i += 2) out.push(pcm.readInt16LE(i));
  return out;
}

function rms(xs: number[]): number {
  return Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / Math.max(1, xs.length));
}

/** Signal-to-error ratio (dB) of `got` against the ideal sine at `rate`, away from the edges. */
function snrDb(got: Buffer, rate: number, hz: number, amp = 10000): number {
  const xs = samples(got);
  const edge = Math.round(rate * 0.01);
  const err: number[] = [];
  const ref: number[] = [];
  for (let i = edge; i < xs.length - edge; i++) {
    const ideal = amp * Math.sin((2 * Math.PI * hz * i) / rate);
    ref.push(ideal);
    err.push((xs[i] as number) - ideal);
  }
  return 20 * Math.log10(rms(ref) / rms(err));
}

test("sizes of 20 ms frames and durations per format", () => {
  assert.equal(frameBytes(MULAW_8K), 160);
  assert.equal(frameBytes(LINEAR16_16K), 640);
  assert.equal(frameBytes({ encoding: "linear16", sampleRate: 24000 }), 960);
  assert.equal(frameBytes({ encoding: "linear16", sampleRate: 44100 }), 1764);
  assert.equal(frameBytes({ encoding: "mulaw", sampleRate: 16000 }), 320);
  assert.equal(bytesPerMs(MULAW_8K), 8);
  assert.equal(bytesPerMs(LINEAR16_16K), 32);
  assert.equal(durationMs(640, LINEAR16_16K), 20);
  assert.equal(durationMs(1764, { encoding: "linear16", sampleRate: 44100 }), 20);
  assert.equal(durationMs(8000, MULAW_8K), 1000);
});

test("μ-law ↔ linear16: G.711 both ways, every code survives a round trip", () => {
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const pcm = mulawToLinear16(all);
  for (let i = 0; i < 256; i++) assert.equal(pcm.readInt16LE(i * 2), MULAW_TO_LINEAR[i]);
  const back = linear16ToMulaw(pcm);
  for (let i = 0; i < 256; i++) {
    // 0x7F is μ-law's negative zero: it encodes back as 0xFF (positive zero).
    assert.equal(back[i], i === 0x7f ? 0xff : i, `code ${i}`);
  }
  // Encoding quantises within μ-law's step: a sine survives at telephone quality (≥ 30 dB).
  const tone = sine(8000, 440, 0.2);
  assert.ok(snrDb(mulawToLinear16(linear16ToMulaw(tone)), 8000, 440) > 30);
});

for (const [from, to] of [
  [16000, 8000],
  [8000, 16000],
  [24000, 44100],
  [48000, 16000],
  [44100, 16000],
  [16000, 22050],
] as const) {
  test(`resampling ${from} → ${to} Hz keeps a 1 kHz tone (≥ 30 dB) and the duration`, () => {
    const r = new Resampler(from, to);
    const input = sine(from, 1000, 0.5);
    const out = Buffer.concat([r.push(input), r.flush()]);
    const expected = Math.ceil((0.5 * to * from) / from);
    assert.ok(Math.abs(out.length / 2 - expected) <= 1, `${out.length / 2} samples, want ≈ ${expected}`);
    const snr = snrDb(out, to, 1000);
    assert.ok(snr > 30, `SNR ${snr.toFixed(1)} dB`);
  });
}

test("a stream cut into frames of any size (odd byte counts too) converts as in one piece", () => {
  const input = sine(44100, 700, 0.3);
  const whole = new Resampler(44100, 16000);
  const expected = Buffer.concat([whole.push(input), whole.flush()]);
  const pieces = new Resampler(44100, 16000);
  const got: Buffer[] = [];
  let off = 0;
  for (const size of [1, 7, 882, 1763, 3, 640, 2, 1001]) {
    if (off >= input.length) break;
    got.push(pieces.push(input.subarray(off, off + size)));
    off += size;
  }
  while (off < input.length) {
    got.push(pieces.push(input.subarray(off, off + 333)));
    off += 333;
  }
  got.push(pieces.flush());
  assert.deepEqual(Buffer.concat(got), expected);
});

test("downsampling low-passes: a tone above the new Nyquist frequency does not fold back", () => {
  // 6 kHz at 48 kHz → 8 kHz (Nyquist 4 kHz): without a low-pass it would alias to 2 kHz at full level.
  const r = new Resampler(48000, 8000);
  const out = samples(Buffer.concat([r.push(sine(48000, 6000, 0.5)), r.flush()]));
  const level = rms(out.slice(80, -80)) / (10000 / Math.SQRT2);
  assert.ok(level < 0.05, `aliased level ${level.toFixed(3)}`);
  // And reset() forgets the stream: the next push starts from silence.
  r.reset();
  assert.deepEqual(samples(r.push(Buffer.alloc(0))), []);
});

test("AudioConverter: same formats pass through untouched; μ-law 8 kHz ↔ PCM 16 kHz both ways", () => {
  const same = new AudioConverter(LINEAR16_16K, LINEAR16_16K);
  const frame = sine(16000, 500, 0.02);
  assert.equal(same.identity, true);
  assert.equal(same.convert(frame), frame, "no copy");

  const up = new AudioConverter(MULAW_8K, LINEAR16_16K);
  const mulaw = linear16ToMulaw(sine(8000, 440, 0.5));
  const pcm = Buffer.concat([
    up.convert(mulaw.subarray(0, 1000)),
    up.convert(mulaw.subarray(1000)),
    up.flush(),
  ]);
  assert.equal(pcm.length, 16000);
  assert.ok(snrDb(pcm, 16000, 440) > 25);

  const down = new AudioConverter(LINEAR16_16K, MULAW_8K);
  const back = Buffer.concat([
    down.convert(pcm.subarray(0, 641)),
    down.convert(pcm.subarray(641)),
    down.flush(),
  ]);
  assert.equal(back.length, 4000);
  assert.ok(snrDb(mulawToLinear16(back), 8000, 440) > 25);

  // PCM → μ-law at one rate: a split sample waits for its other byte.
  const enc = new AudioConverter({ encoding: "linear16", sampleRate: 8000 }, MULAW_8K);
  const tone = sine(8000, 440, 0.02);
  const parts = Buffer.concat([enc.convert(tone.subarray(0, 5)), enc.convert(tone.subarray(5))]);
  assert.deepEqual(parts, linear16ToMulaw(tone));
});

test("toPcm16k: one frame of any format as 20 ms of PCM 16 kHz", () => {
  assert.equal(toPcm16k(TONE_FRAME, MULAW_8K).length, 640);
  assert.equal(toPcm16k(sine(44100, 1000, 0.02), { encoding: "linear16", sampleRate: 44100 }).length, 640);
  const own = sine(16000, 1000, 0.02);
  assert.equal(toPcm16k(own, LINEAR16_16K), own);
});

test("voice and silence per format", () => {
  const pcmSilence = Buffer.alloc(640);
  const pcmTone = mulawToLinear16(Buffer.concat([TONE_FRAME, TONE_FRAME]));
  assert.equal(hasVoice(pcmSilence, LINEAR16_16K), false);
  assert.equal(isSilence(pcmSilence, LINEAR16_16K), true);
  assert.equal(hasVoice(pcmTone, LINEAR16_16K), true);
  assert.equal(isSilence(pcmTone, LINEAR16_16K), false);
  // Line noise (±16) is silence, speech-level audio is not.
  const noise = Buffer.alloc(640);
  for (let i = 0; i < 320; i++) noise.writeInt16LE(i % 2 ? 16 : -16, i * 2);
  assert.equal(hasVoice(noise, LINEAR16_16K), false);
  assert.equal(isSilence(noise, LINEAR16_16K), true);
  const speech = sine(16000, 300, 0.02, 3000);
  assert.equal(hasVoice(speech, LINEAR16_16K), true);
  assert.equal(isSilence(speech, LINEAR16_16K), false);
  // μ-law dispatches to the phone path.
  assert.equal(hasVoice(TONE_FRAME, MULAW_8K), true);
  assert.equal(isSilence(Buffer.alloc(160, 0xff), MULAW_8K), true);
});
