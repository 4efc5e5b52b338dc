import type { AssistantTranscriber, AssistantVoice, CreateAssistantDTO } from "./assistant.ts";
import type { CallType } from "./call.ts";
import { DEFAULT_CLIENT_MESSAGES, DEFAULT_SERVER_MESSAGES } from "./server-message.ts";

/**
 * Vapi's documented defaults. They are applied when a call starts, never written into the stored
 * assistant (Vapi returns exactly what the user sent), which is why the create schemas carry no `default`.
 */
export const ASSISTANT_DEFAULTS = {
  firstMessageMode: "assistant-speaks-first",
  firstMessageInterruptionsEnabled: false,
  maxDurationSeconds: 600,
  silenceTimeoutSeconds: 30,
  backgroundSound: { phone: "office", web: "off" },
  serverMessages: DEFAULT_SERVER_MESSAGES,
  clientMessages: DEFAULT_CLIENT_MESSAGES,
  model: {
    temperature: 0.5,
    maxTokens: 250,
    numFastTurns: 0,
    emotionRecognitionEnabled: false,
  },
  voice: {
    // Vapi: "Defaults to 'eleven_turbo_v2' if not specified" (11labs).
    model: "eleven_turbo_v2",
    /**
     * The model of each voice provider when `voice.model` is unset. Vapi documents 11labs's and
     * Deepgram's ("Defaults to 'aura-2'"); for Cartesia ("the correct model for the voiceId") and
     * OpenAI it names none: sonic-3 (Cartesia's stable model with speed and volume controls) and
     * tts-1 (the low-latency one) are Switchboard's choice.
     */
    models: { "11labs": "eleven_turbo_v2", cartesia: "sonic-3", deepgram: "aura-2", openai: "tts-1" },
    // 11labs only.
    optimizeStreamingLatency: 3,
    enableSsmlParsing: false,
    autoMode: false,
    cachingEnabled: true,
    chunkPlan: { enabled: true, minCharacters: 30 },
  },
  transcriber: {
    // Not a documented Vapi default (Vapi leaves these to Deepgram); Switchboard's choice.
    model: "nova-3",
    language: "en",
    smartFormat: false,
    numerals: false,
    profanityFilter: false,
    mipOptOut: false,
    endpointing: 10,
    confidenceThreshold: 0.4,
    eotThreshold: 0.7,
    eotTimeoutMs: 5000,
    /** Vapi's AssemblyAITranscriber defaults. */
    assemblyAi: {
      speechModel: "universal-streaming-english",
      language: "en",
      confidenceThreshold: 0.4,
      formatTurns: true,
      endOfTurnConfidenceThreshold: 0.7,
      minEndOfTurnSilenceWhenConfident: 160,
      maxTurnSilence: 400,
      disablePartialTranscripts: false,
    },
    /** OpenAI: no language is Vapi's default; English, as for the other transcribers, is Switchboard's. */
    openai: { language: "en" },
  },
  server: { timeoutSeconds: 20 },
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
    acknowledgementPhrases: [
      "i understand",
      "i see",
      "i got it",
      "i hear you",
      "im listening",
      "im with you",
      "right",
      "okay",
      "ok",
      "sure",
      "alright",
      "got it",
      "understood",
      "yeah",
      "yes",
      "uh-huh",
      "mm-hmm",
      "gotcha",
      "mhmm",
      "ah",
      "yeah okay",
      "yeah sure",
    ],
    interruptionPhrases: [
      "stop",
      "shut",
      "up",
      "enough",
      "quiet",
      "silence",
      "but",
      "dont",
      "not",
      "no",
      "hold",
      "wait",
      "cut",
      "pause",
      "nope",
      "nah",
      "nevermind",
      "never",
      "bad",
      "actually",
    ],
  },
  // Vapi: keypad input "is off by default"; digits are processed after 2 s without a new one. The
  // spec names no default delimiter: "#" (the usual end-of-entry key) is Switchboard's choice.
  keypadInputPlan: { enabled: false, timeoutSeconds: 2, delimiters: "#" },
  analysisPlan: {
    minMessagesThreshold: 2,
    summaryPlan: { enabled: true, timeoutSeconds: 5 },
    structuredDataPlan: { enabled: false, timeoutSeconds: 5 },
    successEvaluationPlan: { enabled: true, rubric: "PassFail", timeoutSeconds: 5 },
  },
  artifactPlan: {
    recordingEnabled: true,
    recordingFormat: "wav;l16",
    recordingUseCustomStorageEnabled: true,
    recordingPath: "/",
    videoRecordingEnabled: false,
    fullMessageHistoryEnabled: false,
    pcapEnabled: true,
    loggingEnabled: true,
    transcriptPlan: { enabled: true, assistantName: "AI", userName: "User" },
  },
  monitorPlan: {
    listenEnabled: true,
    listenAuthenticationEnabled: false,
    controlEnabled: true,
    controlAuthenticationEnabled: false,
  },
} as const;

export interface ResolveAssistantOptions {
  /** Vapi's background sound default depends on the transport: "office" on the phone, "off" on the web. */
  callType?: CallType;
}

/**
 * Fills every Vapi default into an assistant config (already merged with any overrides) so the media
 * plane never has to know a default. `model`, `voice` and `transcriber` stay undefined when absent: an
 * assistant without them cannot take a call, and that is for the caller to reject.
 */
export function resolveAssistantDefaults(config: CreateAssistantDTO, options: ResolveAssistantOptions = {}) {
  const D = ASSISTANT_DEFAULTS;
  const { model, voice, transcriber, server } = config;
  const start = config.startSpeakingPlan;
  const stop = config.stopSpeakingPlan;
  const keypad = config.keypadInputPlan;
  const analysis = config.analysisPlan;
  const artifact = config.artifactPlan;
  const monitor = config.monitorPlan;

  return {
    ...config,
    firstMessageMode: config.firstMessageMode ?? D.firstMessageMode,
    firstMessageInterruptionsEnabled:
      config.firstMessageInterruptionsEnabled ?? D.firstMessageInterruptionsEnabled,
    maxDurationSeconds: config.maxDurationSeconds ?? D.maxDurationSeconds,
    silenceTimeoutSeconds: config.silenceTimeoutSeconds ?? D.silenceTimeoutSeconds,
    backgroundSound:
      config.backgroundSound ??
      (options.callType === "webCall" ? D.backgroundSound.web : D.backgroundSound.phone),
    serverMessages: config.serverMessages ?? [...D.serverMessages],
    clientMessages: config.clientMessages ?? [...D.clientMessages],
    endCallPhrases: config.endCallPhrases ?? [],
    hooks: config.hooks ?? [],
    metadata: config.metadata ?? {},
    model: model && {
      ...model,
      messages: model.messages ?? [],
      tools: model.tools ?? [],
      toolIds: model.toolIds ?? [],
      temperature: model.temperature ?? D.model.temperature,
      maxTokens: model.maxTokens ?? D.model.maxTokens,
      numFastTurns: model.numFastTurns ?? D.model.numFastTurns,
      emotionRecognitionEnabled: model.emotionRecognitionEnabled ?? D.model.emotionRecognitionEnabled,
    },
    voice: voice && resolveVoiceDefaults(voice),
    transcriber: transcriber && resolveTranscriberDefaults(transcriber),
    server: server && {
      ...server,
      timeoutSeconds: server.timeoutSeconds ?? D.server.timeoutSeconds,
      headers: server.headers ?? {},
    },
    startSpeakingPlan: {
      ...start,
      waitSeconds: start?.waitSeconds ?? D.startSpeakingPlan.waitSeconds,
      smartEndpointingEnabled: start?.smartEndpointingEnabled ?? D.startSpeakingPlan.smartEndpointingEnabled,
      customEndpointingRules: start?.customEndpointingRules ?? [],
      transcriptionEndpointingPlan: {
        onPunctuationSeconds:
          start?.transcriptionEndpointingPlan?.onPunctuationSeconds ??
          D.startSpeakingPlan.transcriptionEndpointingPlan.onPunctuationSeconds,
        onNoPunctuationSeconds:
          start?.transcriptionEndpointingPlan?.onNoPunctuationSeconds ??
          D.startSpeakingPlan.transcriptionEndpointingPlan.onNoPunctuationSeconds,
        onNumberSeconds:
          start?.transcriptionEndpointingPlan?.onNumberSeconds ??
          D.startSpeakingPlan.transcriptionEndpointingPlan.onNumberSeconds,
      },
    },
    stopSpeakingPlan: {
      numWords: stop?.numWords ?? D.stopSpeakingPlan.numWords,
      voiceSeconds: stop?.voiceSeconds ?? D.stopSpeakingPlan.voiceSeconds,
      backoffSeconds: stop?.backoffSeconds ?? D.stopSpeakingPlan.backoffSeconds,
      acknowledgementPhrases: stop?.acknowledgementPhrases ?? [...D.stopSpeakingPlan.acknowledgementPhrases],
      interruptionPhrases: stop?.interruptionPhrases ?? [...D.stopSpeakingPlan.interruptionPhrases],
    },
    keypadInputPlan: {
      enabled: keypad?.enabled ?? D.keypadInputPlan.enabled,
      timeoutSeconds: keypad?.timeoutSeconds ?? D.keypadInputPlan.timeoutSeconds,
      // "" (or an empty array) means no delimiter.
      delimiters: [keypad?.delimiters ?? D.keypadInputPlan.delimiters].flat().filter((d) => d !== ""),
    },
    analysisPlan: {
      minMessagesThreshold: analysis?.minMessagesThreshold ?? D.analysisPlan.minMessagesThreshold,
      summaryPlan: {
        ...analysis?.summaryPlan,
        enabled: analysis?.summaryPlan?.enabled ?? D.analysisPlan.summaryPlan.enabled,
        timeoutSeconds: analysis?.summaryPlan?.timeoutSeconds ?? D.analysisPlan.summaryPlan.timeoutSeconds,
      },
      structuredDataPlan: {
        ...analysis?.structuredDataPlan,
        enabled: analysis?.structuredDataPlan?.enabled ?? D.analysisPlan.structuredDataPlan.enabled,
        timeoutSeconds:
          analysis?.structuredDataPlan?.timeoutSeconds ?? D.analysisPlan.structuredDataPlan.timeoutSeconds,
      },
      successEvaluationPlan: {
        ...analysis?.successEvaluationPlan,
        enabled: analysis?.successEvaluationPlan?.enabled ?? D.analysisPlan.successEvaluationPlan.enabled,
        rubric: analysis?.successEvaluationPlan?.rubric ?? D.analysisPlan.successEvaluationPlan.rubric,
        timeoutSeconds:
          analysis?.successEvaluationPlan?.timeoutSeconds ??
          D.analysisPlan.successEvaluationPlan.timeoutSeconds,
      },
    },
    artifactPlan: {
      recordingEnabled: artifact?.recordingEnabled ?? D.artifactPlan.recordingEnabled,
      recordingFormat: artifact?.recordingFormat ?? D.artifactPlan.recordingFormat,
      recordingUseCustomStorageEnabled:
        artifact?.recordingUseCustomStorageEnabled ?? D.artifactPlan.recordingUseCustomStorageEnabled,
      recordingPath: artifact?.recordingPath ?? D.artifactPlan.recordingPath,
      videoRecordingEnabled: artifact?.videoRecordingEnabled ?? D.artifactPlan.videoRecordingEnabled,
      fullMessageHistoryEnabled:
        artifact?.fullMessageHistoryEnabled ?? D.artifactPlan.fullMessageHistoryEnabled,
      pcapEnabled: artifact?.pcapEnabled ?? D.artifactPlan.pcapEnabled,
      loggingEnabled: artifact?.loggingEnabled ?? D.artifactPlan.loggingEnabled,
      transcriptPlan: {
        enabled: artifact?.transcriptPlan?.enabled ?? D.artifactPlan.transcriptPlan.enabled,
        assistantName: artifact?.transcriptPlan?.assistantName ?? D.artifactPlan.transcriptPlan.assistantName,
        userName: artifact?.transcriptPlan?.userName ?? D.artifactPlan.transcriptPlan.userName,
      },
    },
    monitorPlan: {
      listenEnabled: monitor?.listenEnabled ?? D.monitorPlan.listenEnabled,
      listenAuthenticationEnabled:
        monitor?.listenAuthenticationEnabled ?? D.monitorPlan.listenAuthenticationEnabled,
      controlEnabled: monitor?.controlEnabled ?? D.monitorPlan.controlEnabled,
      controlAuthenticationEnabled:
        monitor?.controlAuthenticationEnabled ?? D.monitorPlan.controlAuthenticationEnabled,
    },
  };
}

/** What the media plane runs a call with: an assistant config with every default filled in. */
export type ResolvedAssistantConfig = ReturnType<typeof resolveAssistantDefaults>;

/** The assistant's voice with its provider's defaults; each provider keeps only its own fields. */
export function resolveVoiceDefaults(voice: AssistantVoice) {
  const D = ASSISTANT_DEFAULTS.voice;
  const common = {
    cachingEnabled: voice.cachingEnabled ?? D.cachingEnabled,
    chunkPlan: {
      ...voice.chunkPlan,
      enabled: voice.chunkPlan?.enabled ?? D.chunkPlan.enabled,
      minCharacters: voice.chunkPlan?.minCharacters ?? D.chunkPlan.minCharacters,
    },
  };
  switch (voice.provider) {
    case "11labs":
      return {
        ...voice,
        ...common,
        model: voice.model ?? D.models["11labs"],
        optimizeStreamingLatency: voice.optimizeStreamingLatency ?? D.optimizeStreamingLatency,
        enableSsmlParsing: voice.enableSsmlParsing ?? D.enableSsmlParsing,
        autoMode: voice.autoMode ?? D.autoMode,
      };
    case "cartesia":
      return { ...voice, ...common, model: voice.model ?? D.models.cartesia };
    case "deepgram":
      return {
        ...voice,
        ...common,
        model: voice.model ?? D.models.deepgram,
        mipOptOut: voice.mipOptOut ?? false,
      };
    case "openai":
      return { ...voice, ...common, model: voice.model ?? D.models.openai };
  }
}

/** A voice with its defaults resolved (what a call runs with). */
export type ResolvedVoice = ReturnType<typeof resolveVoiceDefaults>;

/** The assistant's transcriber with its provider's defaults; each provider keeps only its own fields. */
export function resolveTranscriberDefaults(transcriber: AssistantTranscriber) {
  const D = ASSISTANT_DEFAULTS.transcriber;
  switch (transcriber.provider) {
    case "deepgram":
      return {
        ...transcriber,
        model: transcriber.model ?? D.model,
        language: transcriber.language ?? D.language,
        smartFormat: transcriber.smartFormat ?? D.smartFormat,
        numerals: transcriber.numerals ?? D.numerals,
        profanityFilter: transcriber.profanityFilter ?? D.profanityFilter,
        mipOptOut: transcriber.mipOptOut ?? D.mipOptOut,
        keywords: transcriber.keywords ?? [],
        keyterm: transcriber.keyterm ?? [],
        endpointing: transcriber.endpointing ?? D.endpointing,
        confidenceThreshold: transcriber.confidenceThreshold ?? D.confidenceThreshold,
        eotThreshold: transcriber.eotThreshold ?? D.eotThreshold,
        eotTimeoutMs: transcriber.eotTimeoutMs ?? D.eotTimeoutMs,
      };
    case "assembly-ai": {
      const A = D.assemblyAi;
      const language = transcriber.language ?? A.language;
      return {
        ...transcriber,
        language,
        // Vapi's `language: "multi"` without a speech model means the multilingual one.
        speechModel:
          transcriber.speechModel ??
          (language === "multi" ? "universal-streaming-multilingual" : A.speechModel),
        confidenceThreshold: transcriber.confidenceThreshold ?? A.confidenceThreshold,
        formatTurns: transcriber.formatTurns ?? A.formatTurns,
        endOfTurnConfidenceThreshold:
          transcriber.endOfTurnConfidenceThreshold ?? A.endOfTurnConfidenceThreshold,
        minEndOfTurnSilenceWhenConfident:
          transcriber.minEndOfTurnSilenceWhenConfident ?? A.minEndOfTurnSilenceWhenConfident,
        maxTurnSilence: transcriber.maxTurnSilence ?? A.maxTurnSilence,
        keytermsPrompt: transcriber.keytermsPrompt ?? [],
        disablePartialTranscripts: transcriber.disablePartialTranscripts ?? A.disablePartialTranscripts,
      };
    }
    case "openai":
      return { ...transcriber, language: transcriber.language ?? D.openai.language };
  }
}

/** A transcriber with its defaults resolved (what a call runs with). */
export type ResolvedTranscriber = ReturnType<typeof resolveTranscriberDefaults>;

/** The model a transcriber runs (AssemblyAI calls it `speechModel`): what its usage is priced by. */
export function transcriberModel(t: ResolvedTranscriber): string {
  return t.provider === "assembly-ai" ? t.speechModel : t.model;
}
