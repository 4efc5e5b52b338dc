import type { Readable } from "node:stream";
import type { Db } from "../../../../libs/db/index.ts";
import { AppError, ForbiddenError, NotFoundError, UpstreamError } from "../../../../libs/errors/index.ts";
import {
  type CallRecordings,
  checkSignedRecording,
  REDIRECT_TTL_MS,
  type RecordingLinks,
  signedRecordingUrl,
  type Track,
} from "../../../../libs/recordings/index.ts";
import type { ByteRange } from "../../../../libs/storage/index.ts";
import { assertId, isUuid, type ServiceContext } from "./common.ts";

// A call's recordings over HTTP. Vapi's routes (`GET /call/:id/mono-recording` …, a private key)
// answer 302 to a short-lived signed URL, as Vapi does; the signed URL (`/call/:id/recording/
// <track>.wav?expires=&signature=`, no key) serves the bytes, with Range requests, so an <audio>
// element can seek. Calls are looked up in the key's organisation: another's is a 404.

/** Nothing satisfiable in a Range header: 416 with the size, as RFC 9110 asks. */
export class RangeNotSatisfiableError extends AppError {
  constructor(size: number) {
    super(416, "RANGE_NOT_SATISFIABLE", `The range is outside the recording (${size} bytes)`, {
      "content-range": `bytes */${size}`,
    });
  }
}

export interface TrackDownload {
  status: 200 | 206;
  headers: Record<string, string>;
  body: Readable;
}

/** One range of `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined: serve it all (absent, or several ranges). */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | undefined | "unsatisfiable" {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return undefined;
  let start: number;
  let end: number;
  if (a === "") {
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

function unreachable(err: unknown): UpstreamError {
  return new UpstreamError(
    `The recording's storage did not answer: ${err instanceof Error ? err.message : String(err)}`,
  );
}

export class RecordingService {
  readonly #db: Db;
  readonly #recordings: CallRecordings;
  readonly #links: RecordingLinks;
  readonly #now: () => number;

  constructor(db: Db, recordings: CallRecordings, links: RecordingLinks, now: () => number = Date.now) {
    this.#db = db;
    this.#recordings = recordings;
    this.#links = links;
    this.#now = now;
  }

  async #call(callId: string, orgId?: string) {
    if (!isUuid(callId)) return undefined;
    return this.#db.call.findFirst({
      where: { id: callId, ...(orgId ? { orgId } : {}) },
      select: { id: true, orgId: true, artifact: true },
    });
  }

  /** Vapi's download route: where the track is (a signed URL for a few minutes). */
  async redirect(ctx: ServiceContext, callId: string, track: Track): Promise<string> {
    assertId("Call", callId);
    const call = await this.#call(callId, ctx.orgId);
    if (!call) throw new NotFoundError("Call", callId);
    if (!(await this.#has(call, track))) throw new NotFoundError("Artifact");
    return signedRecordingUrl(this.#links, call.id, track, this.#now() + REDIRECT_TTL_MS);
  }

  async #has(call: { orgId: string; artifact: unknown }, track: Track): Promise<boolean> {
    return (await this.#track(call, track)) !== undefined;
  }

  async #track(call: { orgId: string; artifact: unknown }, track: Track) {
    try {
      return await this.#recordings.track(call, track);
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** The signed URL's bytes (all, or the requested range). */
  async download(
    callId: string,
    track: Track,
    q: { expires?: string; signature?: string },
    rangeHeader: string | undefined,
  ): Promise<TrackDownload> {
    const check = checkSignedRecording(
      this.#links.secretsKey,
      callId,
      track,
      q.expires,
      q.signature,
      this.#now(),
    );
    if (check === "invalid") throw new ForbiddenError("Invalid signature: use the URL as given");
    if (check === "expired") {
      throw new ForbiddenError(
        `This link has expired: get a new one from GET /call/${callId} (artifact.presigned*Url) or GET /call/${callId}/${track}-recording`,
      );
    }
    const call = await this.#call(callId);
    if (!call) throw new NotFoundError("Artifact");
    const found = await this.#track(call, track);
    if (!found) throw new NotFoundError("Artifact");
    const size = found.size;
    const range = parseRange(rangeHeader, size);
    if (range === "unsatisfiable") throw new RangeNotSatisfiableError(size);
    let body: Readable;
    try {
      body = await found.read(range);
    } catch (err) {
      throw unreachable(err);
    }
    const headers: Record<string, string> = {
      "content-type": "audio/wav",
      "accept-ranges": "bytes",
      "content-disposition": `inline; filename="${callId}-${track}.wav"`,
      // The link is the credential: caches may keep it no longer than the browser that asked.
      "cache-control": "private, max-age=300",
    };
    if (!range) return { status: 200, headers: { ...headers, "content-length": String(size) }, body };
    return {
      status: 206,
      headers: {
        ...headers,
        "content-length": String(range.end - range.start + 1),
        "content-range": `bytes ${range.start}-${range.end}/${size}`,
      },
      body,
    };
  }

  /** Erases a call's recording (DELETE /call/:id): 503 when the storage refuses, and the call is kept. */
  async erase(call: { orgId: string; artifact: unknown }): Promise<void> {
    try {
      await this.#recordings.erase(call);
    } catch (err) {
      throw new UpstreamError(
        `Erasing the call's recording failed (${err instanceof Error ? err.message : String(err)}): the call was not deleted; try again`,
        503,
      );
    }
  }
}
