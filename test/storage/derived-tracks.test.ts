import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { SecretBox } from "../../libs/crypto/index.ts";
import { createDb, type Db } from "../../libs/db/index.ts";
import { deriveTrack, stereoRangeOf } from "../../libs/recordings/derive.ts";
import {
  CallRecordings,
  RecordingStores,
  type RecordingsConfig,
  TRACKS,
  type Track,
  wavHeader,
} from "../../libs/recordings/index.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { type LocalS3, startLocalS3 } from "../helpers/s3.ts";

// A recording is stored as its stereo WAV alone; the mono, customer and assistant tracks are derived
// from it as they are read. Here against the platform's two stores (a local directory and a local
// S3-compatible server): every track's bytes, whole and by any range (odd offsets, the header, a
// byte), match the tracks derived all at once; the stream is cut into chunks that split samples;
// erasing removes what was stored; a call recorded before (four stored tracks) is served as stored.

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const RATE = 8000;

/** The four tracks of `stereoData` as whole WAV files, derived sample by sample. */
function expectedTracks(stereoData: Buffer): Record<Track, Buffer> {
  const n = stereoData.length / 4;
  const mono = Buffer.alloc(n * 2);
  const customer = Buffer.alloc(n * 2);
  const assistant = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    const l = stereoData.readInt16LE(i * 4);
    const r = stereoData.readInt16LE(i * 4 + 2);
    customer.writeInt16LE(l, i * 2);
    assistant.writeInt16LE(r, i * 2);
    mono.writeInt16LE(Math.max(-32768, Math.min(32767, l + r)), i * 2);
  }
  const wav = (data: Buffer, channels: 1 | 2) =>
    Buffer.concat([wavHeader(data.length, { channels, sampleRate: RATE }), data]);
  return {
    stereo: wav(stereoData, 2),
    mono: wav(mono, 1),
    customer: wav(customer, 1),
    assistant: wav(assistant, 1),
  };
}

/** Loud samples both sides (their sum clips), some quiet ones, and noise. */
function stereoData(samples: number): Buffer {
  const data = randomBytes(samples * 4);
  for (let i = 0; i < samples; i += 7) {
    data.writeInt16LE(30_000, i * 4);
    data.writeInt16LE(i % 2 ? 20_000 : -32_768, i * 4 + 2);
  }
  return data;
}

/** Ranges a player asks for: from the start, across the header, odd and even, one byte, the tail. */
function rangesOf(size: number): Array<[number, number]> {
  return [
    [0, size - 1],
    [0, 43],
    [40, 139],
    [43, 44],
    [44, 44],
    [45, 45],
    [45, 1000],
    [101, 20_001],
    [size - 3, size - 1],
    [size - 1, size - 1],
    [Math.floor(size / 2) + 1, size - 2],
  ];
}

describe("derived recording tracks", () => {
  let dir: string;
  let s3: LocalS3;
  let endpoint: string;
  let database: TestDatabase;
  let db: Db;
  const secrets = new SecretBox(randomBytes(32));

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "derived-"));
    s3 = await startLocalS3(dir, ["platform-recordings"]);
    endpoint = s3.endpoint;
    database = await createTestDatabase();
    db = createDb(database.url);
  });
  after(async () => {
    await db.$disconnect();
    await database.drop();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a stream cut anywhere (a sample split between chunks, odd offsets) gives every track's bytes of any range", async () => {
    const data = stereoData(1001);
    const want = expectedTracks(data);
    for (const track of ["mono", "customer", "assistant"] as const) {
      const monoData = (want[track] as Buffer).subarray(44);
      for (const [from, to] of [
        [0, monoData.length - 1],
        [1, 1],
        [1, 2],
        [3, 1500],
        [monoData.length - 1, monoData.length - 1],
      ] as const) {
        const s = stereoRangeOf(from, to);
        const src = data.subarray(s.start, s.end + 1);
        // Chunks of 1 to 9 bytes: every way a sample can be split.
        const chunks: Buffer[] = [];
        for (let at = 0, k = 1; at < src.length; at += k, k = (k % 9) + 1)
          chunks.push(src.subarray(at, at + k));
        const got = await bytes(deriveTrack(Readable.from(chunks), track, from & 1, to - from + 1));
        assert.deepEqual(got, monoData.subarray(from, to + 1), `${track} ${from}-${to}`);
      }
    }
  });

  for (const kind of ["local", "s3"] as const) {
    it(`${kind === "local" ? "a local directory" : "the platform's S3 bucket"}: only the stereo WAV stored; every track downloads whole and by range; erased with the call`, async () => {
      const config: RecordingsConfig = {
        dir: path.join(dir, `recordings-${kind}`),
        customS3ForcePathStyle: true,
        ...(kind === "s3"
          ? {
              s3: {
                bucket: "platform-recordings",
                region: "us-east-1",
                endpoint,
                forcePathStyle: true,
                credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
              },
            }
          : {}),
      };
      const stores = new RecordingStores(config, db, secrets);
      const recordings = new CallRecordings(stores, "https://api.example.test");
      try {
        const call = { id: randomUUID(), orgId: randomUUID() };
        // 5 MiB and more: a multipart upload, and a stream read in many chunks.
        const data = stereoData(1_400_000);
        const want = expectedTracks(data);
        const spool = recordings.spoolPath(call.id);
        await mkdir(path.dirname(spool), { recursive: true });
        // As a spool is before its call ends: sizes unknown in its header.
        await writeFile(spool, Buffer.concat([wavHeader(0, { channels: 2, sampleRate: RATE }), data]));
        const dest = await recordings.destination(call, {
          enabled: true,
          useCustomStorage: true,
          recordingPath: "/",
        });
        const artifact = await recordings.store(call, dest, RATE);
        assert.deepEqual(artifact.recordingStorage.keys, { stereo: `${call.orgId}/${call.id}/stereo.wav` });
        assert.equal(artifact.recordingStorage.durationSeconds, 175);
        const row = { orgId: call.orgId, artifact };
        for (const track of TRACKS) {
          const opened = await recordings.track(row, track);
          assert.ok(opened, track);
          const whole = want[track] as Buffer;
          assert.equal(opened.size, whole.length, `${track} size`);
          assert.deepEqual(await bytes(await opened.read()), whole, `${track} whole`);
          for (const [start, end] of rangesOf(whole.length)) {
            const got = await bytes(await opened.read({ start, end }));
            assert.deepEqual(got, whole.subarray(start, end + 1), `${track} bytes ${start}-${end}`);
          }
        }
        await recordings.erase(row);
        assert.equal(await stores.platform.size(`${call.orgId}/${call.id}/stereo.wav`), undefined);
        for (const track of TRACKS) assert.equal(await recordings.track(row, track), undefined, track);
      } finally {
        stores.close();
      }
    });
  }

  it("a call recorded before (all four tracks stored): each track is served as stored, and all four are erased", async () => {
    const stores = new RecordingStores(
      { dir: path.join(dir, "recordings-legacy"), customS3ForcePathStyle: true },
      db,
      secrets,
    );
    const recordings = new CallRecordings(stores, "https://api.example.test");
    const call = { id: randomUUID(), orgId: randomUUID() };
    const want = expectedTracks(stereoData(4000));
    // A customer track that is not the stereo one's left channel: proof it is read as stored.
    want.customer = Buffer.concat([
      wavHeader(3000, { channels: 1, sampleRate: RATE }),
      Buffer.alloc(3000, 1),
    ]);
    const keys = {} as Record<Track, string>;
    for (const track of TRACKS) {
      keys[track] = `${call.orgId}/${call.id}/${track}.wav`;
      const file = path.join(dir, `legacy-${track}`);
      await writeFile(file, want[track]);
      await stores.platform.putFile(keys[track], file, "audio/wav");
    }
    const row = {
      orgId: call.orgId,
      artifact: { recordingStorage: { keys, sampleRate: RATE, durationSeconds: 0.5 } },
    };
    for (const track of TRACKS) {
      const opened = await recordings.track(row, track);
      assert.ok(opened, track);
      assert.deepEqual(await bytes(await opened.read()), want[track], track);
      assert.deepEqual(
        await bytes(await opened.read({ start: 45, end: 999 })),
        want[track].subarray(45, 1000),
      );
    }
    await recordings.erase(row);
    for (const track of TRACKS) assert.equal(await stores.platform.size(keys[track]), undefined, track);
  });
});
