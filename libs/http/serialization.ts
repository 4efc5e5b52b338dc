import fastJson from "fast-json-stringify";
import type { FastifyInstance } from "fastify";

// Response schemas do two jobs: they document the API (OpenAPI keeps them as they are) and they
// drive the serializer, which drops undeclared fields so a secret cannot leak by accident. For
// the second job, unions (anyOf/oneOf) are costly: fast-json-stringify picks a branch by running a
// validator on every value at every response, which profiling showed dominated GET latency. Here
// a union of scalar types becomes a type list, and any other union is serialised as plain JSON
// (no secret lives inside a union; the objects around it still strip undeclared fields).
// A `$ref` to a shared schema (`app.addSchema`) is replaced by that schema, simplified the same way.

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

export function simplifyForSerialization(
  node: unknown,
  shared: Record<string, unknown> = {},
  resolving: ReadonlySet<string> = new Set(),
): unknown {
  const simplify = (n: unknown) => simplifyForSerialization(n, shared, resolving);
  if (Array.isArray(node)) return node.map(simplify);
  if (!node || typeof node !== "object") return node;
  const s = node as Schema;
  if (typeof s.$ref === "string") {
    const target = shared[s.$ref];
    // A schema that contains itself is serialised as plain JSON below that point.
    if (target === undefined || resolving.has(s.$ref)) return {};
    return simplifyForSerialization(target, shared, new Set([...resolving, s.$ref]));
  }
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(union) || "allOf" in s || "if" in s || "not" in s) {
    const types = Array.isArray(union) ? scalarTypes(union) : undefined;
    const base: Schema = {};
    for (const k of ["description", "title"]) if (k in s) base[k] = s[k];
    return types ? { ...base, type: types.length === 1 ? types[0] : types } : base;
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === "enum" || k === "const" || k === "examples" || k === "default" || k === "$id") continue;
    out[k] = k === "properties" || k === "patternProperties" ? mapValues(v, simplify) : simplify(v);
  }
  return out;
}

function mapValues(v: unknown, simplify: (n: unknown) => unknown): unknown {
  if (!v || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v as Schema).map(([k, x]) => [k, simplify(x)]));
}

export function installSerializer(app: FastifyInstance): void {
  app.setSerializerCompiler(({ schema }) =>
    fastJson(simplifyForSerialization(schema, app.getSchemas()) as Parameters<typeof fastJson>[0]),
  );
}
