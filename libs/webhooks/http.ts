import http from "node:http";
import https from "node:https";
import { assertPublicUrl, pinnedLookup, UnsafeUrlError } from "./ssrf.ts";

// One POST to a customer's server: SSRF-checked and pinned to the checked address, bounded by a
// timeout (connect + response), abortable, never following redirects, with a capped response body.

export type WebhookFailureKind = "unsafe-url" | "timeout" | "aborted" | "network" | "status" | "invalid-json";

export class WebhookError extends Error {
  constructor(
    readonly kind: WebhookFailureKind,
    readonly url: string,
    message: string,
    /** HTTP status, for `status` and `invalid-json`. */
    readonly status?: number,
    /** The start of the response body, for diagnostics. */
    readonly responseBody?: string,
  ) {
    super(message);
    this.name = "WebhookError";
  }
}

export interface PostOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  allowPrivate: boolean;
  /** Response bodies beyond this are cut off (default 1 MiB). */
  maxResponseBytes?: number;
}

export interface PostResult {
  status: number;
  body: string;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** POSTs `body` and resolves with any HTTP status; throws WebhookError for everything that is not a response. */
export async function postOnce(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: PostOptions,
): Promise<PostResult> {
  const started = Date.now();
  let target: Awaited<ReturnType<typeof assertPublicUrl>>;
  try {
    target = await assertPublicUrl(url, {
      allowPrivate: options.allowPrivate,
      lookupTimeoutMs: options.timeoutMs,
    });
  } catch (err) {
    // A host that does not resolve may be a passing DNS failure: retryable like a network error.
    if (err instanceof UnsafeUrlError) {
      throw new WebhookError(
        err.reason === "unresolvable" ? "network" : "unsafe-url",
        url,
        `server URL ${err.message}`,
      );
    }
    throw err;
  }
  if (options.signal?.aborted) throw new WebhookError("aborted", url, `request to ${url} aborted`);
  const remaining = Math.max(1, options.timeoutMs - (Date.now() - started));
  const limit = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  const client = target.url.protocol === "https:" ? https : http;

  return new Promise<PostResult>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const req = client.request(target.url, {
      method: "POST",
      headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
      lookup: pinnedLookup(target),
      // One request per connection: no pooled socket outlives its pinned address.
      agent: false,
    });
    const timer = setTimeout(() => {
      finish(() =>
        reject(new WebhookError("timeout", url, `no response from ${url} within ${options.timeoutMs} ms`)),
      );
      req.destroy();
    }, remaining);
    const onAbort = () => {
      finish(() => reject(new WebhookError("aborted", url, `request to ${url} aborted`)));
      req.destroy();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err) => {
      finish(() => reject(new WebhookError("network", url, `request to ${url} failed: ${err.message}`)));
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        if (size >= limit) return;
        size += chunk.length;
        chunks.push(chunk);
      });
      res.on("end", () => {
        const text = Buffer.concat(chunks).subarray(0, limit).toString("utf8");
        finish(() => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      res.on("error", (err) => {
        finish(() => reject(new WebhookError("network", url, `response from ${url} failed: ${err.message}`)));
      });
    });
    req.end(body);
  });
}
