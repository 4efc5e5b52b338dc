import type { Readable } from "node:stream";

// Where call recordings (and later other artifacts) are kept: one small interface, two kinds of
// store. A local directory (the default, under DATA_DIR) and any S3-compatible bucket (AWS, MinIO,
// R2, …): the platform's own when RECORDINGS_S3_BUCKET is set, or an organisation's through its
// `s3` credential (Vapi's custom storage).
//
// Objects are written whole from a finished file (`putFile`): the writer spools to local disk as
// the call runs (a few KB in memory per call) and hands the file over at the end, which S3 receives
// as a multipart upload streamed from that file. S3 asks 5 MiB for every part but the last, far
// more than a call may hold in memory, so parts are never built from the call's own buffers.

/** An inclusive byte range, as in an HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ObjectStore {
  /** For logs: `local` or `s3:<bucket>`. Never holds a secret. */
  readonly name: string;
  /** Stores the file at `path` as `key` (moved into a local store, uploaded to S3); the file is gone after. */
  putFile(key: string, path: string, contentType: string): Promise<void>;
  /** The object's size in bytes; undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** The object's bytes (a range of them); rejects with StorageNotFound when there is none. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** Deletes the objects; absent ones are not an error. */
  remove(keys: string[]): Promise<void>;
}

/** The object does not exist. */
export class StorageNotFound extends Error {
  constructor(key: string) {
    super(`no object ${key}`);
    this.name = "StorageNotFound";
  }
}

/** Joins key segments with single slashes, without leading or trailing ones ("/a/", "b" → "a/b"). */
export function joinKey(...parts: string[]): string {
  return parts
    .flatMap((p) => p.split("/"))
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}
