import {
  type CredentialKeyRow,
  type ProviderKey,
  pickProviderKeys,
  renderTemplate,
  type Variables,
} from "../../assistants/index.ts";
import {
  type LanguageModel,
  MULAW_8K,
  type SpeechToText,
  type TextToSpeech,
  type TtsOptions,
} from "../../providers/types.ts";
import type { CreateAssistantDTO } from "../../vapi/assistant.ts";
import { type ResolvedAssistantConfig, resolveAssistantDefaults } from "../../vapi/defaults.ts";
import type { Conversation } from "../conversation.ts";
import { type DestinationDef, loadTools, type ToolDef } from "../tools.ts";
import type { Json, SessionDeps } from "./context.ts";

// An assistant made ready to run a call: its defaults resolved, its providers and keys chosen from
// the credentials loaded with the call, its tools loaded and its voice's options built.

export interface ActiveAssistant {
  config: ResolvedAssistantConfig;
  /** As configured (what server messages carry as `assistant`). */
  json: Json;
  tools: ToolDef[];
  stt: { provider: SpeechToText; key: ProviderKey };
  llm: { provider: LanguageModel; key: ProviderKey };
  tts: { provider: TextToSpeech; key: ProviderKey };
  ttsOptions: TtsOptions;
}

export async function loadAssistant(
  deps: SessionDeps,
  call: { orgId: string; credentials: ReadonlyArray<CredentialKeyRow>; signal: AbortSignal },
  raw: Json,
  destinations: DestinationDef[],
): Promise<ActiveAssistant> {
  const { db, secrets, providers, platformKeys } = deps;
  const assistant = resolveAssistantDefaults(raw as CreateAssistantDTO);
  if (!assistant.model || !assistant.voice || !assistant.transcriber) {
    throw new Error("the assistant has no model, voice or transcriber");
  }
  const stt = providers.stt[assistant.transcriber.provider];
  const llm = providers.llm[assistant.model.provider];
  const tts = providers.tts[assistant.voice.provider];
  if (!stt || !llm || !tts) throw new Error("an assistant provider is not supported");
  const ids = assistant.credentialIds ?? [];
  // From the credentials loaded with the call's setup (no query here).
  const [sttKey, llmKey, ttsKey] = pickProviderKeys(
    secrets,
    call.credentials,
    [
      { provider: stt.provider, platformKey: platformKeys[stt.provider] },
      { provider: llm.provider, platformKey: platformKeys[llm.provider], optional: llm.keyOptional },
      { provider: tts.provider, platformKey: platformKeys[tts.provider] },
    ],
    ids,
  ) as [ProviderKey, ProviderKey, ProviderKey];
  const tools = await loadTools(db, call.orgId, assistant.model, destinations);
  const ttsOptions: TtsOptions = {
    apiKey: ttsKey.apiKey,
    // Each provider reads its own voice fields (libs/providers/<provider>.ts).
    voice: assistant.voice,
    outputFormat: tts.outputFor(MULAW_8K),
    signal: call.signal,
  };
  return {
    config: assistant,
    json: raw,
    tools,
    stt: { provider: stt, key: sttKey },
    llm: { provider: llm, key: llmKey },
    tts: { provider: tts, key: ttsKey },
    ttsOptions,
  };
}

/**
 * The assistant's prompt in the conversation: its system message (replacing the previous
 * assistant's), and its seed messages when the conversation has not started yet.
 */
export function seedConversation(
  conversation: Conversation,
  assistant: ActiveAssistant,
  variables: Variables,
  now: number,
): void {
  const messages = assistant.config.model?.messages ?? [];
  const system = messages.find((m) => m.role === "system");
  conversation.setSystem(renderTemplate(system?.content ?? "", variables), now);
  if (conversation.llm.length <= 1) {
    for (const m of messages) {
      if (m.role === "system" || m.role === "function") continue;
      conversation.addSeed({ role: m.role, content: renderTemplate(m.content ?? "", variables) });
    }
  }
}
