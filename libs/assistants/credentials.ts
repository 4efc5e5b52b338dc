import type { SecretBox } from "../crypto/index.ts";
import type { Db } from "../db/index.ts";

// The organisation's own provider key (a Credential row) when it has one, else the platform's key.
// Same rule as the API's CredentialService.resolve: an id listed in the assistant's
// `credentialIds` first, else the newest credential for that provider.

export interface ProviderKey {
  apiKey: string;
  /** True when the organisation's own credential pays this provider (passthrough billing). */
  byo: boolean;
  credentialId?: string;
}

export class MissingProviderKeyError extends Error {
  constructor(readonly provider: string) {
    super(`no ${provider} credential for this organisation and no platform key configured`);
    this.name = "MissingProviderKeyError";
  }
}

/** What picking a key needs of a Credential row (the secret still sealed). */
export interface CredentialKeyRow {
  id: string;
  provider: string;
  secret: string;
  keyId: string;
}

/** One provider's key from rows of that provider, newest first. */
function pickKey(
  secrets: SecretBox,
  rows: ReadonlyArray<CredentialKeyRow>,
  provider: string,
  preferredIds: readonly string[],
  platformKey: string | undefined,
  optional = false,
): ProviderKey {
  const row = rows.find((r) => preferredIds.includes(r.id)) ?? rows[0];
  if (row) {
    return {
      apiKey: secrets.open({ ciphertext: row.secret, keyId: row.keyId }),
      byo: true,
      credentialId: row.id,
    };
  }
  if (platformKey) return { apiKey: platformKey, byo: false };
  // A customer's own LLM server may take no key at all (`custom-llm`): an empty key sends none.
  if (optional) return { apiKey: "", byo: false };
  throw new MissingProviderKeyError(provider);
}

/** One provider a call needs a key for; `optional`: the call may run without one. */
export interface WantedKey {
  provider: string;
  platformKey: string | undefined;
  optional?: boolean;
}

/**
 * The keys of several providers with ONE query (call start resolves three); results in the order
 * asked.
 */
export async function resolveProviderKeys(
  db: Db,
  secrets: SecretBox,
  orgId: string,
  wanted: ReadonlyArray<WantedKey>,
  preferredIds: readonly string[],
): Promise<ProviderKey[]> {
  const providers = [...new Set(wanted.map((w) => w.provider))];
  const rows = await db.credential.findMany({
    where: { orgId, provider: { in: providers } },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
  return pickProviderKeys(secrets, rows, wanted, preferredIds);
}

/** The same choice from credential rows already loaded (newest first), e.g. with the call's setup. */
export function pickProviderKeys(
  secrets: SecretBox,
  rows: ReadonlyArray<CredentialKeyRow>,
  wanted: ReadonlyArray<WantedKey>,
  preferredIds: readonly string[],
): ProviderKey[] {
  return wanted.map((w) =>
    pickKey(
      secrets,
      rows.filter((r) => r.provider === w.provider),
      w.provider,
      preferredIds,
      w.platformKey,
      w.optional,
    ),
  );
}
