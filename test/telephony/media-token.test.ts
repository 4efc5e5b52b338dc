import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import {
  consumeMediaToken,
  issueMediaToken,
  MEDIA_TOKEN_TTL_MS,
  verifyMediaToken,
} from "../../libs/telephony/media-token.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

let t: TestApi;
let orgId: string;

before(async () => {
  t = await startTestApi();
  orgId = (await t.createOrg("Tokens")).orgId;
});
after(async () => {
  await t.close();
});

test("a token verifies for its call until it expires", () => {
  const key = t.config.secretsKey;
  const callId = randomUUID();
  const now = 1_700_000_000_000;
  const token = issueMediaToken(key, callId, now);
  assert.match(token, /^v1\.[0-9a-f-]{36}\.\d+\.[\w-]+\.[\w-]+$/);
  assert.deepEqual(verifyMediaToken(key, token, callId, now + 1000), {
    ok: true,
    expiresAt: now + MEDIA_TOKEN_TTL_MS,
  });
  assert.deepEqual(verifyMediaToken(key, token, callId, now + MEDIA_TOKEN_TTL_MS + 1), {
    ok: false,
    reason: "expired",
  });
  assert.deepEqual(verifyMediaToken(key, token, randomUUID(), now), { ok: false, reason: "wrong-call" });
});

test("a tampered, foreign-key or malformed token is refused", () => {
  const key = t.config.secretsKey;
  const callId = randomUUID();
  const now = Date.now();
  const token = issueMediaToken(key, callId, now);
  const parts = token.split(".");
  // Extending the expiry breaks the signature.
  const extended = [parts[0], parts[1], String(now + 3_600_000), parts[3], parts[4]].join(".");
  assert.deepEqual(verifyMediaToken(key, extended, callId, now), { ok: false, reason: "bad-signature" });
  assert.deepEqual(verifyMediaToken(randomBytes(32), token, callId, now), {
    ok: false,
    reason: "bad-signature",
  });
  for (const bad of ["", "v1.x", `v2.${parts.slice(1).join(".")}`, `${token}.extra`]) {
    assert.equal(verifyMediaToken(key, bad, callId, now).ok, false, bad);
  }
});

test("the claim returns the call as the database holds it, with what it also writes", async () => {
  const key = t.config.secretsKey;
  const call = await t.db.call.create({
    data: {
      orgId,
      type: "vapi.websocketCall",
      status: "queued",
      cost: "0.125",
      transport: { provider: "vapi.websocket", audioFormat: { format: "pcm_s16le", sampleRate: 16000 } },
      metadata: { ticket: 7 },
    },
  });
  const now = Date.now();
  const res = await consumeMediaToken(t.db, key, issueMediaToken(key, call.id, now), call.id, now, {
    status: "in-progress",
    startedAt: new Date(now),
    mediaProcessId: "media-a",
    heartbeatAt: new Date(now),
  });
  assert.ok(res.ok);
  const stored = await t.db.call.findUniqueOrThrow({ where: { id: call.id } });
  // Same fields, same types (Decimal, Date, JSON) as a Prisma read of the row.
  assert.deepEqual(res.call, stored);
  assert.equal(stored.status, "in-progress");
  assert.equal(stored.mediaProcessId, "media-a");
  assert.equal(stored.startedAt?.getTime(), now);
  assert.equal(stored.streamConnectedAt?.getTime(), now);
  assert.equal(stored.cost?.toString(), "0.125");
  assert.ok(stored.updatedAt.getTime() >= call.updatedAt.getTime());
});

test("consuming is single-use, and refused for an ended call", async () => {
  const key = t.config.secretsKey;
  const call = await t.db.call.create({ data: { orgId, type: "inboundPhoneCall", status: "ringing" } });
  const token = issueMediaToken(key, call.id);
  const first = await consumeMediaToken(t.db, key, token, call.id);
  assert.equal(first.ok, true);
  assert.ok(first.ok && first.call.streamConnectedAt instanceof Date);
  // The same token, or a fresh one for the same call (a retried webhook), cannot open a second stream.
  assert.deepEqual(await consumeMediaToken(t.db, key, token, call.id), { ok: false, reason: "already-used" });
  const again = issueMediaToken(key, call.id);
  assert.deepEqual(await consumeMediaToken(t.db, key, again, call.id), { ok: false, reason: "already-used" });

  const ended = await t.db.call.create({ data: { orgId, type: "inboundPhoneCall", status: "ended" } });
  assert.deepEqual(await consumeMediaToken(t.db, key, issueMediaToken(key, ended.id), ended.id), {
    ok: false,
    reason: "call-ended",
  });
  const missing = randomUUID();
  assert.deepEqual(await consumeMediaToken(t.db, key, issueMediaToken(key, missing), missing), {
    ok: false,
    reason: "call-not-found",
  });
  const expired = issueMediaToken(key, ended.id, Date.now() - 2 * MEDIA_TOKEN_TTL_MS);
  assert.deepEqual(await consumeMediaToken(t.db, key, expired, ended.id), { ok: false, reason: "expired" });
});
