import type { ErrorObject, Options, ValidateFunction } from "ajv";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import type { FastifyInstance, FastifySchemaCompiler } from "fastify";

// Bodies are validated strictly: an unknown field or a wrong type is the client's mistake and must
// answer 400 naming the field. (Fastify's default Ajv strips unknown fields and coerces types,
// which would silently accept `{"name": 123}`.) Query strings and params arrive as text, so those
// are coerced.

/**
 * The Ajv of request bodies (`coerce: false`) or of query strings and params (`coerce: true`).
 * `schemas` are the shared schemas (with an `$id`) that the compiled ones reference by `$ref`.
 */
export function requestAjv(coerce: boolean, schemas: Iterable<object> = [], extra: Options = {}): Ajv {
  const ajv = new Ajv({
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: coerce ? "array" : false,
    allErrors: false,
    strict: false,
    // Vapi's per-provider unions (libs/vapi/common.ts ProviderUnion) pick their branch by `provider`.
    discriminator: true,
    // A `$ref`'d schema is compiled once per Ajv and called wherever it is referenced. Ajv would
    // otherwise inline the copy of every shared schema that references no other (a provider union,
    // the tool union), which is the repetition the shared schemas exist to avoid.
    inlineRefs: false,
    ...extra,
  });
  (addFormats as unknown as (a: Ajv) => Ajv)(ajv);
  addSchemas(ajv, schemas);
  return ajv;
}

function addSchemas(ajv: Ajv, schemas: Iterable<object>): void {
  for (const schema of schemas) {
    const id = (schema as { $id?: unknown }).$id;
    if (typeof id !== "string") throw new Error("a shared schema needs an $id");
    // (`getSchema` would compile it: it is compiled when first referenced.)
    if (!ajv.schemas[id] && !ajv.refs[id]) ajv.addSchema(schema);
  }
}

/**
 * Compiling every route's validator at start took most of the API's start-up (the squad and call
 * bodies embed whole assistants: megabytes of generated code), so each is compiled when its route
 * first validates. Fastify calls Ajv validators with the parent object (so defaults and coercion
 * can replace a root value) when they carry `schemaEnv`, and reads `errors` after a failure.
 */
function compileOnFirstUse(compile: () => ValidateFunction): ReturnType<FastifySchemaCompiler<unknown>> {
  let validate: ValidateFunction | undefined;
  const lazy = Object.assign(
    (data: unknown, context?: Parameters<ValidateFunction>[1]) => {
      validate ??= compile();
      const ok = validate(data, context);
      lazy.errors = validate.errors;
      return ok;
    },
    { schemaEnv: true, errors: null as ValidateFunction["errors"] },
  );
  return lazy as ReturnType<FastifySchemaCompiler<unknown>>;
}

/**
 * Validation of every route's params, query string and body. The shared schemas their `$ref`s
 * point at are the app's (`app.addSchema`, also published by OpenAPI as components), read when
 * the first validator is compiled.
 */
export function installValidation(app: FastifyInstance): void {
  let strict: Ajv | undefined;
  let coercing: Ajv | undefined;
  const appSchemas = () => Object.values(app.getSchemas()) as object[];
  const ajvFor = (httpPart: string | undefined): Ajv => {
    if (httpPart === "body") {
      strict ??= requestAjv(false, appSchemas());
      return strict;
    }
    coercing ??= requestAjv(true, appSchemas());
    return coercing;
  };
  const compiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
    compileOnFirstUse(() => ajvFor(httpPart).compile(schema as object));
  app.setValidatorCompiler(compiler);
  app.setSchemaErrorFormatter(
    (errors, dataVar) => new Error(formatAjvErrors(errors as ErrorObject[], dataVar)),
  );

  // The shared schemas are most of what the first POST /call or /assistant of a process would
  // compile (~0.7 s of CPU, JIT included). Once the server listens (readiness is not delayed:
  // inject-only tests never listen) they are compiled in the background, one per macrotask in
  // dependency order, so a request that arrives meanwhile waits for one schema's compile at most.
  let closing = false;
  app.addHook("onClose", async () => {
    closing = true;
  });
  app.addHook("onListen", (done) => {
    done();
    const pending = dependencyOrder(appSchemas());
    const step = () => {
      const id = pending.shift();
      if (id === undefined || closing) return;
      try {
        ajvFor("body").getSchema(id);
      } catch (err) {
        // A shared schema that does not compile fails its routes' requests too: a bug to fix.
        app.log.error({ err, schemaId: id }, "shared schema does not compile");
        return;
      }
      setImmediate(step);
    };
    setImmediate(step);
  });
}

/** The `$id`s of shared schemas, each after those it references (so each step compiles one). */
function dependencyOrder(schemas: object[]): string[] {
  const byId = new Map<string, object>();
  for (const s of schemas) {
    const id = (s as { $id?: unknown }).$id;
    if (typeof id === "string") byId.set(id, s);
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const refsOf = (node: unknown, out: Set<string>): Set<string> => {
    if (Array.isArray(node)) for (const n of node) refsOf(n, out);
    else if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) {
        if (k === "$ref" && typeof v === "string" && byId.has(v)) out.add(v);
        else refsOf(v, out);
      }
    }
    return out;
  };
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const dep of refsOf(byId.get(id), new Set())) visit(dep);
    order.push(id);
  };
  for (const id of byId.keys()) visit(id);
  return order;
}

let shared: Ajv | undefined;

/**
 * The request-body rules (no coercion, formats checked, errors naming the field) for JSON that
 * arrives other than as a request body, such as a customer server's answer. `schemas` are the
 * shared schemas it references (libs/vapi SHARED_SCHEMAS). The validator returns the problem, or
 * undefined when the data is valid.
 */
export function compileValidator(
  schema: object,
  dataVar: string,
  schemas: Iterable<object> = [],
): (data: unknown) => string | undefined {
  // Compiled on first use: module-level callers would otherwise pay for it at every process start.
  let validate: ValidateFunction | undefined;
  return (data) => {
    if (!validate) {
      shared ??= requestAjv(false);
      addSchemas(shared, schemas);
      validate = shared.compile(schema);
    }
    return validate(data) ? undefined : formatAjvErrors((validate.errors ?? []) as ErrorObject[], dataVar);
  };
}

function fieldPath(dataVar: string, instancePath: string): string {
  const parts = instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let out = dataVar;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  return out;
}

/** Turns Ajv errors into one message that names the offending field. */
export function formatAjvErrors(errors: ErrorObject[], dataVar: string): string {
  const messages: string[] = [];
  // With unions (anyOf/oneOf) Ajv reports every branch; the most specific error is the deepest one.
  const sorted = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length);
  for (const e of sorted) {
    const where = fieldPath(dataVar, e.instancePath);
    // A `propertyNames` failure is about one of the object's keys, not the object.
    const key = (e as { propertyName?: string }).propertyName;
    if (key !== undefined) {
      const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
      messages.push(`${where} has a key, ${JSON.stringify(shown)}, that ${e.message ?? "is invalid"}`);
      break;
    }
    switch (e.keyword) {
      case "additionalProperties": {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        messages.push(`${where}.${extra} is not a recognised field`);
        break;
      }
      case "required": {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        messages.push(`${where}.${missing} is required`);
        break;
      }
      case "enum":
        messages.push(
          `${where} must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(", ")}`,
        );
        break;
      case "const":
        messages.push(
          `${where} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`,
        );
        break;
      case "discriminator": {
        // Ajv: `error: "tag"` when the tag is missing or not a string, `"mapping"` for an unknown value.
        const { error, tag, tagValue } = e.params as { error: string; tag: string; tagValue?: unknown };
        if (tagValue === undefined) messages.push(`${where}.${tag} is required`);
        else if (error === "tag") messages.push(`${where}.${tag} must be string`);
        else messages.push(`${where}.${tag} ${JSON.stringify(tagValue)} is not a supported provider`);
        break;
      }
      case "anyOf":
      case "oneOf":
        messages.push(`${where} does not match any allowed shape`);
        break;
      case "pattern":
        messages.push(
          `${where} has an invalid format (must match ${(e.params as { pattern: string }).pattern})`,
        );
        break;
      default:
        messages.push(`${where} ${e.message ?? "is invalid"}`);
    }
    break;
  }
  return messages[0] ?? `${dataVar} is invalid`;
}
