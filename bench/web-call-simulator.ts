// A web call's client for the benchmarks, as a browser page would be one (the dashboard's talk page):
// it creates the call with `POST /call` and a `vapi.websocket` transport, opens the answer's
// `transport.websocketCallUrl`, streams its microphone as binary PCM s16le frames of 20 ms (silence
// unless it says something) every 20 ms of wall clock, plays the assistant's binary audio at its
// real rate, and drops what it has not played yet on `user-interrupted` (the client message of a
// barge-in). Turn latency as TwilioCallSimulator measures it: the wall time of the caller's last
// voiced frame to the first voiced sample the caller heard of audio received after it.
import { WebSocket } from "ws";
import { encodeUtteranceFrames, type FakeAudioFormat, SharedTicker } from "../test/fakes/index.ts";
import { PCM_VOICE_MAGNITUDE } from "../test/fakes/util.ts";

const FRAME_MS = 20;
export const WEB_FORMAT: FakeAudioFormat = { encoding: "linear16", sampleRate: 16000 };
/** Bytes per ms of PCM s16le 16 kHz. */
const BYTES_PER_MS = 32;
const FRAME_BYTES = FRAME_MS * BYTES_PER_MS;
const SILENCE = Buffer.alloc(FRAME_BYTES);
/** The body of `POST /call` that makes a web call in this format. */
export const WEB_TRANSPORT = {
  provider: "vapi.websocket",
  audioFormat: { format: "pcm_s16le", container: "raw", sampleRate: WEB_FORMAT.sampleRate },
} as const;

const ticker = new SharedTicker(FRAME_MS);

export interface WebTurn {
  text: string;
  startedAt: number;
  lastVoicedAt?: number;
  firstHeardAt?: number;
  latencyMs?: number;
}

interface Queued {
  buf: Buffer;
  off: number;
  enqueuedAt: number;
}

/** Index of the first sample at or above the fakes' voice level in `buf[from..to)` (bytes), or -1. */
function firstVoicedByte(buf: Buffer, from: number, to: number): number {
  for (let i = from + (from & 1); i + 1 < to; i += 2) {
    const s = buf.readInt16LE(i);
    if (s >= PCM_VOICE_MAGNITUDE || s <= -PCM_VOICE_MAGNITUDE) return i;
  }
  return -1;
}

/** `url` with its port replaced. */
export function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

const INTERRUPTED = Buffer.from('"user-interrupted"');

export interface WebCallPlacement {
  /** `POST` here with the body below makes the call (the API, or the bare relay's stand-in). */
  createUrl: string;
  /** Bearer key. */
  key: string;
  assistantId: string;
  utterances: { allocateUtterance(text: string): number };
  onEnded?: () => void;
  /** Connect to this port instead of the one `websocketCallUrl` names (another media process). */
  mediaPort?: number;
}

export class WebCallSimulator {
  /** The call's id (`POST /call`'s answer). */
  callSid = "";
  readonly turns: WebTurn[] = [];
  /** Barge-ins the client was told of (`user-interrupted`). */
  clears = 0;
  /** Binary messages received (assistant audio). */
  outboundMediaMessages = 0;
  streamStartedAt: number | undefined;
  ended = false;
  readonly #utterances: WebCallPlacement["utterances"];
  readonly #onEnded: (() => void) | undefined;
  #ws: WebSocket | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #out: Array<{ frame: Buffer; turn?: WebTurn; done?: () => void }> = [];
  #framesSent = 0;
  readonly #queue: Queued[] = [];
  #queuedBytes = 0;
  #playheadAt = 0;
  readonly #audioWaiters: Array<{ since: number; resolve: (at: number) => void }> = [];

  private constructor(p: WebCallPlacement) {
    this.#utterances = p.utterances;
    this.#onEnded = p.onEnded;
  }

  get streamOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Creates the call and connects; resolves once the socket is open. */
  static async place(p: WebCallPlacement): Promise<WebCallSimulator> {
    const sim = new WebCallSimulator(p);
    const res = await fetch(p.createUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${p.key}`, "content-type": "application/json" },
      body: JSON.stringify({ assistantId: p.assistantId, transport: WEB_TRANSPORT }),
    });
    const body = (await res.json()) as { id?: string; transport?: { websocketCallUrl?: string } };
    const named = body.transport?.websocketCallUrl;
    if (res.status >= 300 || !body.id || !named) throw new Error(`POST /call: ${res.status}`);
    sim.callSid = body.id;
    const url = p.mediaPort === undefined ? named : withPort(named, p.mediaPort);
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sim.#ws = ws;
    ws.on("message", (data: Buffer, isBinary: boolean) => sim.#onMessage(data, isBinary));
    ws.on("close", () => sim.#finish());
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.on("error", () => {});
    sim.streamStartedAt = Date.now();
    sim.#playheadAt = sim.streamStartedAt;
    sim.#unsubscribe = ticker.subscribe((now) => sim.#onTick(now));
    return sim;
  }

  /** The caller says `text`; resolves with the turn once its last frame was sent. */
  say(text: string, durationMs?: number): Promise<WebTurn> {
    const id = this.#utterances.allocateUtterance(text);
    const words = text.split(/\s+/).filter(Boolean).length;
    const frames = encodeUtteranceFrames(id, durationMs ?? Math.max(400, words * 300), WEB_FORMAT);
    const turn: WebTurn = { text, startedAt: Date.now() };
    this.turns.push(turn);
    return new Promise((resolve) => {
      frames.forEach((frame, i) => {
        const last = i === frames.length - 1;
        this.#out.push({ frame, ...(last ? { turn, done: () => resolve(turn) } : {}) });
      });
    });
  }

  /** Resolves with the wall time the caller first hears voiced audio received at/after `since`. */
  waitForAudio(opts: { since?: number; timeoutMs?: number } = {}): Promise<number> {
    const since = opts.since ?? Date.now();
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      new Promise<number>((resolve) => this.#audioWaiters.push({ since, resolve })),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error("timed out waiting for audio")), opts.timeoutMs ?? 5000);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** The caller hangs up: Vapi's `{"type":"hangup"}`, then the socket closes. */
  async hangup(): Promise<void> {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send('{"type":"hangup"}');
      ws.close(1000);
    }
    this.#finish();
  }

  #finish(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.ended) return;
    this.ended = true;
    this.#onEnded?.();
  }

  #onTick(now: number): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.streamStartedAt === undefined) return;
    const due = Math.floor((now - this.streamStartedAt) / FRAME_MS) + 1;
    let behind = due - this.#framesSent;
    // After a long stall skip ahead rather than flood the far end (as the Twilio simulator does).
    if (behind > 25) {
      this.#framesSent = due - 25;
      behind = 25;
    }
    for (let i = 0; i < behind; i++) {
      const f = this.#out.shift();
      ws.send(f ? f.frame : SILENCE, { binary: true });
      this.#framesSent++;
      if (f?.turn) f.turn.lastVoicedAt = now;
      f?.done?.();
    }
    this.#advance(now);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    const now = Date.now();
    this.#advance(now);
    if (isBinary) {
      this.outboundMediaMessages++;
      if (this.#queue.length === 0) this.#playheadAt = now;
      this.#queue.push({ buf: data, off: 0, enqueuedAt: now });
      this.#queuedBytes += data.length;
      return;
    }
    // A barge-in: what was received and not yet played is never heard.
    if (data.indexOf(INTERRUPTED) >= 0 && data.indexOf('"type":"user-interrupted"') >= 0) {
      this.clears++;
      this.#queue.length = 0;
      this.#queuedBytes = 0;
      this.#playheadAt = now;
    }
  }

  #advance(now: number): void {
    const q = this.#queue;
    if (q.length === 0) {
      this.#playheadAt = now;
      return;
    }
    let budget = Math.floor((now - this.#playheadAt) * BYTES_PER_MS);
    while (q.length > 0 && budget > 0) {
      const head = q[0] as Queued;
      const take = Math.min(budget, head.buf.length - head.off);
      this.#played(head, take);
      head.off += take;
      budget -= take;
      this.#playheadAt += take / BYTES_PER_MS;
      this.#queuedBytes -= take;
      if (head.off >= head.buf.length) q.shift();
    }
    if (q.length === 0) this.#playheadAt = now;
  }

  #played(item: Queued, take: number): void {
    const turn = this.turns[this.turns.length - 1];
    const pending =
      turn?.lastVoicedAt !== undefined &&
      turn.firstHeardAt === undefined &&
      item.enqueuedAt >= turn.lastVoicedAt;
    if (!pending && this.#audioWaiters.length === 0) return;
    const idx = firstVoicedByte(item.buf, item.off, item.off + take);
    if (idx === -1) return;
    const at = this.#playheadAt + (idx - item.off) / BYTES_PER_MS;
    if (pending && turn?.lastVoicedAt !== undefined) {
      turn.firstHeardAt = at;
      turn.latencyMs = at - turn.lastVoicedAt;
    }
    for (let i = this.#audioWaiters.length - 1; i >= 0; i--) {
      const w = this.#audioWaiters[i];
      if (w && item.enqueuedAt >= w.since) {
        this.#audioWaiters.splice(i, 1);
        w.resolve(at);
      }
    }
  }
}
