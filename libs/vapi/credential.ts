import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { resourceFields, STRICT, StringEnum, TEXT_LIMITS, TWILIO_ACCOUNT_SID_PATTERN } from "./common.ts";

export const CREDENTIAL_PROVIDERS = [
  "openai",
  "deepgram",
  "11labs",
  "twilio",
  "anthropic",
  "custom-llm",
  "assembly-ai",
  "cartesia",
  "s3",
] as const;
export type CredentialProvider = (typeof CREDENTIAL_PROVIDERS)[number];

const name = Type.Optional(Type.String({ minLength: 1, maxLength: 40 }));
// A provider key travels in an HTTP header (Authorization, xi-api-key), where a line break, a
// control or non-ASCII character cannot go: refused when saved instead of failing every call.
const apiKey = Type.String({
  minLength: 1,
  maxLength: 10000,
  pattern: "^[!-~]+$",
  description: "The provider's API key: printable ASCII, no spaces or line breaks",
});

export const CreateOpenAICredentialDTO = Type.Object(
  { provider: Type.Literal("openai"), apiKey, name },
  { ...STRICT, title: "CreateOpenAICredentialDTO" },
);
export type CreateOpenAICredentialDTO = Static<typeof CreateOpenAICredentialDTO>;

export const CreateDeepgramCredentialDTO = Type.Object(
  { provider: Type.Literal("deepgram"), apiKey, name },
  { ...STRICT, title: "CreateDeepgramCredentialDTO" },
);
export type CreateDeepgramCredentialDTO = Static<typeof CreateDeepgramCredentialDTO>;

export const CreateElevenLabsCredentialDTO = Type.Object(
  { provider: Type.Literal("11labs"), apiKey, name },
  { ...STRICT, title: "CreateElevenLabsCredentialDTO" },
);
export type CreateElevenLabsCredentialDTO = Static<typeof CreateElevenLabsCredentialDTO>;

export const CreateAssemblyAICredentialDTO = Type.Object(
  { provider: Type.Literal("assembly-ai"), apiKey, name },
  { ...STRICT, title: "CreateAssemblyAICredentialDTO" },
);
export type CreateAssemblyAICredentialDTO = Static<typeof CreateAssemblyAICredentialDTO>;

// Vapi's optional `apiUrl` (an on-prem Cartesia) is not taken: calls always reach CARTESIA_API_URL.
export const CreateCartesiaCredentialDTO = Type.Object(
  { provider: Type.Literal("cartesia"), apiKey, name },
  { ...STRICT, title: "CreateCartesiaCredentialDTO" },
);
export type CreateCartesiaCredentialDTO = Static<typeof CreateCartesiaCredentialDTO>;

export const CreateAnthropicCredentialDTO = Type.Object(
  { provider: Type.Literal("anthropic"), apiKey, name },
  { ...STRICT, title: "CreateAnthropicCredentialDTO" },
);
export type CreateAnthropicCredentialDTO = Static<typeof CreateAnthropicCredentialDTO>;

// The key is sent to the customer's server as `Authorization: Bearer <apiKey>`. Vapi's optional
// `authenticationPlan` (OAuth2 client credentials) is not taken: refused as an unknown field.
export const CreateCustomLLMCredentialDTO = Type.Object(
  { provider: Type.Literal("custom-llm"), apiKey, name },
  { ...STRICT, title: "CreateCustomLLMCredentialDTO" },
);
export type CreateCustomLLMCredentialDTO = Static<typeof CreateCustomLLMCredentialDTO>;

/**
 * Vapi's custom storage for recordings: an S3 bucket of the organisation's. The bucket is on AWS
 * (the region's endpoint) unless the platform sends organisations' buckets to an S3-compatible
 * server (RECORDINGS_CUSTOM_S3_ENDPOINT). The secret is write-only.
 */
export const CreateS3CredentialDTO = Type.Object(
  {
    provider: Type.Literal("s3"),
    awsAccessKeyId: Type.String({ minLength: 1, maxLength: 128 }),
    awsSecretAccessKey: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.secret }),
    // AWS region names only: the region becomes part of the endpoint's host name.
    region: Type.String({ pattern: "^[a-z]{2}(-[a-z]+)+-\\d{1,2}$", maxLength: 32 }),
    s3BucketName: Type.String({ pattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" }),
    s3PathPrefix: Type.String({ maxLength: 200, pattern: "^(?!.*(^|/)\\.\\.?(/|$))[A-Za-z0-9!_.*'()/-]*$" }),
    fallbackIndex: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    name,
  },
  { ...STRICT, title: "CreateS3CredentialDTO" },
);
export type CreateS3CredentialDTO = Static<typeof CreateS3CredentialDTO>;

export const CreateTwilioCredentialDTO = Type.Object(
  {
    provider: Type.Literal("twilio"),
    accountSid: Type.String({ pattern: TWILIO_ACCOUNT_SID_PATTERN }),
    authToken: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.secret }),
    name,
  },
  { ...STRICT, title: "CreateTwilioCredentialDTO" },
);
export type CreateTwilioCredentialDTO = Static<typeof CreateTwilioCredentialDTO>;

/** Per-provider create schemas: the route picks one by `body.provider` so errors name the field. */
export const createCredentialSchemas = {
  openai: CreateOpenAICredentialDTO,
  deepgram: CreateDeepgramCredentialDTO,
  "11labs": CreateElevenLabsCredentialDTO,
  twilio: CreateTwilioCredentialDTO,
  anthropic: CreateAnthropicCredentialDTO,
  "custom-llm": CreateCustomLLMCredentialDTO,
  "assembly-ai": CreateAssemblyAICredentialDTO,
  cartesia: CreateCartesiaCredentialDTO,
  s3: CreateS3CredentialDTO,
} as const satisfies Record<CredentialProvider, TSchema>;

export const CreateCredentialDTO = Type.Union(
  [
    CreateOpenAICredentialDTO,
    CreateDeepgramCredentialDTO,
    CreateElevenLabsCredentialDTO,
    CreateTwilioCredentialDTO,
    CreateAnthropicCredentialDTO,
    CreateCustomLLMCredentialDTO,
    CreateAssemblyAICredentialDTO,
    CreateCartesiaCredentialDTO,
    CreateS3CredentialDTO,
  ],
  { title: "CreateCredentialDTO" },
);
export type CreateCredentialDTO = Static<typeof CreateCredentialDTO>;

// As in Vapi's Update*CredentialDTO, `provider` may be repeated but not changed.
export const UpdateOpenAICredentialDTO = Type.Partial(CreateOpenAICredentialDTO, {
  title: "UpdateOpenAICredentialDTO",
});
export const UpdateDeepgramCredentialDTO = Type.Partial(CreateDeepgramCredentialDTO, {
  title: "UpdateDeepgramCredentialDTO",
});
export const UpdateElevenLabsCredentialDTO = Type.Partial(CreateElevenLabsCredentialDTO, {
  title: "UpdateElevenLabsCredentialDTO",
});
export const UpdateTwilioCredentialDTO = Type.Partial(CreateTwilioCredentialDTO, {
  title: "UpdateTwilioCredentialDTO",
});
export const UpdateAssemblyAICredentialDTO = Type.Partial(CreateAssemblyAICredentialDTO, {
  title: "UpdateAssemblyAICredentialDTO",
});
export const UpdateCartesiaCredentialDTO = Type.Partial(CreateCartesiaCredentialDTO, {
  title: "UpdateCartesiaCredentialDTO",
});
export const UpdateAnthropicCredentialDTO = Type.Partial(CreateAnthropicCredentialDTO, {
  title: "UpdateAnthropicCredentialDTO",
});
export const UpdateCustomLLMCredentialDTO = Type.Partial(CreateCustomLLMCredentialDTO, {
  title: "UpdateCustomLLMCredentialDTO",
});
export const UpdateS3CredentialDTO = Type.Partial(CreateS3CredentialDTO, {
  title: "UpdateS3CredentialDTO",
});

export const updateCredentialSchemas = {
  openai: UpdateOpenAICredentialDTO,
  deepgram: UpdateDeepgramCredentialDTO,
  "11labs": UpdateElevenLabsCredentialDTO,
  twilio: UpdateTwilioCredentialDTO,
  anthropic: UpdateAnthropicCredentialDTO,
  "custom-llm": UpdateCustomLLMCredentialDTO,
  "assembly-ai": UpdateAssemblyAICredentialDTO,
  cartesia: UpdateCartesiaCredentialDTO,
  s3: UpdateS3CredentialDTO,
} as const satisfies Record<CredentialProvider, TSchema>;

export const UpdateCredentialDTO = Type.Union(
  [
    UpdateOpenAICredentialDTO,
    UpdateDeepgramCredentialDTO,
    UpdateElevenLabsCredentialDTO,
    UpdateTwilioCredentialDTO,
    UpdateAnthropicCredentialDTO,
    UpdateCustomLLMCredentialDTO,
    UpdateAssemblyAICredentialDTO,
    UpdateCartesiaCredentialDTO,
    UpdateS3CredentialDTO,
  ],
  { title: "UpdateCredentialDTO" },
);
export type UpdateCredentialDTO = Static<typeof UpdateCredentialDTO>;

/** Response shape. Secrets (`apiKey`, `authToken`) are write-only and deliberately not declared here. */
export const Credential = Type.Object(
  {
    ...resourceFields,
    provider: StringEnum(CREDENTIAL_PROVIDERS),
    name: Type.Optional(Type.String()),
    accountSid: Type.Optional(Type.String()),
    // s3 (the secret key is write-only)
    awsAccessKeyId: Type.Optional(Type.String()),
    region: Type.Optional(Type.String()),
    s3BucketName: Type.Optional(Type.String()),
    s3PathPrefix: Type.Optional(Type.String()),
    fallbackIndex: Type.Optional(Type.Integer()),
  },
  { title: "Credential" },
);
export type Credential = Static<typeof Credential>;
