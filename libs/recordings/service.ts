import { randomUUID } from "node:crypto";
import { open, rename, rm, utimes } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type { ByteRange, ObjectStore } from "../storage/index.ts";
import { derivedDataBytes, deriveTrack, stereoRangeOf } from "./derive.ts";
import { storeSpool } from "./spool.ts";
import type { RecordingStores } from "./stores.ts";
import {
  type RecordingLocation,
  recordingArtifact,
  recordingLocationOf,
  type StoredKeys,
  stereoKey,
  type Track,
} from "./tracks.ts";
import { readWavShape, WAV_HEADER_BYTES, wavHeader } from "./wav.ts";

// A call's recording from start to erasure, for every app: where it goes (destination), storing
// the spool when the call ends or when a dead process's call is swept (store, recover), serving it
// (open) and erasing it with the call (erase).

/** What the assistant's artifactPlan says about recording (Vapi's defaults filled in). */
export interface RecordingSettings {
  enabled: boolean;
  useCustomStorage: boolean;
  recordingPath: string;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The recording settings of a (resolved) assistant config. */
export function recordingSettingsOf(assistant: unknown): RecordingSettings {
  const plan = isObj(assistant) && isObj(assistant.artifactPlan) ? assistant.artifactPlan : {};
  return {
    enabled: plan.recordingEnabled !== false,
    useCustomStorage: plan.recordingUseCustomStorageEnabled !== false,
    recordingPath: typeof plan.recordingPath === "string" ? plan.recordingPath : "/",
  };
}

export interface RecordingDestination {
  credentialId?: string;
  bucket?: string;
  keys: StoredKeys;
}

/** The artifact fields of a stored recording (stable URLs and its location). */
export type RecordingArtifact = ReturnType<typeof recordingArtifact>;

export interface RecordingLogger {
  warn(obj: object, msg: string): void;
}

/** A track found for download: its full size (header included), and its bytes. */
export interface OpenedTrack {
  size: number;
  read(range?: ByteRange): Promise<Readable>;
}

/** The suffix of a spool claimed by the process storing it (recover). */
const CLAIMED = ".claimed";

/** The call whose spool a file of the spool directory is (`<callId>.wav`); undefined for any other file. */
export function spoolCallId(file: string): string | undefined {
  return file.endsWith(".wav") ? file.slice(0, -".wav".length) : undefined;
}

export class CallRecordings {
  readonly stores: RecordingStores;
  readonly #publicUrl: string;

  constructor(stores: RecordingStores, publicUrl: string) {
    this.stores = stores;
    this.#publicUrl = publicUrl;
  }

  /** The call's spool file (local disk, while it runs). */
  spoolPath(callId: string): string {
    return path.join(this.stores.spoolDir, `${callId}.wav`);
  }

  /** Where a new recording of the call goes (the organisation's bucket when it has one and may). */
  async destination(
    call: { id: string; orgId: string },
    settings: RecordingSettings,
  ): Promise<RecordingDestination> {
    const custom = settings.useCustomStorage ? await this.stores.customFor(call.orgId) : undefined;
    return custom
      ? {
          credentialId: custom.credentialId,
          bucket: custom.bucket,
          keys: {
            stereo: stereoKey(call, { pathPrefix: custom.pathPrefix, recordingPath: settings.recordingPath }),
          },
        }
      : { keys: { stereo: stereoKey(call) } };
  }

  async #store(orgId: string, credentialId: string | undefined, bucket?: string): Promise<ObjectStore> {
    const store = await this.stores.storeOf(orgId, credentialId, bucket);
    if (!store) throw new Error(`the organisation's s3 credential ${credentialId} no longer exists`);
    return store;
  }

  /** Stores a finished spool (the call's own unless `spool` names a claimed one); the artifact fields that name it. */
  async store(
    call: { id: string; orgId: string },
    dest: RecordingDestination,
    sampleRate: number,
    partial = false,
    spool = this.spoolPath(call.id),
    keepOnFailure = false,
  ): Promise<RecordingArtifact> {
    const store = await this.#store(call.orgId, dest.credentialId, dest.bucket);
    const seconds = await storeSpool(spool, sampleRate, store, dest.keys.stereo, keepOnFailure);
    const location: RecordingLocation = {
      ...(dest.credentialId ? { credentialId: dest.credentialId, bucket: dest.bucket } : {}),
      keys: dest.keys,
      sampleRate,
      durationSeconds: Math.round(seconds * 1000) / 1000,
      ...(partial ? { partial: true as const } : {}),
    };
    return recordingArtifact(this.#publicUrl, call.id, location);
  }

  /**
   * A call whose media process died: its spool, if this process can see it (the same disk: one
   * host, the dead process's own restarted container, or a shared RECORDINGS_DIR), is stored with
   * the audio up to its last flushed chunk. Undefined when there is no spool here, or when another
   * process sharing the directory claimed it first. With `retry` (a pass over leftover spools), a
   * spool that could not be stored is put back for a later pass; otherwise it is removed.
   */
  async recover(
    call: { id: string; orgId: string; assistant: unknown },
    opts: { retry?: boolean } = {},
  ): Promise<RecordingArtifact | undefined> {
    const spool = await this.#claim(call.id);
    if (!spool) return undefined;
    try {
      const fh = await open(spool, "r");
      let shape: ReturnType<typeof readWavShape>;
      try {
        const head = Buffer.alloc(WAV_HEADER_BYTES);
        await fh.read(head, 0, WAV_HEADER_BYTES, 0);
        shape = readWavShape(head);
      } finally {
        await fh.close();
      }
      if (!shape) {
        await rm(spool, { force: true });
        return undefined;
      }
      const dest = await this.destination(call, recordingSettingsOf(call.assistant));
      return await this.store(call, dest, shape.sampleRate, true, spool, opts.retry);
    } catch (err) {
      if (opts.retry) await rename(spool, this.spoolPath(call.id)).catch(() => {});
      else await rm(spool, { force: true });
      throw err;
    }
  }

  /**
   * Takes a dead call's spool for this process alone: renamed aside (atomic in one directory), so
   * of several processes sharing the directory exactly one stores it. Its time is set to the claim's,
   * so an abandoned claim is told by its age (leftover-spools.ts). Undefined when it is gone.
   */
  async #claim(callId: string): Promise<string | undefined> {
    const claimed = path.join(this.stores.spoolDir, `${callId}.${randomUUID()}${CLAIMED}`);
    try {
      await rename(this.spoolPath(callId), claimed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const now = new Date();
    await utimes(claimed, now, now).catch(() => {});
    return claimed;
  }

  /** Erases a call's recording (nothing when it has none); rejects when the store refuses. */
  async erase(call: { orgId: string; artifact: unknown }): Promise<void> {
    const loc = recordingLocationOf(call.artifact);
    if (!loc) return;
    const store = await this.stores.storeOf(call.orgId, loc.credentialId, loc.bucket);
    // The credential is gone: nothing of ours can reach that bucket any more.
    if (!store) return;
    await store.remove(Object.values(loc.keys).filter((k) => typeof k === "string"));
  }

  /**
   * One track for download: undefined when the call has no such recording. The 44-byte header is
   * computed from the stored size (a recording cut short by a dead process plays to its end). A
   * track that is not stored is derived from the stereo one as it is read.
   */
  async track(call: { orgId: string; artifact: unknown }, track: Track): Promise<OpenedTrack | undefined> {
    const loc = recordingLocationOf(call.artifact);
    if (!loc) return undefined;
    const store = await this.stores.storeOf(call.orgId, loc.credentialId, loc.bucket);
    if (!store) return undefined;
    const stored = loc.keys[track];
    const key = stored ?? loc.keys.stereo;
    const storedSize = await store.size(key);
    if (storedSize === undefined || storedSize < WAV_HEADER_BYTES) return undefined;
    if (stored !== undefined) {
      const header = wavHeader(storedSize - WAV_HEADER_BYTES, {
        channels: track === "stereo" ? 2 : 1,
        sampleRate: loc.sampleRate,
      });
      const size = storedSize;
      return {
        size,
        read: (range) =>
          withHeader(header, range?.start ?? 0, range?.end ?? size - 1, (r) => store.read(key, r)),
      };
    }
    if (track === "stereo") return undefined;
    const dataBytes = derivedDataBytes(storedSize - WAV_HEADER_BYTES);
    const header = wavHeader(dataBytes, { channels: 1, sampleRate: loc.sampleRate });
    const size = WAV_HEADER_BYTES + dataBytes;
    return {
      size,
      read: (range) =>
        withHeader(header, range?.start ?? 0, range?.end ?? size - 1, async (r) => {
          const from = r.start - WAV_HEADER_BYTES;
          const to = r.end - WAV_HEADER_BYTES;
          const s = stereoRangeOf(from, to);
          const stereo = await store.read(key, {
            start: WAV_HEADER_BYTES + s.start,
            end: WAV_HEADER_BYTES + s.end,
          });
          return deriveTrack(stereo, track, from & 1, to - from + 1);
        }),
    };
  }
}

/** Bytes [start, end] of a track: its `header`, then its bytes from 44 on as `body` reads them. */
async function withHeader(
  header: Buffer,
  start: number,
  end: number,
  body: (range: ByteRange) => Promise<Readable>,
): Promise<Readable> {
  const head =
    start < WAV_HEADER_BYTES ? header.subarray(start, Math.min(end + 1, WAV_HEADER_BYTES)) : undefined;
  const from = Math.max(start, WAV_HEADER_BYTES);
  const rest = from <= end ? await body({ start: from, end }) : undefined;
  if (!head) return rest ?? Readable.from([]);
  if (!rest) return Readable.from([head]);
  return Readable.from(
    (async function* () {
      yield head;
      for await (const chunk of rest) yield chunk as Buffer;
    })(),
  );
}
