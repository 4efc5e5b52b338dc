import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable } from "node:stream";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { type ByteRange, joinKey, type ObjectStore, StorageNotFound } from "./types.ts";

// An S3-compatible bucket. Uploads are multipart, streamed from the finished file in 5 MiB parts
// one at a time (S3's smallest part), so an upload holds about one part in memory whatever the
// recording's length; small files go up in a single PUT.

export interface S3StoreOptions {
  bucket: string;
  region: string;
  /** An S3-compatible endpoint (MinIO, R2, a local test server); AWS's own for the region when unset. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers want. */
  forcePathStyle?: boolean;
  /** Explicit keys; without them the SDK's default chain (environment, instance role) applies. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Every key is placed under this prefix. */
  prefix?: string;
}

const PART_BYTES = 5 * 1024 * 1024;

export class S3Store implements ObjectStore {
  readonly name: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(opts: S3StoreOptions) {
    this.name = `s3:${opts.bucket}`;
    this.#bucket = opts.bucket;
    this.#prefix = opts.prefix ?? "";
    this.#client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // A recording that cannot be stored is reported on the call, not retried for minutes.
      maxAttempts: 3,
    });
  }

  #key(key: string): string {
    return joinKey(this.#prefix, key);
  }

  async putFile(key: string, file: string, contentType: string): Promise<void> {
    const upload = new Upload({
      client: this.#client,
      params: {
        Bucket: this.#bucket,
        Key: this.#key(key),
        Body: createReadStream(file),
        ContentType: contentType,
      },
      partSize: PART_BYTES,
      queueSize: 1,
      leavePartsOnError: false,
    });
    await upload.done();
    // Gone already is fine: the file was the caller's to remove.
    await rm(file, { force: true });
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }),
      );
      return head.ContentLength;
    } catch (err) {
      if (err instanceof NotFound || err instanceof NoSuchKey) return undefined;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const res = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      const body = res.Body;
      if (body instanceof Readable) return body;
      if (!body) return Readable.from([]);
      return Readable.from(Buffer.from(await body.transformToByteArray()));
    } catch (err) {
      if (err instanceof NoSuchKey || err instanceof NotFound) throw new StorageNotFound(key);
      throw err;
    }
  }

  async remove(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((k) => ({ Key: this.#key(k) }));
      const res = await this.#client.send(
        new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: batch, Quiet: true } }),
      );
      const failed = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      if (failed.length > 0)
        throw new Error(`S3 refused to delete ${failed.length} object(s): ${failed[0]?.Code}`);
    }
  }

  /** Releases the client's sockets. */
  close(): void {
    this.#client.destroy();
  }
}
