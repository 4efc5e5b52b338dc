import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { parseEnv } from "../../libs/config/env.ts";
import { recordingsConfig } from "../../libs/config/platform.ts";
import { LocalStore, type ObjectStore, S3Store, StorageNotFound } from "../../libs/storage/index.ts";
import { type LocalS3, startLocalS3 } from "../helpers/s3.ts";

// The two stores behind recordings, against a real directory and a local S3-compatible server
// (s3rver): a file handed over becomes the object (multipart past 5 MiB), sizes, ranges, deletes.

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("object stores", () => {
  let dir: string;
  let s3: LocalS3;
  let endpoint: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stores-"));
    s3 = await startLocalS3(dir, ["platform-recordings"]);
    endpoint = s3.endpoint;
  });
  after(async () => {
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function roundTrip(store: ObjectStore, size: number): Promise<void> {
    const body = randomBytes(size);
    const file = path.join(dir, `upload-${randomBytes(4).toString("hex")}`);
    await writeFile(file, body);
    await store.putFile("org/call/stereo.wav", file, "audio/wav");
    await assert.rejects(stat(file), "the file is handed over");
    assert.equal(await store.size("org/call/stereo.wav"), size);
    assert.deepEqual(await bytes(await store.read("org/call/stereo.wav")), body);
    assert.deepEqual(
      await bytes(await store.read("org/call/stereo.wav", { start: 5, end: 1004 })),
      body.subarray(5, 1005),
    );
    assert.deepEqual(
      await bytes(await store.read("org/call/stereo.wav", { start: size - 3, end: size - 1 })),
      body.subarray(size - 3),
    );
    assert.equal(await store.size("org/call/none.wav"), undefined);
    await assert.rejects(store.read("org/call/none.wav"), StorageNotFound);
    await store.remove(["org/call/stereo.wav", "org/call/none.wav"]);
    assert.equal(await store.size("org/call/stereo.wav"), undefined);
  }

  it("a local directory: files moved in under their key, read by range, removed; a key cannot leave the directory", async () => {
    const store = new LocalStore(path.join(dir, "local"));
    await roundTrip(store, 70_000);
    assert.throws(() => store.pathOf("../outside.wav"), /outside the store/);
    assert.throws(() => store.pathOf("/etc/passwd"), /outside the store/);
  });

  it("the platform's S3-compatible bucket from RECORDINGS_S3_*: a 12 MiB recording uploaded in parts, a small one in one PUT, under the prefix", async () => {
    const config = recordingsConfig(
      parseEnv({
        DATA_DIR: dir,
        RECORDINGS_S3_BUCKET: "platform-recordings",
        RECORDINGS_S3_ENDPOINT: endpoint,
        RECORDINGS_S3_FORCE_PATH_STYLE: "true",
        RECORDINGS_S3_PREFIX: "switchboard/",
        RECORDINGS_S3_ACCESS_KEY_ID: "S3RVER",
        RECORDINGS_S3_SECRET_ACCESS_KEY: "S3RVER",
      }),
    );
    assert.equal(config.dir, path.join(dir, "recordings"), "the spool stays under DATA_DIR");
    assert.ok(config.s3);
    const store = new S3Store(config.s3);
    try {
      await roundTrip(store, 12 * 1024 * 1024 + 17);
      await roundTrip(store, 1000);
      // Under the prefix: a store without it does not see the object.
      const file = path.join(dir, "prefixed");
      await writeFile(file, "x");
      await store.putFile("k.wav", file, "audio/wav");
      const bare = new S3Store({ ...config.s3, prefix: "" });
      assert.equal(await bare.size("k.wav"), undefined);
      assert.equal(await bare.size("switchboard/k.wav"), 1);
      bare.close();
    } finally {
      store.close();
    }
  });

  it("RECORDINGS_S3 keys go together; the bucket name and region are checked at start", () => {
    assert.throws(
      () =>
        recordingsConfig(parseEnv({ RECORDINGS_S3_BUCKET: "b-bucket", RECORDINGS_S3_ACCESS_KEY_ID: "AKIA" })),
      /RECORDINGS_S3_ACCESS_KEY_ID and RECORDINGS_S3_SECRET_ACCESS_KEY go together/,
    );
    assert.throws(() => parseEnv({ RECORDINGS_S3_BUCKET: "Not_A_Bucket" }), /RECORDINGS_S3_BUCKET/);
    assert.throws(() => parseEnv({ RECORDINGS_S3_REGION: "us-east-1.evil.example" }), /RECORDINGS_S3_REGION/);
    const local = recordingsConfig(parseEnv({}));
    assert.equal(local.s3, undefined, "no bucket: the local directory");
    assert.equal(local.dir, path.resolve(".data", "recordings"));
  });

  it("a stored file is on disk under its key, found again by a new store over the same directory", async () => {
    const root = path.join(dir, "again");
    const file = path.join(dir, "again-src");
    await writeFile(file, "abc");
    const first: ObjectStore = new LocalStore(root);
    await first.putFile("x/y.wav", file, "audio/wav");
    assert.equal(await readFile(path.join(root, "x/y.wav"), "utf8"), "abc");
    assert.equal(await new LocalStore(root).size("x/y.wav"), 3);
  });
});
