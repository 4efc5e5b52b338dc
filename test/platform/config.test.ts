import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { test } from "node:test";
import { apiConfigFromEnv } from "../../apps/api/src/config.ts";
import { ConfigError, parseEnv } from "../../libs/config/index.ts";
import { SecretBox } from "../../libs/crypto/index.ts";

const root = path.resolve(import.meta.dirname, "../..");
const key = randomBytes(32).toString("base64");

function runApi(env: Record<string, string>) {
  return spawnSync(process.execPath, ["--import", "tsx", "apps/api/src/main.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

test("a missing variable stops the process with a message naming it", () => {
  const res = runApi({
    DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres",
    ADMIN_TOKEN: "a".repeat(20),
  });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /SECRETS_KEY is required/);
});

test("a malformed variable stops the process with a message naming it", () => {
  const res = runApi({
    DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres",
    ADMIN_TOKEN: "a".repeat(20),
    SECRETS_KEY: key,
    API_PORT: "eighty",
  });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /API_PORT/);
});

test("configuration is validated once, naming every bad variable", () => {
  assert.throws(
    () => parseEnv({ DATABASE_URL: "mysql://x", REDIS_URL: "nope", ALLOW_PRIVATE_WEBHOOK_URLS: "yes" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /DATABASE_URL/.test(err.message) &&
      /REDIS_URL/.test(err.message) &&
      /ALLOW_PRIVATE_WEBHOOK_URLS/.test(err.message),
  );
  assert.throws(
    () =>
      apiConfigFromEnv(
        parseEnv({ DATABASE_URL: "postgresql://x/y", ADMIN_TOKEN: "a".repeat(20), SECRETS_KEY: "c2hvcnQ=" }),
      ),
    /SECRETS_KEY/,
  );
  const cfg = apiConfigFromEnv(
    parseEnv({ DATABASE_URL: "postgresql://x/y", ADMIN_TOKEN: "a".repeat(20), SECRETS_KEY: key }),
  );
  assert.equal(cfg.port, 3000);
  assert.equal(
    cfg.allowPrivateWebhookUrls,
    false,
    "outgoing requests to private addresses are refused by default",
  );
  assert.equal(cfg.providers.openaiBaseUrl, "https://api.openai.com/v1");
});

test("secrets survive a key rotation: old ciphertexts open with the previous key, new ones use the current", () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const sealedOld = new SecretBox(oldKey).seal("sk-live-123");
  const rotated = new SecretBox(newKey, [oldKey]);
  assert.equal(rotated.open(sealedOld), "sk-live-123");
  assert.equal(rotated.isStale(sealedOld), true);
  const sealedNew = rotated.seal("sk-live-123");
  assert.notEqual(sealedNew.keyId, sealedOld.keyId);
  assert.notEqual(sealedNew.ciphertext, sealedOld.ciphertext);
  assert.equal(new SecretBox(newKey).open(sealedNew), "sk-live-123");
  assert.throws(() => new SecretBox(newKey).open(sealedOld), /no secrets key with id/);
  // Tampering is detected (GCM tag).
  const [iv, tag, body] = sealedNew.ciphertext.split(".");
  const flipped = Buffer.from(body ?? "", "base64");
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  assert.throws(() =>
    rotated.open({ keyId: sealedNew.keyId, ciphertext: `${iv}.${tag}.${flipped.toString("base64")}` }),
  );
});
