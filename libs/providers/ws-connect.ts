// Opening a provider websocket with the failure modes sorted: a refused upgrade keeps its HTTP
// status (401 → not retryable), a network failure or handshake timeout is retryable, and the
// caller's abort wins over both. Also what the streaming transcribers share on an open socket:
// reading a JSON message, noticing the close, and closing without waiting on a silent peer.
import type { IncomingMessage } from "node:http";
import { type RawData, WebSocket } from "ws";
import { abortError, isRetryableStatus, ProviderError } from "./types.ts";

export interface OpenSocketOptions {
  provider: string;
  kind: ProviderError["kind"];
  headers: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /**
   * Called with the socket as soon as it exists: listeners for a provider that speaks first (its
   * first message can arrive with the upgrade's answer, before `openSocket` resolves).
   */
  onSocket?: (ws: WebSocket) => void;
}

export interface OpenedSocket {
  ws: WebSocket;
  connectMs: number;
}

/** http(s) base URLs become ws(s); a trailing slash is dropped. */
export function toWebSocketBase(url: string): string {
  return url.replace(/^http/, "ws").replace(/\/+$/, "");
}

/**
 * The reason a provider gives for refusing a handshake, when it puts one in a header: Deepgram
 * copies its error body (`{"err_code","err_msg"}`) into `dg-error` for clients that cannot read it.
 */
function refusalDetail(res: IncomingMessage): string | undefined {
  const raw = res.headers["dg-error"];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (!text) return undefined;
  try {
    const body = JSON.parse(text) as { err_msg?: unknown; err_code?: unknown };
    if (typeof body.err_msg === "string") return body.err_msg.slice(0, 300);
  } catch {
    // Not JSON: the header's text as it is.
  }
  return text.slice(0, 300);
}

export function openSocket(url: string, opts: OpenSocketOptions): Promise<OpenedSocket> {
  if (opts.signal.aborted) return Promise.reject(abortError());
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // The handshake deadline is our own timer rather than ws's `handshakeTimeout`: that one is the
    // HTTP request's socket timeout, and the socket keeps its (disarmed) timer after the upgrade, so
    // every later write refreshes it: a timer-list call per audio frame for the call's life.
    // Provider messages are JSON read by our own parsers: no separate UTF-8 validation pass each.
    const ws = new WebSocket(url, {
      headers: opts.headers,
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    opts.onSocket?.(ws);
    let status: number | undefined;
    let settled = false;
    const timer = setTimeout(() => {
      finish(
        new ProviderError(
          opts.provider,
          opts.kind,
          `${opts.provider} connection failed: no handshake answer within ${opts.timeoutMs} ms`,
          true,
        ),
      );
    }, opts.timeoutMs);
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
      ws.off("open", onOpen);
      ws.off("error", onError);
      ws.off("unexpected-response", onUnexpected);
      if (err) {
        // Keep a listener so a late socket error cannot crash the process.
        ws.on("error", () => {});
        ws.terminate();
        reject(err);
      } else {
        resolve({ ws, connectMs: performance.now() - started });
      }
    };
    const onOpen = (): void => finish(undefined);
    const onAbort = (): void => finish(abortError());
    const onUnexpected = (_req: unknown, res: IncomingMessage): void => {
      status = res.statusCode ?? 0;
      const detail = refusalDetail(res);
      finish(
        new ProviderError(
          opts.provider,
          opts.kind,
          `${opts.provider} refused the connection (HTTP ${status}${detail ? `: ${detail}` : ""})`,
          isRetryableStatus(status),
          status,
        ),
      );
    };
    const onError = (err: Error): void => {
      finish(
        new ProviderError(
          opts.provider,
          opts.kind,
          `${opts.provider} connection failed: ${err.message}`,
          true,
          status,
        ),
      );
    };
    ws.on("open", onOpen);
    ws.on("error", onError);
    ws.on("unexpected-response", onUnexpected);
    opts.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A text frame's JSON object, or undefined for anything that is no JSON object. */
export function parseMessage<T extends object>(data: RawData): T | undefined {
  try {
    const parsed: unknown = JSON.parse(data.toString());
    // `null`, a number or a string is valid JSON but no message: ignored like any malformed one.
    if (parsed === null || typeof parsed !== "object") return undefined;
    return parsed as T;
  } catch {
    return undefined;
  }
}

/** Resolves once the socket has closed, after `onClose` has seen the code and reason. */
export function whenClosed(ws: WebSocket, onClose: (code: number, reason: string) => void): Promise<void> {
  return new Promise((resolve) => {
    ws.once("close", (code: number, reason: Buffer) => {
      onClose(code, reason.toString("utf8"));
      resolve();
    });
  });
}

/** Sends a close frame (a socket still connecting is cut off). */
export function closeSocket(ws: WebSocket, code: number): void {
  if (ws.readyState === ws.OPEN) {
    ws.close(code);
    // A peer that never answers the close frame must not hold the socket.
    const t = setTimeout(() => ws.terminate(), 1000);
    t.unref();
    ws.once("close", () => clearTimeout(t));
  } else if (ws.readyState === ws.CONNECTING) {
    ws.terminate();
  }
}
