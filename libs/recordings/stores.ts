import path from "node:path";
import type { SecretBox } from "../crypto/index.ts";
import type { Db } from "../db/index.ts";
import { LocalStore, type ObjectStore, S3Store, type S3StoreOptions } from "../storage/index.ts";

// Which store a recording goes to and comes from: the platform's (a local directory, or the
// bucket RECORDINGS_S3_* names) or an organisation's own bucket through its `s3` credential
// (Vapi's custom storage: used when one exists, unless the assistant's
// artifactPlan.recordingUseCustomStorageEnabled is false).

export interface RecordingsConfig {
  /** The local store's root (RECORDINGS_DIR, default DATA_DIR/recordings) and the spool below it. */
  dir: string;
  /** The platform's bucket; unset: the local directory. */
  s3?: S3StoreOptions;
  /** Where organisations' `s3` credentials are sent instead of AWS (an S3-compatible server). */
  customS3Endpoint?: string;
  customS3ForcePathStyle: boolean;
}

/** Vapi's `s3` credential, as stored: the secret sealed, the rest in `config`. */
export interface S3CredentialRow {
  id: string;
  secret: string;
  keyId: string;
  config: unknown;
  updatedAt: Date;
}

export interface CustomStorage {
  credentialId: string;
  /** The credential's bucket when the recording is made (kept with it: the credential may change). */
  bucket: string;
  /** The credential's `s3PathPrefix`. */
  pathPrefix: string;
}

function field(config: unknown, name: string): string {
  const v = config && typeof config === "object" ? (config as Record<string, unknown>)[name] : undefined;
  return typeof v === "string" ? v : "";
}

/** Clients kept per credential (a client holds sockets); the oldest is closed past this many. */
const MAX_CUSTOM_CLIENTS = 50;

export class RecordingStores {
  readonly config: RecordingsConfig;
  readonly platform: ObjectStore;
  /** Where recordings are written while their call runs (always local). */
  readonly spoolDir: string;
  readonly #db: Db;
  readonly #secrets: SecretBox;
  readonly #custom = new Map<string, S3Store>();

  constructor(config: RecordingsConfig, db: Db, secrets: SecretBox) {
    this.config = config;
    this.#db = db;
    this.#secrets = secrets;
    this.platform = config.s3 ? new S3Store(config.s3) : new LocalStore(config.dir);
    this.spoolDir = path.join(path.resolve(config.dir), ".spool");
  }

  /** The organisation's storage credential for a new recording: the lowest fallbackIndex, then the newest. */
  async customFor(orgId: string): Promise<CustomStorage | undefined> {
    const rows = await this.#db.credential.findMany({
      where: { orgId, provider: "s3" },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      select: { id: true, config: true },
    });
    const index = (c: unknown) => {
      const v = c && typeof c === "object" ? (c as Record<string, unknown>).fallbackIndex : undefined;
      return typeof v === "number" ? v : Number.MAX_SAFE_INTEGER;
    };
    const best = rows.reduce<(typeof rows)[number] | undefined>(
      (a, r) => (a === undefined || index(r.config) < index(a.config) ? r : a),
      undefined,
    );
    return (
      best && {
        credentialId: best.id,
        bucket: field(best.config, "s3BucketName"),
        pathPrefix: field(best.config, "s3PathPrefix"),
      }
    );
  }

  /**
   * The store of a recording: the platform's, or the organisation's credential (its keys as they are
   * now, `bucket` the one the recording went to; a credential that is gone: undefined).
   */
  async storeOf(
    orgId: string,
    credentialId: string | undefined,
    bucket?: string,
  ): Promise<ObjectStore | undefined> {
    if (!credentialId) return this.platform;
    const row = await this.#db.credential.findFirst({
      where: { id: credentialId, orgId, provider: "s3" },
      select: { id: true, secret: true, keyId: true, config: true, updatedAt: true },
    });
    return row ? this.#customStore(row, bucket ?? field(row.config, "s3BucketName")) : undefined;
  }

  #customStore(row: S3CredentialRow, bucket: string): S3Store {
    const cacheKey = `${row.id}@${row.updatedAt.getTime()}/${bucket}`;
    const hit = this.#custom.get(cacheKey);
    if (hit) return hit;
    const { customS3Endpoint, customS3ForcePathStyle } = this.config;
    const store = new S3Store({
      bucket,
      region: field(row.config, "region"),
      ...(customS3Endpoint ? { endpoint: customS3Endpoint, forcePathStyle: customS3ForcePathStyle } : {}),
      credentials: {
        accessKeyId: field(row.config, "awsAccessKeyId"),
        secretAccessKey: this.#secrets.open({ ciphertext: row.secret, keyId: row.keyId }),
      },
    });
    this.#custom.set(cacheKey, store);
    if (this.#custom.size > MAX_CUSTOM_CLIENTS) {
      const [oldest, client] = this.#custom.entries().next().value as [string, S3Store];
      this.#custom.delete(oldest);
      client.close();
    }
    return store;
  }

  close(): void {
    for (const s of this.#custom.values()) s.close();
    this.#custom.clear();
    if (this.platform instanceof S3Store) this.platform.close();
  }
}
