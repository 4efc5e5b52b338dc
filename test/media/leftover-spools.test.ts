import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SecretBox } from "../../libs/crypto/index.ts";
import { adoptLeftoverSpools } from "../../libs/media/leftover-spools.ts";
import { CallRecordings, RecordingStores, wavHeader } from "../../libs/recordings/index.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// Spools that a dead media process left on a disk whose calls were ended elsewhere (Kubernetes: the
// API or another pod could not read the pod's emptyDir). A pass over the directory, as the sweeper
// runs it, against a real database: what it stores and puts on the call, and what it leaves alone.
// (test/media/recording.test.ts kills a real media process and restarts it on the same directory.)

const QUIET_MS = 9000;
const RATE = 8000;

describe("recording spools left by a dead media process", () => {
  let t: TestApi;
  let orgId: string;
  let dir: string;
  let recordings: CallRecordings;
  const secrets = new SecretBox(randomBytes(32));

  before(async () => {
    t = await startTestApi();
    orgId = (await t.createOrg("Leftovers")).orgId;
    dir = await mkdtemp(path.join(tmpdir(), "leftover-spools-"));
    recordings = new CallRecordings(
      new RecordingStores({ dir, customS3ForcePathStyle: false }, t.db, secrets),
      "https://api.example.test",
    );
    await mkdir(recordings.stores.spoolDir, { recursive: true });
  });
  after(async () => {
    recordings.stores.close();
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A call as the database holds it, and its spool: `seconds` of stereo audio written `agoMs` ago. */
  async function leftover(opts: {
    status?: string;
    artifact?: object;
    recordingEnabled?: boolean;
    seconds?: number;
    agoMs?: number;
  }) {
    const call = await t.db.call.create({
      data: {
        orgId,
        type: "inboundPhoneCall",
        status: opts.status ?? "ended",
        endedReason: opts.status === "in-progress" ? null : "call.in-progress.error-vapifault-worker-died",
        assistant: { artifactPlan: { recordingEnabled: opts.recordingEnabled ?? true } },
        artifact: opts.artifact ?? {
          transcript: "AI: Hello.",
          recordingError:
            "the media process holding the call died and its recording was not on this host's disk",
        },
      },
    });
    await writeSpool(call.id, opts.seconds ?? 2, opts.agoMs ?? QUIET_MS * 2);
    return call;
  }

  /** What a recorder leaves: a header with zero sizes (never finished), then the audio. */
  async function writeSpool(callId: string, seconds: number, agoMs: number) {
    const data = Buffer.alloc(seconds * RATE * 4, 7);
    const file = recordings.spoolPath(callId);
    await writeFile(file, Buffer.concat([wavHeader(0, { channels: 2, sampleRate: RATE }), data]));
    const at = new Date(Date.now() - agoMs);
    await utimes(file, at, at);
  }

  const artifactOf = async (id: string) =>
    (await t.db.call.findUniqueOrThrow({ where: { id } })).artifact as Record<string, unknown>;
  const spools = async () => (await readdir(recordings.stores.spoolDir)).sort();
  const pass = (live?: (id: string) => boolean) =>
    adoptLeftoverSpools({ db: t.db, recordings }, { quietMs: QUIET_MS, live });

  it("an ended call's spool is stored once, even with two processes at it; the call gets its recording and loses its recordingError", async () => {
    const call = await leftover({ seconds: 3 });
    const adopted = await Promise.all([pass(), pass()]);
    assert.equal(adopted[0] + adopted[1], 1, "stored by exactly one pass");
    const artifact = await artifactOf(call.id);
    assert.equal(artifact.recordingError, undefined);
    assert.equal(artifact.transcript, "AI: Hello.", "the rest of the artifact kept");
    assert.equal(artifact.recordingUrl, `https://api.example.test/call/${call.id}/mono-recording`);
    const storage = artifact.recordingStorage as { durationSeconds: number; partial?: boolean };
    assert.equal(storage.durationSeconds, 3);
    assert.equal(storage.partial, true);
    // Stored with its final header, where the downloads read it.
    const stored = await readFile(path.join(dir, orgId, call.id, "stereo.wav"));
    assert.equal(stored.readUInt32LE(40), 3 * RATE * 4, "the data size written into the header");
    const track = await recordings.track({ orgId, artifact }, "customer");
    assert.equal(track?.size, 44 + 3 * RATE * 2);
    assert.deepEqual(await spools(), []);
  });

  it("leaves alone a call still in progress, a spool written lately, and this process's own live calls", async () => {
    const running = await leftover({ status: "in-progress" });
    const recent = await leftover({ agoMs: 1000 });
    const live = await leftover({});
    assert.equal(await pass((id) => id === live.id), 0);
    assert.deepEqual(await spools(), [running.id, recent.id, live.id].map((id) => `${id}.wav`).sort());
    for (const c of [recent, live]) assert.ok((await artifactOf(c.id)).recordingError);
    // Once quiet (and not this process's own), the ended one is stored.
    const at = new Date(Date.now() - QUIET_MS * 2);
    await utimes(recordings.spoolPath(recent.id), at, at);
    assert.equal(await pass((id) => id === live.id), 1);
    assert.equal((await artifactOf(recent.id)).recordingError, undefined);
    for (const c of [running, live]) await rm(recordings.spoolPath(c.id));
  });

  it("removes the spools of deleted calls, of calls with recording off and of calls already recorded; ignores other files", async () => {
    const deleted = await leftover({});
    await t.db.call.delete({ where: { id: deleted.id } });
    const off = await leftover({ recordingEnabled: false });
    const recorded = await leftover({});
    assert.equal(await pass(), 1);
    assert.deepEqual(await spools(), [], "the deleted call's and the recording-off call's removed");
    const artifact = await artifactOf(recorded.id);
    // A second spool for the recorded call (another copy of its disk): not stored over the first.
    await writeSpool(recorded.id, 1, QUIET_MS * 2);
    await writeFile(path.join(recordings.stores.spoolDir, "notes.txt"), "not a spool");
    const fresh = randomUUID();
    await writeSpool(fresh, 1, 0);
    assert.equal(await pass(), 0);
    assert.deepEqual(await artifactOf(recorded.id), artifact);
    assert.equal((await artifactOf(off.id)).recordingUrl, undefined);
    assert.deepEqual(await spools(), ["notes.txt", `${fresh}.wav`].sort());
    await rm(recordings.spoolPath(fresh));
    await rm(path.join(recordings.stores.spoolDir, "notes.txt"));
  });

  it("waits for the call's ender to mark it; a spool that cannot be stored is kept and stored by a later pass", async () => {
    // Ended, but its ender has not written its recordingError yet (it is still trying its own disk).
    const unmarked = await leftover({ artifact: { transcript: "AI: Hello." } });
    assert.equal(await pass(), 0);
    assert.deepEqual(await spools(), [`${unmarked.id}.wav`]);
    await t.db.call.update({
      where: { id: unmarked.id },
      data: { artifact: { transcript: "AI: Hello.", recordingError: "not on this host's disk" } },
    });
    // The store refuses (the local store's directory for the organisation is a file): kept.
    await writeFile(path.join(dir, orgId, unmarked.id), "in the way");
    assert.equal(await pass(), 0);
    assert.deepEqual(await spools(), [`${unmarked.id}.wav`], "put back for a later pass");
    assert.ok((await artifactOf(unmarked.id)).recordingError);
    // Once quiet again after the failed attempt, and the store takes it: stored.
    await rm(path.join(dir, orgId, unmarked.id));
    const at = new Date(Date.now() - QUIET_MS * 2);
    await utimes(recordings.spoolPath(unmarked.id), at, at);
    assert.equal(await pass(), 1);
    assert.equal((await artifactOf(unmarked.id)).recordingError, undefined);
    assert.deepEqual(await spools(), []);
  });
});
