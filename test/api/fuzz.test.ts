import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { parse } from "yaml";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, functionToolBody, phoneNumberBody } from "../helpers/bodies.ts";

// Property-based fuzzing of every operation in openapi.yaml: valid requests mutated field by field
// (a wrong type, a huge, NUL-bearing or unpaired-surrogate string, a deep document, an unknown or
// dangerous field name, a missing field), whole bodies replaced by arbitrary JSON or by bytes that
// are no JSON at all, under every kind of credential and content type, with path ids that are ours,
// another organisation's, missing or garbage. What a client must never see: a 500, a 5xx the
// operation does not declare, or any internal detail (a stack, a file path, a query, Prisma).

const RUNS_PER_OPERATION = Number(process.env.FUZZ_RUNS ?? 80);

interface Operation {
  method: string;
  path: string;
  operationId: string;
  declared: Set<number>;
  json: boolean;
  form: boolean;
}

const spec = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8")) as {
  paths: Record<
    string,
    Record<
      string,
      {
        operationId: string;
        responses: Record<string, unknown>;
        requestBody?: { content: Record<string, unknown> };
      }
    >
  >;
};
const operations: Operation[] = Object.entries(spec.paths)
  .flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([method]) => ["get", "post", "patch", "put", "delete"].includes(method))
      .map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        operationId: op.operationId,
        declared: new Set(Object.keys(op.responses).map(Number)),
        json: Boolean(op.requestBody?.content["application/json"]),
        form: Boolean(op.requestBody?.content["application/x-www-form-urlencoded"]),
      })),
  )
  // Deletions last, so the resources the other operations refer to are still there.
  .sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));

const INTERNAL_DETAIL = [
  /node_modules/,
  /\/work\//,
  /\.ts:\d+/,
  /\bat (async )?\w+ \(/,
  /prisma/i,
  /\bSELECT\b|\bINSERT INTO\b/,
  /ECONNREFUSED|ETIMEDOUT/,
  /"stack"/,
];

let t: TestApi;
let org: TestOrg;
let other: TestOrg;
let publicKey: string;
const ours: Record<string, string> = {};
const theirs: Record<string, string> = {};
const tally = { requests: 0, byStatus: new Map<number, number>() };

async function seed(o: TestOrg, into: Record<string, string>): Promise<void> {
  const post = async (url: string, payload: object) => {
    const res = await t.request({ method: "POST", url, key: o.key, payload });
    assert.ok(res.statusCode < 300, `${url}: ${res.statusCode} ${res.body}`);
    return res.json() as { id: string };
  };
  into.assistant = (await post("/assistant", assistantBody())).id;
  into.tool = (await post("/tool", functionToolBody())).id;
  into.squad = (await post("/squad", { name: "Desk", members: [{ assistantId: into.assistant }] })).id;
  into.credential = (await post("/credential", { provider: "openai", apiKey: "sk-fuzz-secret" })).id;
  into["phone-number"] = (await post("/phone-number", phoneNumberBody({ assistantId: into.assistant }))).id;
  const token = await t.request({
    method: "POST",
    url: "/token",
    key: o.key,
    payload: { tag: "public", name: "web" },
  });
  into.token = (token.json() as { id: string }).id;
  const call = await t.db.call.create({
    data: { orgId: o.orgId, type: "outboundPhoneCall", status: "ended", assistantId: into.assistant },
  });
  into.call = call.id;
}

before(async () => {
  // Budgets are tested elsewhere (test/api/auth.test.ts): here every request should reach its route.
  t = await startTestApi({ RATE_LIMIT_PER_MINUTE: "100000000" });
  org = await t.createOrg("Fuzz A");
  other = await t.createOrg("Fuzz B");
  await seed(org, ours);
  await seed(other, theirs);
  const pk = await t.request({ method: "POST", url: "/token", key: org.key, payload: { tag: "public" } });
  publicKey = (pk.json() as { value: string }).value;
});

after(async () => {
  const statuses = [...tally.byStatus.entries()].sort((a, b) => a[0] - b[0]);
  console.log(
    `fuzz: ${tally.requests} requests over ${operations.length} operations; statuses ${statuses.map(([s, n]) => `${s}×${n}`).join(" ")}`,
  );
  await t.close();
});

/** A valid body for each operation that takes one: the mutations start from here. */
function validBody(op: Operation): unknown {
  const resource = op.path.split("/")[1];
  const patch = op.method === "PATCH";
  switch (op.path) {
    case "/org":
      return { name: "Fuzz org" };
    case "/token":
    case "/token/{id}":
      return { tag: "private", name: "ci" };
    case "/assistant":
    case "/assistant/{id}":
      return patch ? { name: "Renamed", firstMessage: "Hello" } : assistantBody();
    case "/tool":
    case "/tool/{id}":
      return patch ? { server: { url: "https://tools.example.com/x" } } : functionToolBody();
    case "/squad":
    case "/squad/{id}":
      return { name: "Squad", members: [{ assistantId: ours.assistant }] };
    case "/phone-number":
      return phoneNumberBody({ assistantId: ours.assistant });
    case "/phone-number/{id}":
      return { name: "Renamed line", assistantId: ours.assistant };
    case "/credential":
    case "/credential/{id}":
      return patch ? { name: "Renamed" } : { provider: "deepgram", apiKey: "dg-secret" };
    case "/call":
      return {
        assistantId: ours.assistant,
        phoneNumberId: ours["phone-number"],
        customer: { number: "+14155550199" },
        metadata: { ticket: 7 },
      };
    case "/call/{id}":
      return { name: "Renamed call" };
    case "/call/{id}/control":
      return { type: "say", content: "Hello there" };
    case "/billing/settings":
      return { monthlySpendLimitUsd: "100.00" };
    case "/twilio/inbound":
    case "/twilio/status":
      return {
        CallSid: `CA${"0123456789abcdef".repeat(2)}`,
        AccountSid: `AC${"0123456789abcdef".repeat(2)}`,
        From: "+14155550100",
        To: "+14155550101",
        CallStatus: "ringing",
        Direction: "inbound",
      };
    case "/stripe/webhook":
      return { id: "evt_1", type: "invoice.paid", created: 1, data: { object: { customer: "cus_1" } } };
    default:
      return resource ? {} : undefined;
  }
}

// Values that have broken parsers, validators, databases and serialisers somewhere.
const nasty: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "x\udfffy",
    "😀",
    "x".repeat(70_000),
    "../../etc/passwd",
    "%00",
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:22/",
    "javascript:alert(1)",
    "header\r\nInjected: 1",
    "1e309",
    "NaN",
    "-1",
    "00000000-0000-0000-0000-000000000000",
    "{{ 7*7 }}",
    "<script>",
    "' OR 1=1 --",
  ),
  fc.integer(),
  fc.constantFrom(0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 0.1, 2 ** 31),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  fc.constantFrom(
    { __proto__: { polluted: true } },
    JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
    { constructor: { prototype: { polluted: true } } },
    Array.from({ length: 5000 }, (_, i) => i),
  ),
  fc.integer({ min: 60, max: 1000 }).map((depth) => {
    let v: unknown = "deep";
    for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { x: v };
    return v;
  }),
);

/** Every path into a JSON value, so a mutation can land anywhere in it. */
function pathsOf(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) out.push(...pathsOf(v, [...prefix, i]));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  }
  return out;
}

type Mutation =
  | { kind: "set"; at: number; value: unknown }
  | { kind: "delete"; at: number }
  | { kind: "add"; at: number; key: string; value: unknown };

function mutate(body: unknown, mutations: Mutation[]): unknown {
  let doc = structuredClone(body);
  for (const original of mutations) {
    // Generated values may be shared between runs: each mutation gets its own copy.
    const m = { ...original, ...("value" in original ? { value: structuredClone(original.value) } : {}) };
    const paths = pathsOf(doc);
    const path = paths[m.at % paths.length] ?? [];
    if (path.length === 0) {
      if (m.kind === "set") doc = m.value;
      else if (m.kind === "add" && doc && typeof doc === "object" && !Array.isArray(doc)) {
        (doc as Record<string, unknown>)[m.key] = m.value;
      }
      continue;
    }
    let parent = doc as Record<string | number, unknown>;
    for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>;
    const last = path[path.length - 1] as string | number;
    if (m.kind === "set") parent[last] = m.value;
    else if (m.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else {
      const target = parent[last];
      if (target && typeof target === "object" && !Array.isArray(target)) {
        (target as Record<string, unknown>)[m.key] = m.value;
      }
    }
  }
  return doc;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: nasty }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("add" as const),
    at: fc.nat(),
    key: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom("__proto__", "constructor", "orgId", "id", "a\u0000b"),
    ),
    value: nasty,
  }),
);

type Payload =
  | { kind: "mutated"; mutations: Mutation[] }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string }
  | { kind: "none" };

const payload: fc.Arbitrary<Payload> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("mutated" as const),
      mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("json" as const), value: fc.jsonValue({ maxDepth: 4 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("raw" as const),
      text: fc.oneof(
        fc.string(),
        fc.constantFrom("{", '{"a":', "[1,]", "\u0000", '{"name":"\\ud800"}', "a=b&c", "%ZZ"),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
);

type Credential = "private" | "public" | "other-org" | "none" | "garbage" | "admin" | "malformed-header";
const credential = fc.constantFrom<Credential>(
  "private",
  "private",
  "private",
  "private",
  "private",
  "private",
  "public",
  "other-org",
  "none",
  "garbage",
  "admin",
  "malformed-header",
);
type IdChoice = "ours" | "theirs" | "missing" | "garbage";
const idChoice = fc.record({
  choice: fc.constantFrom<IdChoice>("ours", "ours", "theirs", "missing", "garbage"),
  garbage: fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom("%00", "..", "%2e%2e", "x".repeat(5000), "%F0%9F", "%ED%A0%80"),
  ),
});
const query = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      "limit",
      "createdAtGt",
      "createdAtLt",
      "assistantId",
      "callId",
      "start",
      "end",
      "name",
      "id",
    ),
    fc.string({ maxLength: 10 }),
  ),
  fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom(
      "%00",
      "-1",
      "1e999",
      "2026-13-45",
      "999999999999",
      // Valid RFC 3339 at the edges of what a database can hold.
      "0000-01-01T00:00:00Z",
      "0001-01-01T00:00:00+14:00",
      "9999-12-31T23:59:59-23:59",
    ),
  ),
  { maxKeys: 3 },
);
const contentType = fc.constantFrom(
  "json",
  "json",
  "json",
  "application/x-www-form-urlencoded",
  "text/plain",
  "application/json; charset=latin1",
  "multipart/form-data; boundary=x",
  "none",
);

function authHeader(c: Credential): Record<string, string> {
  switch (c) {
    case "private":
      return { authorization: `Bearer ${org.key}` };
    case "public":
      return { authorization: `Bearer ${publicKey}` };
    case "other-org":
      return { authorization: `Bearer ${other.key}` };
    case "garbage":
      return { authorization: "Bearer sb_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };
    case "admin":
      return { authorization: `Bearer ${t.config.adminToken}` };
    case "malformed-header":
      return { authorization: "Basic Zm9vOmJhcg==" };
    case "none":
      return {};
  }
}

function resolvePath(op: Operation, id: { choice: IdChoice; garbage: string }): string {
  const resource = op.path.split("/")[1] ?? "";
  return op.path.replace("{id}", () => {
    switch (id.choice) {
      case "ours":
        return ours[resource] ?? randomUUID();
      case "theirs":
        return theirs[resource] ?? randomUUID();
      case "missing":
        return randomUUID();
      case "garbage":
        return encodeURIComponent(id.garbage).replace(/%25/g, "%") || "x";
    }
  });
}

function encodeBody(
  op: Operation,
  p: Payload,
  ct: string,
): { body?: string; headers: Record<string, string> } {
  if (p.kind === "none") return { headers: {} };
  let value: unknown;
  if (p.kind === "raw")
    return {
      body: p.text,
      headers: { "content-type": ct === "json" ? "application/json" : ct === "none" ? "text/plain" : ct },
    };
  if (p.kind === "json") value = p.value;
  else value = mutate(validBody(op), p.mutations);
  const form = op.form && (ct === "json" || ct === "application/x-www-form-urlencoded");
  if (form && value && typeof value === "object") {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(value))
      params.append(k, typeof v === "string" ? v : (JSON.stringify(v) ?? ""));
    return { body: params.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  const text = JSON.stringify(value) ?? "null";
  const type = ct === "json" ? "application/json" : ct === "none" ? undefined : ct;
  return { body: text, headers: type ? { "content-type": type } : {} };
}

for (const op of operations) {
  test(`fuzz ${op.method} ${op.path} (${op.operationId})`, async () => {
    await fc.assert(
      fc.asyncProperty(credential, idChoice, query, payload, contentType, async (cred, id, q, p, ct) => {
        const url = resolvePath(op, id);
        const qs = new URLSearchParams(q).toString();
        const sendsBody = op.method !== "GET" && op.method !== "DELETE";
        const encoded = sendsBody ? encodeBody(op, p, ct) : { headers: {} };
        const res = await t.app.inject({
          method: op.method as "GET",
          url: qs ? `${url}?${qs}` : url,
          headers: { ...authHeader(cred), ...encoded.headers },
          ...(encoded.body !== undefined ? { payload: encoded.body } : {}),
        });
        tally.requests += 1;
        tally.byStatus.set(res.statusCode, (tally.byStatus.get(res.statusCode) ?? 0) + 1);
        const where = `${op.method} ${url} as ${cred}: ${res.statusCode} ${res.body.slice(0, 300)}`;
        assert.notEqual(res.statusCode, 500, where);
        if (res.statusCode >= 500) assert.ok(op.declared.has(res.statusCode), `undeclared ${where}`);
        if (res.statusCode >= 400) {
          for (const pattern of INTERNAL_DETAIL) assert.doesNotMatch(res.body, pattern, where);
        }
      }),
      { numRuns: RUNS_PER_OPERATION, endOnFailure: true },
    );
  });
}
