// AudioWorklet processors of the talk page (loaded with audioWorklet.addModule; `sampleRate`,
// `currentTime` and registerProcessor are the worklet scope's globals).
//
// "pcm-capture": the microphone at the AudioContext's rate → 16-bit little-endian PCM at the call's
// rate (16 kHz), posted to the page in 20 ms frames (an ArrayBuffer, transferred) with the frame's
// level. The page sends each one as a binary websocket message.
//
// "pcm-playback": the assistant's PCM (the call's rate) → the AudioContext's rate, played from a
// queue so that chunks arriving back to back play without a gap. Playback starts once PREBUFFER_MS
// are queued (or the first chunk has waited that long: a short last chunk still plays), so network
// jitter does not cut a sentence; `clear` drops everything queued at once (barge-in, call end).
// It reports what it played a few times a second.

import { floatToInt16, int16ToFloat, Resampler } from "./resampler.js";

const FRAME_MS = 20;
const PREBUFFER_MS = 60;
const STATS_EVERY_S = 0.1;

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const rate = options.processorOptions?.rate ?? 16000;
    this.resampler = new Resampler(sampleRate, rate);
    this.frame = new Float32Array((rate * FRAME_MS) / 1000);
    this.fill = 0;
    this.stopped = false;
    this.port.onmessage = (e) => {
      if (e.data?.type === "stop") this.stopped = true;
    };
  }

  process(inputs) {
    if (this.stopped) return false;
    const channel = inputs[0]?.[0];
    // No input yet (the source is not connected, or has ended): nothing to send.
    if (!channel) return true;
    const out = this.resampler.process(channel);
    let i = 0;
    while (i < out.length) {
      const take = Math.min(this.frame.length - this.fill, out.length - i);
      this.frame.set(out.subarray(i, i + take), this.fill);
      this.fill += take;
      i += take;
      if (this.fill === this.frame.length) this.#flush();
    }
    return true;
  }

  #flush() {
    let sum = 0;
    for (let i = 0; i < this.frame.length; i++) sum += this.frame[i] * this.frame[i];
    const pcm = floatToInt16(this.frame);
    this.fill = 0;
    this.port.postMessage({ type: "frame", pcm: pcm.buffer, rms: Math.sqrt(sum / this.frame.length) }, [
      pcm.buffer,
    ]);
  }
}

class PcmPlayback extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rate = options.processorOptions?.rate ?? 16000;
    this.resampler = new Resampler(this.rate, sampleRate);
    /** Float32Array chunks at the context's rate, oldest first; `head` is the read offset in the first. */
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.playing = false;
    this.waitingSince = null;
    this.prebuffer = Math.round((sampleRate * PREBUFFER_MS) / 1000);
    this.receivedSamples = 0; // at the call's rate
    this.playedSamples = 0; // at the context's rate
    this.clearedSamples = 0; // at the context's rate
    this.clears = 0;
    this.chunks = 0;
    this.lastStats = 0;
    this.stopped = false;
    this.port.onmessage = (e) => this.#onMessage(e.data);
  }

  #onMessage(msg) {
    switch (msg?.type) {
      case "audio": {
        const pcm = new Int16Array(msg.pcm);
        this.receivedSamples += pcm.length;
        this.chunks++;
        const out = this.resampler.process(int16ToFloat(pcm));
        if (out.length > 0) {
          this.queue.push(Float32Array.from(out));
          this.queued += out.length;
          if (!this.playing && this.waitingSince === null) this.waitingSince = currentTime;
        }
        break;
      }
      case "clear":
        this.clearedSamples += this.queued;
        if (this.queued > 0 || this.playing) this.clears++;
        this.queue = [];
        this.head = 0;
        this.queued = 0;
        this.playing = false;
        this.waitingSince = null;
        this.resampler.reset();
        this.#report();
        break;
      case "stop":
        this.stopped = true;
        break;
    }
  }

  process(_inputs, outputs) {
    if (this.stopped) return false;
    const out = outputs[0][0];
    if (
      !this.playing &&
      this.queued > 0 &&
      (this.queued >= this.prebuffer || currentTime - this.waitingSince >= PREBUFFER_MS / 1000)
    ) {
      this.playing = true;
      this.waitingSince = null;
    }
    let written = 0;
    if (this.playing) {
      while (written < out.length && this.queue.length > 0) {
        const chunk = this.queue[0];
        const take = Math.min(out.length - written, chunk.length - this.head);
        out.set(chunk.subarray(this.head, this.head + take), written);
        written += take;
        this.head += take;
        if (this.head === chunk.length) {
          this.queue.shift();
          this.head = 0;
        }
      }
      this.queued -= written;
      this.playedSamples += written;
      if (this.queued === 0) this.playing = false;
    }
    out.fill(0, written);
    if (currentTime - this.lastStats >= STATS_EVERY_S) this.#report();
    return true;
  }

  #report() {
    this.lastStats = currentTime;
    this.port.postMessage({
      type: "stats",
      receivedMs: Math.round((this.receivedSamples * 1000) / this.rate),
      playedMs: Math.round((this.playedSamples * 1000) / sampleRate),
      queuedMs: Math.round((this.queued * 1000) / sampleRate),
      clearedMs: Math.round((this.clearedSamples * 1000) / sampleRate),
      clears: this.clears,
      chunks: this.chunks,
      playing: this.playing,
    });
  }
}

registerProcessor("pcm-capture", PcmCapture);
registerProcessor("pcm-playback", PcmPlayback);
