// A customer's webhook server on 127.0.0.1: records every request (headers, raw body, parsed JSON)
// and answers with whatever the test scripts (status sequence, body, delay).
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { closeServer, listenLoopback, readBody } from "../fakes/util.ts";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  json: { message?: Record<string, unknown> } & Record<string, unknown>;
  at: number;
}

export interface Reply {
  status?: number;
  body?: string | object;
  delayMs?: number;
}

export interface CustomerServer {
  url: string;
  port: number;
  received: ReceivedRequest[];
  /** Replies in order; the last one repeats. Default: 200 `{}`. */
  script(replies: Reply[]): void;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startCustomerServer(): Promise<CustomerServer> {
  const received: ReceivedRequest[] = [];
  let replies: Reply[] = [{ status: 200, body: {} }];
  let n = 0;
  const server = createServer(async (req, res) => {
    const raw = (await readBody(req)).toString("utf8");
    let json: ReceivedRequest["json"] = {};
    try {
      json = JSON.parse(raw) as ReceivedRequest["json"];
    } catch {
      // recorded raw
    }
    received.push({
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      raw,
      json,
      at: Date.now(),
    });
    const reply = replies[Math.min(n++, replies.length - 1)] ?? {};
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    const body = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body ?? {});
    res.writeHead(reply.status ?? 200, { "content-type": "application/json" });
    res.end(body);
  });
  const port = await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    port,
    received,
    script(r) {
      replies = r;
      n = 0;
    },
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} requests, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return received;
    },
    close: () => closeServer(server),
  };
}

/** What a customer does to check a request: recompute the HMAC over `${x-timestamp}.${raw body}`. */
export function verifySignature(secret: string, req: ReceivedRequest): boolean {
  const timestamp = req.headers["x-timestamp"];
  const signature = req.headers["x-signature"];
  if (typeof timestamp !== "string" || typeof signature !== "string") return false;
  const expected = createHmac("sha256", secret).update(`${timestamp}.${req.raw}`).digest("hex");
  return (
    expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature))
  );
}

/** The `message` of a recorded server message (empty when the request had none). */
export function messageOf(req: ReceivedRequest | undefined): Record<string, unknown> {
  return req?.json.message ?? {};
}
