/**
 * FakeDeepgram — loopback Deepgram live STT (`ws://127.0.0.1:PORT/v1/listen?...`), speaking the v1
 * listen protocol: binary audio in (`encoding=mulaw` or `linear16` at the query's `sample_rate`, 8000 when
 * absent); `KeepAlive` / `Finalize` / `CloseStream` text controls;
 * `Results`, `SpeechStarted`, `UtteranceEnd`, `Metadata` out. Auth: `Authorization: Token <key>`
 * (or `Bearer`, or the `token, <key>` subprotocol); keys in `rejectKeys` get HTTP 401 on upgrade.
 *
 * Official SDK (v5): `new DeepgramClient({ apiKey, environment: fake.environment })`, then
 * `listen.v1.connect({..., reconnectAttempts: 0})`.
 *
 * ## How the fake "recognises" speech (utterance encoding scheme)
 * There is no ASR; the words ride in the audio. A simulated caller speaks an utterance as 20 ms
 * frames of 160 μ-law bytes (`encodeUtteranceFrames(id, durationMs)`):
 *   frame 0:  bytes 0..7  = magic "SWBDUTT\x01"
 *             bytes 8..11 = utterance id (uint32 BE)
 *             bytes 12..15 = utterance duration in ms (uint32 BE)
 *             bytes 16..159 = loud tone
 *   frame 1..: loud tone (the same shared Buffer — do not mutate frames)
 * (`encodeUtteranceFrames(id, durationMs, { encoding: "linear16", sampleRate })` does the same
 * in 16-bit little-endian PCM: 20 ms frames of `sampleRate / 50` samples, the same 16-byte header
 * first, then a loud tone), and registers the words with `fake.registerUtterance(id, "hello there")` (or
 * `fake.allocateUtterance(text)` which picks a process-unique id). Silence is 0xFF.
 * The app forwards those bytes unchanged (any chunking), so the fake finds the magic in the byte
 * stream (also across chunk boundaries) and knows which words the following voice carries.
 *
 * Timeline (all in *audio* time = bytes received / bytes per second, so results are deterministic however
 * fast the app pushes audio; `transcriberDelayMs` then delays every emitted message in wall time):
 *   - VAD per 20 ms window (≥ 40% of samples above a magnitude threshold = voiced: μ-law magnitude
 *     code 16, |x| ≥ 132 in linear16).
 *   - `SpeechStarted` (vad_events=true) once `speechStartedAfterMs` of voice was heard; its
 *     `timestamp` is the utterance start.
 *   - interim `Results` (interim_results=true) every `interimIntervalMs` of voice, transcript =
 *     a prefix of the words proportional to voice heard / encoded duration.
 *   - after `endpointing` ms (query param; default 10) of silence: a final `Results` with
 *     is_final=true, speech_final=true and all the words (`endpointing=false`: is_final only,
 *     after 500 ms of silence).
 *   - after `utterance_end_ms` (query param) of silence since the last voiced audio:
 *     `UtteranceEnd` {last_word_end}.
 *   - `Finalize` → pending words as is_final=true, from_finalize=true (empty transcript when
 *     nothing is pending). `CloseStream` → pending final, `Metadata`, close 1000.
 *   - no audio / text for `idleTimeoutMs` (10 s like Deepgram's NET-0001) → close 1011.
 * Voice without a magic header (or an unregistered id) transcribes as "" — like noise.
 *
 * A caller whose bytes the fake cannot receive unchanged (a browser's microphone: its audio is
 * processed, resampled and converted to 16-bit PCM before it is sent) cannot carry the header. It
 * says `text` with a steady tone of a pitch registered with `fake.registerToneUtterance(hz, text)`
 * instead: in linear16, voice without a header is measured (sign changes of its voiced windows, with
 * a little hysteresis, from the first to the last) and transcribes as the text registered for the
 * pitch within 3% of it — a pitch survives gain, noise suppression and resampling, and comes out
 * wrong when the sender mislabels its sample rate.
 * Digits in the registered text come out as words ("4521" → "four five two one") unless the query
 * has `numerals=true` or `smart_format=true`, as Deepgram writes numbers without them.
 *
 * Failure injection: `connection.drop(code)` closes a live socket from the server side (1011, as
 * Deepgram's own NET-/DATA- errors do; 1006 with `terminate()`), and `refuseUpgrades(n, status)`
 * answers the next n handshakes with an HTTP error (503 by default: an outage) in Deepgram's error
 * body shape.
 *
 * Per-model refusals at the handshake (`listenRefusal`): HTTP 400 with Deepgram's error body (and its
 * `dg-error` header) for `keywords` on Nova-3, `keyterm` on any other model, Flux models (served on
 * `/v2/listen`) and Whisper (no live streaming).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  Arrivals,
  closeWebSocketServer,
  headerValue,
  listenLoopback,
  makePcmToneBuffer,
  makeToneBuffer,
  PCM_VOICE_MAGNITUDE,
  rejectUpgrade,
  VOICE_MAGNITUDE,
} from "./util.ts";

export const FRAME_BYTES = 160;
export const FRAME_MS = 20;
export const UTTERANCE_MAGIC = Buffer.from([0x53, 0x57, 0x42, 0x44, 0x55, 0x54, 0x54, 0x01]);
const HEADER_BYTES = 16;

/** One 20 ms frame of μ-law silence. Shared; do not mutate. */
export const SILENCE_FRAME: Buffer = Buffer.alloc(FRAME_BYTES, 0xff);
/** One 20 ms frame of loud tone. Shared; do not mutate. */
export const TONE_FRAME: Buffer = makeToneBuffer(FRAME_BYTES);

let nextUtteranceIdValue = 1;
/** Process-unique utterance ids, so many simulators can share one FakeDeepgram. */
export function nextUtteranceId(): number {
  return nextUtteranceIdValue++;
}

/** Audio a fake caller sends: μ-law 8 kHz (the default) or 16-bit little-endian PCM at a rate. */
export interface FakeAudioFormat {
  encoding: "mulaw" | "linear16";
  sampleRate: number;
}

const PCM_TONE_FRAMES = new Map<number, Buffer>();

/** One 20 ms frame of loud tone in `format`. Shared; do not mutate. */
export function toneFrame(format?: FakeAudioFormat): Buffer {
  if (!format || format.encoding === "mulaw") return TONE_FRAME;
  let frame = PCM_TONE_FRAMES.get(format.sampleRate);
  if (!frame) {
    frame = makePcmToneBuffer((format.sampleRate / 50) * 2);
    PCM_TONE_FRAMES.set(format.sampleRate, frame);
  }
  return frame;
}

/** One 20 ms frame of silence in `format` (fresh: the caller may keep it). */
export function silenceFrame(format?: FakeAudioFormat): Buffer {
  if (!format || format.encoding === "mulaw") return SILENCE_FRAME;
  return Buffer.alloc((format.sampleRate / 50) * 2);
}

/**
 * The frames a caller sends to say utterance `id` for `durationMs` (rounded up to 20 ms, min 1
 * frame), in `format` (μ-law 8 kHz by default).
 */
export function encodeUtteranceFrames(id: number, durationMs: number, format?: FakeAudioFormat): Buffer[] {
  const n = Math.max(1, Math.ceil(durationMs / FRAME_MS));
  const tone = toneFrame(format);
  const first = Buffer.from(tone);
  UTTERANCE_MAGIC.copy(first, 0);
  first.writeUInt32BE(id >>> 0, 8);
  first.writeUInt32BE(n * FRAME_MS, 12);
  const frames: Buffer[] = [first];
  for (let i = 1; i < n; i++) frames.push(tone);
  return frames;
}

/** Reads the header of an utterance's first frame, if `buf[offset..]` starts with one. */
export function decodeUtteranceHeader(
  buf: Buffer,
  offset = 0,
): { id: number; durationMs: number } | undefined {
  if (buf.length - offset < HEADER_BYTES) return undefined;
  if (buf.compare(UTTERANCE_MAGIC, 0, 8, offset, offset + 8) !== 0) return undefined;
  return { id: buf.readUInt32BE(offset + 8), durationMs: buf.readUInt32BE(offset + 12) };
}

export interface DeepgramWord {
  word: string;
  start: number;
  end: number;
  confidence: number;
  punctuated_word: string;
}

export interface DeepgramResults {
  type: "Results";
  channel_index: [number, number];
  duration: number;
  start: number;
  is_final: boolean;
  speech_final: boolean;
  from_finalize: boolean;
  channel: { alternatives: Array<{ transcript: string; confidence: number; words: DeepgramWord[] }> };
  metadata: {
    request_id: string;
    model_info: { name: string; version: string; arch: string };
    model_uuid: string;
  };
}

export type DeepgramMessage =
  | DeepgramResults
  | { type: "SpeechStarted"; channel: [number, number]; timestamp: number }
  | { type: "UtteranceEnd"; channel: [number, number]; last_word_end: number }
  | {
      type: "Metadata";
      transaction_key: string;
      request_id: string;
      sha256: string;
      created: string;
      duration: number;
      channels: number;
      models: string[];
      model_info: Record<string, { name: string; version: string; arch: string }>;
    };

export interface FakeDeepgramOptions {
  rejectKeys?: Iterable<string>;
  /** Interim cadence, in ms of voiced audio. Default 250. */
  interimIntervalMs?: number;
  /** Voice needed before SpeechStarted. Default 60. */
  speechStartedAfterMs?: number;
  /** Wall-clock delay added to every emitted message. Default 0. */
  transcriberDelayMs?: number;
  /** Close 1011 after this long without audio/KeepAlive. Default 10000. */
  idleTimeoutMs?: number;
  /** Endpointing when the query has none. Deepgram's default is 10 ms. */
  defaultEndpointingMs?: number;
}

interface Utterance {
  id: number | undefined;
  durationMs: number;
  words: string[] | undefined;
  startSec: number;
  voicedMs: number;
  lastVoiceEndSec: number;
  lastInterimVoicedMs: number;
  speechStartedSent: boolean;
  finalSent: boolean;
  /** linear16 voice: its sign changes (count, first and last sample index), for its pitch. */
  pitch?: { crossings: number; first: number; last: number };
}

/** Sign changes count once the signal passes ± this (so low noise around zero does not). */
const CROSSING_HYSTERESIS = 64;

const MODEL_UUID = "1dbdfb4d-85b2-4659-9831-16b3c76229aa";

/** One live `/v1/listen` connection, with everything the tests may want to assert on. */
export class DeepgramConnection {
  readonly id = randomUUID();
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  closeCode: number | undefined;
  readonly params: Record<string, string>;
  readonly authorization: string | undefined;
  readonly key: string | undefined;
  /** Text control messages received (`{"type":"KeepAlive"}` …), parsed. */
  readonly controls: Array<{ type?: string; [k: string]: unknown }> = [];
  /** Everything sent to the client, in order. */
  readonly sent: DeepgramMessage[] = [];
  audioBytes = 0;
  /** Binary (audio) messages received, and the largest of them in bytes. */
  audioMessages = 0;
  largestAudioMessage = 0;
  lastActivityAt = Date.now();

  readonly #ws: WebSocket;
  readonly #fake: FakeDeepgram;
  readonly #endpointingMs: number | false;
  readonly #utteranceEndMs: number | undefined;
  readonly #interim: boolean;
  readonly #vad: boolean;
  readonly #model: string;
  /** Digits as digits (`numerals` or `smart_format`); else as words. */
  readonly #numerals: boolean;
  /** 1 for μ-law, 2 for linear16. */
  readonly #bytesPerSample: number;
  /** Bytes of audio per second at the declared encoding and rate. */
  readonly bytesPerSecond: number;
  /** Bytes in a 20 ms VAD window. */
  readonly #windowBytes: number;
  // VAD window accumulation (stream-aligned 20 ms windows), in bytes.
  #winFill = 0;
  #winVoiced = 0;
  /** linear16: the low byte of a sample whose high byte is in the next chunk. */
  #oddByte: number | undefined;
  /** linear16: samples received, the sign of the last one past the hysteresis, this window's sign changes. */
  #samples = 0;
  #sign = 0;
  #winCrossings = 0;
  #winFirstCrossing = -1;
  #winLastCrossing = -1;
  // Magic search across chunk boundaries.
  readonly #scratch = Buffer.alloc(2 * HEADER_BYTES);
  readonly #tail = Buffer.alloc(HEADER_BYTES - 1);
  #tailLen = 0;
  #pending: { id: number; durationMs: number } | undefined;
  #utt: Utterance | undefined;
  #ended = false;

  constructor(ws: WebSocket, req: IncomingMessage, fake: FakeDeepgram, key: string | undefined) {
    this.#ws = ws;
    this.#fake = fake;
    this.key = key;
    this.authorization = headerValue(req, "authorization");
    const url = new URL(req.url ?? "/", "http://x");
    this.params = Object.fromEntries(url.searchParams);
    const ep = this.params.endpointing;
    this.#endpointingMs = ep === "false" ? false : ep ? Number(ep) : fake.defaultEndpointingMs;
    this.#utteranceEndMs = this.params.utterance_end_ms ? Number(this.params.utterance_end_ms) : undefined;
    this.#interim = this.params.interim_results === "true";
    this.#vad = this.params.vad_events === "true";
    this.#model = this.params.model ?? "nova-3";
    this.#numerals = this.params.numerals === "true" || this.params.smart_format === "true";
    this.#bytesPerSample = this.params.encoding === "linear16" ? 2 : 1;
    const rate = Number(this.params.sample_rate ?? 8000);
    this.bytesPerSecond = rate * this.#bytesPerSample;
    this.#windowBytes = (rate / 50) * this.#bytesPerSample;
    ws.on("message", (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on("close", (code) => {
      this.closedAt = Date.now();
      this.closeCode = code;
      this.#ended = true;
      fake.connectionClosed(this);
    });
    ws.on("error", () => {});
  }

  get query(): URLSearchParams {
    return new URLSearchParams(this.params);
  }

  /** Seconds of audio received. */
  get audioSeconds(): number {
    return this.audioBytes / this.bytesPerSecond;
  }

  get transcripts(): string[] {
    return this.sent.flatMap((m) =>
      m.type === "Results" && m.is_final ? [m.channel.alternatives[0]?.transcript ?? ""] : [],
    );
  }

  /** Close the socket from the server side (e.g. to exercise the app's reconnect path). */
  drop(code = 1011, reason = "fake drop"): void {
    this.#ws.close(code, reason);
  }

  /** The network drops the connection: no close frame (the client sees 1006). */
  terminate(): void {
    this.#ws.terminate();
  }

  /** Sends a text message as given (malformed-message tests). */
  sendRaw(text: string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(text);
  }

  idleTimeout(): void {
    this.#ws.close(
      1011,
      "Deepgram did not receive audio data or a text message within the timeout window. NET-0001",
    );
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    this.lastActivityAt = Date.now();
    if (!isBinary) {
      let msg: { type?: string };
      try {
        msg = JSON.parse(data.toString("utf8")) as { type?: string };
      } catch {
        return;
      }
      this.controls.push(msg);
      if (msg.type === "Finalize") this.#finalize(true);
      else if (msg.type === "CloseStream") this.#closeStream();
      return;
    }
    this.audioMessages++;
    if (data.length > this.largestAudioMessage) this.largestAudioMessage = data.length;
    this.#onAudio(data);
  }

  #onAudio(chunk: Buffer): void {
    this.#findMagic(chunk);
    let i = 0;
    const len = chunk.length;
    const window = this.#windowBytes;
    while (i < len) {
      const take = Math.min(window - this.#winFill, len - i);
      this.#winVoiced +=
        this.#bytesPerSample === 1 ? voicedMulaw(chunk, i, i + take) : this.#voicedPcm(chunk, i, i + take);
      this.#winFill += take;
      i += take;
      this.audioBytes += take;
      if (this.#winFill === window) {
        this.#onWindow(this.#winVoiced * 5 >= (window / this.#bytesPerSample) * 2);
        this.#winFill = 0;
        this.#winVoiced = 0;
        this.#winCrossings = 0;
        this.#winFirstCrossing = -1;
      }
    }
  }

  /** Voiced 16-bit little-endian samples in `chunk[from..to)`, a sample split across chunks included. */
  #voicedPcm(chunk: Buffer, from: number, to: number): number {
    let voiced = 0;
    let j = from;
    if (this.#oddByte !== undefined && j < to) {
      const u = ((chunk[j] as number) << 8) | this.#oddByte;
      const v = u > 0x7fff ? u - 0x10000 : u;
      if (Math.abs(v) >= PCM_VOICE_MAGNITUDE) voiced++;
      this.#crossing(v);
      this.#oddByte = undefined;
      j++;
    }
    for (; j + 1 < to; j += 2) {
      const v = chunk.readInt16LE(j);
      if (Math.abs(v) >= PCM_VOICE_MAGNITUDE) voiced++;
      this.#crossing(v);
    }
    if (j < to) this.#oddByte = chunk[j] as number;
    return voiced;
  }

  #crossing(v: number): void {
    const sign = v >= CROSSING_HYSTERESIS ? 1 : v <= -CROSSING_HYSTERESIS ? -1 : 0;
    if (sign !== 0 && sign !== this.#sign) {
      if (this.#sign !== 0) {
        this.#winCrossings++;
        if (this.#winFirstCrossing < 0) this.#winFirstCrossing = this.#samples;
        this.#winLastCrossing = this.#samples;
      }
      this.#sign = sign;
    }
    this.#samples++;
  }

  #findMagic(chunk: Buffer): void {
    // Fast path: the header lies inside this chunk.
    let at = chunk.indexOf(UTTERANCE_MAGIC);
    while (at !== -1) {
      const h = decodeUtteranceHeader(chunk, at);
      if (h) this.#pending = h;
      at = chunk.indexOf(UTTERANCE_MAGIC, at + 1);
    }
    // Slow path only matters when a header straddles two chunks.
    if (this.#tailLen > 0) {
      this.#tail.copy(this.#scratch, 0, 0, this.#tailLen);
      const head = Math.min(chunk.length, HEADER_BYTES);
      chunk.copy(this.#scratch, this.#tailLen, 0, head);
      const view = this.#scratch.subarray(0, this.#tailLen + head);
      const p = view.indexOf(UTTERANCE_MAGIC);
      if (p !== -1 && p < this.#tailLen) {
        const h = decodeUtteranceHeader(view, p);
        if (h) this.#pending = h;
      }
    }
    const keep = Math.min(chunk.length, HEADER_BYTES - 1);
    chunk.copy(this.#tail, 0, chunk.length - keep);
    this.#tailLen = keep;
  }

  #onWindow(voiced: boolean): void {
    const endSec = this.audioBytes / this.bytesPerSecond;
    const startSec = endSec - FRAME_MS / 1000;
    let utt = this.#utt;
    if (voiced) {
      if (utt && this.#pending && (utt.finalSent || utt.voicedMs > 0)) {
        // A new utterance begins before the previous one was endpointed.
        if (!utt.finalSent) this.#emitFinal(utt, false, false);
        utt = undefined;
      }
      if (!utt) {
        const p = this.#pending;
        this.#pending = undefined;
        utt = {
          id: p?.id,
          durationMs: p?.durationMs ?? 0,
          words: undefined,
          startSec,
          voicedMs: 0,
          lastVoiceEndSec: endSec,
          lastInterimVoicedMs: 0,
          speechStartedSent: false,
          finalSent: false,
        };
        this.#utt = utt;
      } else if (utt.finalSent) {
        // Voice after the final but before UtteranceEnd, without a new header: keep going.
        utt.finalSent = false;
      }
      utt.voicedMs += FRAME_MS;
      utt.lastVoiceEndSec = endSec;
      if (this.#winCrossings > 0) {
        utt.pitch ??= { crossings: 0, first: this.#winFirstCrossing, last: this.#winFirstCrossing };
        utt.pitch.crossings += this.#winCrossings;
        utt.pitch.last = this.#winLastCrossing;
      }
      if (this.#vad && !utt.speechStartedSent && utt.voicedMs >= this.#fake.speechStartedAfterMs) {
        utt.speechStartedSent = true;
        this.#emit({ type: "SpeechStarted", channel: [0, 1], timestamp: round(utt.startSec) });
      }
      if (this.#interim && utt.voicedMs - utt.lastInterimVoicedMs >= this.#fake.interimIntervalMs) {
        utt.lastInterimVoicedMs = utt.voicedMs;
        this.#emitResults(utt, this.#wordsHeard(utt), false, false, false);
      }
      return;
    }
    if (!utt) return;
    const silenceMs = (endSec - utt.lastVoiceEndSec) * 1000;
    const endpointing = this.#endpointingMs === false ? 500 : this.#endpointingMs;
    if (!utt.finalSent && silenceMs >= endpointing) {
      this.#emitFinal(utt, this.#endpointingMs !== false, false);
      if (this.#utteranceEndMs === undefined || !this.#interim) this.#utt = undefined;
    }
    if (
      this.#utteranceEndMs !== undefined &&
      this.#interim &&
      utt.finalSent &&
      silenceMs >= this.#utteranceEndMs
    ) {
      this.#emit({ type: "UtteranceEnd", channel: [0, 1], last_word_end: round(this.#lastWordEnd(utt)) });
      this.#utt = undefined;
    }
  }

  #words(utt: Utterance): string[] {
    if (utt.words) return utt.words;
    const text =
      utt.id !== undefined ? this.#fake.utteranceText(utt.id) : this.#fake.toneText(this.#pitchHz(utt));
    if (text === undefined) return [];
    const words = text.split(/\s+/).filter((w) => w.length > 0);
    utt.words = this.#numerals ? words : words.flatMap(spokenDigits);
    return utt.words;
  }

  /** The pitch of a headerless utterance's voice so far (linear16), from its sign changes. */
  #pitchHz(utt: Utterance): number | undefined {
    const p = utt.pitch;
    if (!p || p.crossings < 8 || p.last <= p.first) return undefined;
    const rate = this.bytesPerSecond / this.#bytesPerSample;
    // n sign changes span n - 1 half periods.
    return ((p.crossings - 1) / 2) * (rate / (p.last - p.first));
  }

  #wordsHeard(utt: Utterance): number {
    const all = this.#words(utt).length;
    if (utt.durationMs <= 0) return all;
    return Math.min(all, Math.ceil((all * utt.voicedMs) / utt.durationMs));
  }

  #lastWordEnd(utt: Utterance): number {
    const n = this.#words(utt).length;
    if (n === 0) return utt.lastVoiceEndSec;
    return Math.min(utt.lastVoiceEndSec, utt.startSec + (utt.durationMs || utt.voicedMs) / 1000);
  }

  #emitFinal(utt: Utterance, speechFinal: boolean, fromFinalize: boolean): void {
    utt.finalSent = true;
    this.#emitResults(utt, this.#words(utt).length, true, speechFinal, fromFinalize);
  }

  #emitResults(
    utt: Utterance,
    count: number,
    isFinal: boolean,
    speechFinal: boolean,
    fromFinalize: boolean,
  ): void {
    const all = this.#words(utt);
    const spanSec = (utt.durationMs || utt.voicedMs) / 1000;
    const per = all.length > 0 ? spanSec / all.length : 0;
    const words: DeepgramWord[] = [];
    for (let i = 0; i < count; i++) {
      const w = all[i] as string;
      words.push({
        word: w.toLowerCase().replace(/[^\p{L}\p{N}'-]/gu, ""),
        start: round(utt.startSec + i * per),
        end: round(utt.startSec + (i + 1) * per),
        confidence: 0.98,
        punctuated_word: w,
      });
    }
    const nowSec = this.audioBytes / this.bytesPerSecond;
    this.#emit({
      type: "Results",
      channel_index: [0, 1],
      duration: round(nowSec - utt.startSec),
      start: round(utt.startSec),
      is_final: isFinal,
      speech_final: speechFinal,
      from_finalize: fromFinalize,
      channel: {
        alternatives: [
          { transcript: all.slice(0, count).join(" "), confidence: count > 0 ? 0.98 : 0, words },
        ],
      },
      metadata: {
        request_id: this.id,
        model_info: { name: `general-${this.#model}`, version: "2025-01-01.0", arch: this.#model },
        model_uuid: MODEL_UUID,
      },
    });
  }

  #finalize(fromFinalize: boolean): void {
    const utt = this.#utt;
    if (utt && !utt.finalSent) {
      this.#emitFinal(utt, false, fromFinalize);
    } else if (fromFinalize) {
      const nowSec = this.audioBytes / this.bytesPerSecond;
      this.#emitResults(
        {
          id: undefined,
          durationMs: 0,
          words: [],
          startSec: nowSec,
          voicedMs: 0,
          lastVoiceEndSec: nowSec,
          lastInterimVoicedMs: 0,
          speechStartedSent: false,
          finalSent: true,
        },
        0,
        true,
        false,
        true,
      );
    }
  }

  #closeStream(): void {
    this.#finalize(false);
    this.#emit({
      type: "Metadata",
      transaction_key: "deprecated",
      request_id: this.id,
      sha256: "0".repeat(64),
      created: new Date(this.openedAt).toISOString(),
      duration: round(this.audioSeconds),
      channels: 1,
      models: [MODEL_UUID],
      model_info: {
        [MODEL_UUID]: { name: `general-${this.#model}`, version: "2025-01-01.0", arch: this.#model },
      },
    });
    this.#after(() => this.#ws.close(1000));
  }

  #emit(msg: DeepgramMessage): void {
    this.sent.push(msg);
    const text = JSON.stringify(msg);
    this.#after(() => {
      if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(text);
    });
  }

  #after(fn: () => void): void {
    const delay = this.#fake.transcriberDelayMs;
    if (delay > 0) setTimeout(fn, delay);
    else fn();
  }
}

/**
 * What `/v1/listen` refuses at the handshake for the requested model, from Deepgram's docs:
 * `keywords` on Nova-3 (the exact body of deepgram-js-sdk#474); `keyterm` is for Nova-3 only; Flux is
 * served on `/v2/listen` and Whisper Cloud does not stream. The last three bodies are our wording
 * (Deepgram's is unconfirmed); tests should match the status and `err_code`, not the text.
 */
export function listenRefusal(q: URLSearchParams): { err_code: string; err_msg: string } | undefined {
  const model = q.get("model") ?? "nova-3";
  if (model.startsWith("flux")) {
    return {
      err_code: "INVALID_QUERY_PARAMETER",
      err_msg: `Model ${model} is only available on /v2/listen.`,
    };
  }
  if (model.startsWith("whisper")) {
    return {
      err_code: "INVALID_QUERY_PARAMETER",
      err_msg: "Live streaming is not available with Deepgram Whisper Cloud.",
    };
  }
  const nova3 = model.startsWith("nova-3");
  if (nova3 && q.has("keywords")) {
    return {
      err_code: "INVALID_QUERY_PARAMETER",
      err_msg: "Keywords are not supported for Nova-3. Please use `keyterm` instead.",
    };
  }
  if (!nova3 && q.has("keyterm")) {
    return {
      err_code: "INVALID_QUERY_PARAMETER",
      err_msg: `Keyterm Prompting is only available for Nova-3 models, not ${model}.`,
    };
  }
  return undefined;
}

const DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/**
 * Without `numerals` (or `smart_format`, which applies it), Deepgram writes numbers as words. The
 * fake's callers "say" written text, so each digit they say comes out as its word, one by one, as
 * a digit string read aloud would be heard ("4521" → "four five two one").
 */
export function spokenDigits(word: string): string[] {
  if (!/\d/.test(word)) return [word];
  const out: string[] = [];
  for (const part of word.match(/\d|\D+/g) ?? []) {
    if (/^\d$/.test(part)) out.push(DIGIT_WORDS[Number(part)] as string);
    else if (out.length > 0)
      out[out.length - 1] += part; // "21." → "two", "one."
    else out.push(part);
  }
  return out;
}

function voicedMulaw(chunk: Buffer, from: number, to: number): number {
  let voiced = 0;
  for (let j = from; j < to; j++) {
    if ((~(chunk[j] as number) & 0x7f) >= VOICE_MAGNITUDE) voiced++;
  }
  return voiced;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export class FakeDeepgram {
  readonly connections: DeepgramConnection[] = [];
  readonly rejectKeys: Set<string>;
  interimIntervalMs: number;
  speechStartedAfterMs: number;
  transcriberDelayMs: number;
  idleTimeoutMs: number;
  defaultEndpointingMs: number;
  /** Upgrades refused (bad key, bad path), for assertions. */
  readonly rejected: Array<{ path: string; status: number; authorization: string | undefined }> = [];
  /** Handshakes still to refuse (`refuseUpgrades`), and with what status. */
  #outage = { remaining: 0, status: 503 };

  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #port: number;
  readonly #utterances = new Map<number, string>();
  readonly #tones = new Map<number, string>();
  readonly #live = new Set<DeepgramConnection>();
  readonly #arrivals = new Arrivals<DeepgramConnection>("FakeDeepgram: no connection");
  readonly #sweep: NodeJS.Timeout;

  private constructor(server: Server, wss: WebSocketServer, port: number, opts: FakeDeepgramOptions) {
    this.#server = server;
    this.#wss = wss;
    this.#port = port;
    this.rejectKeys = new Set(opts.rejectKeys ?? []);
    this.interimIntervalMs = opts.interimIntervalMs ?? 250;
    this.speechStartedAfterMs = opts.speechStartedAfterMs ?? 60;
    this.transcriberDelayMs = opts.transcriberDelayMs ?? 0;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 10_000;
    this.defaultEndpointingMs = opts.defaultEndpointingMs ?? 10;
    // One sweep timer for every connection's idle timeout.
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.#live) if (now - c.lastActivityAt > this.idleTimeoutMs) c.idleTimeout();
    }, 250);
    this.#sweep.unref();
  }

  static async start(opts: FakeDeepgramOptions = {}): Promise<FakeDeepgram> {
    const server = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ err_code: "NOT_FOUND", err_msg: "Not found" }));
    });
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has("token") ? "token" : false),
    });
    const port = await listenLoopback(server);
    const fake = new FakeDeepgram(server, wss, port, opts);
    server.on("upgrade", (req, socket, head) => fake.#onUpgrade(req, socket, head));
    return fake;
  }

  /** `ws://127.0.0.1:PORT` — append `/v1/listen?...`. */
  get url(): string {
    return `ws://127.0.0.1:${this.#port}`;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** For `new DeepgramClient({ apiKey, environment: fake.environment })` (SDK v5). */
  get environment(): { base: string; production: string; agent: string; agentRest: string } {
    return { base: this.baseUrl, production: this.url, agent: this.url, agentRest: this.baseUrl };
  }

  registerUtterance(id: number, text: string): void {
    this.#utterances.set(id, text);
  }

  /** Registers `text` under a fresh process-unique id and returns the id. */
  allocateUtterance(text: string): number {
    const id = nextUtteranceId();
    this.#utterances.set(id, text);
    return id;
  }

  utteranceText(id: number): string | undefined {
    return this.#utterances.get(id);
  }

  /**
   * A caller that cannot carry the utterance header (a browser) says `text` with a steady tone of
   * `hz` (linear16 only; see the top of this file).
   */
  registerToneUtterance(hz: number, text: string): void {
    this.#tones.set(hz, text);
  }

  /** The text registered for the pitch within 3% of `hz`, if any. */
  toneText(hz: number | undefined): string | undefined {
    if (hz === undefined) return undefined;
    for (const [pitch, text] of this.#tones) if (Math.abs(hz - pitch) <= pitch * 0.03) return text;
    return undefined;
  }

  get openConnections(): number {
    return this.#live.size;
  }

  /** Failure injection: the next `count` handshakes are answered `status` (an outage, a refused key). */
  refuseUpgrades(count: number, status = 503): void {
    this.#outage = { remaining: count, status };
  }

  /** Resolves with the next connection opened after this call. */
  waitForConnection(timeoutMs = 5000): Promise<DeepgramConnection> {
    return this.#arrivals.next(timeoutMs);
  }

  /** @internal */
  connectionClosed(c: DeepgramConnection): void {
    this.#live.delete(c);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await closeWebSocketServer(this.#wss, this.#server);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? "/").split("?")[0];
    const authorization = headerValue(req, "authorization");
    if (path !== "/v1/listen") {
      this.rejected.push({ path: path ?? "", status: 404, authorization });
      rejectUpgrade(
        socket,
        404,
        "Not Found",
        JSON.stringify({ err_code: "NOT_FOUND", err_msg: "Not found" }),
      );
      return;
    }
    if (this.#outage.remaining > 0) {
      this.#outage.remaining--;
      const status = this.#outage.status;
      this.rejected.push({ path, status, authorization });
      const body = JSON.stringify({
        err_code: status >= 500 ? "INTERNAL_SERVER_ERROR" : "REQUEST_REFUSED",
        err_msg: status >= 500 ? "Service temporarily unavailable." : "Request refused.",
        request_id: randomUUID(),
      });
      rejectUpgrade(socket, status, status >= 500 ? "Service Unavailable" : "Refused", body, {
        "dg-error": body,
      });
      return;
    }
    let key: string | undefined;
    if (authorization) {
      const m = /^(Token|Bearer)\s+(.+)$/i.exec(authorization);
      key = m?.[2];
    } else {
      const proto = headerValue(req, "sec-websocket-protocol");
      const parts = proto?.split(",").map((s) => s.trim());
      if (parts && parts[0] === "token") key = parts[1];
    }
    if (!key || this.rejectKeys.has(key)) {
      this.rejected.push({ path, status: 401, authorization });
      rejectUpgrade(
        socket,
        401,
        "Unauthorized",
        JSON.stringify({
          err_code: "INVALID_AUTH",
          err_msg: "Invalid credentials.",
          request_id: randomUUID(),
        }),
      );
      return;
    }
    const refusal = listenRefusal(new URL(req.url ?? "/", "http://x").searchParams);
    if (refusal) {
      this.rejected.push({ path, status: 400, authorization });
      const body = JSON.stringify({ ...refusal, request_id: randomUUID() });
      // Deepgram repeats the error body in a `dg-error` header (clients that cannot read the body).
      rejectUpgrade(socket, 400, "Bad Request", body, { "dg-error": body, "dg-request-id": randomUUID() });
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new DeepgramConnection(ws, req, this, key);
      this.connections.push(conn);
      this.#live.add(conn);
      this.#arrivals.arrived(conn);
    });
  }
}
