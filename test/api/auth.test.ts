import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi } from "../helpers/api.ts";

let t: TestApi;
before(async () => {
  t = await startTestApi();
});
after(async () => {
  await t.close();
});

describe("operator bootstrap", () => {
  test("POST /org with the admin token creates an org and answers its first private key once", async () => {
    const res = await t.request({
      method: "POST",
      url: "/org",
      headers: { authorization: `Bearer ${t.config.adminToken}` },
      payload: { name: "Initech" },
    });
    assert.equal(res.statusCode, 201);
    const body = res.json();
    assert.equal(body.org.name, "Initech");
    assert.match(body.apiKey.value, /^sb_sk_/);
    assert.equal(body.apiKey.tag, "private");
    const me = await t.request({ method: "GET", url: "/org", key: body.apiKey.value });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().id, body.org.id);
    // The key is stored only as a hash.
    const row = await t.db.apiKey.findFirstOrThrow({ where: { orgId: body.org.id } });
    assert.notEqual(row.hash, body.apiKey.value);
    assert.ok(!JSON.stringify(row).includes(body.apiKey.value));
  });

  test("POST /org refuses a missing or wrong admin token and an org key", async () => {
    const org = await t.createOrg();
    for (const headers of [{}, { authorization: "Bearer nope-nope-nope-nope" }, org.auth]) {
      const res = await t.request({ method: "POST", url: "/org", headers, payload: { name: "x" } });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.deepEqual(Object.keys(res.json()).sort(), ["error", "message", "statusCode"]);
    }
  });

  test("POST /org validates its body", async () => {
    const res = await t.request({
      method: "POST",
      url: "/org",
      headers: { authorization: `Bearer ${t.config.adminToken}` },
      payload: { name: "" },
    });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().message, /body\.name/);
  });
});

describe("API keys", () => {
  test("every resource route needs a key", async () => {
    for (const url of [
      "/assistant",
      "/tool",
      "/squad",
      "/phone-number",
      "/credential",
      "/call",
      "/token",
      "/org",
    ]) {
      const res = await t.request({ method: "GET", url });
      assert.equal(res.statusCode, 401, url);
      assert.equal(res.json().error, "Unauthorized");
    }
    const bad = await t.request({
      method: "GET",
      url: "/assistant",
      headers: { authorization: "Bearer sb_sk_fake" },
    });
    assert.equal(bad.statusCode, 401);
    const basic = await t.request({
      method: "GET",
      url: "/assistant",
      headers: { authorization: "Basic Zm9vOmJhcg==" },
    });
    assert.equal(basic.statusCode, 401);
  });

  test("keys are created once, listed by prefix, named and revoked", async () => {
    const org = await t.createOrg();
    const created = await t.request({
      method: "POST",
      url: "/token",
      key: org.key,
      payload: { name: "ci", tag: "private" },
    });
    assert.equal(created.statusCode, 201);
    const token = created.json();
    assert.match(token.value, /^sb_sk_/);
    assert.equal(token.prefix, token.value.slice(0, 12));

    const list = await t.request({ method: "GET", url: "/token", key: org.key });
    assert.equal(list.statusCode, 200);
    assert.equal(list.json().length, 2);
    assert.ok(!list.body.includes(token.value), "a listed key never shows its value");
    assert.ok(list.json().every((k: { value?: string }) => k.value === undefined));

    const renamed = await t.request({
      method: "PATCH",
      url: `/token/${token.id}`,
      key: org.key,
      payload: { name: "deploy" },
    });
    assert.equal(renamed.json().name, "deploy");

    // The new key works…
    assert.equal((await t.request({ method: "GET", url: "/assistant", key: token.value })).statusCode, 200);
    // …until it is revoked, at once (the auth cache is evicted).
    const revoked = await t.request({ method: "DELETE", url: `/token/${token.id}`, key: org.key });
    assert.equal(revoked.statusCode, 200);
    assert.ok(revoked.json().revokedAt);
    const after = await t.request({ method: "GET", url: "/assistant", key: token.value });
    assert.equal(after.statusCode, 401);
    assert.match(after.json().message, /revoked/);
    // The other key is unaffected.
    assert.equal((await t.request({ method: "GET", url: "/assistant", key: org.key })).statusCode, 200);
  });

  test("a public key can do nothing but start web calls", async () => {
    const org = await t.createOrg();
    const pub = (
      await t.request({ method: "POST", url: "/token", key: org.key, payload: { tag: "public" } })
    ).json();
    assert.match(pub.value, /^sb_pk_/);
    for (const [method, url] of [
      ["GET", "/assistant"],
      ["POST", "/assistant"],
      ["GET", "/credential"],
      ["POST", "/token"],
    ] as const) {
      const res = await t.request({ method, url, key: pub.value, payload: {} });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.match(res.json().message, /public key/);
    }
  });

  test("another organisation's key cannot see or revoke a key", async () => {
    const a = await t.createOrg("A");
    const b = await t.createOrg("B");
    const aKeys = (await t.request({ method: "GET", url: "/token", key: a.key })).json();
    const id = aKeys[0].id;
    for (const method of ["GET", "PATCH", "DELETE"] as const) {
      const res = await t.request({
        method,
        url: `/token/${id}`,
        key: b.key,
        payload: method === "PATCH" ? {} : undefined,
      });
      assert.equal(res.statusCode, 404, method);
    }
    assert.equal((await t.request({ method: "GET", url: "/assistant", key: a.key })).statusCode, 200);
  });
});

describe("HTTP edges", () => {
  test("unknown routes answer 404 with the envelope, with or without a key", async () => {
    const org = await t.createOrg();
    for (const key of [undefined, org.key]) {
      const res = await t.request({ method: "GET", url: "/nope", key });
      assert.equal(res.statusCode, 404);
      assert.deepEqual(res.json(), {
        statusCode: 404,
        error: "Not Found",
        message: "Route GET /nope not found",
      });
    }
  });

  test("bad JSON is a 400, not a 500", async () => {
    const org = await t.createOrg();
    const res = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      headers: { "content-type": "application/json" },
      payload: '{"name": ',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().message, "Body is not valid JSON");
  });

  test("an oversized body is a 413", async () => {
    const org = await t.createOrg();
    const res = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      payload: { name: "big", metadata: { blob: "x".repeat(t.config.bodyLimitBytes + 10) } },
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error, "Payload Too Large");
  });

  test("health answers without a key and reports its dependencies", async () => {
    const res = await t.request({ method: "GET", url: "/health" });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: "ok", database: "ok", redis: "ok" });
  });
});

describe("rate limit", () => {
  test("each key has its own budget; past it the API answers 429 with Retry-After", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_MINUTE: "5" });
    try {
      const a = await limited.createOrg("A");
      const b = await limited.createOrg("B");
      for (let i = 0; i < 5; i++) {
        assert.equal(
          (await limited.request({ method: "GET", url: "/assistant", key: a.key })).statusCode,
          200,
        );
      }
      const res = await limited.request({ method: "GET", url: "/assistant", key: a.key });
      assert.equal(res.statusCode, 429);
      assert.ok(Number(res.headers["retry-after"]) > 0);
      assert.equal(res.json().error, "Too Many Requests");
      // Another key is not affected.
      assert.equal((await limited.request({ method: "GET", url: "/assistant", key: b.key })).statusCode, 200);
    } finally {
      await limited.close();
    }
  });
});

describe("rate limits that cannot be sidestepped", () => {
  // Each test spends its own address's budget (a fresh documentation address per run: the
  // counters live in the shared Redis for a minute).
  // A fresh /64 each time: the addresses of one IPv6 /64 share a budget.
  const address = () => `2001:db8:${randomBytes(2).toString("hex")}:${randomBytes(2).toString("hex")}::1`;

  test("every spelling of a key draws on one budget, keyed by the key's id", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_MINUTE: "4" });
    try {
      const org = await limited.createOrg();
      const spellings = [org.key, `${org.key}\u00a0`, `\t${org.key}  `, `${org.key}\u00a0\u00a0`];
      for (const spelling of spellings) {
        const res = await limited.request({
          method: "GET",
          url: "/assistant",
          headers: { authorization: `Bearer ${spelling}` },
        });
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers["x-ratelimit-limit"], "4");
      }
      const over = await limited.request({
        method: "GET",
        url: "/assistant",
        headers: { authorization: `Bearer ${org.key}\u00a0\u00a0\u00a0` },
      });
      assert.equal(over.statusCode, 429);
      assert.ok(Number(over.headers["retry-after"]) > 0);
      assert.match(over.json().message, /per minute for this API key/);
    } finally {
      await limited.close();
    }
  });

  test("missing, malformed and unknown keys are throttled per address; a known key still works", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "6" });
    try {
      const org = await limited.createOrg();
      const from = address();
      const headers = (authorization?: string) => ({
        "x-forwarded-for": from,
        ...(authorization ? { authorization } : {}),
      });
      // The known key is looked up once (one draw) and then served from the cache.
      assert.equal(
        (await limited.request({ method: "GET", url: "/org", headers: headers(`Bearer ${org.key}`) }))
          .statusCode,
        200,
      );
      const guesses = [
        undefined,
        "Bearer not-a-key",
        `Bearer sb_sk_${randomBytes(32).toString("base64url")}`,
        `Bearer sb_pk_${randomBytes(32).toString("base64url")}`,
        `Bearer sb_sk_${randomBytes(32).toString("base64url")}`,
      ];
      for (const authorization of guesses) {
        const res = await limited.request({
          method: "GET",
          url: "/assistant",
          headers: headers(authorization),
        });
        assert.equal(res.statusCode, 401, String(authorization));
      }
      const over = await limited.request({
        method: "GET",
        url: "/assistant",
        headers: headers(`Bearer sb_sk_${randomBytes(32).toString("base64url")}`),
      });
      assert.equal(over.statusCode, 429);
      assert.ok(Number(over.headers["retry-after"]) > 0);
      assert.match(over.json().message, /per address/);
      // Unauthenticated routes share the address's budget.
      assert.equal(
        (await limited.request({ method: "GET", url: "/health", headers: headers() })).statusCode,
        429,
      );
      // The customer's own cached key is not locked out by someone guessing from the same address…
      assert.equal(
        (await limited.request({ method: "GET", url: "/org", headers: headers(`Bearer ${org.key}`) }))
          .statusCode,
        200,
      );
      // … and another address has its own budget.
      const elsewhere = await limited.request({
        method: "GET",
        url: "/assistant",
        headers: { "x-forwarded-for": address(), authorization: "Bearer not-a-key" },
      });
      assert.equal(elsewhere.statusCode, 401);
    } finally {
      await limited.close();
    }
  });

  test("the operator token is guarded by the same per-address budget", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "3" });
    try {
      const from = address();
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await limited.request({
          method: "POST",
          url: "/org",
          headers: { "x-forwarded-for": from, authorization: `Bearer guess-${i}-${"x".repeat(16)}` },
          payload: { name: "x" },
        });
        codes.push(res.statusCode);
      }
      assert.deepEqual(codes, [401, 401, 401, 429]);
    } finally {
      await limited.close();
    }
  });

  test("a client outside the trusted proxies cannot pick its address with X-Forwarded-For", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "3", TRUST_PROXY: "false" });
    try {
      const remoteAddress = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await limited.app.inject({
          method: "GET",
          url: "/assistant",
          remoteAddress,
          headers: { "x-forwarded-for": address(), authorization: "Bearer nope" },
        });
        codes.push(res.statusCode);
      }
      assert.deepEqual(codes, [401, 401, 401, 429]);
    } finally {
      await limited.close();
    }
  });

  test("one IPv6 /64 is one address, and so is an IPv4 address in any spelling", async () => {
    const limited = await startTestApi({ RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "3" });
    try {
      const [a, b] = [randomBytes(2).toString("hex"), randomBytes(2).toString("hex")];
      const v4 = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
      const sameClient = [
        // A host holds its whole /64 and picks any address in it (privacy extensions do).
        [`2001:db8:${a}:${b}::1`, `2001:db8:${a}:${b}:ffff::2`, `2001:0DB8:${a}:${b}:0:0:0:3`],
        // An IPv4 client as a dual-stack proxy may name it.
        [v4, `::ffff:${v4}`, `0:0:0:0:0:ffff:${v4}`],
      ];
      for (const spellings of sameClient) {
        const codes: number[] = [];
        for (const from of [...spellings, spellings[0] as string]) {
          const res = await limited.request({
            method: "GET",
            url: "/assistant",
            headers: { "x-forwarded-for": from, authorization: "Bearer not-a-key" },
          });
          codes.push(res.statusCode);
        }
        assert.deepEqual(codes, [401, 401, 401, 429], spellings.join(" "));
      }
      // The next /64 is someone else.
      const neighbour = await limited.request({
        method: "GET",
        url: "/assistant",
        headers: {
          "x-forwarded-for": `2001:db8:${a}:${b === "ffff" ? "0" : "ffff"}::1`,
          authorization: "Bearer x",
        },
      });
      assert.equal(neighbour.statusCode, 401);
    } finally {
      await limited.close();
    }
  });

  test("signed webhooks have their own, larger per-address budget", async () => {
    const limited = await startTestApi({
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "1",
      WEBHOOK_RATE_LIMIT_PER_MINUTE: "3",
    });
    try {
      const from = address();
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await limited.request({
          method: "POST",
          url: "/stripe/webhook",
          headers: {
            "x-forwarded-for": from,
            "stripe-signature": "t=1,v1=00",
            "content-type": "application/json",
          },
          payload: "{}",
        });
        codes.push(res.statusCode);
      }
      assert.equal(codes[3], 429);
      assert.ok(
        codes.slice(0, 3).every((c) => c !== 429 && c < 500),
        String(codes),
      );
    } finally {
      await limited.close();
    }
  });
});
