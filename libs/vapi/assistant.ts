import { type Static, Type } from "@sinclair/typebox";
import {
  FreeformObject,
  LIST_LIMITS,
  ProviderUnion,
  resourceFields,
  Server,
  SharedRef,
  STRICT,
  StringEnum,
  StringRecord,
  TEXT_LIMITS,
  Uuid,
} from "./common.ts";
import {
  ANTHROPIC_MODELS,
  ASSEMBLYAI_LANGUAGE_CODES,
  ASSEMBLYAI_LANGUAGES,
  ASSEMBLYAI_MODES,
  ASSEMBLYAI_SPEECH_MODELS,
  ASSISTANT_CLIENT_MESSAGES,
  ASSISTANT_SERVER_MESSAGES,
  CARTESIA_EMOTIONS,
  CARTESIA_LANGUAGES,
  CARTESIA_MODELS,
  CARTESIA_SPEED_PRESETS,
  DEEPGRAM_LANGUAGES,
  DEEPGRAM_MODELS,
  DEEPGRAM_VOICE_IDS,
  DEEPGRAM_VOICE_MODELS,
  ELEVENLABS_MODELS,
  OPENAI_MODELS,
  OPENAI_TRANSCRIBER_LANGUAGES,
  OPENAI_TRANSCRIBER_MODELS,
  OPENAI_VOICE_MODELS,
  PUNCTUATION_BOUNDARIES,
} from "./enums.ts";
import { CreateToolDTO } from "./tool.ts";

export const FIRST_MESSAGE_MODES = [
  "assistant-speaks-first",
  "assistant-speaks-first-with-model-generated-message",
  "assistant-waits-for-user",
] as const;
export type FirstMessageMode = (typeof FIRST_MESSAGE_MODES)[number];

export type AssistantServerMessage = (typeof ASSISTANT_SERVER_MESSAGES)[number];
export type AssistantClientMessage = (typeof ASSISTANT_CLIENT_MESSAGES)[number];

// --- model -------------------------------------------------------------------------------------------

export const OpenAiMessage = Type.Object(
  {
    role: StringEnum(["assistant", "function", "user", "system", "tool"] as const),
    content: Type.Union([Type.String({ maxLength: 100_000_000 }), Type.Null()]),
  },
  { ...STRICT, title: "OpenAiMessage" },
);
export type OpenAiMessage = Static<typeof OpenAiMessage>;

export const OpenAiModel = Type.Object(
  {
    provider: Type.Literal("openai"),
    model: StringEnum(OPENAI_MODELS),
    messages: Type.Optional(Type.Array(OpenAiMessage, { maxItems: LIST_LIMITS.messages })),
    tools: Type.Optional(Type.Array(SharedRef(CreateToolDTO), { maxItems: LIST_LIMITS.tools })),
    toolIds: Type.Optional(Type.Array(Uuid, { maxItems: LIST_LIMITS.tools })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    maxTokens: Type.Optional(Type.Number({ minimum: 50, maximum: 10000 })),
    emotionRecognitionEnabled: Type.Optional(Type.Boolean()),
    numFastTurns: Type.Optional(Type.Number({ minimum: 0 })),
    // Vapi's: other OpenAI models tried in order when the model fails mid-call (retries exhausted).
    fallbackModels: Type.Optional(Type.Array(StringEnum(OPENAI_MODELS), { maxItems: 5 })),
  },
  { ...STRICT, title: "OpenAiModel" },
);
export type OpenAiModel = Static<typeof OpenAiModel>;

/** Vapi's AnthropicThinkingConfig: Anthropic's manual extended thinking (anthropic-rules.ts: which models). */
export const AnthropicThinkingConfig = Type.Object(
  {
    type: Type.Literal("enabled"),
    budgetTokens: Type.Number({ minimum: 1024, maximum: 100000 }),
  },
  { ...STRICT, title: "AnthropicThinkingConfig" },
);

export const AnthropicModel = Type.Object(
  {
    provider: Type.Literal("anthropic"),
    model: StringEnum(ANTHROPIC_MODELS),
    messages: Type.Optional(Type.Array(OpenAiMessage, { maxItems: LIST_LIMITS.messages })),
    tools: Type.Optional(Type.Array(SharedRef(CreateToolDTO), { maxItems: LIST_LIMITS.tools })),
    toolIds: Type.Optional(Type.Array(Uuid, { maxItems: LIST_LIMITS.tools })),
    thinking: Type.Optional(AnthropicThinkingConfig),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    maxTokens: Type.Optional(Type.Number({ minimum: 50, maximum: 10000 })),
    emotionRecognitionEnabled: Type.Optional(Type.Boolean()),
    numFastTurns: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { ...STRICT, title: "AnthropicModel" },
);
export type AnthropicModel = Static<typeof AnthropicModel>;

/** Vapi's CustomLLMModel: an OpenAI-compatible server of the customer's (libs/providers/custom-llm.ts). */
export const CustomLlmModel = Type.Object(
  {
    provider: Type.Literal("custom-llm"),
    url: Type.String({
      format: "uri",
      maxLength: TEXT_LIMITS.url,
      description: "The OpenAI client's base URL: requests go to `${url}/chat/completions`",
    }),
    model: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier }),
    messages: Type.Optional(Type.Array(OpenAiMessage, { maxItems: LIST_LIMITS.messages })),
    tools: Type.Optional(Type.Array(SharedRef(CreateToolDTO), { maxItems: LIST_LIMITS.tools })),
    toolIds: Type.Optional(Type.Array(Uuid, { maxItems: LIST_LIMITS.tools })),
    metadataSendMode: Type.Optional(StringEnum(["off", "variable", "destructured"] as const)),
    headers: Type.Optional(StringRecord),
    wordLevelConfidenceEnabled: Type.Optional(Type.Boolean()),
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 300 })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    maxTokens: Type.Optional(Type.Number({ minimum: 50, maximum: 10000 })),
    emotionRecognitionEnabled: Type.Optional(Type.Boolean()),
    numFastTurns: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { ...STRICT, title: "CustomLLMModel" },
);
export type CustomLlmModel = Static<typeof CustomLlmModel>;

/** The assistant's `model`: one of the providers' shapes, picked by `provider`. */
export const AssistantModel = ProviderUnion([OpenAiModel, AnthropicModel, CustomLlmModel], {
  $id: "AssistantModel",
  title: "AssistantModel",
});
export type AssistantModel = Static<typeof AssistantModel>;

// --- voice -------------------------------------------------------------------------------------------

export const ChunkPlan = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    minCharacters: Type.Optional(Type.Number({ minimum: 1, maximum: 80 })),
    punctuationBoundaries: Type.Optional(
      Type.Array(StringEnum(PUNCTUATION_BOUNDARIES), { maxItems: PUNCTUATION_BOUNDARIES.length }),
    ),
    formatPlan: Type.Optional(FreeformObject),
  },
  { ...STRICT, title: "ChunkPlan" },
);
export type ChunkPlan = Static<typeof ChunkPlan>;

export const FallbackElevenLabsVoice = Type.Object(
  {
    provider: Type.Literal("11labs"),
    voiceId: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier }),
    model: Type.Optional(StringEnum(ELEVENLABS_MODELS)),
    stability: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    similarityBoost: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    style: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    useSpeakerBoost: Type.Optional(Type.Boolean()),
    speed: Type.Optional(Type.Number({ minimum: 0.7, maximum: 1.2 })),
    optimizeStreamingLatency: Type.Optional(Type.Number({ minimum: 0, maximum: 4 })),
    enableSsmlParsing: Type.Optional(Type.Boolean()),
    autoMode: Type.Optional(Type.Boolean()),
    language: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.identifier })),
    cachingEnabled: Type.Optional(Type.Boolean()),
    chunkPlan: Type.Optional(ChunkPlan),
  },
  { ...STRICT, title: "FallbackElevenLabsVoice" },
);

export const CartesiaExperimentalControls = Type.Object(
  {
    speed: Type.Optional(
      Type.Union([StringEnum(CARTESIA_SPEED_PRESETS), Type.Number({ minimum: -1, maximum: 1 })]),
    ),
    emotion: Type.Optional(StringEnum(CARTESIA_EMOTIONS)),
  },
  { ...STRICT, title: "CartesiaExperimentalControls" },
);

export const CartesiaGenerationConfig = Type.Object(
  {
    speed: Type.Optional(Type.Number({ minimum: 0.6, maximum: 1.5 })),
    volume: Type.Optional(Type.Number({ minimum: 0.5, maximum: 2 })),
    experimental: Type.Optional(
      Type.Object(
        { accentLocalization: Type.Optional(Type.Integer({ minimum: 0, maximum: 1 })) },
        { ...STRICT, title: "CartesiaGenerationConfigExperimental" },
      ),
    ),
  },
  { ...STRICT, title: "CartesiaGenerationConfig" },
);

export const FallbackCartesiaVoice = Type.Object(
  {
    provider: Type.Literal("cartesia"),
    voiceId: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier }),
    model: Type.Optional(StringEnum(CARTESIA_MODELS)),
    language: Type.Optional(StringEnum(CARTESIA_LANGUAGES)),
    experimentalControls: Type.Optional(CartesiaExperimentalControls),
    generationConfig: Type.Optional(CartesiaGenerationConfig),
    pronunciationDictId: Type.Optional(Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier })),
    cachingEnabled: Type.Optional(Type.Boolean()),
    chunkPlan: Type.Optional(ChunkPlan),
  },
  { ...STRICT, title: "FallbackCartesiaVoice" },
);

export const FallbackDeepgramVoice = Type.Object(
  {
    provider: Type.Literal("deepgram"),
    voiceId: StringEnum(DEEPGRAM_VOICE_IDS),
    model: Type.Optional(StringEnum(DEEPGRAM_VOICE_MODELS)),
    mipOptOut: Type.Optional(Type.Boolean()),
    cachingEnabled: Type.Optional(Type.Boolean()),
    chunkPlan: Type.Optional(ChunkPlan),
  },
  { ...STRICT, title: "FallbackDeepgramVoice" },
);

export const FallbackOpenAiVoice = Type.Object(
  {
    provider: Type.Literal("openai"),
    // A preset name (alloy, echo…: OPENAI_VOICE_PRESETS) or a custom voice's id.
    voiceId: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier }),
    model: Type.Optional(StringEnum(OPENAI_VOICE_MODELS)),
    instructions: Type.Optional(Type.String({ maxLength: 10_000 })),
    speed: Type.Optional(Type.Number({ minimum: 0.25, maximum: 4 })),
    cachingEnabled: Type.Optional(Type.Boolean()),
    chunkPlan: Type.Optional(ChunkPlan),
  },
  { ...STRICT, title: "FallbackOpenAIVoice" },
);

/**
 * Vapi's FallbackPlan: voices tried in order when the voice fails mid-call (retries exhausted), for
 * the rest of the call; an entry is a voice of its provider's shape without a plan of its own.
 */
export const FallbackPlan = Type.Object(
  {
    voices: Type.Array(
      ProviderUnion([
        FallbackElevenLabsVoice,
        FallbackCartesiaVoice,
        FallbackDeepgramVoice,
        FallbackOpenAiVoice,
      ]),
      { maxItems: 5 },
    ),
  },
  { ...STRICT, $id: "FallbackPlan", title: "FallbackPlan" },
);
export type FallbackPlan = Static<typeof FallbackPlan>;

// Shared: each voice branch would otherwise carry its own copy of every fallback voice.
const voicePlan = { fallbackPlan: Type.Optional(SharedRef(FallbackPlan)) };
export const ElevenLabsVoice = Type.Object(
  { ...FallbackElevenLabsVoice.properties, ...voicePlan },
  { ...STRICT, title: "ElevenLabsVoice" },
);
export type ElevenLabsVoice = Static<typeof ElevenLabsVoice>;
export const CartesiaVoice = Type.Object(
  { ...FallbackCartesiaVoice.properties, ...voicePlan },
  { ...STRICT, title: "CartesiaVoice" },
);
export type CartesiaVoice = Static<typeof CartesiaVoice>;
export const DeepgramVoice = Type.Object(
  { ...FallbackDeepgramVoice.properties, ...voicePlan },
  { ...STRICT, title: "DeepgramVoice" },
);
export type DeepgramVoice = Static<typeof DeepgramVoice>;
export const OpenAiVoice = Type.Object(
  { ...FallbackOpenAiVoice.properties, ...voicePlan },
  { ...STRICT, title: "OpenAIVoice" },
);
export type OpenAiVoice = Static<typeof OpenAiVoice>;

/** The assistant's `voice`: one of the providers' shapes, picked by `provider`. */
export const AssistantVoice = ProviderUnion([ElevenLabsVoice, CartesiaVoice, DeepgramVoice, OpenAiVoice], {
  $id: "AssistantVoice",
  title: "AssistantVoice",
});
export type AssistantVoice = Static<typeof AssistantVoice>;

// --- transcriber -------------------------------------------------------------------------------------

export const FallbackDeepgramTranscriber = Type.Object(
  {
    provider: Type.Literal("deepgram"),
    model: Type.Optional(StringEnum(DEEPGRAM_MODELS)),
    language: Type.Optional(StringEnum(DEEPGRAM_LANGUAGES)),
    smartFormat: Type.Optional(Type.Boolean()),
    numerals: Type.Optional(Type.Boolean()),
    profanityFilter: Type.Optional(Type.Boolean()),
    mipOptOut: Type.Optional(Type.Boolean()),
    // Deepgram keyword boosting syntax: a single word, optionally `word:intensifier`.
    keywords: Type.Optional(
      Type.Array(
        Type.String({ maxLength: TEXT_LIMITS.identifier, pattern: "^\\p{L}[\\p{L}\\d]*(?::[+-]?\\d+)?$" }),
        { maxItems: LIST_LIMITS.items },
      ),
    ),
    keyterm: Type.Optional(
      Type.Array(Type.String({ maxLength: TEXT_LIMITS.identifier }), { maxItems: LIST_LIMITS.items }),
    ),
    endpointing: Type.Optional(Type.Number({ minimum: 10, maximum: 500 })),
    confidenceThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    eotThreshold: Type.Optional(Type.Number({ minimum: 0.5, maximum: 0.9 })),
    eotTimeoutMs: Type.Optional(Type.Number({ minimum: 500, maximum: 10000 })),
  },
  { ...STRICT, title: "FallbackDeepgramTranscriber" },
);

export const FallbackAssemblyAiTranscriber = Type.Object(
  {
    provider: Type.Literal("assembly-ai"),
    language: Type.Optional(StringEnum(ASSEMBLYAI_LANGUAGES)),
    confidenceThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    formatTurns: Type.Optional(Type.Boolean()),
    endOfTurnConfidenceThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    minEndOfTurnSilenceWhenConfident: Type.Optional(Type.Number({ minimum: 0, maximum: 10_000 })),
    wordFinalizationMaxWaitTime: Type.Optional(Type.Number({ minimum: 0 })),
    maxTurnSilence: Type.Optional(Type.Number({ minimum: 0, maximum: 10_000 })),
    vadAssistedEndpointingEnabled: Type.Optional(Type.Boolean()),
    mode: Type.Optional(StringEnum(ASSEMBLYAI_MODES)),
    prompt: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.description })),
    agentContext: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.description })),
    languageCodes: Type.Optional(
      Type.Array(StringEnum(ASSEMBLYAI_LANGUAGE_CODES), { maxItems: ASSEMBLYAI_LANGUAGE_CODES.length }),
    ),
    speechModel: Type.Optional(StringEnum(ASSEMBLYAI_SPEECH_MODELS)),
    realtimeUrl: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.url })),
    wordBoost: Type.Optional(
      Type.Array(Type.String({ maxLength: TEXT_LIMITS.identifier }), { maxItems: LIST_LIMITS.items }),
    ),
    // AssemblyAI: up to 100 keyterms of up to 50 characters (libs/providers/assemblyai-rules.ts says so).
    keytermsPrompt: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: TEXT_LIMITS.identifier }), {
        maxItems: LIST_LIMITS.items,
      }),
    ),
    endUtteranceSilenceThreshold: Type.Optional(Type.Number({ minimum: 0 })),
    disablePartialTranscripts: Type.Optional(Type.Boolean()),
  },
  { ...STRICT, title: "FallbackAssemblyAITranscriber" },
);

export const FallbackOpenAiTranscriber = Type.Object(
  {
    provider: Type.Literal("openai"),
    model: StringEnum(OPENAI_TRANSCRIBER_MODELS),
    language: Type.Optional(StringEnum(OPENAI_TRANSCRIBER_LANGUAGES)),
  },
  { ...STRICT, title: "FallbackOpenAITranscriber" },
);

/**
 * Vapi's FallbackTranscriberPlan: transcribers tried in order when the transcriber fails mid-call
 * (retries exhausted), for the rest of the call. (Vapi's docs also show `autoFallback`, Vapi
 * choosing one itself; its spec does not have it, and it is refused here.)
 */
export const FallbackTranscriberPlan = Type.Object(
  {
    transcribers: Type.Optional(
      Type.Array(
        ProviderUnion([
          FallbackDeepgramTranscriber,
          FallbackAssemblyAiTranscriber,
          FallbackOpenAiTranscriber,
        ]),
        { maxItems: 5 },
      ),
    ),
  },
  { ...STRICT, $id: "FallbackTranscriberPlan", title: "FallbackTranscriberPlan" },
);
export type FallbackTranscriberPlan = Static<typeof FallbackTranscriberPlan>;

const transcriberPlan = { fallbackPlan: Type.Optional(SharedRef(FallbackTranscriberPlan)) };
export const DeepgramTranscriber = Type.Object(
  { ...FallbackDeepgramTranscriber.properties, ...transcriberPlan },
  { ...STRICT, title: "DeepgramTranscriber" },
);
export type DeepgramTranscriber = Static<typeof DeepgramTranscriber>;
export const AssemblyAiTranscriber = Type.Object(
  { ...FallbackAssemblyAiTranscriber.properties, ...transcriberPlan },
  { ...STRICT, title: "AssemblyAITranscriber" },
);
export type AssemblyAiTranscriber = Static<typeof AssemblyAiTranscriber>;
export const OpenAiTranscriber = Type.Object(
  { ...FallbackOpenAiTranscriber.properties, ...transcriberPlan },
  { ...STRICT, title: "OpenAITranscriber" },
);
export type OpenAiTranscriber = Static<typeof OpenAiTranscriber>;

/** The assistant's `transcriber`: one of the providers' shapes, picked by `provider`. */
export const AssistantTranscriber = ProviderUnion(
  [DeepgramTranscriber, AssemblyAiTranscriber, OpenAiTranscriber],
  { $id: "AssistantTranscriber", title: "AssistantTranscriber" },
);
export type AssistantTranscriber = Static<typeof AssistantTranscriber>;

// --- turn-taking plans -------------------------------------------------------------------------------

export const TranscriptionEndpointingPlan = Type.Object(
  {
    onPunctuationSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 3 })),
    onNoPunctuationSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 3 })),
    onNumberSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 3 })),
  },
  { ...STRICT, title: "TranscriptionEndpointingPlan" },
);
export type TranscriptionEndpointingPlan = Static<typeof TranscriptionEndpointingPlan>;

export const StartSpeakingPlan = Type.Object(
  {
    waitSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 5 })),
    smartEndpointingEnabled: Type.Optional(Type.Union([Type.Boolean(), Type.Literal("livekit")])),
    smartEndpointingPlan: Type.Optional(FreeformObject),
    transcriptionEndpointingPlan: Type.Optional(TranscriptionEndpointingPlan),
    customEndpointingRules: Type.Optional(Type.Array(FreeformObject, { maxItems: LIST_LIMITS.items })),
  },
  { ...STRICT, title: "StartSpeakingPlan" },
);
export type StartSpeakingPlan = Static<typeof StartSpeakingPlan>;

export const StopSpeakingPlan = Type.Object(
  {
    numWords: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
    voiceSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 0.5 })),
    backoffSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
    acknowledgementPhrases: Type.Optional(
      Type.Array(Type.String({ maxLength: 240 }), { maxItems: LIST_LIMITS.items }),
    ),
    interruptionPhrases: Type.Optional(
      Type.Array(Type.String({ maxLength: 240 }), { maxItems: LIST_LIMITS.items }),
    ),
  },
  { ...STRICT, title: "StopSpeakingPlan" },
);
export type StopSpeakingPlan = Static<typeof StopSpeakingPlan>;

export const KEYPAD_DELIMITERS = ["#", "*", ""] as const;

/**
 * Vapi's KeypadInputPlan: the caller's keypad digits gathered into one user message. `delimiters` is
 * one of "#", "*" or "" (none) in Vapi's spec; its description ("or an empty array") and Vapi's own
 * examples also use an array, which is accepted too.
 */
export const KeypadInputPlan = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
    delimiters: Type.Optional(
      Type.Union([StringEnum(KEYPAD_DELIMITERS), Type.Array(StringEnum(KEYPAD_DELIMITERS), { maxItems: 3 })]),
    ),
  },
  { ...STRICT, title: "KeypadInputPlan" },
);
export type KeypadInputPlan = Static<typeof KeypadInputPlan>;

// --- analysis / artifacts / monitoring ---------------------------------------------------------------

const analysisStep = {
  enabled: Type.Optional(Type.Boolean()),
  // Prompt messages ({role, content}, with {{transcript}} etc. templated in).
  messages: Type.Optional(Type.Array(FreeformObject, { maxItems: LIST_LIMITS.items })),
  timeoutSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 60 })),
};

export const SummaryPlan = Type.Object(analysisStep, { ...STRICT, title: "SummaryPlan" });
export type SummaryPlan = Static<typeof SummaryPlan>;

export const StructuredDataPlan = Type.Object(
  { ...analysisStep, schema: Type.Optional(FreeformObject) },
  { ...STRICT, title: "StructuredDataPlan" },
);
export type StructuredDataPlan = Static<typeof StructuredDataPlan>;

export const SUCCESS_EVALUATION_RUBRICS = [
  "NumericScale",
  "DescriptiveScale",
  "Checklist",
  "Matrix",
  "PercentageScale",
  "LikertScale",
  "AutomaticRubric",
  "PassFail",
] as const;

export const SuccessEvaluationPlan = Type.Object(
  { ...analysisStep, rubric: Type.Optional(StringEnum(SUCCESS_EVALUATION_RUBRICS)) },
  { ...STRICT, title: "SuccessEvaluationPlan" },
);
export type SuccessEvaluationPlan = Static<typeof SuccessEvaluationPlan>;

export const AnalysisPlan = Type.Object(
  {
    minMessagesThreshold: Type.Optional(Type.Number({ minimum: 0 })),
    summaryPlan: Type.Optional(SummaryPlan),
    structuredDataPlan: Type.Optional(StructuredDataPlan),
    successEvaluationPlan: Type.Optional(SuccessEvaluationPlan),
  },
  { ...STRICT, title: "AnalysisPlan" },
);
export type AnalysisPlan = Static<typeof AnalysisPlan>;

export const TranscriptPlan = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    assistantName: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.name })),
    userName: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.name })),
  },
  { ...STRICT, title: "TranscriptPlan" },
);
export type TranscriptPlan = Static<typeof TranscriptPlan>;

export const ArtifactPlan = Type.Object(
  {
    recordingEnabled: Type.Optional(Type.Boolean()),
    // "mp3" is Vapi's too, and refused at save (config-checks: no encoder fits a call's budget).
    recordingFormat: Type.Optional(StringEnum(["wav;l16", "mp3"] as const)),
    /** The organisation's `s3` credential, when it has one, holds the recording (default true). */
    recordingUseCustomStorageEnabled: Type.Optional(Type.Boolean()),
    /** Below the credential's s3PathPrefix in the organisation's bucket (default "/"). */
    recordingPath: Type.Optional(
      Type.String({ maxLength: 200, pattern: "^(?!.*(^|/)\\.\\.?(/|$))[A-Za-z0-9!_.*'()/-]*$" }),
    ),
    videoRecordingEnabled: Type.Optional(Type.Boolean()),
    // SIP packet captures exist only on Vapi's own and BYO SIP numbers: accepted, never produced here.
    pcapUseCustomStorageEnabled: Type.Optional(Type.Boolean()),
    pcapS3PathPrefix: Type.Optional(Type.String({ maxLength: 200 })),
    fullMessageHistoryEnabled: Type.Optional(Type.Boolean()),
    pcapEnabled: Type.Optional(Type.Boolean()),
    loggingEnabled: Type.Optional(Type.Boolean()),
    transcriptPlan: Type.Optional(TranscriptPlan),
  },
  { ...STRICT, title: "ArtifactPlan" },
);
export type ArtifactPlan = Static<typeof ArtifactPlan>;

export const MonitorPlan = Type.Object(
  {
    listenEnabled: Type.Optional(Type.Boolean()),
    listenAuthenticationEnabled: Type.Optional(Type.Boolean()),
    controlEnabled: Type.Optional(Type.Boolean()),
    controlAuthenticationEnabled: Type.Optional(Type.Boolean()),
  },
  { ...STRICT, title: "MonitorPlan" },
);
export type MonitorPlan = Static<typeof MonitorPlan>;

// --- assistant ---------------------------------------------------------------------------------------

export const BackgroundSound = Type.Union([
  StringEnum(["off", "office"] as const),
  Type.String({
    format: "uri",
    maxLength: TEXT_LIMITS.url,
    description: "URL of an audio file to loop in the background.",
  }),
]);

/** Every assistant field; all optional, as in Vapi (a bare `{}` is a valid create body). */
export const assistantProperties = {
  name: Type.Optional(Type.String({ maxLength: 40 })),
  firstMessage: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.spoken })),
  firstMessageMode: Type.Optional(StringEnum(FIRST_MESSAGE_MODES)),
  firstMessageInterruptionsEnabled: Type.Optional(Type.Boolean()),
  model: Type.Optional(SharedRef(AssistantModel)),
  voice: Type.Optional(SharedRef(AssistantVoice)),
  transcriber: Type.Optional(SharedRef(AssistantTranscriber)),
  server: Type.Optional(Server),
  serverMessages: Type.Optional(
    Type.Array(StringEnum(ASSISTANT_SERVER_MESSAGES), { maxItems: ASSISTANT_SERVER_MESSAGES.length }),
  ),
  clientMessages: Type.Optional(
    Type.Array(StringEnum(ASSISTANT_CLIENT_MESSAGES), { maxItems: ASSISTANT_CLIENT_MESSAGES.length }),
  ),
  endCallMessage: Type.Optional(Type.String({ maxLength: 1000 })),
  endCallPhrases: Type.Optional(
    Type.Array(Type.String({ minLength: 2, maxLength: 140 }), { maxItems: LIST_LIMITS.items }),
  ),
  voicemailMessage: Type.Optional(Type.String({ maxLength: 1000 })),
  // Dropped from Vapi's current generated spec but still documented and honoured (range 10-3600).
  silenceTimeoutSeconds: Type.Optional(Type.Number({ minimum: 10, maximum: 3600 })),
  maxDurationSeconds: Type.Optional(Type.Number({ minimum: 10, maximum: 43200 })),
  backgroundSound: Type.Optional(BackgroundSound),
  startSpeakingPlan: Type.Optional(StartSpeakingPlan),
  stopSpeakingPlan: Type.Optional(StopSpeakingPlan),
  keypadInputPlan: Type.Optional(KeypadInputPlan),
  analysisPlan: Type.Optional(AnalysisPlan),
  artifactPlan: Type.Optional(ArtifactPlan),
  monitorPlan: Type.Optional(MonitorPlan),
  metadata: Type.Optional(FreeformObject),
  credentialIds: Type.Optional(Type.Array(Uuid, { maxItems: LIST_LIMITS.items })),
  hooks: Type.Optional(Type.Array(FreeformObject, { maxItems: LIST_LIMITS.items })),
};

export const CreateAssistantDTO = Type.Object(assistantProperties, {
  ...STRICT,
  $id: "CreateAssistantDTO",
  title: "CreateAssistantDTO",
});
export type CreateAssistantDTO = Static<typeof CreateAssistantDTO>;

/** PATCH /assistant/{id}: top-level partial; a nested object that is sent replaces the stored one. */
export const UpdateAssistantDTO = Type.Partial(CreateAssistantDTO, { title: "UpdateAssistantDTO" });
export type UpdateAssistantDTO = Static<typeof UpdateAssistantDTO>;

/** Per-call (or per-squad-member) changes merged over a saved assistant. */
export const AssistantOverrides = Type.Object(
  {
    ...assistantProperties,
    // Values for {{liquid}} variables in prompts and messages.
    variableValues: Type.Optional(FreeformObject),
    "tools:append": Type.Optional(Type.Array(SharedRef(CreateToolDTO), { maxItems: LIST_LIMITS.tools })),
  },
  { ...STRICT, $id: "AssistantOverrides", title: "AssistantOverrides" },
);
export type AssistantOverrides = Static<typeof AssistantOverrides>;

export const Assistant = Type.Object({ ...resourceFields, ...assistantProperties }, { title: "Assistant" });
export type Assistant = Static<typeof Assistant>;
