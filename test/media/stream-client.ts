// Raw websocket clients of the media port for tests that are not Twilio: attackers, garbage, limits.
import { WebSocket } from "ws";
import type { MediaApp } from "../../apps/media/src/app.ts";

export interface StreamClient {
  ws: WebSocket;
  /** The close as the client saw it: the server's code and reason (1006 if it sent none). */
  closed: Promise<{ code: number; reason: string }>;
}

/** The media app's stream URL (it must be listening). */
export function streamUrl(media: MediaApp): string {
  const address = media.server.address();
  if (!address || typeof address !== "object") throw new Error("the media app is not listening");
  return `ws://127.0.0.1:${address.port}/twilio/stream`;
}

/** A websocket to the media port from `localAddress` (any 127.x address is this host). */
export function openStream(
  url: string,
  localAddress = "127.0.0.1",
  headers: Record<string, string> = {},
): Promise<StreamClient> {
  const ws = new WebSocket(url, { localAddress, perMessageDeflate: false, headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, closed }));
    ws.once("error", reject);
  });
}

/** A ping answered (or the socket closed): every frame the server sent before its pong has arrived. */
export function roundTrip(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState !== WebSocket.OPEN) return resolve();
    ws.once("pong", () => resolve());
    ws.once("close", () => resolve());
    ws.ping();
  });
}

/** The media app's `/health` connection counts. */
export async function streamCounts(media: MediaApp): Promise<{ pending: number; active: number }> {
  const res = await media.inject({ method: "GET", url: "/health" });
  if (res.statusCode !== 200) throw new Error(`/health answered ${res.statusCode}`);
  return res.json().connections;
}
