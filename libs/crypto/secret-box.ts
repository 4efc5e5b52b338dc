import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

// AES-256-GCM envelopes for provider secrets at rest. Each ciphertext is stored next to the id of
// the key that made it (a short hash of the key), so SECRETS_KEY can be rotated: new writes use
// the current key, old rows still decrypt with a previous key until they are re-encrypted.

export interface Sealed {
  /** base64(iv).base64(tag).base64(ciphertext) */
  ciphertext: string;
  keyId: string;
}

export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 12);
}

export function parseSecretsKey(base64: string, name = "SECRETS_KEY"): Buffer {
  const key = Buffer.from(base64, "base64");
  if (key.length !== 32) {
    throw new Error(`${name} must be 32 bytes encoded in base64 (got ${key.length} bytes)`);
  }
  return key;
}

export class SecretBox {
  private readonly current: Buffer;
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(currentKey: Buffer, previousKeys: Buffer[] = []) {
    this.current = currentKey;
    this.currentKeyId = keyIdOf(currentKey);
    for (const k of [currentKey, ...previousKeys]) this.keys.set(keyIdOf(k), k);
  }

  seal(plaintext: string): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.current, iv);
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    return {
      ciphertext: `${iv.toString("base64")}.${tag.toString("base64")}.${body.toString("base64")}`,
      keyId: this.currentKeyId,
    };
  }

  open(sealed: Sealed): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new Error(`no secrets key with id ${sealed.keyId} is configured`);
    const [iv, tag, body] = sealed.ciphertext.split(".");
    if (iv === undefined || tag === undefined || body === undefined)
      throw new Error("malformed sealed secret");
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64"));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
  }

  /** True when the row should be re-encrypted with the current key. */
  isStale(sealed: Sealed): boolean {
    return sealed.keyId !== this.currentKeyId;
  }
}
