import { type SchemaOptions, type Static, type TUnsafe, Type } from "@sinclair/typebox";

/**
 * Request schemas reject unknown fields (Fastify runs ajv with `removeAdditional: false`), so a typo is a
 * 400 that names the field instead of being silently dropped.
 */
export const STRICT = { additionalProperties: false } as const;

/**
 * A string enum published as a single `{type: "string", enum: [...]}` rather than an `anyOf` of consts:
 * smaller OpenAPI, and ajv reports `allowedValues` on a mismatch.
 */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

export const E164_PATTERN = "^\\+[1-9]\\d{1,14}$";
export const TWILIO_ACCOUNT_SID_PATTERN = "^AC[0-9a-fA-F]{32}$";

export const Uuid = Type.String({ format: "uuid" });
export const DateTime = Type.String({ format: "date-time" });
export const E164Number = Type.String({
  pattern: E164_PATTERN,
  description: "Phone number in E.164 format, e.g. +14155550123.",
});

/** Free-form JSON object (metadata, variableValues, JSON Schema fragments). */
export const FreeformObject = Type.Record(Type.String(), Type.Unknown());
export type FreeformObject = Static<typeof FreeformObject>;

export const StringRecord = Type.Record(Type.String(), Type.String());

/** Fields every stored resource carries in responses. */
export const resourceFields = {
  id: Uuid,
  orgId: Uuid,
  createdAt: DateTime,
  updatedAt: DateTime,
};

export const BackoffPlan = Type.Object(
  {
    type: StringEnum(["fixed", "exponential"] as const),
    maxRetries: Type.Number({ minimum: 0, maximum: 10 }),
    baseDelaySeconds: Type.Number({ minimum: 0, maximum: 10 }),
    excludedStatusCodes: Type.Optional(Type.Array(Type.Number())),
  },
  STRICT,
);
export type BackoffPlan = Static<typeof BackoffPlan>;

/**
 * Vapi's `Server`: where webhooks (and tool calls) are sent. `secret` is Vapi's legacy shared secret,
 * sent as the `X-Vapi-Secret` header; Vapi echoes it back in responses, so we do too.
 */
export const Server = Type.Object(
  {
    url: Type.Optional(Type.String({ format: "uri" })),
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 300 })),
    secret: Type.Optional(Type.String()),
    headers: Type.Optional(StringRecord),
    credentialId: Type.Optional(Uuid),
    backoffPlan: Type.Optional(BackoffPlan),
  },
  { ...STRICT, title: "Server" },
);
export type Server = Static<typeof Server>;

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
  },
  { title: "ErrorResponse" },
);
export type ErrorResponse = Static<typeof ErrorResponse>;

export const IdParams = Type.Object({ id: Uuid }, STRICT);
export type IdParams = Static<typeof IdParams>;

/**
 * Query filters shared by every `GET /<resource>` list. Query strings arrive as strings, so the app must
 * enable type coercion for querystrings for `limit` to validate as an integer.
 */
export const listQueryProperties = {
  limit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 100 })),
  createdAtGt: Type.Optional(DateTime),
  createdAtLt: Type.Optional(DateTime),
  createdAtGe: Type.Optional(DateTime),
  createdAtLe: Type.Optional(DateTime),
  updatedAtGt: Type.Optional(DateTime),
  updatedAtLt: Type.Optional(DateTime),
  updatedAtGe: Type.Optional(DateTime),
  updatedAtLe: Type.Optional(DateTime),
};

export const ListQuery = Type.Object(listQueryProperties, { ...STRICT, title: "ListQuery" });
export type ListQuery = Static<typeof ListQuery>;
