import { randomUUID } from "node:crypto";
import {
  assistantProviderNeeds,
  missingKeysMessage,
  missingProviderKeys,
  type ProviderNeed,
  squadPlan,
} from "../../../../libs/assistants/index.ts";
import {
  type CallTransportRecord,
  WEBSOCKET_CALL_TYPE,
  WEBSOCKET_TRANSPORT,
  websocketAudioFormat,
  websocketCallUrl,
} from "../../../../libs/calls/transport.ts";
import type { Call as CallRow, Db, Prisma } from "../../../../libs/db/index.ts";
import { ValidationError } from "../../../../libs/errors/index.ts";
import { issueMediaToken, MEDIA_TOKEN_TTL_MS } from "../../../../libs/telephony/media-token.ts";
import type { CreateCallTransportDTO } from "../../../../libs/vapi/index.ts";
import { squadMemberAssistant } from "../../../../libs/vapi/overrides.ts";
import { type CallAgent, type CallAgentDeps, resolveCallAgent } from "./call-agent.ts";
import { type CallView, callView } from "./call-service.ts";
import { asObject, type ServiceContext } from "./common.ts";
import { checkPublicKeyCall, type TokenRestrictions } from "./key-restrictions.ts";
import { admissionError, type CallAdmission } from "./telephony-service.ts";

// `POST /call` with `transport: {provider: "vapi.websocket"}`: a call whose audio goes over a
// websocket the client opens at `transport.websocketCallUrl` (the media plane's
// `/<callId>/transport?token=…`). No phone is involved. The call is admitted like a phone call
// (spend limit, concurrency), created `queued`, and answered with a single-use token in the URL
// that expires after MEDIA_TOKEN_TTL_MS: a call whose client never connects by then is ended by
// the sweeper (libs/media/never-connected.ts). The URL is in this answer only: the token is a
// credential for the call's audio, and `GET /call` would hand out a used or expired one anyway.

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface WebCallOptions extends CallAgentDeps {
  db: Db;
  admission: CallAdmission;
  /** Where the call's monitor URLs point (PUBLIC_URL) and its websocket is (MEDIA_PUBLIC_URL). */
  publicUrl: string;
  mediaPublicUrl: string;
  secretsKey: Buffer;
  /** The platform's provider keys by provider name (libs/assistants platformKeysOf). */
  platformKeys: Readonly<Record<string, string | undefined>>;
  tokenTtlMs?: number;
  now?: () => number;
}

/** Who asks: the organisation, and the key's kind and restrictions (public keys are held to them). */
export interface WebCallContext extends ServiceContext {
  keyType: "private" | "public";
  restrictions?: TokenRestrictions;
}

export class WebCallService {
  readonly #o: WebCallOptions;

  constructor(options: WebCallOptions) {
    this.#o = options;
  }

  /** `origin`: the request's `Origin` header (held to a public key's allowedOrigins). */
  async create(ctx: WebCallContext, body: Json, origin: string | undefined): Promise<CallView> {
    const transport = body.transport as CreateCallTransportDTO;
    refusePhoneFields(body);
    if (ctx.keyType === "public") checkPublicKeyCall(ctx.restrictions, body, origin);
    const agent = await resolveCallAgent(this.#o, ctx, body);
    await this.#checkProviderKeys(ctx, body, agent);

    const { db, admission } = this.#o;
    const callId = randomUUID();
    const admitted = await admission.admitCall(ctx.orgId, callId);
    if (!admitted.ok) throw admissionError(admitted);
    const allowedOrigins = ctx.keyType === "public" ? ctx.restrictions?.allowedOrigins : undefined;
    const record: CallTransportRecord = {
      provider: WEBSOCKET_TRANSPORT,
      audioFormat: websocketAudioFormat(transport.audioFormat),
      ...(allowedOrigins && allowedOrigins.length > 0 ? { allowedOrigins } : {}),
    };
    // The token's lifetime starts with the record: the sweeper ends the call at createdAt + TTL.
    const now = this.#o.now?.() ?? Date.now();
    let row: CallRow;
    try {
      row = await db.call.create({
        data: {
          id: callId,
          orgId: ctx.orgId,
          type: WEBSOCKET_CALL_TYPE,
          status: "queued",
          transport: record as Prisma.InputJsonValue,
          assistantId: agent.assistantId ?? null,
          squadId: agent.squadId ?? null,
          assistant: agent.assistant as Prisma.InputJsonValue,
          ...(agent.assistantOverrides
            ? { assistantOverrides: agent.assistantOverrides as Prisma.InputJsonValue }
            : {}),
          ...(isPlainObject(body.customer) ? { customer: body.customer as Prisma.InputJsonValue } : {}),
          name: typeof body.name === "string" ? body.name : null,
          ...(isPlainObject(body.metadata) ? { metadata: body.metadata as Prisma.InputJsonValue } : {}),
          createdAt: new Date(now),
        },
      });
    } catch (err) {
      await admission.releaseCall(ctx.orgId, callId);
      throw err;
    }
    const token = issueMediaToken(this.#o.secretsKey, callId, now, this.#o.tokenTtlMs ?? MEDIA_TOKEN_TTL_MS);
    const view = callView(row, this.#o);
    return {
      ...view,
      transport: {
        provider: record.provider,
        audioFormat: record.audioFormat,
        websocketCallUrl: websocketCallUrl(this.#o.mediaPublicUrl, callId, token),
      },
    };
  }

  /**
   * 400 naming every provider the call would run without a key: the assistant it starts with and,
   * for a squad, every member it may hand the call to.
   */
  async #checkProviderKeys(ctx: ServiceContext, body: Json, agent: CallAgent): Promise<void> {
    const needs: ProviderNeed[] = assistantProviderNeeds(agent.assistant, "");
    const squad = isPlainObject(body.squad)
      ? body.squad
      : agent.squadId
        ? asObject(
            (await this.#o.db.squad.findFirst({ where: { id: agent.squadId, orgId: ctx.orgId } }))?.config,
          )
        : undefined;
    if (squad) needs.push(...(await this.#squadNeeds(ctx, squad)));
    const missing = await missingProviderKeys(this.#o.db, ctx.orgId, needs, this.#o.platformKeys);
    if (missing.length > 0) throw new ValidationError(missingKeysMessage(missing));
  }

  async #squadNeeds(ctx: ServiceContext, squad: Json): Promise<ProviderNeed[]> {
    const plan = squadPlan(squad);
    const ids = plan.members.flatMap((m) => (typeof m.assistantId === "string" ? [m.assistantId] : []));
    const rows =
      ids.length > 0
        ? await this.#o.db.assistant.findMany({ where: { id: { in: ids }, orgId: ctx.orgId } })
        : [];
    const saved = new Map(rows.map((r) => [r.id, asObject(r.config)]));
    return plan.members.flatMap((m, i) => {
      const base = isPlainObject(m.assistant)
        ? m.assistant
        : typeof m.assistantId === "string"
          ? saved.get(m.assistantId)
          : undefined;
      if (!base) return [];
      const assistant = squadMemberAssistant(
        base,
        plan.membersOverrides,
        isPlainObject(m.assistantOverrides) ? m.assistantOverrides : undefined,
      );
      return assistantProviderNeeds(assistant, `squad members[${i}].`);
    });
  }
}

/** A websocket call has no phone number: fields that would dial one are a 400 saying so. */
function refusePhoneFields(body: Json): void {
  const why =
    'cannot be used with transport {"provider":"vapi.websocket"}: a websocket call has no phone number (the client connects to transport.websocketCallUrl)';
  if (body.phoneNumberId !== undefined) throw new ValidationError(`body.phoneNumberId ${why}`);
  if (isPlainObject(body.customer) && body.customer.number !== undefined) {
    throw new ValidationError(`body.customer.number ${why}`);
  }
}
