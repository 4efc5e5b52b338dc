import assert from "node:assert/strict";
import { test } from "node:test";
import type { TSchema } from "@sinclair/typebox";
import type { Vapi } from "@vapi-ai/server-sdk";
import { Ajv, type ErrorObject } from "ajv";
import addFormatsModule from "ajv-formats";
import fastJson from "fast-json-stringify";
import { simplifyForSerialization } from "../libs/http/serialization.ts";
import * as vapi from "../libs/vapi/index.ts";
import {
  ASSISTANT_DEFAULTS,
  CreateAssistantDTO,
  CreateCallDTO,
  CreateCredentialDTO,
  CreateSquadDTO,
  CreateToolDTO,
  CreateTwilioPhoneNumberDTO,
  Credential,
  createCredentialSchemas,
  createToolSchemas,
  ListQuery,
  resolveAssistantDefaults,
  SHARED_SCHEMAS,
  Tool,
  TwilioPhoneNumber,
  UpdateAssistantDTO,
  UpdateTwilioPhoneNumberDTO,
  updateToolSchemas,
} from "../libs/vapi/index.ts";

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is `module.exports`.
const addFormats = addFormatsModule.default;

// The options Fastify is configured with for request bodies.
// As the API validates bodies (libs/http/validation.ts): Vapi's per-provider unions pick their branch by `provider`.
const ajv = new Ajv({
  removeAdditional: false,
  coerceTypes: false,
  useDefaults: true,
  allErrors: false,
  discriminator: true,
});
addFormats(ajv);
// The schemas the others embed by $ref (SharedRef), as the API registers them.
for (const schema of SHARED_SCHEMAS) ajv.addSchema(schema);

function check(schema: TSchema, data: unknown): ErrorObject[] {
  const validate = ajv.compile(schema);
  return validate(data) ? [] : (validate.errors ?? []);
}

function assertValid(schema: TSchema, data: unknown): void {
  assert.deepEqual(check(schema, data), []);
}

function firstError(schema: TSchema, data: unknown): ErrorObject {
  const [error] = check(schema, data);
  assert.ok(error, "expected a validation error");
  return error;
}

const ASSISTANT_ID = "0b7c5a7e-3f2d-4c1b-9a8e-5d6f7a8b9c0d";
const TOOL_ID = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b";

const functionTool = {
  type: "function",
  async: false,
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    strict: false,
    parameters: {
      type: "object",
      properties: { location: { type: "string", description: "City name" } },
      required: ["location"],
      additionalProperties: false,
    },
  },
  server: { url: "https://tools.example.com/weather", timeoutSeconds: 10, headers: { "x-api-key": "k" } },
  messages: [
    { type: "request-start", content: "Checking the weather…", blocking: false },
    { type: "request-response-delayed", content: "Still looking…", timingMilliseconds: 2000 },
    { type: "request-complete", content: "Here it is.", role: "assistant" },
    { type: "request-failed", content: "The weather service is down." },
  ],
} as const;

const endCallTool = { type: "endCall" } as const;

const transferCallTool = {
  type: "transferCall",
  destinations: [
    {
      type: "number",
      number: "+14155550123",
      message: "Transferring you now.",
      description: "Front desk",
      extension: "12",
      callerId: "+14155550199",
      transferPlan: { mode: "warm-transfer-say-summary" },
    },
    { type: "assistant", assistantName: "Billing", message: "", description: "Billing questions" },
  ],
} as const;

const dtmfTool = { type: "dtmf", messages: [{ type: "request-start", content: "Dialing." }] } as const;

const fullAssistant = {
  name: "Front desk",
  firstMessage: "Hi, thanks for calling Acme. How can I help?",
  firstMessageMode: "assistant-speaks-first",
  firstMessageInterruptionsEnabled: false,
  model: {
    provider: "openai",
    model: "gpt-4o-mini",
    messages: [{ role: "system", content: "You are Acme's receptionist. Caller: {{customer.number}}" }],
    temperature: 0.3,
    maxTokens: 300,
    tools: [functionTool, endCallTool, transferCallTool, dtmfTool],
    toolIds: [TOOL_ID],
    emotionRecognitionEnabled: false,
    numFastTurns: 1,
  },
  voice: {
    provider: "11labs",
    voiceId: "21m00Tcm4TlvDq8ikWAM",
    model: "eleven_turbo_v2_5",
    stability: 0.5,
    similarityBoost: 0.75,
    style: 0,
    useSpeakerBoost: true,
    speed: 1.1,
    optimizeStreamingLatency: 3,
    enableSsmlParsing: false,
    language: "en",
    chunkPlan: { enabled: true, minCharacters: 30, punctuationBoundaries: [".", "!", "?"], formatPlan: {} },
  },
  transcriber: {
    provider: "deepgram",
    model: "nova-3",
    language: "en-US",
    smartFormat: true,
    numerals: true,
    keywords: ["Acme:2"],
    keyterm: ["order number"],
    endpointing: 300,
    confidenceThreshold: 0.4,
  },
  server: {
    url: "https://hooks.example.com/vapi",
    timeoutSeconds: 20,
    secret: "s3cret",
    headers: { authorization: "Bearer x" },
    backoffPlan: { type: "exponential", maxRetries: 3, baseDelaySeconds: 1 },
  },
  serverMessages: ["end-of-call-report", "status-update", "tool-calls"],
  clientMessages: ["transcript", "hang"],
  endCallMessage: "Goodbye!",
  endCallPhrases: ["goodbye", "talk to you later"],
  silenceTimeoutSeconds: 30,
  maxDurationSeconds: 1200,
  backgroundSound: "office",
  voicemailMessage: "Please call us back.",
  startSpeakingPlan: {
    waitSeconds: 0.4,
    smartEndpointingEnabled: false,
    transcriptionEndpointingPlan: {
      onPunctuationSeconds: 0.1,
      onNoPunctuationSeconds: 1.5,
      onNumberSeconds: 0.5,
    },
  },
  stopSpeakingPlan: {
    numWords: 0,
    voiceSeconds: 0.2,
    backoffSeconds: 1,
    acknowledgementPhrases: ["okay"],
    interruptionPhrases: ["stop"],
  },
  analysisPlan: {
    minMessagesThreshold: 2,
    summaryPlan: { enabled: true, timeoutSeconds: 5, messages: [{ role: "system", content: "Summarize." }] },
    structuredDataPlan: {
      enabled: true,
      schema: { type: "object", properties: { intent: { type: "string" } } },
    },
    successEvaluationPlan: { enabled: true, rubric: "PassFail" },
  },
  artifactPlan: {
    recordingEnabled: true,
    recordingFormat: "mp3",
    transcriptPlan: { enabled: true, assistantName: "AI", userName: "User" },
  },
  monitorPlan: { listenEnabled: true, controlEnabled: true },
  metadata: { team: "support", tier: 2, nested: { any: ["thing"] } },
  credentialIds: [TOOL_ID],
  hooks: [{ on: "customer.speech.timeout", do: [{ type: "say", exact: "Are you still there?" }] }],
};

test("a full realistic assistant body is valid", () => {
  assertValid(CreateAssistantDTO, fullAssistant);
  assertValid(UpdateAssistantDTO, { name: "Renamed" });
  assertValid(CreateAssistantDTO, {});
});

test("the create body gets no JSON-schema defaults (Vapi stores what was sent)", () => {
  const body = { name: "x", model: { provider: "openai", model: "gpt-4o" } };
  assertValid(CreateAssistantDTO, body);
  assert.deepEqual(body, { name: "x", model: { provider: "openai", model: "gpt-4o" } });
});

test("an unknown top-level field is rejected and named", () => {
  const error = firstError(CreateAssistantDTO, { ...fullAssistant, voiceMail: "x" });
  assert.equal(error.keyword, "additionalProperties");
  assert.equal(error.instancePath, "");
  assert.deepEqual(error.params, { additionalProperty: "voiceMail" });
});

test("an unknown nested field (model.foo) is rejected and named", () => {
  const error = firstError(CreateAssistantDTO, { model: { ...fullAssistant.model, foo: 1 } });
  assert.equal(error.keyword, "additionalProperties");
  assert.equal(error.instancePath, "/model");
  assert.deepEqual(error.params, { additionalProperty: "foo" });

  const deep = firstError(CreateAssistantDTO, {
    startSpeakingPlan: { transcriptionEndpointingPlan: { onCommaSeconds: 1 } },
  });
  assert.equal(deep.instancePath, "/startSpeakingPlan/transcriptionEndpointingPlan");
  assert.deepEqual(deep.params, { additionalProperty: "onCommaSeconds" });
});

test("unsupported providers and unknown model ids are rejected", () => {
  // The providers' shapes are picked by `provider`: one Switchboard does not run is refused as such…
  const provider = firstError(CreateAssistantDTO, { model: { provider: "groq", model: "llama-3.1-8b" } });
  assert.equal(provider.instancePath, "/model");
  assert.equal(provider.keyword, "discriminator");
  assert.equal((provider.params as { tagValue?: string }).tagValue, "groq");
  // …and a model the chosen provider does not serve is named as the provider's model.
  const crossed = firstError(CreateAssistantDTO, { model: { provider: "anthropic", model: "gpt-4o" } });
  assert.equal(crossed.instancePath, "/model/model");
  assert.equal(crossed.keyword, "enum");

  const model = firstError(CreateAssistantDTO, { model: { provider: "openai", model: "gpt-99" } });
  assert.equal(model.instancePath, "/model/model");
  assert.equal(model.keyword, "enum");

  const voiceModel = firstError(CreateAssistantDTO, {
    voice: { provider: "11labs", voiceId: "abc", model: "eleven_turbo_v9" },
  });
  assert.equal(voiceModel.instancePath, "/voice/model");

  const stt = firstError(CreateAssistantDTO, { transcriber: { provider: "deepgram", model: "nova-9" } });
  assert.equal(stt.instancePath, "/transcriber/model");
});

test("Vapi's limits are enforced", () => {
  assert.equal(firstError(CreateAssistantDTO, { name: "x".repeat(41) }).instancePath, "/name");
  assert.equal(firstError(CreateAssistantDTO, { maxDurationSeconds: 5 }).instancePath, "/maxDurationSeconds");
  assert.equal(
    firstError(CreateAssistantDTO, { model: { provider: "openai", model: "gpt-4o", temperature: 2.5 } })
      .instancePath,
    "/model/temperature",
  );
  assert.equal(
    firstError(CreateAssistantDTO, { model: { provider: "openai", model: "gpt-4o", maxTokens: 10 } })
      .instancePath,
    "/model/maxTokens",
  );
  assert.equal(
    firstError(CreateAssistantDTO, { server: { url: "https://x.example", timeoutSeconds: 301 } })
      .instancePath,
    "/server/timeoutSeconds",
  );
  assert.equal(
    firstError(CreateAssistantDTO, { stopSpeakingPlan: { voiceSeconds: 0.6 } }).instancePath,
    "/stopSpeakingPlan/voiceSeconds",
  );
  assert.equal(
    firstError(CreateAssistantDTO, { serverMessages: ["not-a-message"] }).instancePath,
    "/serverMessages/0",
  );
});

test("a bad E.164 number is rejected", () => {
  const phone = {
    provider: "twilio",
    number: "+14155550123",
    twilioAccountSid: `AC${"a".repeat(32)}`,
    twilioAuthToken: "token",
    name: "Main line",
    assistantId: ASSISTANT_ID,
    server: { url: "https://hooks.example.com/vapi" },
    fallbackDestination: { type: "number", number: "+14155550100", message: "Connecting you." },
    smsEnabled: false,
  };
  assertValid(CreateTwilioPhoneNumberDTO, phone);

  const number = firstError(CreateTwilioPhoneNumberDTO, { ...phone, number: "4155550123" });
  assert.equal(number.instancePath, "/number");
  assert.equal(number.keyword, "pattern");

  const sid = firstError(CreateTwilioPhoneNumberDTO, { ...phone, twilioAccountSid: "AC123" });
  assert.equal(sid.instancePath, "/twilioAccountSid");

  const fallback = firstError(CreateTwilioPhoneNumberDTO, {
    ...phone,
    fallbackDestination: { type: "number", number: "+0123" },
  });
  assert.equal(fallback.instancePath, "/fallbackDestination/number");

  assert.equal(
    firstError(CreateCallDTO, { assistantId: ASSISTANT_ID, customer: { number: "555-0100" } }).instancePath,
    "/customer/number",
  );
  assertValid(UpdateTwilioPhoneNumberDTO, { name: "Renamed" });
  assert.deepEqual(firstError(UpdateTwilioPhoneNumberDTO, { status: "active" }).params, {
    additionalProperty: "status",
  });
});

test("each tool type validates, alone and through the union", () => {
  const tools = {
    function: functionTool,
    endCall: endCallTool,
    transferCall: transferCallTool,
    dtmf: dtmfTool,
  };
  for (const [type, body] of Object.entries(tools)) {
    const schema = createToolSchemas[type as keyof typeof createToolSchemas];
    assertValid(schema, body);
    assertValid(CreateToolDTO, body);
  }
  assertValid(updateToolSchemas.function, { async: true });
  assert.equal(
    firstError(updateToolSchemas.function, { type: "endCall" }).instancePath,
    "/type",
    "a tool's type cannot change",
  );

  const badName = firstError(createToolSchemas.function, {
    type: "function",
    function: { name: "get weather!" },
  });
  assert.equal(badName.instancePath, "/function/name");

  const badMessage = firstError(createToolSchemas.endCall, {
    type: "endCall",
    messages: [{ type: "request-start", content: "Bye", extra: true }],
  });
  assert.equal(badMessage.instancePath, "/messages/0");
});

test("squads need at least one member", () => {
  assertValid(CreateSquadDTO, {
    name: "Support",
    members: [
      {
        assistantId: ASSISTANT_ID,
        assistantDestinations: [{ type: "assistant", assistantName: "Billing", message: "" }],
      },
      {
        assistant: { name: "Billing", firstMessage: "Billing here." },
        assistantOverrides: { variableValues: {} },
      },
    ],
    membersOverrides: { variableValues: { company: "Acme" } },
  });
  assert.equal(firstError(CreateSquadDTO, { members: [] }).instancePath, "/members");
});

test("credentials are validated per provider", () => {
  assertValid(createCredentialSchemas.openai, { provider: "openai", apiKey: "sk-x", name: "Prod" });
  assertValid(createCredentialSchemas.twilio, {
    provider: "twilio",
    accountSid: `AC${"0".repeat(32)}`,
    authToken: "t",
  });
  assertValid(CreateCredentialDTO, { provider: "11labs", apiKey: "x" });
  assert.equal(
    firstError(createCredentialSchemas.deepgram, { provider: "deepgram", apiKey: "" }).instancePath,
    "/apiKey",
  );
  assert.deepEqual(
    firstError(createCredentialSchemas.openai, { provider: "openai", apiKey: "x", accountSid: "AC" }).params,
    { additionalProperty: "accountSid" },
  );
});

test("list queries take Vapi's filters", () => {
  const query: Record<string, unknown> = { createdAtGt: "2025-01-01T00:00:00Z" };
  assertValid(ListQuery, query);
  assert.equal(query.limit, 100);
  assert.equal(firstError(ListQuery, { limit: 1001 }).instancePath, "/limit");
});

test("an object typed as the SDK's Vapi.CreateAssistantDto is accepted", () => {
  const body: Vapi.CreateAssistantDto = {
    name: "SDK assistant",
    firstMessage: "Hello!",
    firstMessageMode: "assistant-waits-for-user",
    firstMessageInterruptionsEnabled: true,
    model: {
      provider: "openai",
      model: "gpt-4.1-mini",
      messages: [{ role: "system", content: "Be brief." }],
      temperature: 0.7,
      maxTokens: 250,
      emotionRecognitionEnabled: false,
      numFastTurns: 0,
      toolIds: [TOOL_ID],
      tools: [
        {
          type: "function",
          async: true,
          function: {
            name: "lookup_order",
            description: "Find an order",
            strict: true,
            parameters: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
          },
          server: { url: "https://tools.example.com", timeoutSeconds: 5, headers: { "x-key": "v" } },
          messages: [{ type: "request-start", content: "One moment." }],
        },
        { type: "endCall" },
        {
          type: "transferCall",
          destinations: [{ type: "number", number: "+442071234567", message: "Transferring." }],
        },
        { type: "dtmf" },
      ],
    },
    voice: {
      provider: "11labs",
      voiceId: "burt",
      model: "eleven_flash_v2_5",
      stability: 0.4,
      similarityBoost: 0.8,
      style: 0.1,
      useSpeakerBoost: false,
      speed: 1,
      optimizeStreamingLatency: 4,
      enableSsmlParsing: true,
      language: "en",
      chunkPlan: { enabled: true, minCharacters: 20, punctuationBoundaries: ["。", ","] },
    },
    transcriber: {
      provider: "deepgram",
      model: "flux-general-en",
      language: "multi",
      smartFormat: false,
      numerals: true,
      keywords: ["Switchboard"],
      keyterm: ["voice agent"],
      endpointing: 10,
      confidenceThreshold: 0.5,
    },
    server: { url: "https://hooks.example.com", timeoutSeconds: 20, headers: { a: "b" } },
    serverMessages: ["end-of-call-report", 'transcript[transcriptType="final"]'],
    clientMessages: ["conversation-update"],
    endCallMessage: "Bye",
    endCallPhrases: ["bye now"],
    maxDurationSeconds: 600,
    backgroundSound: "off",
    voicemailMessage: "Call back later",
    startSpeakingPlan: {
      waitSeconds: 0.6,
      smartEndpointingEnabled: "livekit",
      transcriptionEndpointingPlan: {
        onPunctuationSeconds: 0.2,
        onNoPunctuationSeconds: 1,
        onNumberSeconds: 0.4,
      },
    },
    stopSpeakingPlan: { numWords: 2, voiceSeconds: 0.3, backoffSeconds: 2 },
    analysisPlan: {
      minMessagesThreshold: 1,
      summaryPlan: { enabled: false },
      successEvaluationPlan: { rubric: "NumericScale", timeoutSeconds: 10 },
    },
    artifactPlan: { recordingEnabled: false, transcriptPlan: { enabled: false } },
    monitorPlan: { listenEnabled: false, controlEnabled: false },
    metadata: { source: "sdk" },
    credentialIds: [ASSISTANT_ID],
    hooks: [{ on: "call.ending", do: [{ type: "tool", toolId: TOOL_ID }] }],
  };
  assertValid(CreateAssistantDTO, body);
});

// Compile-time check that what we store and return is a valid Vapi object: `Check<Ours, Theirs>` only
// type-checks when our Static type is assignable to the SDK's. Left out on purpose:
// - `Server` and `TransferPlan`: the SDK types `backoffPlan.type` and `sipVerb` as objects (a bug in
//   Vapi's spec; on the wire they are strings);
// - the Deepgram transcriber: our model/language enums follow Vapi's current OpenAPI spec, a superset of
//   SDK 2.0.1's;
// - fields we accept as free-form where the SDK has typed unions (hooks, smartEndpointingPlan, JSON
//   Schema in function parameters and structuredDataPlan.schema).
type Check<Ours extends Theirs, Theirs> = Ours extends Theirs ? true : never;

test("our static types stay assignable to the SDK's types", () => {
  const checks: boolean[] = [
    true satisfies Check<Omit<vapi.OpenAiModel, "provider" | "tools">, Vapi.OpenAiModel>,
    true satisfies Check<Omit<vapi.ElevenLabsVoice, "provider">, Vapi.ElevenLabsVoice>,
    true satisfies Check<vapi.StopSpeakingPlan, Vapi.StopSpeakingPlan>,
    true satisfies Check<vapi.ArtifactPlan, Vapi.ArtifactPlan>,
    true satisfies Check<vapi.MonitorPlan, Vapi.MonitorPlan>,
    true satisfies Check<vapi.ToolMessage, Vapi.CreateFunctionToolDtoMessagesItem>,
    true satisfies Check<vapi.CreateEndCallToolDTO, Vapi.OpenAiModelToolsItem>,
    true satisfies Check<vapi.CreateDtmfToolDTO, Vapi.OpenAiModelToolsItem>,
    true satisfies Check<vapi.CreateCustomerDTO, Vapi.CreateCustomerDto>,
  ];
  assert.ok(checks.every(Boolean));
});

test("every exported schema compiles under Fastify's ajv options", () => {
  let compiled = 0;
  for (const value of Object.values(vapi)) {
    if (
      value &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      ("type" in value || "anyOf" in value)
    ) {
      ajv.compile(value as TSchema);
      compiled++;
    }
  }
  assert.ok(compiled > 40, `compiled ${compiled} schemas`);
});

test("response serialization drops secrets and undeclared fields", () => {
  const now = new Date().toISOString();
  const base = { id: ASSISTANT_ID, orgId: TOOL_ID, createdAt: now, updatedAt: now };

  const phone = fastJson(TwilioPhoneNumber)({
    ...base,
    provider: "twilio",
    number: "+14155550123",
    twilioAccountSid: `AC${"a".repeat(32)}`,
    twilioAuthToken: "must-not-leak",
    status: "active",
    server: { url: "https://x.example", headers: { a: "b" } },
  });
  assert.ok(!phone.includes("must-not-leak"));
  assert.equal(JSON.parse(phone).server.headers.a, "b");

  const credential = fastJson(Credential)({ ...base, provider: "openai", apiKey: "sk-leak", name: "k" });
  assert.deepEqual(JSON.parse(credential), { ...base, provider: "openai", name: "k" });

  // Schemas that embed shared ones by $ref, serialised as the API does (libs/http/serialization.ts).
  const shared = Object.fromEntries(SHARED_SCHEMAS.map((s) => [s.$id, s]));
  const serializer = (schema: TSchema) =>
    fastJson(simplifyForSerialization(schema, shared) as Parameters<typeof fastJson>[0]);
  const tool = JSON.parse(serializer(Tool)({ ...base, ...functionTool, internalNote: "x" }));
  assert.equal(tool.internalNote, undefined);
  assert.deepEqual(tool.function.parameters, functionTool.function.parameters);

  const assistant = JSON.parse(serializer(vapi.Assistant)({ ...base, ...fullAssistant }));
  assert.deepEqual(assistant.metadata, fullAssistant.metadata);
  assert.deepEqual(assistant.model.tools, fullAssistant.model.tools);
});

test("resolveAssistantDefaults fills Vapi's defaults without touching what was set", () => {
  const resolved = resolveAssistantDefaults({
    model: { provider: "openai", model: "gpt-4o", temperature: 0.9 },
    stopSpeakingPlan: { numWords: 3 },
  });
  assert.equal(resolved.firstMessageMode, "assistant-speaks-first");
  assert.equal(resolved.maxDurationSeconds, 600);
  assert.equal(resolved.silenceTimeoutSeconds, 30);
  assert.equal(resolved.backgroundSound, "office");
  assert.equal(resolved.model?.temperature, 0.9);
  assert.equal(resolved.model?.maxTokens, 250);
  assert.equal(resolved.startSpeakingPlan.waitSeconds, 0.4);
  assert.deepEqual(resolved.startSpeakingPlan.transcriptionEndpointingPlan, {
    onPunctuationSeconds: 0.1,
    onNoPunctuationSeconds: 1.5,
    onNumberSeconds: 0.5,
  });
  assert.equal(resolved.stopSpeakingPlan.numWords, 3);
  assert.equal(resolved.stopSpeakingPlan.voiceSeconds, 0.2);
  assert.equal(resolved.stopSpeakingPlan.backoffSeconds, 1);
  assert.deepEqual(resolved.serverMessages, [...ASSISTANT_DEFAULTS.serverMessages]);
  assert.equal(resolved.voice, undefined);
  assert.equal(resolveAssistantDefaults({}, { callType: "webCall" }).backgroundSound, "off");
  assert.equal(
    resolveAssistantDefaults({ server: { url: "https://x.example" } }).server?.timeoutSeconds,
    ASSISTANT_DEFAULTS.server.timeoutSeconds,
  );
});
