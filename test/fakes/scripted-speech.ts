// What a fake transcriber "hears": the scripted utterances of test/fakes/deepgram.ts (an utterance's
// first frame starts with UTTERANCE_MAGIC, its id and its duration; its words are registered with an
// utterance registry, the Deepgram fake's in the media harness) and a voice detector per 20 ms window,
// all on the audio clock (bytes received / bytes per second), so what the fakes emit is the same
// however fast audio is pushed. Shared by the AssemblyAI and OpenAI Realtime fakes; each turns the
// windows into its own provider's messages.
import { decodeUtteranceHeader, FRAME_MS, spokenDigits, UTTERANCE_MAGIC } from "./deepgram.ts";
import { PCM_VOICE_MAGNITUDE, VOICE_MAGNITUDE } from "./util.ts";

/** Where an utterance's words are registered (FakeDeepgram in the media harness). */
export interface UtteranceSource {
  utteranceText(id: number): string | undefined;
}

export interface ScriptedAudioFormat {
  encoding: "mulaw" | "linear16";
  sampleRate: number;
}

/** A utterance being heard. */
export interface HeardUtterance {
  /** The scripted utterance (undefined: voice without a header, transcribed as nothing, like noise). */
  id: number | undefined;
  /** Its scripted length (0 when unknown). */
  durationMs: number;
  startMs: number;
  voicedMs: number;
  lastVoiceEndMs: number;
}

const HEADER_BYTES = 16;

/** A registry of its own for a fake used without the Deepgram fake (adapter tests). */
export class UtteranceRegistry implements UtteranceSource {
  static #next = 1_000_000;
  readonly #texts = new Map<number, string>();

  allocateUtterance(text: string): number {
    const id = UtteranceRegistry.#next++;
    this.#texts.set(id, text);
    return id;
  }

  utteranceText(id: number): string | undefined {
    return this.#texts.get(id);
  }
}

/**
 * The words of an utterance as heard: `formatted` keeps the registered text (punctuation, case,
 * digits); otherwise lower case without punctuation and digits as words, as an ASR model writes
 * before formatting.
 */
export function scriptedWords(source: UtteranceSource, id: number | undefined, formatted: boolean): string[] {
  const text = id === undefined ? undefined : source.utteranceText(id);
  if (text === undefined) return [];
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  if (formatted) return words;
  return words
    .flatMap(spokenDigits)
    .map((w) => w.toLowerCase().replace(/[^\p{L}\p{N}'-]/gu, ""))
    .filter((w) => w.length > 0);
}

/** Feeds raw audio in; calls `onWindow` per 20 ms of audio with whether it was voiced. */
export class SpeechScanner {
  readonly bytesPerSecond: number;
  audioBytes = 0;
  readonly #bytesPerSample: number;
  readonly #windowBytes: number;
  readonly #onWindow: (voiced: boolean, endMs: number) => void;
  #fill = 0;
  #voiced = 0;
  #oddByte: number | undefined;
  readonly #tail = Buffer.alloc(HEADER_BYTES - 1);
  #tailLen = 0;
  /** The header of the next utterance, seen but not yet voiced. */
  pending: { id: number; durationMs: number } | undefined;

  constructor(format: ScriptedAudioFormat, onWindow: (voiced: boolean, endMs: number) => void) {
    this.#bytesPerSample = format.encoding === "linear16" ? 2 : 1;
    this.bytesPerSecond = format.sampleRate * this.#bytesPerSample;
    this.#windowBytes = (format.sampleRate / (1000 / FRAME_MS)) * this.#bytesPerSample;
    this.#onWindow = onWindow;
  }

  /** Audio time received, in ms. */
  get audioMs(): number {
    return (this.audioBytes * 1000) / this.bytesPerSecond;
  }

  push(chunk: Buffer): void {
    this.#findHeader(chunk);
    let i = 0;
    while (i < chunk.length) {
      const take = Math.min(this.#windowBytes - this.#fill, chunk.length - i);
      this.#voiced +=
        this.#bytesPerSample === 1 ? voicedMulaw(chunk, i, i + take) : this.#voicedPcm(chunk, i, i + take);
      this.#fill += take;
      this.audioBytes += take;
      i += take;
      if (this.#fill === this.#windowBytes) {
        const samples = this.#windowBytes / this.#bytesPerSample;
        const voiced = this.#voiced * 5 >= samples * 2;
        this.#fill = 0;
        this.#voiced = 0;
        this.#onWindow(voiced, this.audioMs);
      }
    }
  }

  #voicedPcm(chunk: Buffer, from: number, to: number): number {
    let voiced = 0;
    let j = from;
    if (this.#oddByte !== undefined && j < to) {
      const u = ((chunk[j] as number) << 8) | this.#oddByte;
      if (Math.abs(u > 0x7fff ? u - 0x10000 : u) >= PCM_VOICE_MAGNITUDE) voiced++;
      this.#oddByte = undefined;
      j++;
    }
    for (; j + 1 < to; j += 2) if (Math.abs(chunk.readInt16LE(j)) >= PCM_VOICE_MAGNITUDE) voiced++;
    if (j < to) this.#oddByte = chunk[j] as number;
    return voiced;
  }

  #findHeader(chunk: Buffer): void {
    const joined = this.#tailLen > 0 ? Buffer.concat([this.#tail.subarray(0, this.#tailLen), chunk]) : chunk;
    let at = joined.indexOf(UTTERANCE_MAGIC);
    while (at !== -1) {
      const h = decodeUtteranceHeader(joined, at);
      if (h) this.pending = h;
      at = joined.indexOf(UTTERANCE_MAGIC, at + 1);
    }
    const keep = Math.min(joined.length, HEADER_BYTES - 1);
    joined.copy(this.#tail, 0, joined.length - keep);
    this.#tailLen = keep;
  }
}

function voicedMulaw(chunk: Buffer, from: number, to: number): number {
  let voiced = 0;
  for (let j = from; j < to; j++) if ((~(chunk[j] as number) & 0x7f) >= VOICE_MAGNITUDE) voiced++;
  return voiced;
}
