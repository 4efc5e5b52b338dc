import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

// API keys are random 32-byte tokens shown once. Only their SHA-256 is stored (a slow KDF is not
// needed: the keys carry 256 bits of entropy, so a hash cannot be brute-forced), and the first
// characters are kept as a prefix so users can tell keys apart in lists.

export type ApiKeyType = "private" | "public";

export function generateApiKey(type: ApiKeyType): { key: string; prefix: string; hash: string } {
  const key = `sb_${type === "private" ? "sk" : "pk"}_${randomBytes(32).toString("base64url")}`;
  return { key, prefix: key.slice(0, 12), hash: hashApiKey(key) };
}

const API_KEY_SHAPE = /^sb_(?:sk|pk)_[A-Za-z0-9_-]{43}$/;

/** Whether a token could be one of our keys at all: anything else is refused before any lookup. */
export function isWellFormedApiKey(token: string): boolean {
  return API_KEY_SHAPE.test(token);
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
