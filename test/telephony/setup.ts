// Shared setup for the telephony tests: the real API listening on PUBLIC_URL (Twilio signs webhooks
// against it), a strict FakeTwilio with one account, and a stand-in media endpoint that accepts
// Twilio's stream websocket and records what it was sent (the media session is not under test here).

import { randomBytes } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import twilio from "twilio";
import { WebSocketServer } from "ws";
import { FakeTwilio } from "../fakes/twilio.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, uniqueNumber } from "../helpers/bodies.ts";

export const ACCOUNT_SID = `AC${"fedcba9876543210".repeat(2)}`;
export const AUTH_TOKEN = "fake-twilio-auth-token-0123456789";

export interface StreamStart {
  customParameters: Record<string, string>;
  callSid: string;
}

export interface TelephonyEnv {
  t: TestApi;
  twilio: FakeTwilio;
  org: TestOrg;
  publicUrl: string;
  /** `start` messages received by the stand-in media endpoint. */
  streams: StreamStart[];
  /** Runs on each stream `start` (e.g. consume the token as the media plane would). */
  onStreamStart: ((s: StreamStart) => Promise<void> | void) | undefined;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startTelephony(env: Record<string, string> = {}): Promise<TelephonyEnv> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", r));
  const wsAddr = wss.address();
  const wsPort = typeof wsAddr === "object" && wsAddr ? wsAddr.port : 0;

  const fake = await FakeTwilio.start({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }] });
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const t = await startTestApi(
    { PUBLIC_URL: publicUrl, MEDIA_PUBLIC_URL: `ws://127.0.0.1:${wsPort}`, ...env },
    { twilio: fake },
  );
  await t.app.listen({ port, host: "127.0.0.1" });
  const org = await t.createOrg("Telephony");

  const out: TelephonyEnv = {
    t,
    twilio: fake,
    org,
    publicUrl,
    streams: [],
    onStreamStart: undefined,
    async close() {
      await fake.close();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await t.close();
    },
  };
  wss.on("connection", (ws) => {
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as {
        event?: string;
        start?: { customParameters?: Record<string, string>; callSid?: string };
      };
      if (msg.event !== "start") return;
      const s = { customParameters: msg.start?.customParameters ?? {}, callSid: msg.start?.callSid ?? "" };
      out.streams.push(s);
      void out.onStreamStart?.(s);
    });
  });
  return out;
}

/** A number seeded in the fake account and imported through the API. */
export async function importNumber(
  env: TelephonyEnv,
  body: Record<string, unknown> = {},
): Promise<{ id: string; number: string }> {
  const number = uniqueNumber();
  env.twilio.addNumber(ACCOUNT_SID, number);
  const res = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: {
      provider: "twilio",
      number,
      twilioAccountSid: ACCOUNT_SID,
      twilioAuthToken: AUTH_TOKEN,
      ...body,
    },
  });
  if (res.statusCode !== 201) throw new Error(`import failed: ${res.statusCode} ${res.body}`);
  return { id: res.json().id as string, number };
}

export async function createAssistant(
  env: TelephonyEnv,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const res = await env.t.request({
    method: "POST",
    url: "/assistant",
    key: env.org.key,
    payload: assistantBody(overrides),
  });
  if (res.statusCode !== 201) throw new Error(`assistant failed: ${res.statusCode} ${res.body}`);
  return res.json().id as string;
}

/** POSTs a Twilio-style form webhook, signed (or not) with `token`. */
export async function postSigned(
  url: string,
  params: Record<string, string>,
  token: string | undefined,
): Promise<{ status: number; body: string; contentType: string | null }> {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (token !== undefined)
    headers["x-twilio-signature"] = twilio.getExpectedTwilioSignature(token, url, params);
  const res = await fetch(url, { method: "POST", headers, body: new URLSearchParams(params).toString() });
  return { status: res.status, body: await res.text(), contentType: res.headers.get("content-type") };
}

export function callSid(): string {
  return `CA${randomBytes(16).toString("hex")}`;
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 5000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
