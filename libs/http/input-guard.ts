import type { FastifyInstance } from "fastify";
import { ValidationError } from "../errors/index.ts";

// Text a client or a carrier sends is either stored faithfully or refused here, before validation
// and long before Postgres: a NUL character is refused by Postgres in text and jsonb alike (an
// answer of 500 if it got there), an unpaired UTF-16 surrogate (legal in JSON's `\ud800` escapes)
// cannot be encoded as UTF-8 at all and would be stored as U+FFFD, and a document nested thousands
// deep overflows the stack of whatever walks it next (ajv, Prisma, the serialiser). So bodies,
// query strings and path parameters are walked once, iteratively, and refused with a 400 that
// names the field. Vapi's API documents no NUL or surrogate handling; refusing keeps what we
// store exactly what was sent.

/** Deepest nesting accepted in a request body (a tool's JSON Schema rarely passes 20). */
export const MAX_JSON_DEPTH = 64;

function pathOf(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function textProblem(s: string): string | undefined {
  if (s.includes("\u0000")) return "contains a NUL character (\\u0000), which cannot be stored";
  if (!s.isWellFormed()) return "contains an unpaired UTF-16 surrogate, which is not valid Unicode text";
  return undefined;
}

/**
 * The first problem in `value` (a parsed JSON document, form, query or params object), as a message
 * naming the field, or undefined when it may go on to validation.
 */
export function findInputProblem(
  value: unknown,
  root: string,
  maxDepth = MAX_JSON_DEPTH,
): string | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop() as { value: unknown; path: string; depth: number };
    const v = item.value;
    if (typeof v === "string") {
      const problem = textProblem(v);
      if (problem) return `${item.path} ${problem}`;
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (item.depth >= maxDepth) return `${root} is nested more than ${maxDepth} levels deep`;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i], path: pathOf(item.path, i), depth: item.depth + 1 });
      }
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const keyProblem = textProblem(key);
      if (keyProblem) return `${item.path} has a field name that ${keyProblem}`;
      stack.push({
        value: (v as Record<string, unknown>)[key],
        path: pathOf(item.path, key),
        depth: item.depth + 1,
      });
    }
  }
  return undefined;
}

/** Refuses NUL characters, unpaired surrogates and over-deep documents in every request. */
export function installInputGuard(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  app.addHook("preValidation", async (request) => {
    const problem =
      findInputProblem(request.params, "params", maxDepth) ??
      findInputProblem(request.query, "querystring", maxDepth) ??
      findInputProblem(request.body, "body", maxDepth);
    if (problem) throw new ValidationError(problem);
  });
}
