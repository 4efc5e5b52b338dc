import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { parse } from "yaml";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// Every operation the API publishes that is not explicitly public answers 401 without a key and
// with a revoked key: a route cannot be added without authentication by accident.

interface Operation {
  security?: unknown[];
}
type Doc = { paths: Record<string, Record<string, Operation>> };

const doc = parse(readFileSync(path.resolve(import.meta.dirname, "../../openapi.yaml"), "utf8")) as Doc;
const ID = "00000000-0000-4000-8000-000000000000";
const METHODS = new Set(["get", "post", "patch", "put", "delete"]);

const protectedOps = Object.entries(doc.paths).flatMap(([p, ops]) =>
  Object.entries(ops)
    .filter(([m, op]) => METHODS.has(m) && !(Array.isArray(op.security) && op.security.length === 0))
    .map(([m]) => ({ method: m.toUpperCase() as "GET", url: p.replace(/\{[^}]+\}/g, ID) })),
);

let t: TestApi;
before(async () => {
  t = await startTestApi();
});
after(async () => {
  await t.close();
});

test("every non-public operation answers 401 without a key, with a bad key and with a revoked key", async () => {
  assert.ok(protectedOps.length > 40, `found ${protectedOps.length} operations`);
  const org = await t.createOrg();
  const spare = (
    await t.request({ method: "POST", url: "/token", key: org.key, payload: { name: "spare" } })
  ).json();
  assert.equal(
    (await t.request({ method: "DELETE", url: `/token/${spare.id}`, key: org.key })).statusCode,
    200,
  );
  for (const op of protectedOps) {
    for (const headers of [
      {},
      { authorization: "Bearer sb_sk_not-a-key" },
      { authorization: `Bearer ${spare.value}` },
    ]) {
      const res = await t.request({
        ...op,
        headers,
        payload: op.method === "GET" || op.method === "DELETE" ? undefined : {},
      });
      assert.equal(
        res.statusCode,
        401,
        `${op.method} ${op.url} ${JSON.stringify(headers)} → ${res.statusCode}`,
      );
      assert.equal(res.json().error, "Unauthorized");
    }
  }
});
