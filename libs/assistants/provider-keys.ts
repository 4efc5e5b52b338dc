import type { ProviderConfig } from "../config/platform.ts";
import type { Db } from "../db/index.ts";

// Which provider keys a call will need, asked before the call is created: a call whose transcriber,
// model or voice has no key (neither the organisation's own credential nor the platform's key)
// fails as it starts, so a web call is refused with a message naming the keys and how to add them.
// The same choice as at call start (credentials.ts): any credential of the provider, else the
// platform's key.

type Json = Record<string, unknown>;

/** The environment variable holding the platform's own key of each provider. */
export const PLATFORM_KEY_VARS: Readonly<Record<string, string>> = {
  openai: "OPENAI_API_KEY",
  deepgram: "DEEPGRAM_API_KEY",
  "11labs": "ELEVENLABS_API_KEY",
  "assembly-ai": "ASSEMBLYAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  cartesia: "CARTESIA_API_KEY",
};

/**
 * Providers a call can run without any key: a custom LLM is the customer's own server, reached with
 * their `custom-llm` credential when they have one and without a key otherwise.
 */
const KEY_OPTIONAL: ReadonlySet<string> = new Set(["custom-llm"]);

/** The platform's keys by provider name, from the platform configuration. */
export function platformKeysOf(
  providers: Pick<ProviderConfig, "openaiApiKey" | "deepgramApiKey" | "elevenlabsApiKey"> &
    Partial<Pick<ProviderConfig, "assemblyAiApiKey" | "anthropicApiKey" | "cartesiaApiKey">>,
): Record<string, string | undefined> {
  return {
    openai: providers.openaiApiKey,
    anthropic: providers.anthropicApiKey,
    deepgram: providers.deepgramApiKey,
    "11labs": providers.elevenlabsApiKey,
    cartesia: providers.cartesiaApiKey,
    "assembly-ai": providers.assemblyAiApiKey,
  };
}

const PARTS = ["transcriber", "model", "voice"] as const;

export interface ProviderNeed {
  provider: string;
  /** Where the assistant names it, e.g. `voice` or `body.squad.members[1].assistant.voice`. */
  usedBy: string;
}

/** The providers an assistant's transcriber, model and voice use. */
export function assistantProviderNeeds(assistant: Json, at: string): ProviderNeed[] {
  const out: ProviderNeed[] = [];
  for (const part of PARTS) {
    const cfg = assistant[part];
    if (typeof cfg === "object" && cfg !== null && !Array.isArray(cfg)) {
      const provider = (cfg as Json).provider;
      if (typeof provider === "string") out.push({ provider, usedBy: `${at}${part}` });
    }
  }
  return out;
}

export interface MissingProviderKey {
  provider: string;
  usedBy: string[];
  /** The platform's variable for it, when the platform can hold a key of this provider. */
  envVar?: string;
}

/** The providers among `needs` with neither a credential of the organisation nor a platform key. */
export async function missingProviderKeys(
  db: Db,
  orgId: string,
  needs: readonly ProviderNeed[],
  platformKeys: Readonly<Record<string, string | undefined>>,
): Promise<MissingProviderKey[]> {
  const withoutPlatformKey = [...new Set(needs.map((n) => n.provider))].filter(
    (p) => !platformKeys[p] && !KEY_OPTIONAL.has(p),
  );
  if (withoutPlatformKey.length === 0) return [];
  const owned = await db.credential.findMany({
    where: { orgId, provider: { in: withoutPlatformKey } },
    select: { provider: true },
    distinct: ["provider"],
  });
  const have = new Set(owned.map((r) => r.provider));
  return withoutPlatformKey
    .filter((p) => !have.has(p))
    .map((provider) => ({
      provider,
      usedBy: needs.filter((n) => n.provider === provider).map((n) => n.usedBy),
      ...(PLATFORM_KEY_VARS[provider] ? { envVar: PLATFORM_KEY_VARS[provider] } : {}),
    }));
}

/** What a person reads when keys are missing: which, used by what, and the two ways to add them. */
export function missingKeysMessage(missing: readonly MissingProviderKey[]): string {
  const list = missing.map((m) => `${m.provider} (${m.usedBy.join(", ")})`).join(", ");
  const vars = missing.flatMap((m) => (m.envVar ? [m.envVar] : []));
  const own = missing.map((m) => `POST /credential {"provider":"${m.provider}","apiKey":"…"}`).join(", ");
  return (
    `Missing provider keys: ${list}. Add your own key with ${own}` +
    (vars.length > 0 ? `, or have the operator set ${vars.join(", ")} on the platform.` : ".")
  );
}
