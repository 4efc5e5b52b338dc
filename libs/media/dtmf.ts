// In-band DTMF: Twilio Media Streams cannot inject RFC 2833 digits into a bidirectional stream, and
// replacing the call's TwiML with `<Play digits>` would end the stream. Dual tones in the outbound
// μ-law audio reach an IVR the same way a handset's keypad tones do over G.711.

const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const KEYS = ["123A", "456B", "789C", "*0#D"];
const SAMPLE_RATE = 8000;

function linearToMulaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let s = Math.max(-CLIP, Math.min(CLIP, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function frequencies(digit: string): [number, number] | undefined {
  for (let r = 0; r < 4; r++) {
    const c = (KEYS[r] as string).indexOf(digit.toUpperCase());
    if (c >= 0) return [ROWS[r] as number, COLS[c] as number];
  }
  return undefined;
}

/** μ-law audio for `digits` (0-9, *, #, A-D; `w` = 500 ms pause): 100 ms tone + 100 ms gap each. */
export function dtmfAudio(digits: string, toneMs = 100, gapMs = 100): Buffer {
  const chunks: Buffer[] = [];
  for (const d of digits) {
    if (d === "w" || d === "W") {
      chunks.push(Buffer.alloc(SAMPLE_RATE / 2, 0xff));
      continue;
    }
    const f = frequencies(d);
    if (!f) continue;
    const n = (SAMPLE_RATE * toneMs) / 1000;
    const tone = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      const t = i / SAMPLE_RATE;
      tone[i] = linearToMulaw(8000 * (Math.sin(2 * Math.PI * f[0] * t) + Math.sin(2 * Math.PI * f[1] * t)));
    }
    chunks.push(tone, Buffer.alloc((SAMPLE_RATE * gapMs) / 1000, 0xff));
  }
  return Buffer.concat(chunks);
}
