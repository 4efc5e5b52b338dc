import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MAX_JSON_DEPTH } from "../../libs/http/index.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

let t: TestApi;
let org: TestOrg;
before(async () => {
  t = await startTestApi();
  org = await t.createOrg();
});
after(async () => {
  await t.close();
});

async function postRaw(url: string, json: string) {
  return t.request({
    method: "POST",
    url,
    key: org.key,
    headers: { "content-type": "application/json" },
    payload: json,
  });
}

describe("text that cannot be stored is refused with a 400 naming the field", () => {
  test("a NUL character in a field, in nested metadata, or in a field name", async () => {
    const cases: Array<[unknown, RegExp]> = [
      [assistantBody({ name: "Front\u0000desk" }), /^body\.name contains a NUL character/],
      [
        assistantBody({ metadata: { crm: { notes: ["ok", "bad\u0000"] } } }),
        /^body\.metadata\.crm\.notes\[1\] contains a NUL/,
      ],
      [
        assistantBody({ metadata: { "a\u0000b": 1 } }),
        /^body\.metadata has a field name that contains a NUL/,
      ],
    ];
    for (const [body, message] of cases) {
      const res = await t.request({
        method: "POST",
        url: "/assistant",
        key: org.key,
        payload: body as object,
      });
      assert.equal(res.statusCode, 400);
      assert.match(res.json().message, message);
    }
  });

  test("an unpaired UTF-16 surrogate, written as a JSON escape", async () => {
    const json = JSON.stringify(assistantBody({ name: "PLACEHOLDER" })).replace(
      "PLACEHOLDER",
      "Desk \\ud800",
    );
    const res = await postRaw("/assistant", json);
    assert.equal(res.statusCode, 400);
    assert.match(res.json().message, /^body\.name contains an unpaired UTF-16 surrogate/);
  });

  test("characters outside the Basic Multilingual Plane are stored faithfully", async () => {
    const name = "Desk 😀 𝄞";
    const json = JSON.stringify(assistantBody({ name: "PLACEHOLDER" })).replace(
      "PLACEHOLDER",
      "Desk \\ud83d\\ude00 𝄞",
    );
    const res = await postRaw("/assistant", json);
    assert.equal(res.statusCode, 201, res.body);
    const got = await t.request({ method: "GET", url: `/assistant/${res.json().id}`, key: org.key });
    assert.equal(got.json().name, name);
  });

  test("metadata nested 20,000 deep, and one level past the limit", async () => {
    for (const depth of [20_000, MAX_JSON_DEPTH]) {
      const deep = `${"[".repeat(depth)}${"]".repeat(depth)}`;
      const json = JSON.stringify(assistantBody({ metadata: { x: "PLACEHOLDER" } })).replace(
        '"PLACEHOLDER"',
        deep,
      );
      const res = await postRaw("/assistant", json);
      assert.equal(res.statusCode, 400, `depth ${depth}`);
      assert.equal(res.json().message, `body is nested more than ${MAX_JSON_DEPTH} levels deep`);
    }
    // Just inside the limit is fine (the body itself is level 1, metadata 2, x 3).
    const ok = `${"[".repeat(MAX_JSON_DEPTH - 3)}${"]".repeat(MAX_JSON_DEPTH - 3)}`;
    const json = JSON.stringify(assistantBody({ metadata: { x: "PLACEHOLDER" } })).replace(
      '"PLACEHOLDER"',
      ok,
    );
    assert.equal((await postRaw("/assistant", json)).statusCode, 201);
  });

  test("query strings and path parameters", async () => {
    const q = await t.request({ method: "GET", url: "/assistant?limit=%00", key: org.key });
    assert.equal(q.statusCode, 400);
    assert.match(q.json().message, /^querystring\.limit contains a NUL/);
    const p = await t.request({ method: "GET", url: "/assistant/%00", key: org.key });
    assert.equal(p.statusCode, 400);
    assert.match(p.json().message, /^params\.id contains a NUL/);
  });

  test("list filters with a date before year 1 (valid RFC 3339) filter like any other date", async () => {
    const created = await t.request({
      method: "POST",
      url: "/assistant",
      key: org.key,
      payload: assistantBody(),
    });
    assert.equal(created.statusCode, 201);
    const id = created.json().id;
    // Year 0000, and 0001-01-01 in a zone east of UTC, are before anything stored: nothing is
    // older, everything is newer.
    for (const date of ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]) {
      const q = encodeURIComponent(date);
      for (const resource of ["assistant", "call"]) {
        const older = await t.request({ method: "GET", url: `/${resource}?createdAtLt=${q}`, key: org.key });
        assert.equal(older.statusCode, 200, `${resource} ${date}: ${older.body}`);
        assert.deepEqual(older.json(), []);
        const sinceUpdate = await t.request({
          method: "GET",
          url: `/${resource}?updatedAtLe=${q}`,
          key: org.key,
        });
        assert.equal(sinceUpdate.statusCode, 200);
        assert.deepEqual(sinceUpdate.json(), []);
      }
      const newer = await t.request({ method: "GET", url: `/assistant?createdAtGt=${q}`, key: org.key });
      assert.equal(newer.statusCode, 200);
      assert.ok(newer.json().some((a: { id: string }) => a.id === id));
    }
  });

  test("Twilio's form-encoded webhooks", async () => {
    const res = await t.request({
      method: "POST",
      url: "/twilio/inbound",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "x" },
      payload: "To=%00&CallSid=%00",
    });
    assert.equal(res.statusCode, 400);
  });
});
