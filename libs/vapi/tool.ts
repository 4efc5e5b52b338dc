import { type Static, type TSchema, Type } from "@sinclair/typebox";
import {
  E164Number,
  FreeformObject,
  LIST_LIMITS,
  resourceFields,
  Server,
  SharedRef,
  STRICT,
  StringEnum,
  TEXT_LIMITS,
} from "./common.ts";
import { TEXT_CONTENT_LANGUAGES, TRANSFER_MODES, TRANSFER_PLAN_MODES } from "./enums.ts";

export const TOOL_TYPES = ["function", "endCall", "transferCall", "dtmf"] as const;
export type ToolType = (typeof TOOL_TYPES)[number];

// --- Tool messages (what the assistant says around a tool call) -------------------------------------

const Condition = Type.Object(
  {
    operator: StringEnum(["eq", "neq", "gt", "gte", "lt", "lte"] as const),
    param: Type.String({ maxLength: 1000 }),
    value: Type.String({ maxLength: 1000 }),
  },
  STRICT,
);

const TextContent = Type.Object(
  {
    type: Type.Literal("text"),
    text: Type.String({ maxLength: TEXT_LIMITS.message }),
    language: StringEnum(TEXT_CONTENT_LANGUAGES),
  },
  STRICT,
);

// One `contents` entry per language is the most that makes sense.
const contents = Type.Optional(Type.Array(TextContent, { maxItems: TEXT_CONTENT_LANGUAGES.length }));

const toolMessageBase = {
  content: Type.Optional(Type.String({ maxLength: 1000 })),
  contents,
  conditions: Type.Optional(Type.Array(Condition, { maxItems: LIST_LIMITS.items })),
};

export const ToolMessageStart = Type.Object(
  {
    type: Type.Literal("request-start"),
    blocking: Type.Optional(Type.Boolean()),
    ...toolMessageBase,
  },
  { ...STRICT, title: "ToolMessageStart" },
);

export const ToolMessageComplete = Type.Object(
  {
    type: Type.Literal("request-complete"),
    role: Type.Optional(StringEnum(["assistant", "system"] as const)),
    endCallAfterSpokenEnabled: Type.Optional(Type.Boolean()),
    ...toolMessageBase,
  },
  { ...STRICT, title: "ToolMessageComplete" },
);

export const ToolMessageFailed = Type.Object(
  {
    type: Type.Literal("request-failed"),
    role: Type.Optional(StringEnum(["assistant", "system"] as const)),
    endCallAfterSpokenEnabled: Type.Optional(Type.Boolean()),
    ...toolMessageBase,
  },
  { ...STRICT, title: "ToolMessageFailed" },
);

export const ToolMessageDelayed = Type.Object(
  {
    type: Type.Literal("request-response-delayed"),
    timingMilliseconds: Type.Optional(Type.Number({ minimum: 100, maximum: 120000 })),
    ...toolMessageBase,
  },
  { ...STRICT, title: "ToolMessageDelayed" },
);

/** Shared (SharedRef): every tool type takes these messages. */
export const ToolMessage = Type.Union(
  [ToolMessageStart, ToolMessageComplete, ToolMessageFailed, ToolMessageDelayed],
  { $id: "ToolMessage", title: "ToolMessage" },
);
export type ToolMessage = Static<typeof ToolMessage>;

// --- Transfer destinations ---------------------------------------------------------------------------

const CustomMessage = Type.Object(
  {
    type: Type.Literal("custom-message"),
    content: Type.Optional(Type.String({ maxLength: 1000 })),
    contents,
  },
  STRICT,
);

/** What the caller hears before a transfer: plain text or a CustomMessage. */
const DestinationMessage = Type.Union([Type.String({ maxLength: TEXT_LIMITS.message }), CustomMessage]);

const AudioUrl = Type.String({ maxLength: TEXT_LIMITS.url });

/** `transferPlan` is kept loose apart from `mode`: Vapi's shape is large and mostly warm-transfer options. */
const TransferPlan = Type.Object(
  {
    mode: StringEnum(TRANSFER_PLAN_MODES),
    message: Type.Optional(DestinationMessage),
    timeout: Type.Optional(Type.Number({ minimum: 1, maximum: 600 })),
    sipVerb: Type.Optional(StringEnum(["refer", "bye", "dial"] as const)),
    dialTimeout: Type.Optional(Type.Number({ minimum: 1, maximum: 600 })),
    holdAudioUrl: Type.Optional(AudioUrl),
    transferCompleteAudioUrl: Type.Optional(AudioUrl),
    twiml: Type.Optional(Type.String({ maxLength: 4096 })),
    summaryPlan: Type.Optional(FreeformObject),
    contextEngineeringPlan: Type.Optional(FreeformObject),
    fallbackPlan: Type.Optional(FreeformObject),
    sipHeadersInReferToEnabled: Type.Optional(Type.Boolean()),
  },
  STRICT,
);

export const TransferDestinationNumber = Type.Object(
  {
    type: Type.Literal("number"),
    number: E164Number,
    extension: Type.Optional(Type.String({ minLength: 1, maxLength: 10 })),
    callerId: Type.Optional(Type.String({ maxLength: 40 })),
    message: Type.Optional(DestinationMessage),
    name: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.name })),
    description: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.description })),
    transferPlan: Type.Optional(TransferPlan),
  },
  { ...STRICT, title: "TransferDestinationNumber" },
);
export type TransferDestinationNumber = Static<typeof TransferDestinationNumber>;

export const TransferDestinationAssistant = Type.Object(
  {
    type: Type.Literal("assistant"),
    // Assistant names are at most 40 characters.
    assistantName: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.name }),
    transferMode: Type.Optional(StringEnum(TRANSFER_MODES)),
    message: Type.Optional(DestinationMessage),
    name: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.name })),
    description: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.description })),
  },
  { ...STRICT, title: "TransferDestinationAssistant" },
);
export type TransferDestinationAssistant = Static<typeof TransferDestinationAssistant>;

export const TransferDestination = Type.Union([TransferDestinationNumber, TransferDestinationAssistant]);
export type TransferDestination = Static<typeof TransferDestination>;

// --- Tool definitions --------------------------------------------------------------------------------

/**
 * The function's JSON Schema. Beyond the `type`/`properties` Vapi requires, any JSON Schema keyword is
 * allowed (so this object is deliberately not strict).
 */
export const OpenAiFunctionParameters = Type.Object(
  {
    type: Type.Literal("object"),
    properties: FreeformObject,
    required: Type.Optional(
      Type.Array(Type.String({ maxLength: TEXT_LIMITS.identifier }), { maxItems: 200 }),
    ),
  },
  { additionalProperties: true, title: "OpenAiFunctionParameters" },
);

export const OpenAiFunction = Type.Object(
  {
    name: Type.String({ maxLength: 64, pattern: "^[a-zA-Z0-9_-]{1,64}$" }),
    description: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.description })),
    parameters: Type.Optional(OpenAiFunctionParameters),
    strict: Type.Optional(Type.Boolean()),
  },
  { ...STRICT, title: "OpenAiFunction" },
);
export type OpenAiFunction = Static<typeof OpenAiFunction>;

const toolMessages = Type.Optional(Type.Array(SharedRef(ToolMessage), { maxItems: LIST_LIMITS.items }));
const destinations = Type.Optional(Type.Array(TransferDestination, { maxItems: LIST_LIMITS.items }));

export const CreateFunctionToolDTO = Type.Object(
  {
    type: Type.Literal("function"),
    function: OpenAiFunction,
    async: Type.Optional(Type.Boolean()),
    server: Type.Optional(Server),
    messages: toolMessages,
  },
  { ...STRICT, title: "CreateFunctionToolDTO" },
);
export type CreateFunctionToolDTO = Static<typeof CreateFunctionToolDTO>;

export const CreateEndCallToolDTO = Type.Object(
  {
    type: Type.Literal("endCall"),
    messages: toolMessages,
  },
  { ...STRICT, title: "CreateEndCallToolDTO" },
);
export type CreateEndCallToolDTO = Static<typeof CreateEndCallToolDTO>;

export const CreateTransferCallToolDTO = Type.Object(
  {
    type: Type.Literal("transferCall"),
    destinations,
    messages: toolMessages,
  },
  { ...STRICT, title: "CreateTransferCallToolDTO" },
);
export type CreateTransferCallToolDTO = Static<typeof CreateTransferCallToolDTO>;

export const CreateDtmfToolDTO = Type.Object(
  {
    type: Type.Literal("dtmf"),
    messages: toolMessages,
  },
  { ...STRICT, title: "CreateDtmfToolDTO" },
);
export type CreateDtmfToolDTO = Static<typeof CreateDtmfToolDTO>;

/** Per-type create schemas: the `/tool` route picks one by `body.type` to get errors that name the field. */
export const createToolSchemas = {
  function: CreateFunctionToolDTO,
  endCall: CreateEndCallToolDTO,
  transferCall: CreateTransferCallToolDTO,
  dtmf: CreateDtmfToolDTO,
} as const satisfies Record<ToolType, TSchema>;

/** Any tool create body; used for OpenAPI and for inline `model.tools` (shared: SharedRef). */
export const CreateToolDTO = Type.Union(
  [CreateFunctionToolDTO, CreateEndCallToolDTO, CreateTransferCallToolDTO, CreateDtmfToolDTO],
  { $id: "CreateToolDTO", title: "CreateToolDTO" },
);
export type CreateToolDTO = Static<typeof CreateToolDTO>;

// Vapi's Update*ToolDTO keep `type` (optional, same literal), so a tool's type can't change on PATCH.
export const UpdateFunctionToolDTO = Type.Partial(CreateFunctionToolDTO, { title: "UpdateFunctionToolDTO" });
export type UpdateFunctionToolDTO = Static<typeof UpdateFunctionToolDTO>;
export const UpdateEndCallToolDTO = Type.Partial(CreateEndCallToolDTO, { title: "UpdateEndCallToolDTO" });
export type UpdateEndCallToolDTO = Static<typeof UpdateEndCallToolDTO>;
export const UpdateTransferCallToolDTO = Type.Partial(CreateTransferCallToolDTO, {
  title: "UpdateTransferCallToolDTO",
});
export type UpdateTransferCallToolDTO = Static<typeof UpdateTransferCallToolDTO>;
export const UpdateDtmfToolDTO = Type.Partial(CreateDtmfToolDTO, { title: "UpdateDtmfToolDTO" });
export type UpdateDtmfToolDTO = Static<typeof UpdateDtmfToolDTO>;

/** Per-type update schemas: the PATCH route looks up the stored tool's type, then validates with this. */
export const updateToolSchemas = {
  function: UpdateFunctionToolDTO,
  endCall: UpdateEndCallToolDTO,
  transferCall: UpdateTransferCallToolDTO,
  dtmf: UpdateDtmfToolDTO,
} as const satisfies Record<ToolType, TSchema>;

export const UpdateToolDTO = Type.Union(
  [UpdateFunctionToolDTO, UpdateEndCallToolDTO, UpdateTransferCallToolDTO, UpdateDtmfToolDTO],
  { title: "UpdateToolDTO" },
);
export type UpdateToolDTO = Static<typeof UpdateToolDTO>;

/**
 * Response shape for every tool type. One object with every field (rather than a union) so the serializer
 * never has to guess a branch; fields that don't apply to a type are simply absent.
 */
export const Tool = Type.Object(
  {
    ...resourceFields,
    type: StringEnum(TOOL_TYPES),
    function: Type.Optional(OpenAiFunction),
    server: Type.Optional(Server),
    async: Type.Optional(Type.Boolean()),
    messages: toolMessages,
    destinations,
  },
  { title: "Tool" },
);
export type Tool = Static<typeof Tool>;
