import type { SecretBox } from "../../../../libs/crypto/index.ts";
import type { Db, PhoneNumber as PhoneNumberRow } from "../../../../libs/db/index.ts";
import { Prisma } from "../../../../libs/db/index.ts";
import { ConflictError, NotFoundError, ValidationError } from "../../../../libs/errors/index.ts";
import { configureNumber } from "../../../../libs/telephony/twilio-client.ts";
import { asObject, assertId, iso, type ListQuery, listArgs, type ServiceContext } from "./common.ts";
import type { ConfigChecker } from "./config-checks.ts";
import type { ReferenceChecker } from "./references.ts";

export type PhoneNumberBody = Record<string, unknown>;
export type PhoneNumberView = Record<string, unknown> & { id: string; number: string };

// Columns we index or enforce on; everything else of Vapi's body lives in `config`.
const COLUMNS = new Set([
  "provider",
  "number",
  "name",
  "assistantId",
  "squadId",
  "twilioAccountSid",
  "twilioAuthToken",
]);

export function phoneNumberView(row: PhoneNumberRow): PhoneNumberView {
  return {
    ...asObject(row.config),
    id: row.id,
    orgId: row.orgId,
    provider: row.provider,
    number: row.number,
    name: row.name ?? undefined,
    assistantId: row.assistantId ?? undefined,
    squadId: row.squadId ?? undefined,
    twilioAccountSid: row.twilioAccountSid,
    status: "active",
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

function splitConfig(body: PhoneNumberBody): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!COLUMNS.has(k) && v !== undefined) config[k] = v;
  return config;
}

/** Where imported numbers' voice URL and status callback point (PUBLIC_URL), and Twilio's API base. */
export interface NumberWiring {
  publicUrl: string;
  twilioApiUrl: string;
}

export class PhoneNumberService {
  constructor(
    private readonly db: Db,
    private readonly refs: ReferenceChecker,
    private readonly checks: ConfigChecker,
    private readonly secrets: SecretBox,
    private readonly wiring?: NumberWiring,
  ) {}

  /**
   * Points the number's voice URL and status callback at the platform with the number's own Twilio
   * credentials; a failure (bad credentials, number not in the account) is a 400 with Twilio's reason.
   */
  private async wire(number: string, accountSid: string, authToken: string): Promise<void> {
    if (!this.wiring) return;
    await configureNumber({
      accountSid,
      authToken,
      phoneNumber: number,
      publicUrl: this.wiring.publicUrl,
      apiUrl: this.wiring.twilioApiUrl,
    });
  }

  private async assertNumberFree(number: string, exceptId?: string): Promise<void> {
    const taken = await this.db.phoneNumber.findUnique({ where: { number }, select: { id: true } });
    if (taken && taken.id !== exceptId) throw new ConflictError(`body.number ${number} is already imported`);
  }

  private async checkRefs(ctx: ServiceContext, body: PhoneNumberBody): Promise<void> {
    if (typeof body.assistantId === "string" && typeof body.squadId === "string") {
      throw new ValidationError("body.assistantId and body.squadId cannot both be set");
    }
    if (typeof body.assistantId === "string") {
      await this.refs.check(ctx, "assistant", [{ field: "body.assistantId", id: body.assistantId }]);
    }
    if (typeof body.squadId === "string") {
      await this.refs.check(ctx, "squad", [{ field: "body.squadId", id: body.squadId }]);
    }
  }

  async create(ctx: ServiceContext, body: PhoneNumberBody): Promise<PhoneNumberView> {
    await this.checkRefs(ctx, body);
    await this.checks.phoneNumber(ctx, body, "body.");
    // Nothing is configured at Twilio for a number that cannot be stored.
    await this.assertNumberFree(String(body.number));
    await this.wire(String(body.number), String(body.twilioAccountSid), String(body.twilioAuthToken));
    const sealed = this.secrets.seal(String(body.twilioAuthToken));
    try {
      const row = await this.db.phoneNumber.create({
        data: {
          orgId: ctx.orgId,
          provider: String(body.provider ?? "twilio"),
          number: String(body.number),
          name: typeof body.name === "string" ? body.name : null,
          assistantId: typeof body.assistantId === "string" ? body.assistantId : null,
          squadId: typeof body.squadId === "string" ? body.squadId : null,
          twilioAccountSid: String(body.twilioAccountSid),
          twilioAuthToken: sealed.ciphertext,
          twilioAuthTokenKeyId: sealed.keyId,
          config: splitConfig(body) as object,
        },
      });
      return phoneNumberView(row);
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
        throw new ConflictError(`body.number ${String(body.number)} is already imported`);
      }
      throw err;
    }
  }

  async row(ctx: ServiceContext, id: string): Promise<PhoneNumberRow> {
    assertId("Phone number", id);
    const row = await this.db.phoneNumber.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Phone number", id);
    return row;
  }

  async get(ctx: ServiceContext, id: string): Promise<PhoneNumberView> {
    return phoneNumberView(await this.row(ctx, id));
  }

  async list(ctx: ServiceContext, q: ListQuery): Promise<PhoneNumberView[]> {
    return (await this.db.phoneNumber.findMany(listArgs(ctx, q))).map(phoneNumberView);
  }

  async update(ctx: ServiceContext, id: string, patch: PhoneNumberBody): Promise<PhoneNumberView> {
    const current = await this.row(ctx, id);
    // Pointing the number at an assistant detaches it from a squad and vice versa.
    const merged = {
      assistantId: patch.squadId ? undefined : (patch.assistantId ?? current.assistantId ?? undefined),
      squadId: patch.assistantId ? undefined : (patch.squadId ?? current.squadId ?? undefined),
    };
    await this.checkRefs(ctx, merged);
    await this.checks.phoneNumber(ctx, patch, "body.");
    const config = { ...asObject(current.config) };
    for (const [k, v] of Object.entries(splitConfig(patch))) {
      if (v === null) delete config[k];
      else config[k] = v;
    }
    const data: Prisma.PhoneNumberUncheckedUpdateInput = {
      config: config as object,
      assistantId: merged.assistantId ?? null,
      squadId: merged.squadId ?? null,
    };
    if (patch.name !== undefined) data.name = typeof patch.name === "string" ? patch.name : null;
    if (typeof patch.twilioAccountSid === "string") data.twilioAccountSid = patch.twilioAccountSid;
    if (typeof patch.twilioAuthToken === "string") {
      const sealed = this.secrets.seal(patch.twilioAuthToken);
      data.twilioAuthToken = sealed.ciphertext;
      data.twilioAuthTokenKeyId = sealed.keyId;
    }
    if (typeof patch.number === "string") data.number = patch.number;
    const number = typeof patch.number === "string" ? patch.number : current.number;
    const accountSid =
      typeof patch.twilioAccountSid === "string" ? patch.twilioAccountSid : current.twilioAccountSid;
    if (
      number !== current.number ||
      accountSid !== current.twilioAccountSid ||
      typeof patch.twilioAuthToken === "string"
    ) {
      if (number !== current.number) await this.assertNumberFree(number, current.id);
      const token =
        typeof patch.twilioAuthToken === "string"
          ? patch.twilioAuthToken
          : this.secrets.open({ ciphertext: current.twilioAuthToken, keyId: current.twilioAuthTokenKeyId });
      await this.wire(number, accountSid, token);
    }
    try {
      return phoneNumberView(await this.db.phoneNumber.update({ where: { id: current.id }, data }));
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
        throw new ConflictError(`body.number ${String(patch.number)} is already imported`);
      }
      throw err;
    }
  }

  async remove(ctx: ServiceContext, id: string): Promise<PhoneNumberView> {
    const current = await this.row(ctx, id);
    await this.db.phoneNumber.delete({ where: { id: current.id } });
    return phoneNumberView(current);
  }
}
