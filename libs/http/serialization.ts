import fastJson from "fast-json-stringify";
import type { FastifyInstance } from "fastify";

// Response schemas do two jobs: they document the API (OpenAPI keeps them as they are) and they
// drive the serializer, which drops undeclared fields so a secret cannot leak by accident. For
// the second job, unions (anyOf/oneOf) are costly: fast-json-stringify picks a branch by running a
// validator on every value at every response, which profiling showed dominated GET latency. Here
// a union of scalar types becomes a type list, and any other union is serialised as plain JSON
// (no secret lives inside a union; the objects around it still strip undeclared fields).

type Schema = Record<string, unknown>;

const SCALARS = new Set(["string", "number", "integer", "boolean", "null"]);

function scalarTypes(branches: unknown[]): string[] | undefined {
  const types = new Set<string>();
  for (const b of branches) {
    if (!b || typeof b !== "object") return undefined;
    const s = b as Schema;
    if ("properties" in s || "items" in s || "anyOf" in s || "oneOf" in s || "allOf" in s) return undefined;
    const t = s.type ?? (typeof s.const === "string" ? "string" : undefined);
    const list = Array.isArray(t) ? t : [t];
    for (const x of list) {
      if (typeof x !== "string" || !SCALARS.has(x)) return undefined;
      types.add(x);
    }
  }
  return [...types];
}

export function simplifyForSerialization(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(simplifyForSerialization);
  if (!node || typeof node !== "object") return node;
  const s = node as Schema;
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(union) || "allOf" in s || "if" in s || "not" in s) {
    const types = Array.isArray(union) ? scalarTypes(union) : undefined;
    const base: Schema = {};
    for (const k of ["description", "title"]) if (k in s) base[k] = s[k];
    return types ? { ...base, type: types.length === 1 ? types[0] : types } : base;
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "enum" || k === "const" || k === "examples" || k === "default") continue;
    out[k] = k === "properties" || k === "patternProperties" ? mapValues(v) : simplifyForSerialization(v);
  }
  return out;
}

function mapValues(v: unknown): unknown {
  if (!v || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v as Schema).map(([k, x]) => [k, simplifyForSerialization(x)]));
}

export function installSerializer(app: FastifyInstance): void {
  app.setSerializerCompiler(({ schema }) =>
    fastJson(simplifyForSerialization(schema) as Parameters<typeof fastJson>[0]),
  );
}
