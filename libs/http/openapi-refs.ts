// Route schemas inline most TypeBox objects (the largest shared ones are `$ref`s to components:
// libs/vapi/shared.ts), and inlined into OpenAPI they would repeat every shape in every
// operation. This hoists every schema that carries a `title` into components.schemas and points
// at it with $ref, so the published document names its types like Vapi's does.

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function hoistTitledSchemas<T extends Record<string, Json>>(doc: T): T {
  const components = (isObject(doc.components) ? doc.components : {}) as Record<string, Json>;
  const schemas = (isObject(components.schemas) ? components.schemas : {}) as Record<string, Json>;
  const seen = new Map<string, string>();

  const visit = (node: Json, isRoot: boolean): Json => {
    if (Array.isArray(node)) return node.map((n) => visit(n, false));
    if (!isObject(node)) return node;
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(node)) {
      // Values of `properties`, `examples` etc. are maps, not schemas; their children are.
      out[k] = visit(v, false);
    }
    const title = out.title;
    if (!isRoot && typeof title === "string" && /^[A-Za-z0-9_.-]+$/.test(title) && looksLikeSchema(out)) {
      const body = JSON.stringify(out);
      let name = title;
      for (let i = 2; seen.has(name) && seen.get(name) !== body; i++) name = `${title}${i}`;
      if (!seen.has(name)) {
        seen.set(name, body);
        schemas[name] = out;
      }
      return { $ref: `#/components/schemas/${name}` };
    }
    return out;
  };

  // Shared schemas (`app.addSchema`, referenced by `$ref`) are components already; their titled
  // parts are hoisted as the routes' are. A part titled like one of them gets a numbered name.
  const shared = Object.entries(schemas);
  for (const [name] of shared) seen.set(name, "");
  for (const [name, schema] of shared) {
    schemas[name] = visit(schema, true);
    seen.set(name, JSON.stringify(schemas[name]));
  }
  const paths = visit(doc.paths, true);
  return { ...doc, paths, components: { ...components, schemas } };
}

function looksLikeSchema(o: Record<string, Json>): boolean {
  return "type" in o || "anyOf" in o || "oneOf" in o || "allOf" in o || "properties" in o || "enum" in o;
}
