import { type Static, Type } from "@sinclair/typebox";
import { normaliseOrigin, originAllowed } from "../../../../libs/calls/transport.ts";
import { ForbiddenError, ValidationError } from "../../../../libs/errors/index.ts";
import { STRICT, TEXT_LIMITS, Uuid } from "../../../../libs/vapi/index.ts";

// Vapi's `TokenRestrictions` on an API key (`ApiKey.restrictions`), in one place: the schema of
// `POST/PATCH /token`, the stored form, and what a public key may do with them.
// - `enabled: false` turns the key off (any key): it answers 401 like a revoked one.
// - `allowedOrigins`: the request's `Origin` must be listed (and the websocket's, on the media
//   plane: the list is copied onto the call). Compared in normal form (libs/calls/transport.ts).
// - `allowedAssistantIds`: only these saved assistants; then no squad and no transient assistant.
// - `allowTransientAssistant` (default true): an inline `assistant` or `squad`. When transient
//   assistants are not allowed, `assistantOverrides` may carry only `variableValues`: any other
//   override (prompt, model, voice…) would make the saved assistant a transient one.
// Origin and assistant restrictions bind public keys only (as Vapi's); a private key can do
// everything anyway.

export const TokenRestrictions = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: "false turns the key off (default true)" })),
    allowedOrigins: Type.Optional(
      Type.Array(Type.String({ maxLength: TEXT_LIMITS.url }), {
        maxItems: 100,
        description:
          "Origins (scheme://host[:port]) a public key may be used from, checked against the Origin header of POST /call and of the call's websocket. Default: any.",
      }),
    ),
    allowedAssistantIds: Type.Optional(
      Type.Array(Uuid, {
        maxItems: 100,
        description:
          "Saved assistants a public key may start calls with. Default: any. When set, squads and transient assistants are refused.",
      }),
    ),
    allowTransientAssistant: Type.Optional(
      Type.Boolean({
        description:
          "Whether a public key may start a call with an inline assistant or squad (default true; false when allowedAssistantIds is set).",
      }),
    ),
  },
  { ...STRICT, title: "TokenRestrictions" },
);
export type TokenRestrictions = Static<typeof TokenRestrictions>;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : undefined;
}

/** `ApiKey.restrictions` decoded (undefined: none). */
export function keyRestrictions(json: unknown): TokenRestrictions | undefined {
  if (!isObj(json)) return undefined;
  const out: TokenRestrictions = {};
  if (typeof json.enabled === "boolean") out.enabled = json.enabled;
  const origins = strings(json.allowedOrigins);
  if (origins) out.allowedOrigins = origins;
  const ids = strings(json.allowedAssistantIds);
  if (ids) out.allowedAssistantIds = ids;
  if (typeof json.allowTransientAssistant === "boolean")
    out.allowTransientAssistant = json.allowTransientAssistant;
  return out;
}

/** What is stored for restrictions a body sent: origins in normal form (400 naming a bad one). */
export function storedRestrictions(given: TokenRestrictions, field: string): TokenRestrictions {
  const out: TokenRestrictions = { ...given };
  if (given.allowedOrigins) {
    out.allowedOrigins = [
      ...new Set(
        given.allowedOrigins.map((o, i) => {
          const n = normaliseOrigin(o);
          if (!n) {
            throw new ValidationError(
              `${field}.allowedOrigins[${i}] is not an origin: give scheme://host[:port], e.g. https://app.example.com`,
            );
          }
          return n;
        }),
      ),
    ];
  }
  return out;
}

/** What a call asks to run, as far as a key's restrictions are concerned. */
export interface RestrictedCallRequest {
  assistantId?: unknown;
  assistant?: unknown;
  squadId?: unknown;
  squad?: unknown;
  assistantOverrides?: unknown;
}

/**
 * Refuses (403, saying why) a call a public key's restrictions do not allow. `origin` is the
 * request's `Origin` header.
 */
export function checkPublicKeyCall(
  restrictions: TokenRestrictions | undefined,
  body: RestrictedCallRequest,
  origin: string | undefined,
): void {
  const r = restrictions ?? {};
  if (!originAllowed(r.allowedOrigins, origin)) {
    throw new ForbiddenError(
      origin === undefined
        ? "This public key is restricted to listed origins and the request has no Origin header"
        : `This public key may not be used from origin ${JSON.stringify(origin)}: it is not in the key's allowedOrigins`,
    );
  }
  const listed =
    r.allowedAssistantIds && r.allowedAssistantIds.length > 0 ? r.allowedAssistantIds : undefined;
  if (listed) {
    if (typeof body.assistantId !== "string") {
      throw new ForbiddenError(
        "This public key may only start calls with the assistants in its allowedAssistantIds: send body.assistantId",
      );
    }
    if (!listed.includes(body.assistantId)) {
      throw new ForbiddenError(
        `This public key may not start calls with assistant ${body.assistantId}: it is not in the key's allowedAssistantIds`,
      );
    }
  }
  const transientAllowed = !listed && r.allowTransientAssistant !== false;
  if (transientAllowed) return;
  for (const field of ["assistant", "squad"] as const) {
    if (body[field] !== undefined) {
      throw new ForbiddenError(
        `This public key does not allow transient assistants: body.${field} is refused; use a saved assistant (body.assistantId)`,
      );
    }
  }
  if (isObj(body.assistantOverrides)) {
    const other = Object.keys(body.assistantOverrides).find((k) => k !== "variableValues");
    if (other) {
      throw new ForbiddenError(
        `This public key does not allow transient assistants: body.assistantOverrides.${other} is refused (only variableValues may be overridden)`,
      );
    }
  }
}
