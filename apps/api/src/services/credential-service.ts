import type { SecretBox } from "../../../../libs/crypto/index.ts";
import type { Credential as CredentialRow, Db } from "../../../../libs/db/index.ts";
import { NotFoundError } from "../../../../libs/errors/index.ts";
import { asObject, assertId, iso, type ListQuery, listArgs, type ServiceContext } from "./common.ts";

export type CredentialBody = Record<string, unknown> & { provider?: string };
export type CredentialView = Record<string, unknown> & { id: string; provider: string };

// The secret of each provider's credential body; every other field is stored in clear.
const SECRET_FIELD: Record<string, string> = { twilio: "authToken", s3: "awsSecretAccessKey" };
const secretField = (provider: string) => SECRET_FIELD[provider] ?? "apiKey";

export function credentialView(row: CredentialRow): CredentialView {
  return {
    ...asObject(row.config),
    id: row.id,
    orgId: row.orgId,
    provider: row.provider,
    name: row.name ?? undefined,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

function publicFields(provider: string, body: Record<string, unknown>): Record<string, unknown> {
  const secret = secretField(provider);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (k !== secret && k !== "provider" && k !== "name" && v !== undefined) out[k] = v;
  }
  return out;
}

/** A decrypted credential, for the media plane and the billing of BYO keys. Never serialised. */
export interface ResolvedCredential {
  id: string;
  provider: string;
  secret: string;
  config: Record<string, unknown>;
}

export class CredentialService {
  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
  ) {}

  async create(ctx: ServiceContext, body: CredentialBody): Promise<CredentialView> {
    const provider = String(body.provider);
    const sealed = this.secrets.seal(String(body[secretField(provider)]));
    const row = await this.db.credential.create({
      data: {
        orgId: ctx.orgId,
        provider,
        name: typeof body.name === "string" ? body.name : null,
        secret: sealed.ciphertext,
        keyId: sealed.keyId,
        config: publicFields(provider, body) as object,
      },
    });
    return credentialView(row);
  }

  async row(ctx: ServiceContext, id: string): Promise<CredentialRow> {
    assertId("Credential", id);
    const row = await this.db.credential.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Credential", id);
    return row;
  }

  async get(ctx: ServiceContext, id: string): Promise<CredentialView> {
    return credentialView(await this.row(ctx, id));
  }

  async list(ctx: ServiceContext, q: ListQuery): Promise<CredentialView[]> {
    return (await this.db.credential.findMany(listArgs(ctx, q))).map(credentialView);
  }

  async update(ctx: ServiceContext, id: string, patch: Record<string, unknown>): Promise<CredentialView> {
    const current = await this.row(ctx, id);
    const secret = patch[secretField(current.provider)];
    const sealed = typeof secret === "string" ? this.secrets.seal(secret) : undefined;
    const config = { ...asObject(current.config), ...publicFields(current.provider, patch) };
    const row = await this.db.credential.update({
      where: { id: current.id },
      data: {
        ...(patch.name !== undefined ? { name: typeof patch.name === "string" ? patch.name : null } : {}),
        ...(sealed ? { secret: sealed.ciphertext, keyId: sealed.keyId } : {}),
        config: config as object,
      },
    });
    return credentialView(row);
  }

  async remove(ctx: ServiceContext, id: string): Promise<CredentialView> {
    const current = await this.row(ctx, id);
    await this.db.credential.delete({ where: { id: current.id } });
    return credentialView(current);
  }

  /** The org's credential for a provider: one named in `credentialIds` first, else the newest. */
  async resolve(
    ctx: ServiceContext,
    provider: string,
    preferredIds: string[] = [],
  ): Promise<ResolvedCredential | null> {
    const rows = await this.db.credential.findMany({
      where: { orgId: ctx.orgId, provider },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    });
    const row = rows.find((r) => preferredIds.includes(r.id)) ?? rows[0];
    if (!row) return null;
    return {
      id: row.id,
      provider: row.provider,
      secret: this.secrets.open({ ciphertext: row.secret, keyId: row.keyId }),
      config: asObject(row.config),
    };
  }
}
