// Property-based fuzzing of the media port (fast-check): garbage websocket frames and raw protocol
// garbage from an unauthenticated client, while a real call runs. Every such socket must be closed by
// the server with a sensible code, nothing may crash, /health still answers, calls still work.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import type { TwilioCallSimulator } from "../fakes/index.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";
import { openStream, roundTrip, streamCounts, streamUrl } from "./stream-client.ts";

const START_TIMEOUT_MS = 5000;
const MAX_PAYLOAD = 64 * 1024;
const DEADLINE_REASON = `no valid start message within ${START_TIMEOUT_MS} ms`;
/** Real time a socket may take to close once it must (the server's close timeout is 2 s). */
const CLOSE_WITHIN_MS = 3000;
/** Wall-clock budget of each property (fast-check stops generating after it). */
const FUZZ_BUDGET_MS = 3500;

interface Frame {
  data: Buffer;
  binary: boolean;
  /** false: a fragment, continued by the next frame. */
  fin: boolean;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Twilio-shaped and shapeless frames; `liveCallId` and `usedToken` belong to a real call in progress. */
function frameArbitrary(liveCallId: string, usedToken: string): fc.Arbitrary<Frame> {
  const huge = fc
    .tuple(fc.string({ unit: "binary", minLength: 1, maxLength: 4 }), fc.integer({ min: 1000, max: 60_000 }))
    .map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n));
  const str = fc.oneof(
    { arbitrary: fc.string({ maxLength: 40 }), weight: 3 },
    { arbitrary: fc.string({ unit: "binary", maxLength: 40 }), weight: 3 },
    {
      arbitrary: fc.constantFrom("", "null", "\u0000", "\ud800", "{{customer.number}}", '"event":"media"'),
      weight: 2,
    },
    { arbitrary: huge, weight: 1 },
  );
  const json = fc.jsonValue({ maxDepth: 3 });
  const forged = fc
    .tuple(
      fc.oneof(fc.uuid(), fc.constant(liveCallId)),
      fc.integer({ min: 0, max: 999_999_999_999_999 }),
      fc.base64String({ maxLength: 24 }),
      fc.base64String({ maxLength: 64 }),
    )
    .map(([id, exp, nonce, sig]) => `v1.${id}.${exp}.${nonce}.${sig}`);
  const params = fc.record(
    {
      callId: fc.oneof(str, fc.uuid(), fc.constant(liveCallId), json),
      // The live call's own token, already consumed, is a replay.
      token: fc.oneof(str, forged, fc.constant(usedToken), json),
    },
    { requiredKeys: [] },
  );
  const start = fc.oneof(
    json,
    fc.record(
      {
        accountSid: str,
        streamSid: fc.oneof(str, json),
        callSid: fc.oneof(str, json),
        tracks: json,
        mediaFormat: json,
        customParameters: fc.oneof(params, json),
      },
      { requiredKeys: [] },
    ),
  );
  const message = fc.oneof(
    {
      arbitrary: fc.record(
        { event: fc.constant("start"), start, streamSid: fc.oneof(str, json) },
        { requiredKeys: ["event"] },
      ),
      weight: 4,
    },
    // Media before any start, with base64 or not.
    fc.record({
      event: fc.constant("media"),
      media: fc.oneof(
        json,
        fc.record(
          { payload: fc.oneof(str, fc.base64String({ maxLength: 400 })), track: str, chunk: json },
          { requiredKeys: [] },
        ),
      ),
    }),
    fc.record(
      {
        event: fc.constantFrom("connected", "mark", "dtmf", "stop", "clear", "start"),
        mark: json,
        dtmf: json,
        stop: json,
      },
      { requiredKeys: ["event"] },
    ),
    fc.record({ event: fc.oneof(str, json) }, { requiredKeys: [] }),
    json,
  );
  const text = (s: string | Buffer) => ({ data: Buffer.from(s), binary: false });
  const body = fc.oneof(
    { arbitrary: message.map((m) => text(JSON.stringify(m))), weight: 6 },
    // Invalid JSON: cut short, or any string at all.
    {
      arbitrary: message.chain((m) => {
        const s = JSON.stringify(m) ?? "";
        return fc.nat({ max: s.length }).map((n) => text(s.slice(0, n)));
      }),
      weight: 2,
    },
    fc.string({ unit: "binary", maxLength: 200 }).map(text),
    // Invalid UTF-8 in a text frame (the server does not validate it: the session's parser refuses it).
    fc
      .uint8Array({ maxLength: 200 })
      .map((b) => text(Buffer.concat([Buffer.from(b), Buffer.from([0xff, 0xc3])]))),
    // Binary frames: bytes, or a start message sent as binary.
    fc.uint8Array({ maxLength: 2000 }).map((b) => ({ data: Buffer.from(b), binary: true })),
    message.map((m) => ({ data: Buffer.from(JSON.stringify(m) ?? ""), binary: true })),
    // Beyond maxPayload.
    fc
      .tuple(fc.integer({ min: MAX_PAYLOAD + 1, max: 2 * MAX_PAYLOAD }), fc.boolean())
      .map(([n, binary]) => ({ data: Buffer.alloc(n, 0x7b), binary })),
  );
  return fc.tuple(body, fc.boolean(), fc.nat({ max: 9 })).map(([f, fragment, roll]) => ({
    ...f,
    // Now and then a fragment that the next frame continues (or nothing ever does).
    fin: !(fragment && roll === 0),
  }));
}

/** The server's close frame in what it sent after the handshake: its code (1005 if none), or undefined. */
function closeCode(bytes: Buffer): number | undefined {
  let at = bytes.indexOf("\r\n\r\n");
  if (at < 0) return undefined;
  at += 4;
  while (at + 2 <= bytes.length) {
    const opcode = (bytes[at] ?? 0) & 0x0f;
    let len = (bytes[at + 1] ?? 0) & 0x7f;
    let head = 2;
    if (len === 126) {
      if (at + 4 > bytes.length) return undefined;
      len = bytes.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (at + 10 > bytes.length) return undefined;
      len = Number(bytes.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (opcode === 0x8)
      return len >= 2 && at + head + 2 <= bytes.length ? bytes.readUInt16BE(at + head) : 1005;
    at += head + len;
  }
  return undefined;
}

describe("media port fuzz", () => {
  const timers = new ManualTimers();
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  let env: MediaEnv;
  let url: string;
  let live: TwilioCallSimulator;

  before(async () => {
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    env = await startMediaEnv({ media: { schedule: timers.schedule } });
    url = streamUrl(env.media);
    live = (await callAssistant(env)).sim;
    await waitForSpoken(live, 1);
  });
  after(async () => {
    await env.close();
    process.off("uncaughtException", onCrash);
    process.off("unhandledRejection", onCrash);
  });

  it("garbage frames from an unauthenticated client: closed with 1008 or 1009, nothing crashes, calls go on", async (t) => {
    const row = await env.t.db.call.findUniqueOrThrow({ where: { providerCallId: live.callSid } });
    let cases = 0;
    let frames = 0;
    const codes = new Map<string, number>();
    const details = await fc.check(
      fc.asyncProperty(
        fc.array(frameArbitrary(row.id, live.customParameters.token ?? ""), { minLength: 1, maxLength: 6 }),
        async (sent) => {
          cases++;
          const c = await openStream(url, "127.0.0.2");
          for (const f of sent) {
            frames++;
            c.ws.send(f.data, { binary: f.binary, fin: f.fin });
          }
          await roundTrip(c.ws);
          // Whatever is still waiting for a valid start goes at its deadline.
          timers.advance(START_TIMEOUT_MS);
          const { code, reason } = await withTimeout(c.closed, CLOSE_WITHIN_MS, "the server's close");
          codes.set(`${code} ${reason}`, (codes.get(`${code} ${reason}`) ?? 0) + 1);
          const bytes = sent.reduce((n, f) => n + f.data.length, 0);
          const refused = code === 1008 && (reason === "stream refused" || reason === DEADLINE_REASON);
          assert.ok(refused || (code === 1009 && bytes > MAX_PAYLOAD), `closed with ${code} "${reason}"`);
          assert.deepEqual(crashes, []);
        },
      ),
      { numRuns: 800, plugins: [fc.interruptAfterTimeLimit(FUZZ_BUDGET_MS)] },
    );
    t.diagnostic(
      `${details.numRuns} cases (${cases} sockets), ${frames} frames; closes: ${JSON.stringify(Object.fromEntries(codes))}; crashes: ${crashes.length}`,
    );
    assert.equal(details.failed, false, fc.defaultReportMessage(details) ?? "");
    assert.ok(details.numRuns >= 100, `only ${details.numRuns} cases ran in the time budget`);
    assert.deepEqual(crashes, []);
  });

  it("protocol garbage after the handshake: the server ends the connection, nothing crashes", async (t) => {
    const port = Number(new URL(url).port);
    let frames = 0;
    const codes = new Map<number | string, number>();
    const details = await fc.check(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (garbage) => {
        frames++;
        const socket = tcpConnect({ port, host: "127.0.0.1", localAddress: "127.0.0.3" });
        socket.on("error", () => {});
        const chunks: Buffer[] = [];
        const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
        let upgraded: () => void = () => {};
        const handshake = new Promise<void>((resolve) => {
          upgraded = resolve;
        });
        socket.on("data", (d: Buffer) => {
          chunks.push(d);
          if (Buffer.concat(chunks).includes("\r\n\r\n")) upgraded();
          // Answer the server's close at once, as a peer would (else it waits for its close timeout).
          if (closeCode(Buffer.concat(chunks)) !== undefined) socket.end();
        });
        await new Promise((r) => socket.once("connect", r));
        socket.write(
          `GET /twilio/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        await withTimeout(handshake, 2000, "the handshake");
        socket.write(garbage);
        // Expire whatever still waits for a start, again until the server has ended the connection:
        // on a loaded machine the socket's deadline may be armed only after a first advance.
        let done = false;
        void ended.then(() => {
          done = true;
        });
        const until = Date.now() + CLOSE_WITHIN_MS;
        const expire = (async () => {
          while (!done && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 5));
            timers.advance(START_TIMEOUT_MS);
          }
        })();
        await withTimeout(ended, CLOSE_WITHIN_MS, "the server ending the connection");
        await expire;
        const all = Buffer.concat(chunks);
        assert.match(all.toString("latin1"), /^HTTP\/1\.1 101 /);
        const code = closeCode(all) ?? "no close frame";
        codes.set(code, (codes.get(code) ?? 0) + 1);
        assert.deepEqual(crashes, []);
      }),
      { numRuns: 200, plugins: [fc.interruptAfterTimeLimit(FUZZ_BUDGET_MS)] },
    );
    t.diagnostic(
      `${details.numRuns} cases, ${frames} garbage writes; close codes: ${JSON.stringify(Object.fromEntries(codes))}; crashes: ${crashes.length}`,
    );
    assert.equal(details.failed, false, fc.defaultReportMessage(details) ?? "");
    assert.ok(details.numRuns >= 30, `only ${details.numRuns} cases ran in the time budget`);
    assert.deepEqual(crashes, []);
  });

  it("afterwards /health answers, nothing unauthenticated is left open, and calls still work", async () => {
    await waitUntil(
      async () => {
        const c = await streamCounts(env.media);
        return c.pending === 0 && c.active === 1;
      },
      5000,
      "only the live call left open",
    );
    // The call that ran through the fuzzing still answers …
    const turn = await live.say("Are you still there?");
    await live.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await waitForSpoken(live, 2);
    await live.hangup();
    assert.equal((await finalizedCall(env, live.callSid)).endedReason, "customer-ended-call");
    // … and a new one starts and ends normally.
    const { sim } = await callAssistant(env);
    await waitForSpoken(sim, 1);
    await sim.hangup();
    assert.equal((await finalizedCall(env, sim.callSid)).endedReason, "customer-ended-call");
    assert.deepEqual(crashes, []);
  });
});
