import type { TSchema } from "@sinclair/typebox";
import * as assistant from "./assistant.ts";
import * as squad from "./squad.ts";
import * as tool from "./tool.ts";

function isShared(value: unknown): value is TSchema & { $id: string } {
  return typeof value === "object" && value !== null && typeof (value as { $id?: unknown }).$id === "string";
}

/**
 * The schemas other schemas embed by `$ref` (SharedRef): every schema of these modules with an
 * `$id`. Whoever validates or serialises a schema that embeds one must know them all: the API
 * registers them with `app.addSchema` (its validators, serializers and OpenAPI components read
 * them there), and `compileValidator` takes them. Each is compiled once per Ajv, however many
 * bodies embed it.
 */
export const SHARED_SCHEMAS: readonly (TSchema & { $id: string })[] = [
  ...new Set([assistant, squad, tool].flatMap((m) => Object.values(m).filter(isShared))),
];
