// A streaming sample-rate converter for mono Float32 audio, used by the talk page's AudioWorklet in
// both directions (microphone at the AudioContext's rate → 16 kHz for the call; the assistant's
// 16 kHz → the AudioContext's rate). Band-limited interpolation: each output sample is a
// Blackman-windowed sinc over the input, the cut-off at the lower of the two Nyquist frequencies
// (so downsampling does not alias). The input/output ratio is kept as an exact fraction: output n
// sits at input position n·M/L, whose fractional part takes one of L phases; the kernel of each
// phase is computed once (up to MAX_PHASES, beyond which the nearest phase is used).

const ZERO_CROSSINGS = 8;
const MAX_PHASES = 1024;

function gcd(a, b) {
  let x = a;
  let y = b;
  while (y) [x, y] = [y, x % y];
  return x;
}

export class Resampler {
  /** `inRate` and `outRate` in Hz (positive integers). */
  constructor(inRate, outRate) {
    if (!Number.isInteger(inRate) || !Number.isInteger(outRate) || inRate <= 0 || outRate <= 0)
      throw new RangeError(`sample rates must be positive integers (got ${inRate} → ${outRate})`);
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    this.up = outRate / g; // L
    this.down = inRate / g; // M
    const cutoff = Math.min(1, outRate / inRate);
    this.half = Math.ceil(ZERO_CROSSINGS / cutoff);
    this.taps = 2 * this.half;
    this.phases = Math.min(this.up, MAX_PHASES);
    this.kernels = new Float32Array(this.phases * this.taps);
    for (let p = 0; p < this.phases; p++) {
      const frac = p / this.phases;
      let sum = 0;
      for (let t = 0; t < this.taps; t++) {
        // Tap t reads input index (ipos - half + 1 + t); the output sits at ipos + frac.
        const d = frac + this.half - 1 - t;
        const x = cutoff * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const w = d / this.half; // −1…1 across the window
        const blackman =
          Math.abs(w) >= 1 ? 0 : 0.42 + 0.5 * Math.cos(Math.PI * w) + 0.08 * Math.cos(2 * Math.PI * w);
        const k = sinc * blackman;
        this.kernels[p * this.taps + t] = k;
        sum += k;
      }
      // Unity gain at DC for every phase.
      for (let t = 0; t < this.taps; t++) this.kernels[p * this.taps + t] /= sum;
    }
    // Input history: `half - 1` zeros of lead-in so the first output sits on the first input sample.
    this.buf = new Float32Array(4096);
    this.len = this.half - 1;
    this.ipos = this.half - 1; // index in buf of the input sample at or before the next output
    this.frac = 0; // numerator over `up` of the next output's fractional position
    this.out = new Float32Array(256);
  }

  /** Forgets the history (after a cut, so the next audio does not ring with the previous). */
  reset() {
    this.buf.fill(0);
    this.len = this.half - 1;
    this.ipos = this.half - 1;
    this.frac = 0;
  }

  /**
   * Feeds `input` (Float32Array) and returns the output samples it completes: a view into a scratch
   * buffer that the next call overwrites.
   */
  process(input) {
    this.#append(input);
    const maxOut = Math.ceil(((input.length + this.taps) * this.up) / this.down) + 2;
    if (this.out.length < maxOut) this.out = new Float32Array(maxOut * 2);
    const { buf, kernels, taps, half, up, down, phases } = this;
    let n = 0;
    while (this.ipos + half < this.len) {
      const phase = phases === up ? this.frac : Math.floor((this.frac * phases) / up);
      const base = phase * taps;
      const start = this.ipos - half + 1;
      let acc = 0;
      for (let t = 0; t < taps; t++) acc += buf[start + t] * kernels[base + t];
      this.out[n++] = acc;
      this.frac += down;
      if (this.frac >= up) {
        this.ipos += Math.floor(this.frac / up);
        this.frac %= up;
      }
    }
    this.#compact();
    return this.out.subarray(0, n);
  }

  #append(input) {
    if (this.len + input.length > this.buf.length) {
      const next = new Float32Array(Math.max(this.buf.length * 2, this.len + input.length));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
  }

  // Drops the input no output can read any more (older than `half - 1` before `ipos`).
  #compact() {
    const drop = Math.min(this.ipos - (this.half - 1), this.len);
    if (drop <= 0) return;
    this.buf.copyWithin(0, drop, this.len);
    this.len -= drop;
    this.ipos -= drop;
  }
}

/** Float samples (−1…1) → 16-bit signed integers, clipped. */
export function floatToInt16(input, output = new Int16Array(input.length)) {
  for (let i = 0; i < input.length; i++) {
    const s = Math.min(1, Math.max(-1, input[i]));
    output[i] = Math.round(s < 0 ? s * 0x8000 : s * 0x7fff);
  }
  return output;
}

/** 16-bit signed integers → float samples (−1…1). */
export function int16ToFloat(input, output = new Float32Array(input.length)) {
  for (let i = 0; i < input.length; i++) output[i] = input[i] / (input[i] < 0 ? 0x8000 : 0x7fff);
  return output;
}
