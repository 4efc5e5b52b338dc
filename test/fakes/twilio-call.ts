/**
 * TwilioCallSimulator — behaves like Twilio (and the caller's phone) for one call.
 *
 * Inbound: `placeInboundCall({voiceUrl, accountSid, authToken, from, to})` POSTs the signed voice
 * webhook, runs the TwiML answer (`<Connect><Stream>`, `<Say>`, `<Play>`, `<Pause>`, `<Hangup>`,
 * `<Reject>`, `<Dial>`, `<Redirect>`), and for `<Connect><Stream>` opens the media websocket with a
 * signed upgrade (`X-Twilio-Signature` over the exact stream URL, params {}), sends `connected`,
 * `start`, then one 160-byte μ-law `media` frame every 20 ms of wall clock (silence unless `say()`).
 *
 * Outbound audio from the app is queued and "played" at 8 bytes/ms of wall clock; `mark`s are echoed
 * when playback passes them (at once if nothing is queued), `clear` drops the queue and echoes every
 * pending mark. Turn latency: for every `say()` the simulator records the wall time of the caller's
 * last voiced frame and of the first voiced byte the caller *heard* from audio the app sent after it
 * (`turns[i].latencyMs`).
 *
 * Ending: `hangup()` (caller) sends `stop`, closes 1000 and POSTs the status callback `completed`.
 * A REST update from FakeTwilio (`Status=completed`, or new `Twiml`/`Url`) stops the stream the same
 * way and runs the new TwiML (`<Dial>` is recorded in `dialed` and ends the simulated call).
 * If the app closes the stream itself, Twilio semantics apply: `<Connect action>` is requested, else
 * the next verb runs, else the call completes.
 *
 * Media frames of all simulators share one 20 ms ticker; each catches up on missed frames so the
 * stream stays at 50 frames/s under load.
 */
import { randomBytes } from "node:crypto";
import twilio from "twilio";
import { WebSocket } from "ws";
import { encodeUtteranceFrames, FRAME_MS, SILENCE_FRAME, TONE_FRAME } from "./deepgram.ts";
import { parseTwiml, type TwimlNode } from "./twiml.ts";
import { firstVoicedIndex, SharedTicker, sleep } from "./util.ts";

export type CallStatus =
  | "queued"
  | "initiated"
  | "ringing"
  | "in-progress"
  | "completed"
  | "busy"
  | "failed"
  | "no-answer"
  | "canceled";

export type EndedReason =
  | "caller-hangup"
  | "twiml-hangup"
  | "twiml-end"
  | "twiml-reject"
  | "dial"
  | "api-completed"
  | "api-canceled"
  | "stream-error"
  | "webhook-error"
  | "busy"
  | "no-answer"
  | "failed";

const TERMINAL = new Set<CallStatus>(["completed", "busy", "failed", "no-answer", "canceled"]);

export interface Turn {
  utteranceId: number;
  text: string | undefined;
  startedAt: number;
  /** Wall time the last voiced frame of this utterance was sent. */
  lastVoicedAt?: number;
  /** Wall time the caller heard the first voiced byte of audio sent after `lastVoicedAt`. */
  firstHeardAt?: number;
  latencyMs?: number;
}

export interface StatusCallbackRecord {
  url: string;
  params: Record<string, string>;
  responseStatus: number | undefined;
  at: number;
}

export interface WebhookRecord {
  url: string;
  method: string;
  params: Record<string, string>;
  signature: string;
  responseStatus: number;
  twiml: string;
  at: number;
}

/** Anything that can register words for an utterance id (FakeDeepgram does). */
export interface UtteranceRegistry {
  allocateUtterance(text: string): number;
}

export interface CallSimulatorOptions {
  utterances?: UtteranceRegistry;
  /** Keep every outbound byte played (`heardAudio()`); off by default to keep the benchmark lean. */
  recordAudio?: boolean;
  ticker?: SharedTicker;
  /** Called once when the call reaches a terminal status. */
  onEnded?: (sim: TwilioCallSimulator) => void;
  /**
   * Where a `<Stream>` connects instead of its `url` (a benchmark sending calls to one of several
   * media processes); the signature is computed for the URL connected to.
   */
  streamUrl?: (url: string) => string;
}

export interface CallIdentity {
  accountSid: string;
  authToken: string;
  from: string;
  to: string;
  callSid?: string;
  direction?: "inbound" | "outbound-api";
  statusCallback?: string;
  statusCallbackMethod?: string;
  /** Which status events to POST (`initiated`, `ringing`, `answered`, `completed`). Default: completed. */
  statusCallbackEvents?: string[];
}

export interface InboundCallParams extends CallIdentity {
  voiceUrl: string;
  voiceMethod?: string;
  /** Extra webhook params (e.g. `CallerName`, `ForwardedFrom`). */
  extraParams?: Record<string, string>;
}

export const sharedMediaTicker = new SharedTicker(FRAME_MS);
const SILENCE_B64 = SILENCE_FRAME.toString("base64");
const TONE_B64 = TONE_FRAME.toString("base64");

export function newSid(prefix: string): string {
  return prefix + randomBytes(16).toString("hex");
}

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

interface QueuedAudio {
  buf: Buffer;
  off: number;
  enqueuedAt: number;
}
type PlaybackItem = QueuedAudio | { mark: string };

interface OutFrame {
  b64: string;
  turn?: Turn;
  done?: () => void;
}

export class TwilioCallSimulator {
  callSid: string;
  accountSid = "";
  authToken = "";
  from = "";
  to = "";
  direction: "inbound" | "outbound-api" = "inbound";
  status: CallStatus = "queued";
  endedReason: EndedReason | undefined;
  readonly createdAt = Date.now();
  answeredAt: number | undefined;
  endedAt: number | undefined;
  statusCallback: string | undefined;
  statusCallbackMethod = "POST";
  statusCallbackEvents = new Set<string>(["completed"]);

  // Stream state
  streamSid: string | undefined;
  streamUrl: string | undefined;
  customParameters: Record<string, string> = {};
  streamStartedAt: number | undefined;
  streamError: string | undefined;

  // What happened
  readonly webhooks: WebhookRecord[] = [];
  readonly statusCallbacks: StatusCallbackRecord[] = [];
  /**
   * While true, status callbacks are recorded but not sent (the app's webhook unreachable at the
   * time); `releaseStatusCallbacks()` sends them, in order, as a late delivery.
   */
  holdStatusCallbacks = false;
  #heldCallbacks: Array<() => void> = [];
  readonly twimlHistory: string[] = [];
  readonly said: string[] = [];
  dialed: { target: string; attrs: Record<string, string>; at: number } | undefined;
  rejectedReason: string | undefined;
  readonly turns: Turn[] = [];
  readonly dtmfSent: string[] = [];
  /** Marks the app sent, in order; `echoedMarks` those echoed back. */
  readonly marksReceived: string[] = [];
  readonly echoedMarks: string[] = [];
  clears = 0;
  outboundMediaMessages = 0;
  heardBytes = 0;
  /** Outbound bytes dropped by `clear` before they were played. */
  clearedBytes = 0;
  framesSent = 0;

  readonly #opts: CallSimulatorOptions;
  readonly #ticker: SharedTicker;
  #ws: WebSocket | undefined;
  #unsubscribe: (() => void) | undefined;
  #seq = 0;
  #mediaStartAt = 0;
  readonly #outFrames: OutFrame[] = [];
  readonly #queue: PlaybackItem[] = [];
  #queuedBytes = 0;
  #playheadAt = 0;
  readonly #heard: Array<{ at: number; audio: Buffer }> = [];
  readonly #audioWaiters: Array<{ since: number; resolve: (at: number) => void }> = [];
  readonly #markWaiters: Array<{ name: string; resolve: () => void }> = [];
  #endWaiters: Array<() => void> = [];
  #startWaiters: Array<() => void> = [];
  #streamDone: ((how: "app-closed" | "stopped" | "error") => void) | undefined;
  #runId = 0;
  #callbackSeq = 0;

  constructor(opts: CallSimulatorOptions = {}, callSid?: string) {
    this.#opts = opts;
    this.#ticker = opts.ticker ?? sharedMediaTicker;
    this.callSid = callSid ?? newSid("CA");
  }

  get ended(): boolean {
    return TERMINAL.has(this.status);
  }

  get streamOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** Bytes queued for playback but not yet played. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** The last TwiML the call ran. */
  get twiml(): string | undefined {
    return this.twimlHistory[this.twimlHistory.length - 1];
  }

  /** Everything played to the caller (only with `recordAudio: true`). */
  heardAudio(): Buffer {
    return Buffer.concat(this.#heard.map((h) => h.audio));
  }

  /** @internal Sets identity fields (used by FakeTwilio for outbound calls, and by placeInboundCall). */
  configure(id: CallIdentity): void {
    this.accountSid = id.accountSid;
    this.authToken = id.authToken;
    this.from = id.from;
    this.to = id.to;
    if (id.callSid) this.callSid = id.callSid;
    if (id.direction) this.direction = id.direction;
    if (id.statusCallback) this.statusCallback = id.statusCallback;
    if (id.statusCallbackMethod) this.statusCallbackMethod = id.statusCallbackMethod.toUpperCase();
    if (id.statusCallbackEvents && id.statusCallbackEvents.length > 0) {
      this.statusCallbackEvents = new Set(id.statusCallbackEvents);
    }
  }

  /**
   * Rings the app: POSTs the voice webhook and runs its TwiML. Resolves once the media stream has
   * started (after `start` was sent) or the call ended without one (e.g. `<Reject>`).
   */
  async placeInboundCall(params: InboundCallParams): Promise<this> {
    this.configure({ ...params, direction: "inbound" });
    this.status = "ringing";
    const webhookParams = { ...this.#baseParams(), ...params.extraParams };
    const twimlText = await this.#fetchTwiml(params.voiceUrl, params.voiceMethod ?? "POST", webhookParams);
    if (twimlText === undefined) {
      this.#finish("failed", "webhook-error");
      return this;
    }
    this.#answer();
    await this.#startOrEnd(() => this.#runTwiml(twimlText));
    return this;
  }

  /** @internal FakeTwilio drives outbound calls through this. */
  async runOutbound(
    source: { twiml?: string; url?: string; method?: string },
    outcome: "answer" | "busy" | "no-answer" | "failed",
    ringMs: number,
  ): Promise<void> {
    this.status = "queued";
    await this.#statusEvent("initiated", "initiated");
    this.status = "ringing";
    await this.#statusEvent("ringing", "ringing");
    if (ringMs > 0) await sleep(ringMs);
    if (this.ended) return;
    if (outcome !== "answer") {
      this.#finish(outcome, outcome);
      return;
    }
    this.#answer();
    let twimlText = source.twiml;
    if (twimlText === undefined && source.url) {
      twimlText = await this.#fetchTwiml(source.url, source.method ?? "POST", this.#baseParams());
    }
    if (twimlText === undefined) {
      this.#finish("failed", "webhook-error");
      return;
    }
    const text = twimlText;
    await this.#startOrEnd(() => this.#runTwiml(text));
  }

  /**
   * The caller speaks: registers `text` with the utterance registry (FakeDeepgram) — or uses a
   * numeric id you registered yourself — and queues its frames. Resolves when the last frame was sent.
   */
  say(textOrId: string | number, durationMs?: number): Promise<Turn> {
    let id: number;
    let text: string | undefined;
    if (typeof textOrId === "number") {
      id = textOrId;
    } else {
      if (!this.#opts.utterances) throw new Error("TwilioCallSimulator.say(text) needs options.utterances");
      text = textOrId;
      id = this.#opts.utterances.allocateUtterance(text);
    }
    const words = text ? text.split(/\s+/).filter(Boolean).length : 2;
    const frames = encodeUtteranceFrames(id, durationMs ?? Math.max(400, words * 300));
    const turn: Turn = { utteranceId: id, text, startedAt: Date.now() };
    this.turns.push(turn);
    return new Promise((resolve) => {
      frames.forEach((f, i) => {
        const last = i === frames.length - 1;
        this.#outFrames.push({
          b64: f === TONE_FRAME ? TONE_B64 : f.toString("base64"),
          turn: last ? turn : undefined,
          done: last ? () => resolve(turn) : undefined,
        });
      });
    });
  }

  pressDigit(digit: string): void {
    this.dtmfSent.push(digit);
    this.#send(
      `{"event":"dtmf","streamSid":"${this.streamSid}","sequenceNumber":"${++this.#seq}","dtmf":{"track":"inbound_track","digit":"${digit}"}}`,
    );
  }

  /** The caller hangs up: `stop`, close 1000, status callback `completed`. */
  async hangup(): Promise<void> {
    if (this.ended) return;
    this.#runId++;
    this.#endStream();
    this.#finish("completed", "caller-hangup");
  }

  /** @internal REST `POST /Calls/{sid}.json` from FakeTwilio. */
  applyUpdate(update: { status?: string; twiml?: string; url?: string; method?: string }): void {
    if (this.ended) return;
    if (update.status === "completed" || update.status === "canceled") {
      this.#runId++;
      this.#endStream();
      const answered = this.answeredAt !== undefined;
      this.#finish(answered ? "completed" : "canceled", answered ? "api-completed" : "api-canceled");
      return;
    }
    if (update.twiml !== undefined || update.url !== undefined) {
      const runId = ++this.#runId;
      this.#endStream();
      const { twiml: text, url, method } = update;
      void (async () => {
        const doc =
          text ?? (url ? await this.#fetchTwiml(url, method ?? "POST", this.#baseParams()) : undefined);
        if (runId !== this.#runId || this.ended) return;
        if (doc === undefined) this.#finish("failed", "webhook-error");
        else await this.#runTwiml(doc);
      })();
    }
  }

  /** Resolves with the wall time the caller first hears voiced audio that the app sent at/after `since`. */
  waitForAudio(opts: { since?: number; timeoutMs?: number } = {}): Promise<number> {
    const since = opts.since ?? Date.now();
    return this.#withTimeout(
      new Promise<number>((resolve) => this.#audioWaiters.push({ since, resolve })),
      opts.timeoutMs ?? 5000,
      "audio",
    );
  }

  waitForMark(name: string, timeoutMs = 5000): Promise<void> {
    if (this.echoedMarks.includes(name)) return Promise.resolve();
    return this.#withTimeout(
      new Promise<void>((resolve) => this.#markWaiters.push({ name, resolve })),
      timeoutMs,
      `mark ${name}`,
    );
  }

  waitForEnd(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
    return this.#withTimeout(new Promise<void>((r) => this.#endWaiters.push(r)), timeoutMs, "end");
  }

  waitForStreamStart(timeoutMs = 5000): Promise<void> {
    if (this.streamStartedAt !== undefined) return Promise.resolve();
    return this.#withTimeout(new Promise<void>((r) => this.#startWaiters.push(r)), timeoutMs, "stream start");
  }

  // ---------------------------------------------------------------- internals

  #withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      t = setTimeout(
        () => reject(new Error(`TwilioCallSimulator ${this.callSid}: timed out waiting for ${what}`)),
        ms,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(t));
  }

  #baseParams(): Record<string, string> {
    return {
      AccountSid: this.accountSid,
      ApiVersion: "2010-04-01",
      CallSid: this.callSid,
      CallStatus: this.status,
      Called: this.to,
      CalledCountry: "US",
      Caller: this.from,
      CallerCountry: "US",
      Direction: this.direction,
      From: this.from,
      FromCountry: "US",
      To: this.to,
      ToCountry: "US",
    };
  }

  async #signedRequest(
    url: string,
    method: string,
    params: Record<string, string>,
  ): Promise<{ status: number; body: string; signature: string }> {
    const isGet = method.toUpperCase() === "GET";
    let target = url;
    let signature: string;
    const headers: Record<string, string> = {
      "user-agent": "TwilioProxy/1.1",
      "i-twilio-idempotency-token": randomBytes(16).toString("hex"),
      "x-home-region": "us1",
    };
    let body: string | undefined;
    if (isGet) {
      const u = new URL(url);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      target = u.toString();
      signature = twilio.getExpectedTwilioSignature(this.authToken, target, {});
    } else {
      signature = twilio.getExpectedTwilioSignature(this.authToken, url, params);
      headers["content-type"] = "application/x-www-form-urlencoded; charset=UTF-8";
      body = new URLSearchParams(params).toString();
    }
    headers["x-twilio-signature"] = signature;
    const res = await fetch(target, { method: isGet ? "GET" : "POST", headers, body });
    return { status: res.status, body: await res.text(), signature };
  }

  async #fetchTwiml(
    url: string,
    method: string,
    params: Record<string, string>,
  ): Promise<string | undefined> {
    try {
      const res = await this.#signedRequest(url, method, params);
      this.webhooks.push({
        url,
        method,
        params,
        signature: res.signature,
        responseStatus: res.status,
        twiml: res.body,
        at: Date.now(),
      });
      return res.status >= 200 && res.status < 300 ? res.body : undefined;
    } catch {
      return undefined;
    }
  }

  #answer(): void {
    this.status = "in-progress";
    this.answeredAt = Date.now();
    void this.#statusEvent("answered", "in-progress");
  }

  async #startOrEnd(run: () => Promise<void>): Promise<void> {
    let settle: () => void = () => {};
    const ready = new Promise<void>((r) => {
      settle = r;
    });
    this.#startWaiters.push(settle);
    this.#endWaiters.push(settle);
    void run().finally(settle);
    await ready;
  }

  async #runTwiml(xml: string): Promise<void> {
    const runId = this.#runId;
    this.twimlHistory.push(xml);
    let root: TwimlNode;
    try {
      root = parseTwiml(xml);
    } catch {
      this.#finish("failed", "webhook-error");
      return;
    }
    for (const verb of root.children) {
      if (runId !== this.#runId || this.ended) return;
      switch (verb.name) {
        case "Say":
          this.said.push(verb.text.trim());
          break;
        case "Play":
        case "Pause":
        case "Gather":
        case "Start":
          break;
        case "Hangup":
          this.#finish("completed", "twiml-hangup");
          return;
        case "Reject":
          this.rejectedReason = verb.attrs.reason ?? "rejected";
          this.#finish(verb.attrs.reason === "busy" ? "busy" : "completed", "twiml-reject");
          return;
        case "Dial": {
          const child = verb.children.find((c) =>
            ["Number", "Sip", "Client", "Conference", "Queue"].includes(c.name),
          );
          const target = (child ? child.text : verb.text).trim();
          this.dialed = { target, attrs: { ...verb.attrs }, at: Date.now() };
          this.#finish("completed", "dial");
          return;
        }
        case "Redirect": {
          const doc = await this.#fetchTwiml(
            verb.text.trim(),
            verb.attrs.method ?? "POST",
            this.#baseParams(),
          );
          if (runId !== this.#runId || this.ended) return;
          if (doc === undefined) this.#finish("failed", "webhook-error");
          else await this.#runTwiml(doc);
          return;
        }
        case "Connect": {
          const stream = verb.children.find((c) => c.name === "Stream");
          if (!stream) break;
          const how = await this.#runStream(stream);
          if (runId !== this.#runId || this.ended) return;
          if (how === "error") {
            this.#finish("failed", "stream-error");
            return;
          }
          if (verb.attrs.action) {
            const doc = await this.#fetchTwiml(
              verb.attrs.action,
              verb.attrs.method ?? "POST",
              this.#baseParams(),
            );
            if (runId !== this.#runId || this.ended) return;
            if (doc !== undefined) await this.#runTwiml(doc);
            else this.#finish("completed", "twiml-end");
            return;
          }
          break;
        }
        default:
          break;
      }
    }
    if (runId === this.#runId && !this.ended) this.#finish("completed", "twiml-end");
  }

  #runStream(stream: TwimlNode): Promise<"app-closed" | "stopped" | "error"> {
    const named = stream.attrs.url ?? "";
    const url = this.#opts.streamUrl ? this.#opts.streamUrl(named) : named;
    this.streamUrl = url;
    this.streamSid = newSid("MZ");
    this.customParameters = {};
    for (const p of stream.children) {
      if (p.name === "Parameter" && p.attrs.name !== undefined)
        this.customParameters[p.attrs.name] = p.attrs.value ?? "";
    }
    return new Promise((resolve) => {
      let settled = false;
      const done = (how: "app-closed" | "stopped" | "error"): void => {
        if (settled) return;
        settled = true;
        this.#unsubscribe?.();
        this.#unsubscribe = undefined;
        this.#streamDone = undefined;
        resolve(how);
      };
      this.#streamDone = done;
      const signature = twilio.getExpectedTwilioSignature(this.authToken, url, {});
      const ws = new WebSocket(url, {
        headers: { "x-twilio-signature": signature },
        perMessageDeflate: false,
      });
      this.#ws = ws;
      ws.on("unexpected-response", (_req, res) => {
        this.streamError = `HTTP ${res.statusCode}`;
        ws.terminate();
      });
      ws.on("error", (err) => {
        this.streamError ??= err.message;
        done("error");
      });
      ws.on("close", () =>
        done(this.streamError && this.streamStartedAt === undefined ? "error" : "app-closed"),
      );
      ws.on("message", (data, isBinary) => {
        if (!isBinary) this.#onAppMessage((data as Buffer).toString("utf8"));
      });
      ws.on("open", () => {
        ws.send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`);
        this.#seq = 1;
        ws.send(
          JSON.stringify({
            event: "start",
            sequenceNumber: "1",
            start: {
              accountSid: this.accountSid,
              streamSid: this.streamSid,
              callSid: this.callSid,
              tracks: ["inbound"],
              mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
              customParameters: this.customParameters,
            },
            streamSid: this.streamSid,
          }),
        );
        this.streamStartedAt = Date.now();
        this.#mediaStartAt = this.streamStartedAt;
        this.#playheadAt = this.streamStartedAt;
        this.framesSent = 0;
        this.#unsubscribe = this.#ticker.subscribe((now) => this.#onTick(now));
        for (const w of this.#startWaiters.splice(0)) w();
      });
    });
  }

  #send(text: string): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(text);
  }

  #onTick(now: number): void {
    const due = Math.floor((now - this.#mediaStartAt) / FRAME_MS) + 1;
    let behind = due - this.framesSent;
    // After a long stall (debugger, GC) skip ahead rather than flood the app.
    if (behind > 25) {
      this.framesSent = due - 25;
      behind = 25;
    }
    for (let i = 0; i < behind; i++) this.#sendFrame(now);
    this.#advancePlayback(now);
  }

  #sendFrame(now: number): void {
    const f = this.#outFrames.shift();
    const chunk = ++this.framesSent;
    this.#send(
      `{"event":"media","sequenceNumber":"${++this.#seq}","media":{"track":"inbound","chunk":"${chunk}","timestamp":"${
        (chunk - 1) * FRAME_MS
      }","payload":"${f ? f.b64 : SILENCE_B64}"},"streamSid":"${this.streamSid}"}`,
    );
    if (f?.turn) f.turn.lastVoicedAt = now;
    f?.done?.();
  }

  #onAppMessage(text: string): void {
    let msg: { event?: string; media?: { payload?: string }; mark?: { name?: string } };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    const now = Date.now();
    switch (msg.event) {
      case "media": {
        const payload = msg.media?.payload;
        if (!payload) return;
        this.outboundMediaMessages++;
        this.#advancePlayback(now);
        if (this.#queue.length === 0) this.#playheadAt = now;
        const buf = Buffer.from(payload, "base64");
        this.#queue.push({ buf, off: 0, enqueuedAt: now });
        this.#queuedBytes += buf.length;
        return;
      }
      case "mark": {
        const name = msg.mark?.name ?? "";
        this.marksReceived.push(name);
        this.#advancePlayback(now);
        if (this.#queue.length === 0) this.#echoMark(name);
        else this.#queue.push({ mark: name });
        return;
      }
      case "clear": {
        this.clears++;
        this.#advancePlayback(now);
        for (const item of this.#queue.splice(0)) {
          if ("mark" in item) this.#echoMark(item.mark);
          else this.clearedBytes += item.buf.length - item.off;
        }
        this.#queuedBytes = 0;
        this.#playheadAt = now;
        return;
      }
      default:
        return;
    }
  }

  #advancePlayback(now: number): void {
    const q = this.#queue;
    if (q.length === 0) {
      this.#playheadAt = now;
      return;
    }
    let budget = Math.floor((now - this.#playheadAt) * 8);
    while (q.length > 0) {
      const head = q[0] as PlaybackItem;
      if ("mark" in head) {
        q.shift();
        this.#echoMark(head.mark);
        continue;
      }
      if (budget <= 0) break;
      const take = Math.min(budget, head.buf.length - head.off);
      this.#played(head, take);
      head.off += take;
      budget -= take;
      this.#playheadAt += take / 8;
      this.#queuedBytes -= take;
      if (head.off >= head.buf.length) q.shift();
    }
    if (q.length === 0) this.#playheadAt = now;
  }

  #played(item: QueuedAudio, take: number): void {
    const startAt = this.#playheadAt;
    this.heardBytes += take;
    if (this.#opts.recordAudio)
      this.#heard.push({ at: startAt, audio: Buffer.from(item.buf.subarray(item.off, item.off + take)) });
    const turn = this.turns[this.turns.length - 1];
    const turnPending =
      turn?.lastVoicedAt !== undefined &&
      turn.firstHeardAt === undefined &&
      item.enqueuedAt >= turn.lastVoicedAt;
    if (!turnPending && this.#audioWaiters.length === 0) return;
    const idx = firstVoicedIndex(item.buf, item.off, item.off + take);
    if (idx === -1) return;
    const at = startAt + (idx - item.off) / 8;
    if (turnPending && turn && turn.lastVoicedAt !== undefined) {
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

  #echoMark(name: string): void {
    this.echoedMarks.push(name);
    this.#send(
      `{"event":"mark","sequenceNumber":"${++this.#seq}","streamSid":"${this.streamSid}","mark":{"name":${JSON.stringify(
        name,
      )}}}`,
    );
    for (let i = this.#markWaiters.length - 1; i >= 0; i--) {
      const w = this.#markWaiters[i];
      if (w?.name === name) {
        this.#markWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Sends `stop` and closes the media socket (1000) if it is open. */
  #endStream(): void {
    const ws = this.#ws;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(
        JSON.stringify({
          event: "stop",
          sequenceNumber: String(++this.#seq),
          stop: { accountSid: this.accountSid, callSid: this.callSid },
          streamSid: this.streamSid,
        }),
      );
      ws.close(1000);
    }
    this.#streamDone?.("stopped");
  }

  #finish(status: CallStatus, reason: EndedReason): void {
    if (this.ended) return;
    this.#endStream();
    this.status = status;
    this.endedReason = reason;
    this.endedAt = Date.now();
    for (const w of this.#endWaiters.splice(0)) w();
    this.#startWaiters = [];
    this.#opts.onEnded?.(this);
    void this.#statusEvent("completed", status);
  }

  async #statusEvent(event: string, callStatus: CallStatus): Promise<void> {
    const url = this.statusCallback;
    if (!url || !this.statusCallbackEvents.has(event)) return;
    const params: Record<string, string> = {
      ...this.#baseParams(),
      CallStatus: callStatus,
      CallbackSource: "call-progress-events",
      SequenceNumber: String(this.#callbackSeq++),
      Timestamp: rfc2822(Date.now()),
    };
    if (TERMINAL.has(callStatus)) {
      const secs = this.answeredAt ? Math.ceil(((this.endedAt ?? Date.now()) - this.answeredAt) / 1000) : 0;
      params.CallDuration = String(secs);
      params.Duration = String(Math.ceil(secs / 60));
      params.SipResponseCode = callStatus === "busy" ? "486" : callStatus === "no-answer" ? "487" : "200";
    }
    const record: StatusCallbackRecord = { url, params, responseStatus: undefined, at: Date.now() };
    this.statusCallbacks.push(record);
    if (this.holdStatusCallbacks) await new Promise<void>((r) => this.#heldCallbacks.push(r));
    try {
      const res = await this.#signedRequest(url, this.statusCallbackMethod, params);
      record.responseStatus = res.status;
    } catch {
      record.responseStatus = 0;
    }
  }

  /** Sends the status callbacks held so far (and later ones at once). */
  releaseStatusCallbacks(): void {
    this.holdStatusCallbacks = false;
    for (const send of this.#heldCallbacks.splice(0)) send();
  }

  /** The Call resource as Twilio's REST API renders it. */
  toResource(): Record<string, unknown> {
    const base = `/2010-04-01/Accounts/${this.accountSid}/Calls/${this.callSid}`;
    return {
      sid: this.callSid,
      account_sid: this.accountSid,
      api_version: "2010-04-01",
      status: this.status,
      direction: this.direction,
      from: this.from,
      from_formatted: this.from,
      to: this.to,
      to_formatted: this.to,
      parent_call_sid: null,
      duration:
        this.endedAt && this.answeredAt ? String(Math.ceil((this.endedAt - this.answeredAt) / 1000)) : null,
      start_time: this.answeredAt ? rfc2822(this.answeredAt) : null,
      end_time: this.endedAt ? rfc2822(this.endedAt) : null,
      date_created: rfc2822(this.createdAt),
      date_updated: rfc2822(this.endedAt ?? this.answeredAt ?? this.createdAt),
      answered_by: null,
      price: null,
      price_unit: "USD",
      queue_time: "0",
      phone_number_sid: null,
      caller_name: null,
      forwarded_from: null,
      group_sid: null,
      trunk_sid: null,
      annotation: null,
      uri: `${base}.json`,
      subresource_uris: {
        streams: `${base}/Streams.json`,
        notifications: `${base}/Notifications.json`,
        recordings: `${base}/Recordings.json`,
      },
    };
  }
}
