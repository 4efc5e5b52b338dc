import { MissingProviderKeyError, type ProviderKey, pickProviderKeys } from "../../assistants/index.ts";
import type { SpeechToText, TextToSpeech } from "../../providers/types.ts";
import {
  type ResolvedTranscriber,
  type ResolvedVoice,
  resolveTranscriberDefaults,
  resolveVoiceDefaults,
} from "../../vapi/defaults.ts";
import type { CallContext } from "./context.ts";

// The entries of an assistant's fallback plans (`transcriber.fallbackPlan.transcribers`,
// `voice.fallbackPlan.voices`) made ready to run: each provider's adapter, its key chosen as at
// call start (the organisation's credential, one of the assistant's `credentialIds` first, else the
// platform's key) and its defaults resolved. An entry the call cannot run (no adapter here, no key)
// is skipped and logged, so the plan moves on to the next.

export interface TranscriberChoice {
  provider: SpeechToText;
  key: ProviderKey;
  config: ResolvedTranscriber;
}

export interface VoiceChoice {
  provider: TextToSpeech;
  key: ProviderKey;
  voice: ResolvedVoice;
}

function keyFor(c: CallContext, provider: string): ProviderKey | undefined {
  const { deps, state } = c;
  try {
    const [key] = pickProviderKeys(
      deps.secrets,
      state.credentials,
      [{ provider, platformKey: deps.platformKeys[provider] }],
      state.assistant.config.credentialIds ?? [],
    );
    // An organisation's own key never reaches the call's log.
    if (key) c.callLog.redact.addSecret(key.apiKey);
    return key;
  } catch (err) {
    if (err instanceof MissingProviderKeyError) return undefined;
    throw err;
  }
}

/** The fallback plan's transcriber at `index` (0 = the first), or undefined when none is left. */
export function fallbackTranscriber(
  c: CallContext,
  primary: ResolvedTranscriber,
  index: number,
): { choice: TranscriberChoice; index: number } | undefined {
  const entries = primary.fallbackPlan?.transcribers ?? [];
  for (let i = index; i < entries.length; i++) {
    const entry = entries[i];
    if (!entry) continue;
    const provider = c.deps.providers.stt[entry.provider];
    const key = provider ? keyFor(c, provider.provider) : undefined;
    if (!provider || !key) {
      c.state.log.warn(
        { provider: entry.provider, index: i },
        "fallback transcriber skipped: no adapter or key",
      );
      continue;
    }
    return { choice: { provider, key, config: resolveTranscriberDefaults(entry) }, index: i };
  }
  return undefined;
}

/** The fallback plan's voice at `index` (0 = the first), or undefined when none is left. */
export function fallbackVoice(
  c: CallContext,
  primary: ResolvedVoice,
  index: number,
): { choice: VoiceChoice; index: number } | undefined {
  const entries = primary.fallbackPlan?.voices ?? [];
  for (let i = index; i < entries.length; i++) {
    const entry = entries[i];
    if (!entry) continue;
    const provider = c.deps.providers.tts[entry.provider];
    const key = provider ? keyFor(c, provider.provider) : undefined;
    if (!provider || !key) {
      c.state.log.warn({ provider: entry.provider, index: i }, "fallback voice skipped: no adapter or key");
      continue;
    }
    return { choice: { provider, key, voice: resolveVoiceDefaults(entry) }, index: i };
  }
  return undefined;
}
