// The committed openapi.yaml is a valid OpenAPI 3.1 document that describes every route, keeps secrets
// out of response schemas, and is what the running API serves at /docs/json.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { compileErrors, validate } from "@readme/openapi-parser";
import { parse as parseYaml } from "yaml";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// The parts of an OpenAPI 3.1 document this test reads (openapi-types is only a transitive dependency).
type SecurityRequirement = Record<string, string[]>;
interface Schema {
  type?: string;
  properties?: Record<string, unknown>;
  required?: string[];
}
interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  security?: SecurityRequirement[];
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  servers?: { url: string }[];
  paths?: Record<string, Partial<Record<(typeof HTTP_METHODS)[number], Operation>> | undefined>;
  components?: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, unknown> };
  security?: SecurityRequirement[];
}

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

const file = path.resolve(import.meta.dirname, "../../openapi.yaml");
let doc: Doc;
/** The same document, typed as the parser's input. */
let parsed: Parameters<typeof validate>[0];

/** Every route of the public API, as `METHOD /path` in OpenAPI's path syntax. */
const crud = (p: string) => [`POST ${p}`, `GET ${p}`, `GET ${p}/{id}`, `PATCH ${p}/{id}`, `DELETE ${p}/{id}`];
const ROUTES = [
  "GET /health",
  "POST /org",
  "PATCH /org",
  ...crud("/token"),
  ...crud("/assistant"),
  ...crud("/tool"),
  ...crud("/squad"),
  ...crud("/phone-number"),
  ...crud("/credential"),
  "GET /call",
  "GET /call/{id}",
];
const PUBLIC_ROUTES = new Set(["GET /health"]);

function operations(d: Doc): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [p, item] of Object.entries(d.paths ?? {})) {
    for (const m of HTTP_METHODS) {
      const op = item?.[m];
      if (op) out.set(`${m.toUpperCase()} ${p}`, op);
    }
  }
  return out;
}

function schema(name: string): Schema {
  const s = doc.components?.schemas?.[name];
  assert.ok(s, `components.schemas.${name} exists`);
  return s;
}

before(async () => {
  parsed = parseYaml(await readFile(file, "utf8"));
  doc = structuredClone(parsed) as Doc;
});

test("openapi.yaml validates as OpenAPI 3.1", async () => {
  assert.equal(doc.openapi, "3.1.0");
  // validate() dereferences `parsed` in place; `doc` is a separate copy for the other tests.
  const result = await validate(parsed);
  assert.ok(result.valid, compileErrors(result));
  assert.equal(result.specification, "OpenAPI");
});

test("every route has an operation with operationId, tags, summary and (except health) security", () => {
  const ops = operations(doc);
  const seenIds = new Set<string>();
  for (const route of ROUTES) {
    const op = ops.get(route);
    assert.ok(op, `${route} is documented`);
    assert.ok(op.operationId, `${route} has an operationId`);
    assert.ok(!seenIds.has(op.operationId), `${route}: operationId ${op.operationId} is unique`);
    seenIds.add(op.operationId);
    assert.ok(op.tags && op.tags.length > 0, `${route} has tags`);
    assert.ok(op.summary, `${route} has a summary`);

    // An operation without its own `security` inherits the document's.
    const security = op.security ?? doc.security;
    if (PUBLIC_ROUTES.has(route)) {
      assert.deepEqual(op.security, [], `${route} is explicitly public`);
    } else {
      assert.ok(
        security?.some((req) => "bearer" in req),
        `${route} requires the bearer scheme (got ${JSON.stringify(security)})`,
      );
    }
  }
  assert.deepEqual(doc.components?.securitySchemes?.bearer, {
    type: "http",
    scheme: "bearer",
    description: "An organisation's API key",
  });
  // The docs UI itself is not part of the API description.
  for (const p of Object.keys(doc.paths ?? {})) assert.ok(!p.startsWith("/docs"), `${p} is not documented`);
});

test("CRUD operationIds follow Vapi's controller naming", () => {
  const ops = operations(doc);
  const controllers: Record<string, string> = {
    "/assistant": "AssistantController",
    "/tool": "ToolController",
    "/squad": "SquadController",
    "/phone-number": "PhoneNumberController",
    "/credential": "CredentialController",
  };
  for (const [p, c] of Object.entries(controllers)) {
    assert.equal(ops.get(`POST ${p}`)?.operationId, `${c}_create`);
    assert.equal(ops.get(`GET ${p}`)?.operationId, `${c}_findAll`);
    assert.equal(ops.get(`GET ${p}/{id}`)?.operationId, `${c}_findOne`);
    assert.equal(ops.get(`PATCH ${p}/{id}`)?.operationId, `${c}_update`);
    assert.equal(ops.get(`DELETE ${p}/{id}`)?.operationId, `${c}_remove`);
  }
});

test("component schemas include the Vapi resources, and no response schema names a secret", () => {
  for (const name of [
    "Assistant",
    "CreateAssistantDTO",
    "Tool",
    "Squad",
    "TwilioPhoneNumber",
    "Credential",
    "Call",
  ]) {
    const s = schema(name);
    assert.equal(s.type, "object", `${name} is an object schema`);
    assert.ok(s.properties && Object.keys(s.properties).length > 0, `${name} has properties`);
  }
  for (const name of ["Assistant", "Tool", "Squad", "TwilioPhoneNumber", "Credential", "Call"]) {
    const props = Object.keys(schema(name).properties ?? {});
    for (const f of ["id", "orgId", "createdAt", "updatedAt"]) assert.ok(props.includes(f), `${name}.${f}`);
  }

  const phoneProps = Object.keys(schema("TwilioPhoneNumber").properties ?? {});
  assert.ok(phoneProps.includes("twilioAccountSid"));
  assert.ok(!phoneProps.includes("twilioAuthToken"), "TwilioPhoneNumber must not expose twilioAuthToken");

  const credProps = Object.keys(schema("Credential").properties ?? {});
  assert.ok(credProps.includes("provider"));
  for (const secret of ["apiKey", "authToken"]) {
    assert.ok(!credProps.includes(secret), `Credential must not expose ${secret}`);
  }

  // The write side does take the secrets.
  const createPhone = schema("CreateTwilioPhoneNumberDTO");
  assert.ok(createPhone.required?.includes("twilioAuthToken"));

  // The phone-number and credential routes answer with those (secret-free) schemas.
  const ops = operations(doc);
  for (const [p, name] of [
    ["/phone-number", "TwilioPhoneNumber"],
    ["/credential", "Credential"],
  ] as const) {
    for (const route of [`POST ${p}`, `GET ${p}/{id}`, `PATCH ${p}/{id}`, `DELETE ${p}/{id}`]) {
      const op = ops.get(route);
      const ok = op?.responses?.[route.startsWith("POST") ? "201" : "200"];
      const ref = ok?.content?.["application/json"]?.schema?.$ref;
      assert.equal(ref, `#/components/schemas/${name}`, `${route} responds with ${name}`);
    }
  }
});

let t: TestApi;

before(async () => {
  t = await startTestApi();
});

after(async () => {
  await t?.close();
});

test("GET /docs serves the Swagger UI without an API key", async () => {
  const res = await t.request({ method: "GET", url: "/docs" });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers["content-type"]), /^text\/html/);
  assert.match(res.body, /<html/i);
  assert.match(res.body, /swagger/i);
});

test("GET /docs/json serves the same document as openapi.yaml", async () => {
  const res = await t.request({ method: "GET", url: "/docs/json" });
  assert.equal(res.statusCode, 200, res.body);
  const served = res.json() as Doc;
  assert.equal(served.openapi, "3.1.0");
  assert.equal(served.info.title, doc.info.title);

  const opIds = (d: Doc) =>
    [...operations(d)]
      .map(([route, op]) => `${route} ${op.operationId ?? ""}`)
      .sort((a, b) => a.localeCompare(b));
  assert.deepEqual(opIds(served), opIds(doc), "served routes match the committed openapi.yaml");
  assert.deepEqual(
    Object.keys(served.components?.schemas ?? {}).sort(),
    Object.keys(doc.components?.schemas ?? {}).sort(),
    "served component schemas match the committed openapi.yaml",
  );
  // Only the server URL depends on the deployment; everything else is what `npm run openapi` wrote.
  assert.deepEqual({ ...served, servers: undefined }, { ...doc, servers: undefined });
});
