import type { AudioFormat, SttOptions } from "../../providers/types.ts";
import type { ResolvedTranscriber } from "../../vapi/defaults.ts";

// The transcriber's options for a call, from the assistant's `transcriber` (Vapi's shape for its
// provider, defaults resolved): what each provider's adapter reads. The save-time rules
// (libs/providers/*-rules.ts) have refused what a model does not take.

/** Deepgram's utterance-end window (`utterance_end_ms`): the longest the transcriber times silence. */
export const UTTERANCE_END_MS = 1000;

export function transcriberOptions(
  t: ResolvedTranscriber,
  call: { apiKey: string; audio: AudioFormat; signal: AbortSignal },
): SttOptions {
  switch (t.provider) {
    case "deepgram":
      return {
        ...call,
        model: t.model,
        language: t.language,
        endpointingMs: t.endpointing,
        utteranceEndMs: UTTERANCE_END_MS,
        keywords: t.keywords,
        keyterms: t.keyterm,
        smartFormat: t.smartFormat,
        numerals: t.numerals,
        profanityFilter: t.profanityFilter,
        mipOptOut: t.mipOptOut,
      };
    case "assembly-ai":
      return {
        ...call,
        model: t.speechModel,
        language: t.language,
        // AssemblyAI times the caller's silence up to `max_turn_silence`: the session's silence
        // gathering waits past it (caller-input.ts).
        endpointingMs: t.maxTurnSilence,
        utteranceEndMs: UTTERANCE_END_MS,
        keyterms: t.keytermsPrompt,
        interimResults: !t.disablePartialTranscripts,
        minConfidence: t.confidenceThreshold,
        assemblyAi: {
          formatTurns: t.formatTurns,
          endOfTurnConfidenceThreshold: t.endOfTurnConfidenceThreshold,
          minTurnSilenceMs: t.minEndOfTurnSilenceWhenConfident,
          maxTurnSilenceMs: t.maxTurnSilence,
          prompt: t.prompt,
          mode: t.mode,
          agentContext: t.agentContext,
        },
      };
    case "openai":
      return {
        ...call,
        model: t.model,
        language: t.language,
        // OpenAI's server VAD ends speech after 500 ms of silence (openai-stt.ts).
        endpointingMs: 500,
        utteranceEndMs: UTTERANCE_END_MS,
      };
  }
}
