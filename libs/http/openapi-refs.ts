// Route schemas are inlined TypeBox objects, which is what the validator wants, but inlined
// into OpenAPI they repeat every shared shape (the OpenAI model enum alone has 156 values) in
// every operation. This hoists every schema that carries a `title` into components.schemas and
// points at it with $ref, so the published document names its types like Vapi's does.

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

  const paths = visit(doc.paths, true);
  return { ...doc, paths, components: { ...components, schemas } };
}

function looksLikeSchema(o: Record<string, Json>): boolean {
  return "type" in o || "anyOf" in o || "oneOf" in o || "allOf" in o || "properties" in o || "enum" in o;
}
