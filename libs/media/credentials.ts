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

export async function resolveProviderKey(
  db: Db,
  secrets: SecretBox,
  orgId: string,
  provider: string,
  preferredIds: readonly string[],
  platformKey: string | undefined,
): Promise<ProviderKey> {
  const rows = await db.credential.findMany({ where: { orgId, provider }, orderBy: { createdAt: "desc" } });
  const row = rows.find((r) => preferredIds.includes(r.id)) ?? rows[0];
  if (row) {
    return {
      apiKey: secrets.open({ ciphertext: row.secret, keyId: row.keyId }),
      byo: true,
      credentialId: row.id,
    };
  }
  if (platformKey) return { apiKey: platformKey, byo: false };
  throw new MissingProviderKeyError(provider);
}
