import {
  type SchemaOptions,
  type Static,
  type TObject,
  type TSchema,
  type TUnion,
  type TUnsafe,
  Type,
} from "@sinclair/typebox";

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

/**
 * One of Vapi's per-provider shapes (`voice`, `model`, `transcriber`…), told apart by `provider`:
 * `oneOf` with a discriminator, so Ajv (`discriminator: true`) validates only the branch the body
 * names and its error names that branch's field, instead of the error of whichever branch failed
 * deepest. Every branch must require `provider` as a literal.
 */
export function ProviderUnion<T extends TObject[]>(
  branches: [...T],
  options: SchemaOptions = {},
): TUnsafe<Static<TUnion<T>>> {
  return Type.Unsafe<Static<TUnion<T>>>({
    ...options,
    oneOf: branches,
    discriminator: { propertyName: "provider" },
  });
}

/**
 * A `$ref` to a shared schema (an exported schema of libs/vapi/{assistant,squad,tool}.ts with an
 * `$id`: SHARED_SCHEMAS), typed as that schema.
 * Ajv compiles a shared schema once and every body that embeds it calls that validator: inlined,
 * the assistant (with every provider's model, voice and transcriber) made POST /call's validator
 * 11 MB of code that took seconds to compile on the first call. OpenAPI names it as a component.
 */
export function SharedRef<T extends TSchema>(schema: T, options: SchemaOptions = {}): TUnsafe<Static<T>> {
  if (!schema.$id) throw new Error("SharedRef: the schema needs an $id (and to be in SHARED_SCHEMAS)");
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id, options));
}

export const E164_PATTERN = "^\\+[1-9]\\d{1,14}$";
export const TWILIO_ACCOUNT_SID_PATTERN = "^AC[0-9a-fA-F]{32}$";

export const Uuid = Type.String({ format: "uuid" });
export const DateTime = Type.String({ format: "date-time" });
export const E164Number = Type.String({
  pattern: E164_PATTERN,
  description: "Phone number in E.164 format, e.g. +14155550123.",
});

/**
 * Length bounds of free text. Vapi's own limits are used where it has them (names 40, spoken
 * messages 1000, function names 64…); where Vapi sets none, these generous bounds keep one field
 * from taking a whole request body (BODY_LIMIT_BYTES, 1 MiB by default, bounds the sum).
 */
export const TEXT_LIMITS = {
  /** Vapi: assistant, phone number, call, customer, org (its UpdateOrgDTO) names. */
  name: 40,
  /** Vapi: endCallMessage, voicemailMessage, tool message content, conditions. */
  message: 1000,
  /** Descriptions (functions, destinations) and short prompts; no Vapi limit. */
  description: 10_000,
  /** Spoken text such as firstMessage; no Vapi limit (10,000 characters is minutes of speech). */
  spoken: 10_000,
  /** Identifiers: voice ids, language codes, keywords, object keys. */
  identifier: 200,
  /** URLs (common browsers and servers stop near 2,000-8,000). */
  url: 2048,
  /** Secrets and header values. */
  secret: 8192,
} as const;

/** Item bounds of arrays: OpenAI accepts at most 128 tools per request. */
export const LIST_LIMITS = { tools: 128, items: 100, messages: 1000 } as const;

/**
 * Free-form JSON object (metadata, variableValues, JSON Schema fragments): at most 200 keys of at
 * most 200 characters at this level; its size is bounded by the body limit, its depth by the API's
 * input guard.
 */
export const FreeformObject = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: 200,
  propertyNames: { maxLength: TEXT_LIMITS.identifier },
});
export type FreeformObject = Static<typeof FreeformObject>;

/** `server.headers`: names and values are checked further when saved (libs/webhooks/server-config.ts). */
export const StringRecord = Type.Record(Type.String(), Type.String({ maxLength: TEXT_LIMITS.secret }), {
  maxProperties: 50,
  propertyNames: { maxLength: 256 },
});

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
    excludedStatusCodes: Type.Optional(Type.Array(Type.Number(), { maxItems: LIST_LIMITS.items })),
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
    url: Type.Optional(Type.String({ format: "uri", maxLength: TEXT_LIMITS.url })),
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 300 })),
    secret: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.secret })),
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
