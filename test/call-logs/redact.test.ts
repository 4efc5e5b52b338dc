import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CallLog, type CallLogChunk, REDACTED, Redactor } from "../../libs/call-logs/index.ts";

// What keeps secrets and sizes out of a call's log, entry by entry: the parts of the call session
// hand it provider errors, URLs and configuration they did not write themselves.

describe("call log redaction", () => {
  it("replaces values under secret names, known secrets anywhere, and secret shapes in text", () => {
    const r = new Redactor();
    r.addSecretsIn({
      server: {
        url: "https://x.example",
        secret: "srv-secret-1111",
        headers: { "X-Token": "hdr-value-2222" },
      },
      credential: { apiKey: "key-value-3333" },
    });
    const out = r.value({
      apiKey: "anything",
      "X-Vapi-Secret": "anything",
      authorization: "Basic abc",
      promptTokens: 12,
      error: "upstream said: invalid key key-value-3333 (header hdr-value-2222, secret srv-secret-1111)",
      header: "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
      url: "https://user:pa55word@tools.example/run?token=t0k3n&keep=1&signature=abc&X-Amz-Signature=def",
      quoted: "the key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX was refused",
    }) as Record<string, unknown>;
    const text = JSON.stringify(out);
    for (const secret of [
      "key-value-3333",
      "hdr-value-2222",
      "srv-secret-1111",
      "eyJhbGciOiJIUzI1NiJ9",
      "pa55word",
      "t0k3n",
      "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX",
    ]) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    assert.equal(out.apiKey, REDACTED);
    assert.equal(out["X-Vapi-Secret"], REDACTED);
    assert.equal(out.authorization, REDACTED);
    // Counts that merely sound like secrets are kept.
    assert.equal(out.promptTokens, 12);
    assert.match(
      String(out.url),
      /^https:\/\/\[redacted\]@tools\.example\/run\?token=\[redacted\]&keep=1&signature=\[redacted\]/,
    );
    assert.equal(out.header, "Authorization: Bearer [redacted]");
  });

  it("bounds sizes: long strings are cut, deep or wide values trimmed", () => {
    const r = new Redactor();
    const out = r.value({ long: "x".repeat(5000), deep: { a: { b: { c: { d: { e: 1 } } } } } }) as {
      long: string;
      deep: unknown;
    };
    assert.equal(out.long.length, 1001);
    assert.match(JSON.stringify(out.deep), /\[…\]/);
  });

  it("the cap keeps one entry for its note, and nothing after it", async () => {
    const chunks: CallLogChunk[] = [];
    let now = 1_000;
    const log = new CallLog({
      limits: { maxEntries: 5, maxBytes: 1_000_000 },
      now: () => now,
      append: async (chunk) => {
        chunks.push(chunk);
      },
    });
    log.bind("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", 1_000);
    log.setEnabled(true);
    for (let i = 0; i < 10; i++) {
      now += 100;
      log.add("turn", "step", { i });
    }
    await log.close();
    const entries = chunks.flatMap((c) => c.entries);
    assert.equal(entries.length, 5);
    assert.deepEqual(
      entries.slice(0, 4).map((e) => e.data?.i),
      [0, 1, 2, 3],
    );
    assert.equal(entries[4]?.category, "log");
    assert.equal(entries[0]?.secondsFromStart, 0.1);
    assert.equal(
      chunks.reduce((n, c) => n + c.count, 0),
      5,
    );
  });

  it("off (artifactPlan.loggingEnabled false): nothing is kept, not even what came before", async () => {
    const chunks: CallLogChunk[] = [];
    const log = new CallLog({
      limits: { maxEntries: 100, maxBytes: 1_000_000 },
      now: () => 0,
      append: async (chunk) => {
        chunks.push(chunk);
      },
    });
    log.add("transport", "media connection opened");
    log.bind("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", 0);
    log.setEnabled(false);
    log.add("call", "call started");
    await log.close();
    assert.equal(chunks.length, 0);
    assert.equal(log.stored, false);
  });
});
