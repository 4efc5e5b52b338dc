import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LINEAR16_16K, MULAW_8K } from "../../libs/media/audio-format.ts";
import { InProcessListenBus } from "../../libs/media/monitor/listen-bus.ts";
import { type ListenerSocket, ListenHub, MAX_BUFFERED_BYTES } from "../../libs/media/monitor/listen-hub.ts";
import { DELAY_MS, StereoMix } from "../../libs/media/monitor/stereo-mix.ts";
import { AudioTaps } from "../../libs/media/session/audio-tap.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";

// The listen mix and hub on a clock the test moves: where each party's audio lands in the stereo
// stream, what a barge-in removes, and the bounds (slow listeners, the end of the call, nothing
// tapped once nobody listens, a relay between two processes on the in-process bus).

const RATE = 16;
/** 20 ms of PCM 16 kHz at a constant value. */
function pcm20(value: number): Buffer {
  const b = Buffer.alloc(20 * RATE * 2);
  for (let i = 0; i < 20 * RATE; i++) b.writeInt16LE(value, i * 2);
  return b;
}
/** One channel of a stereo chunk, as sample values. */
function channel(stereo: Buffer, ch: 0 | 1): number[] {
  const out: number[] = [];
  for (let i = 0; i < stereo.length; i += 4) out.push(stereo.readInt16LE(i + ch * 2));
  return out;
}
/** Sample value per ms (the first sample of each ms). */
function perMs(samples: number[]): number[] {
  return samples.filter((_, i) => i % RATE === 0);
}

describe("StereoMix", () => {
  it("lays the caller on channel 0 as received and the assistant on channel 1 where the far end plays it, DELAY_MS behind the clock", () => {
    const mix = new StereoMix(0);
    // The caller's 20 ms frame received at 20 ms covers 0-20 ms.
    mix.callerAudio(pcm20(1000), LINEAR16_16K, 20);
    // The pacer sends three frames at once at 40 ms (its lead): they play 40-100 ms.
    for (const v of [2000, 3000, 4000]) mix.assistantAudio(pcm20(v), LINEAR16_16K, 40);
    assert.equal(mix.take(DELAY_MS), undefined, "nothing is due before the delay");
    const out = mix.take(DELAY_MS + 120) as Buffer;
    assert.equal(out.length, 120 * RATE * 4);
    const caller = perMs(channel(out, 0));
    const assistant = perMs(channel(out, 1));
    assert.deepEqual(caller.slice(0, 20), Array(20).fill(1000));
    assert.deepEqual(caller.slice(20), Array(100).fill(0));
    assert.deepEqual(assistant.slice(0, 40), Array(40).fill(0));
    assert.deepEqual(assistant.slice(40, 100), [
      ...Array(20).fill(2000),
      ...Array(20).fill(3000),
      ...Array(20).fill(4000),
    ]);
    assert.deepEqual(assistant.slice(100), Array(20).fill(0));
    assert.equal(mix.take(DELAY_MS + 120), undefined, "each sample once");
  });

  it("a clear drops what was sent ahead and not yet played: the assistant stops at the barge-in", () => {
    const mix = new StereoMix(0);
    for (const v of [2000, 3000, 4000]) mix.assistantAudio(pcm20(v), LINEAR16_16K, 0);
    mix.clear(30);
    const assistant = perMs(channel(mix.take(DELAY_MS + 80) as Buffer, 1));
    assert.deepEqual(assistant, [...Array(20).fill(2000), ...Array(10).fill(3000), ...Array(50).fill(0)]);
  });

  it("caller frames arriving late follow the previous one; after a gap longer than the delay they start where they belong", () => {
    const mix = new StereoMix(0);
    mix.callerAudio(pcm20(1000), LINEAR16_16K, 20);
    mix.callerAudio(pcm20(1100), LINEAR16_16K, 75); // 35 ms late: still follows at 20-40 ms
    mix.callerAudio(pcm20(1200), LINEAR16_16K, 400); // after a gap: at 380-400 ms
    const caller = perMs(channel(mix.take(DELAY_MS + 400) as Buffer, 0));
    assert.deepEqual(caller.slice(0, 40), [...Array(20).fill(1000), ...Array(20).fill(1100)]);
    assert.deepEqual(caller.slice(40, 380), Array(340).fill(0));
    assert.deepEqual(caller.slice(380), Array(20).fill(1200));
  });

  it("μ-law 8 kHz (a phone call) comes out as 16 kHz PCM of the same length", () => {
    const mix = new StereoMix(0);
    // μ-law 0x80 is the largest positive sample (32124).
    mix.callerAudio(Buffer.alloc(160 * 5, 0x80), MULAW_8K, 100);
    const caller = channel(mix.take(DELAY_MS + 100) as Buffer, 0);
    assert.equal(caller.length, 100 * RATE);
    // The resampler's delay is a few samples; past it the level is the input's.
    const steady = caller.slice(40, 1500);
    assert.ok(
      steady.every((v) => Math.abs(v - 32124) < 1500),
      `level ${Math.min(...steady)}..${Math.max(...steady)}`,
    );
  });
});

class FakeSocket implements ListenerSocket {
  readonly sent: Buffer[] = [];
  closed: { code: number; reason: string } | undefined;
  bufferedAmount = 0;
  send(data: Buffer): void {
    this.sent.push(data);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
}

function call() {
  let end!: () => void;
  const c = {
    phase: "live",
    taps: new AudioTaps(),
    finished: new Promise<void>((r) => {
      end = r;
    }),
  };
  return { c, end };
}

function hub(
  timers: ManualTimers,
  clock: { now: number },
  calls: Record<string, unknown>,
  bus = new InProcessListenBus(),
  processId = "media-a",
) {
  return new ListenHub({
    bus,
    processId,
    findCall: (id) => calls[id] as ReturnType<typeof call>["c"] | undefined,
    log: {
      info() {},
      warn() {},
      error() {},
      debug() {},
      child() {
        return this;
      },
    },
    now: () => clock.now,
    schedule: timers.schedule,
  });
}

function advance(timers: ManualTimers, clock: { now: number }, ms: number): void {
  for (let t = 0; t < ms; t += 20) {
    clock.now += 20;
    timers.advance(20);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe("ListenHub", () => {
  it("a slow listener is closed instead of buffered for; the others keep listening; the call's end closes them 1000; nothing stays tapped", async () => {
    const timers = new ManualTimers();
    const clock = { now: 0 };
    const { c, end } = call();
    const h = hub(timers, clock, { a: c });
    const fast = new FakeSocket();
    const slow = new FakeSocket();
    h.listen("a", "media-a", fast);
    h.listen("a", "media-a", slow);
    assert.equal(c.taps.size, 1, "one mix for both");
    advance(timers, clock, 200);
    assert.ok(fast.sent.length > 0 && slow.sent.length > 0);
    slow.bufferedAmount = MAX_BUFFERED_BYTES + 1;
    const before = slow.sent.length;
    advance(timers, clock, 200);
    assert.deepEqual(slow.closed, {
      code: 1008,
      reason: "listener too slow: audio is not buffered beyond a second",
    });
    assert.equal(slow.sent.length, before);
    assert.equal(fast.closed, undefined);
    // 400 ms of time, DELAY_MS behind: 300 ms of stereo samples.
    assert.equal(Buffer.concat(fast.sent).length, 300 * RATE * 4);
    c.phase = "ended";
    end();
    await tick();
    assert.deepEqual(fast.closed, { code: 1000, reason: "call ended" });
    assert.equal(c.taps.size, 0);
    assert.deepEqual(h.counts, { held: 0, relayed: 0 });
  });

  it("the last listener leaving removes the tap; the eleventh listener of a call is turned away", () => {
    const timers = new ManualTimers();
    const clock = { now: 0 };
    const { c } = call();
    const h = hub(timers, clock, { a: c });
    const sockets = Array.from({ length: 11 }, () => new FakeSocket());
    const detach = sockets.map((s) => h.listen("a", "media-a", s));
    assert.deepEqual(sockets[10]?.closed, { code: 1013, reason: "too many listeners on this call" });
    assert.ok(sockets.slice(0, 10).every((s) => s.closed === undefined));
    for (const d of detach) d();
    assert.equal(c.taps.size, 0);
    assert.deepEqual(h.counts, { held: 0, relayed: 0 });
  });

  it("in one process without Redis: a hub relays another hub's call over the in-process bus, and stops when its listener leaves", async () => {
    const timers = new ManualTimers();
    const clock = { now: 0 };
    const bus = new InProcessListenBus();
    const { c, end } = call();
    const holder = hub(timers, clock, { a: c }, bus, "media-a");
    const relay = hub(timers, clock, {}, bus, "media-b");
    await holder.start();
    await relay.start();
    const l = new FakeSocket();
    const detach = relay.listen("a", "media-a", l);
    await tick();
    assert.equal(c.taps.size, 1, "the holder mixes on demand");
    c.taps.active?.callerAudio(pcm20(1234), LINEAR16_16K, clock.now + 20);
    advance(timers, clock, 200);
    await tick();
    const got = channel(Buffer.concat(l.sent), 0);
    assert.ok(got.includes(1234), "the caller's audio reached the other hub");
    detach();
    await tick();
    advance(timers, clock, 40);
    await tick();
    assert.equal(c.taps.size, 0, "nobody receives: the holder stops");
    // A listener again, then the call ends: closed 1000 through the bus.
    const again = new FakeSocket();
    relay.listen("a", "media-a", again);
    await tick();
    c.phase = "ended";
    end();
    await tick();
    await tick();
    assert.deepEqual(again.closed, { code: 1000, reason: "call ended" });
    await Promise.all([holder.close(), relay.close()]);
  });

  it("a listener of a call whose process does not answer is closed 1011", async () => {
    const timers = new ManualTimers();
    const clock = { now: 0 };
    const h = hub(timers, clock, {});
    const l = new FakeSocket();
    h.listen("a", "media-gone", l);
    await tick();
    await tick();
    assert.deepEqual(l.closed, {
      code: 1011,
      reason: "call audio unavailable: the media process holding the call does not answer",
    });
    assert.deepEqual(h.counts, { held: 0, relayed: 0 });
  });
});
