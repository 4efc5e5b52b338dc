import { randomUUID } from "node:crypto";
import twilio from "twilio";
import { ADMISSION_RETRY_AFTER_SECONDS } from "../../../../libs/billing/spend-controls.ts";
import { zeroCallUsage } from "../../../../libs/billing/usage.ts";
import { isMonitorToken, isOrgApiKey, monitorPlanOf } from "../../../../libs/calls/monitor.ts";
import type { SecretBox } from "../../../../libs/crypto/index.ts";
import type { Call as CallRow, Db, PhoneNumber as PhoneNumberRow } from "../../../../libs/db/index.ts";
import { Prisma } from "../../../../libs/db/index.ts";
import {
  AppError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PaymentRequiredError,
  RateLimitedError,
  ServiceUnavailableError,
  UnauthorizedError,
  ValidationError,
} from "../../../../libs/errors/index.ts";
import { compileValidator, findInputProblem } from "../../../../libs/http/index.ts";
import { callEnded } from "../../../../libs/metrics/index.ts";
import {
  ENDED_REASONS,
  reportedEnd,
  statusesBefore,
  transitionFor,
} from "../../../../libs/telephony/call-status.ts";
import type { CallControlMessage, ControlBus } from "../../../../libs/telephony/control-bus.ts";
import {
  issueMediaToken,
  MEDIA_TOKEN_TTL_MS,
  mediaStreamTwiml,
  sayAndHangupTwiml,
} from "../../../../libs/telephony/media-token.ts";
import {
  createCall,
  statusWebhookUrl,
  twilioReason,
  updateCall,
} from "../../../../libs/telephony/twilio-client.ts";
import {
  ASSISTANT_REQUEST_TIMEOUT_MS,
  AssistantRequestResponse,
  SHARED_SCHEMAS,
} from "../../../../libs/vapi/index.ts";
import { applyAssistantOverrides } from "../../../../libs/vapi/overrides.ts";
import { resolveServer, sendServerMessage } from "../../../../libs/webhooks/server.ts";
import { checkAgentFields, type ResolvedAgent, resolveCallAgent, resolveSavedAgent } from "./call-agent.ts";
import { type CallView, callView } from "./call-service.ts";
import { asObject, assertId, isUuid, type ServiceContext, type ServiceLogger } from "./common.ts";
import type { ConfigChecker } from "./config-checks.ts";
import { phoneNumberView } from "./phone-number-service.ts";
import { providerOptionProblems, squadMemberLayers } from "./provider-options.ts";
import type { ReferenceChecker } from "./references.ts";

/** Billing's admission control (libs/billing/spend-controls.ts `SpendControls`). */
export type AdmissionResult =
  | { ok: true }
  | { ok: false; statusCode: 402 | 429 | 503; endedReason: string; message: string };

/** What the API answers when a call is not admitted (POST /call, phone or web). */
export function admissionError(refused: { statusCode: 402 | 429 | 503; message: string }): AppError {
  if (refused.statusCode === 429) return new RateLimitedError(refused.message, 5);
  if (refused.statusCode === 503)
    return new ServiceUnavailableError(refused.message, ADMISSION_RETRY_AFTER_SECONDS);
  return new PaymentRequiredError(refused.message);
}

export interface CallAdmission {
  admitCall(orgId: string, callId: string): Promise<AdmissionResult>;
  releaseCall(orgId: string, callId: string): Promise<void>;
}

export interface TelephonyOptions {
  db: Db;
  secrets: SecretBox;
  refs: ReferenceChecker;
  /** Inline assistants, squads and overrides (on POST /call and in assistant-request answers) are checked as saved ones. */
  checks: ConfigChecker;
  admission: CallAdmission;
  controlBus: ControlBus;
  /** Prices a call that ended without a media session (zero usage); billing's `recordCallCost`. */
  recordCallCost?: (callId: string) => Promise<unknown>;
  /**
   * Twilio reported the end of a call the media plane took: ends it if its media process died
   * (libs/media/orphans.ts `applyProviderEnd`).
   */
  providerEnded?: (
    callId: string,
    end: { endedAt: Date; durationSeconds: number },
    log: ServiceLogger,
  ) => Promise<unknown>;
  /** Erases a call's recording before its record goes (DELETE /call/:id); rejects with a 503 when it fails. */
  eraseRecording?: (call: { orgId: string; artifact: unknown }) => Promise<void>;
  publicUrl: string;
  mediaPublicUrl: string;
  secretsKey: Buffer;
  twilioApiUrl: string;
  allowPrivateWebhookUrls: boolean;
  /** Fixed by Vapi at 7.5 s. */
  assistantRequestTimeoutMs?: number;
}

/** A webhook answer: status, content type and body. */
export interface TwimlReply {
  statusCode: number;
  contentType: string;
  body: string;
}

type Json = Record<string, unknown>;

const ACTIVE = { not: "ended" } as const;

// With the API's body rules: TypeBox's Value.Check knows neither our string enums nor formats.
const assistantRequestProblem = compileValidator(AssistantRequestResponse, "answer", SHARED_SCHEMAS);
// An outbound call rings for up to 60 s (Twilio's default) before the stream can connect.
const OUTBOUND_RING_SECONDS = 60;
const OUTBOUND_TOKEN_TTL_MS = MEDIA_TOKEN_TTL_MS + OUTBOUND_RING_SECONDS * 1000;

const NOTICE: Record<number, string> = {
  402: "We're sorry, this line cannot take calls right now. Please try again later. Goodbye.",
  429: "We're sorry, all of our lines are busy right now. Please try again later. Goodbye.",
  503: "We're sorry, we cannot take your call at the moment. Please try again in a few minutes. Goodbye.",
};

function xml(body: string, statusCode = 200): TwimlReply {
  return { statusCode, contentType: "text/xml", body };
}

function plain(statusCode: number, body: string): TwimlReply {
  return { statusCode, contentType: "text/plain; charset=utf-8", body };
}

// A number nobody imported and a bad signature get this same answer: the webhooks must not tell a
// stranger which numbers are on the platform.
const FORBIDDEN = plain(403, "invalid Twilio signature");

// Vapi forwards an inbound call to the number's `fallbackDestination` when no assistant could be
// found for it: none set and the assistant-request failed, timed out or answered nothing usable.
const FALLBACK_REASONS = new Set<string>([
  ENDED_REASONS.neitherAssistantNorServer,
  ENDED_REASONS.assistantRequestFailed,
  ENDED_REASONS.assistantRequestReturnedInvalidAssistant,
  ENDED_REASONS.assistantRequestReturnedNoAssistant,
  ENDED_REASONS.assistantRequestReturnedUnspeakableError,
  ENDED_REASONS.assistantNotFound,
]);

/** `<Say>` the destination's message and `<Dial>` it, when the number has a fallback for this failure. */
function fallbackTwiml(number: PhoneNumberRow, endedReason: string): string | undefined {
  if (!FALLBACK_REASONS.has(endedReason)) return undefined;
  const dest = asObject(number.config).fallbackDestination;
  if (!isPlainObject(dest) || dest.type !== "number" || typeof dest.number !== "string") return undefined;
  const vr = new twilio.twiml.VoiceResponse();
  const m = dest.message;
  const spoken =
    typeof m === "string" ? m : isPlainObject(m) && typeof m.content === "string" ? m.content : undefined;
  if (spoken) vr.say(spoken);
  vr.dial(typeof dest.callerId === "string" ? { callerId: dest.callerId } : {}).number(dest.number);
  return vr.toString();
}

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

type Resolution =
  | { ok: true; agent: ResolvedAgent }
  | { ok: false; endedReason: string; say?: string; twiml?: string };

export class TelephonyService {
  readonly #o: TelephonyOptions;

  constructor(options: TelephonyOptions) {
    this.#o = options;
  }

  /** A call row as the API answers it, with its monitor URLs. */
  #view(row: CallRow): CallView {
    return callView(row, this.#o);
  }

  /** The base URL Twilio signs webhooks against (PUBLIC_URL). */
  get publicUrl(): string {
    return this.#o.publicUrl;
  }

  get #db(): Db {
    return this.#o.db;
  }

  #authToken(n: PhoneNumberRow): string {
    return this.#o.secrets.open({ ciphertext: n.twilioAuthToken, keyId: n.twilioAuthTokenKeyId });
  }

  #validSignature(n: PhoneNumberRow, signature: string | undefined, url: string, params: Json): boolean {
    if (!signature) return false;
    try {
      return twilio.validateRequest(this.#authToken(n), signature, url, params);
    } catch {
      return false;
    }
  }

  #streamTwiml(callId: string, ttlMs = MEDIA_TOKEN_TTL_MS): string {
    const token = issueMediaToken(this.#o.secretsKey, callId, Date.now(), ttlMs);
    return mediaStreamTwiml(this.#o.mediaPublicUrl, callId, token);
  }

  // ------------------------------------------------------------------ assistant resolution

  /** A saved assistant or squad of the organisation, as the config the call runs with. */
  #resolveSaved(
    orgId: string,
    ref: { assistantId?: string | null; squadId?: string | null; squad?: Json },
  ): Promise<ResolvedAgent | undefined> {
    return resolveSavedAgent(this.#db, orgId, ref);
  }

  /** The inbound agent: the number's assistant or squad, else the customer's `assistant-request`. */
  async #resolveInbound(
    number: PhoneNumberRow,
    callId: string,
    params: Record<string, string>,
    log: ServiceLogger,
  ): Promise<Resolution> {
    if (number.assistantId || number.squadId) {
      const agent = await this.#resolveSaved(number.orgId, number);
      return agent ? { ok: true, agent } : { ok: false, endedReason: ENDED_REASONS.assistantNotFound };
    }
    const org = await this.#db.org.findUnique({ where: { id: number.orgId } });
    const server = resolveServer({
      phoneNumber: { server: asObject(number.config).server as Json | undefined },
      org: { server: (org?.server ?? undefined) as Json | undefined },
    });
    if (!server) return { ok: false, endedReason: ENDED_REASONS.neitherAssistantNorServer };

    const now = new Date();
    const customer = { number: params.From };
    const message = {
      message: {
        type: "assistant-request",
        timestamp: now.getTime(),
        call: {
          id: callId,
          orgId: number.orgId,
          type: "inboundPhoneCall",
          status: "ringing",
          phoneNumberId: number.id,
          customer,
          phoneCallProvider: "twilio",
          phoneCallTransport: "pstn",
          phoneCallProviderId: params.CallSid,
          createdAt: now.toISOString(),
          updatedAt: now.toISOString(),
        },
        phoneNumber: phoneNumberView(number),
        customer,
      },
    };
    const timeoutMs = this.#o.assistantRequestTimeoutMs ?? ASSISTANT_REQUEST_TIMEOUT_MS;
    let answer: unknown;
    try {
      // One attempt inside Vapi's fixed window: no backoff plan retries for assistant-request.
      answer = await sendServerMessage({ ...server, backoffPlan: undefined }, message, {
        timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        allowPrivate: this.#o.allowPrivateWebhookUrls,
      });
    } catch (err) {
      log.warn({ err, url: server.url }, "assistant-request failed");
      return { ok: false, endedReason: ENDED_REASONS.assistantRequestFailed };
    }
    const r = answer as AssistantRequestResponse;
    // Text Postgres cannot store (NUL, unpaired surrogates) or nesting that would overflow a stack
    // is refused like a request body, before the schema; otherwise the webhook answered 500.
    const problem = isPlainObject(answer)
      ? (findInputProblem(answer, "answer") ??
        assistantRequestProblem(answer) ??
        (await this.#answerProblem({ orgId: number.orgId, log }, r)))
      : "answer is not a JSON object";
    if (problem) {
      log.warn({ orgId: number.orgId, callId, problem }, "assistant-request answer refused");
      return { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedInvalidAssistant };
    }
    if (r.error !== undefined) {
      return r.error.trim() === ""
        ? { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedUnspeakableError }
        : { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedError, say: r.error };
    }
    if (r.destination) {
      const vr = new twilio.twiml.VoiceResponse();
      const m = r.destination.message;
      const spoken = typeof m === "string" ? m : m?.content;
      if (spoken) vr.say(spoken);
      vr.dial().number(r.destination.number);
      return {
        ok: false,
        endedReason: ENDED_REASONS.assistantRequestReturnedForwarding,
        twiml: vr.toString(),
      };
    }
    const overrides = r.assistantOverrides as Json | undefined;
    let agent: ResolvedAgent | undefined;
    if (r.assistant) {
      agent = { assistant: r.assistant as Json };
    } else if (r.assistantId || r.squadId || r.squad) {
      agent = await this.#resolveSaved(number.orgId, {
        assistantId: r.assistantId,
        squadId: r.squadId,
        squad: r.squad as Json | undefined,
      });
      if (!agent) return { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedInvalidAssistant };
    } else {
      return { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedNoAssistant };
    }
    // Provider options the answer's models do not take would fail the call once it starts.
    const optionProblems = providerOptionProblems([
      { prefix: "assistant.", config: agent.assistant },
      { prefix: "assistantOverrides.", config: overrides },
    ]);
    if (r.squad) {
      const layers = await squadMemberLayers(
        this.#db,
        { orgId: number.orgId, log },
        r.squad as Json,
        "squad.",
      );
      optionProblems.push(...layers.flatMap(providerOptionProblems));
    }
    if (optionProblems.length > 0) {
      log.warn({ orgId: number.orgId, callId, problems: optionProblems }, "assistant-request answer refused");
      return { ok: false, endedReason: ENDED_REASONS.assistantRequestReturnedInvalidAssistant };
    }
    return {
      ok: true,
      agent: {
        ...agent,
        assistant: applyAssistantOverrides(agent.assistant, overrides),
        assistantOverrides: overrides,
      },
    };
  }

  /**
   * An assistant-request answer is configuration from outside: the same ownership and URL checks as a
   * saved assistant (another organisation's tool or credential ids, private server URLs). Returns the
   * problem, if any.
   */
  async #answerProblem(ctx: ServiceContext, r: AssistantRequestResponse): Promise<string | undefined> {
    try {
      if (r.assistant) await this.#o.checks.assistant(ctx, r.assistant, "assistant.");
      if (r.assistantOverrides)
        await this.#o.checks.assistant(ctx, r.assistantOverrides, "assistantOverrides.");
      if (r.squad) await this.#o.checks.squad(ctx, r.squad, "squad.");
      return undefined;
    } catch (err) {
      if (err instanceof ValidationError) return err.message;
      throw err;
    }
  }

  // ------------------------------------------------------------------ inbound webhook

  /**
   * `POST /twilio/inbound`. `url` is the URL Twilio signed (PUBLIC_URL + path and query); `params`
   * have passed the route's schema (CallSid, AccountSid, From, To well-formed).
   * Unknown number or bad signature → 403; otherwise TwiML. `log` is the request's.
   */
  async inbound(
    params: Record<string, string>,
    signature: string | undefined,
    url: string,
    log: ServiceLogger,
  ): Promise<TwimlReply> {
    const callSid = params.CallSid;
    if (!callSid || !params.To) return plain(400, "CallSid and To are required");
    const number = await this.#db.phoneNumber.findUnique({ where: { number: params.To } });
    if (!number || !this.#validSignature(number, signature, url, params)) return FORBIDDEN;

    // Twilio retries the webhook: the same CallSid gets the same call and a fresh token.
    const existing = await this.#db.call.findUnique({ where: { providerCallId: callSid } });
    if (existing) {
      if (existing.orgId !== number.orgId) return plain(409, "CallSid belongs to another call");
      return xml(existing.status === "ended" ? sayAndHangupTwiml(undefined) : this.#streamTwiml(existing.id));
    }

    const callId = randomUUID();
    const base = {
      id: callId,
      orgId: number.orgId,
      type: "inboundPhoneCall",
      phoneNumberId: number.id,
      providerCallId: callSid,
      customer: { number: params.From ?? "" },
    };

    const resolution = await this.#resolveInbound(number, callId, params, log);
    if (!resolution.ok) {
      const row = await this.#createEnded(base, resolution.endedReason, log);
      if (row.id !== callId) return xml(sayAndHangupTwiml(undefined));
      return xml(
        resolution.twiml ??
          fallbackTwiml(number, resolution.endedReason) ??
          sayAndHangupTwiml(resolution.say),
      );
    }
    const { agent } = resolution;
    const agentFields = {
      assistantId: agent.assistantId ?? null,
      squadId: agent.squadId ?? null,
      assistant: agent.assistant as Prisma.InputJsonValue,
      ...(agent.assistantOverrides
        ? { assistantOverrides: agent.assistantOverrides as Prisma.InputJsonValue }
        : {}),
    };

    const admitted = await this.#o.admission.admitCall(number.orgId, callId);
    if (!admitted.ok) {
      const row = await this.#createEnded({ ...base, ...agentFields }, admitted.endedReason, log);
      return xml(sayAndHangupTwiml(row.id === callId ? NOTICE[admitted.statusCode] : undefined));
    }
    try {
      await this.#db.call.create({ data: { ...base, ...agentFields, status: "ringing" } });
    } catch (err) {
      await this.#o.admission.releaseCall(number.orgId, callId);
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
        // A concurrent retry of the same webhook created it first.
        const winner = await this.#db.call.findUnique({ where: { providerCallId: callSid } });
        if (winner && winner.status !== "ended") return xml(this.#streamTwiml(winner.id));
        return xml(sayAndHangupTwiml(undefined));
      }
      throw err;
    }
    return xml(this.#streamTwiml(callId));
  }

  /** Records a call that ended before it started (the customer sees why in GET /call). */
  async #createEnded(
    data: Omit<Prisma.CallUncheckedCreateInput, "status">,
    endedReason: string,
    log: ServiceLogger,
  ): Promise<CallRow> {
    try {
      const row = await this.#db.call.create({
        data: { ...data, status: "ended", endedReason, endedAt: new Date(), usage: zeroCallUsage("inbound") },
      });
      callEnded(endedReason);
      await this.#recordCost(row.id, log);
      return row;
    } catch (err) {
      if (
        err instanceof Prisma.PrismaClientKnownRequestError &&
        err.code === "P2002" &&
        data.providerCallId
      ) {
        const winner = await this.#db.call.findUnique({ where: { providerCallId: data.providerCallId } });
        if (winner) return winner;
      }
      throw err;
    }
  }

  async #recordCost(callId: string, log: ServiceLogger): Promise<void> {
    if (!this.#o.recordCallCost) return;
    try {
      await this.#o.recordCallCost(callId);
    } catch (err) {
      log.warn({ err, callId }, "recording the cost of a call that never connected failed");
    }
  }

  // ------------------------------------------------------------------ status callback

  /**
   * `POST /twilio/status`: Twilio's call progress moves the call forward (never back). A call that ends
   * here without ever reaching the media plane is finalised here (zero usage) and its lease released.
   */
  async status(
    params: Record<string, string>,
    signature: string | undefined,
    url: string,
    callIdHint: string | undefined,
    log: ServiceLogger,
  ): Promise<TwimlReply> {
    const callSid = params.CallSid;
    let call = callSid ? await this.#db.call.findUnique({ where: { providerCallId: callSid } }) : null;
    if (!call && callIdHint && isUuid(callIdHint)) {
      call = await this.#db.call.findUnique({ where: { id: callIdHint } });
    }
    let number: PhoneNumberRow | null = null;
    if (call?.phoneNumberId) {
      number = await this.#db.phoneNumber.findUnique({ where: { id: call.phoneNumberId } });
    }
    for (const candidate of [params.To, params.From]) {
      if (number || !candidate) continue;
      number = await this.#db.phoneNumber.findUnique({ where: { number: candidate } });
    }
    if (!number || !this.#validSignature(number, signature, url, params)) return FORBIDDEN;
    if (!call || call.orgId !== number.orgId) return xml(new twilio.twiml.VoiceResponse().toString());

    if (callSid && !call.providerCallId) {
      await this.#db.call.updateMany({
        where: { id: call.id, providerCallId: null },
        data: { providerCallId: callSid },
      });
    }
    const t = transitionFor(params.CallStatus ?? "");
    if (t.kind === "progress") {
      await this.#db.call.updateMany({
        where: { id: call.id, status: { in: statusesBefore(t.status) } },
        data: { status: t.status },
      });
    } else if (t.kind === "end") {
      // Only a call the media plane never took ends here; otherwise the media session finalises it.
      const ended = await this.#db.call.updateMany({
        where: { id: call.id, status: ACTIVE, streamConnectedAt: null },
        data: {
          status: "ended",
          endedReason: t.endedReason,
          endedAt: new Date(),
          usage: zeroCallUsage(call.type === "outboundPhoneCall" ? "outbound" : "inbound"),
        },
      });
      if (ended.count === 1) {
        callEnded(t.endedReason);
        await this.#o.admission.releaseCall(call.orgId, call.id);
        await this.#recordCost(call.id, log);
      } else if (call.streamConnectedAt && this.#o.providerEnded) {
        // The media session ends its own calls, unless its process died with the call: Twilio's
        // report is then the authority on how long the call lived.
        const end = reportedEnd(params);
        if (end) {
          try {
            await this.#o.providerEnded(call.id, end, log);
          } catch (err) {
            log.warn({ err, callId: call.id }, "Twilio's end of call not applied");
          }
        }
      }
    }
    return xml(new twilio.twiml.VoiceResponse().toString());
  }

  // ------------------------------------------------------------------ REST: outbound, update, delete

  /** `POST /call`: an outbound phone call through Twilio. */
  async createOutbound(ctx: ServiceContext, body: Json): Promise<CallView> {
    checkAgentFields(body);
    if (typeof body.phoneNumberId !== "string") {
      throw new ValidationError("body.phoneNumberId is required: the Twilio number to call from");
    }
    const customer = asObject(body.customer);
    if (typeof customer.number !== "string") {
      throw new ValidationError("body.customer.number is required: the E.164 number to call");
    }
    await this.#o.refs.check(ctx, "phoneNumber", [{ field: "body.phoneNumberId", id: body.phoneNumberId }]);
    const agent = await resolveCallAgent(this.#o, ctx, body);
    const { assistant, assistantOverrides: overrides } = agent;
    const number = await this.#db.phoneNumber.findFirst({
      where: { id: body.phoneNumberId, orgId: ctx.orgId },
    });
    if (!number) throw new NotFoundError("Phone number", body.phoneNumberId);

    const callId = randomUUID();
    const admitted = await this.#o.admission.admitCall(ctx.orgId, callId);
    if (!admitted.ok) throw admissionError(admitted);

    let row: CallRow;
    try {
      row = await this.#db.call.create({
        data: {
          id: callId,
          orgId: ctx.orgId,
          type: "outboundPhoneCall",
          status: "queued",
          phoneNumberId: number.id,
          assistantId: agent.assistantId ?? null,
          squadId: agent.squadId ?? null,
          assistant: assistant as Prisma.InputJsonValue,
          ...(overrides ? { assistantOverrides: overrides as Prisma.InputJsonValue } : {}),
          customer: customer as Prisma.InputJsonValue,
          name: typeof body.name === "string" ? body.name : null,
          ...(isPlainObject(body.metadata) ? { metadata: body.metadata as Prisma.InputJsonValue } : {}),
        },
      });
    } catch (err) {
      await this.#o.admission.releaseCall(ctx.orgId, callId);
      throw err;
    }

    try {
      const dialed = await createCall({
        accountSid: number.twilioAccountSid,
        authToken: this.#authToken(number),
        apiUrl: this.#o.twilioApiUrl,
        from: number.number,
        to: customer.number,
        twiml: this.#streamTwiml(callId, OUTBOUND_TOKEN_TTL_MS),
        // The call id rides along so callbacks that beat our CallSid write still find the call.
        statusCallback: `${statusWebhookUrl(this.#o.publicUrl)}?callId=${callId}`,
        timeoutSeconds: OUTBOUND_RING_SECONDS,
      });
      const updated = await this.#db.call.updateMany({
        where: { id: callId, providerCallId: null },
        data: { providerCallId: dialed.sid },
      });
      if (updated.count === 1) row = { ...row, providerCallId: dialed.sid };
      return this.#view((await this.#db.call.findUnique({ where: { id: callId } })) ?? row);
    } catch (err) {
      // A call whose media stream was already claimed did connect (Twilio's answer to us was lost):
      // it is live on a media process, which will write its ending; it is not ended here.
      const ended = await this.#db.call.updateMany({
        where: { id: callId, status: ACTIVE, streamConnectedAt: null },
        data: {
          status: "ended",
          endedReason: ENDED_REASONS.twilioFailedToConnect,
          endedAt: new Date(),
          usage: zeroCallUsage("outbound"),
        },
      });
      if (ended.count === 1) callEnded(ENDED_REASONS.twilioFailedToConnect);
      if (ended.count === 0) {
        const current = await this.#db.call.findUnique({ where: { id: callId } });
        if (current?.streamConnectedAt && current.status !== "ended") return this.#view(current);
      }
      await this.#o.admission.releaseCall(ctx.orgId, callId);
      await this.#recordCost(callId, ctx.log);
      if (err instanceof AppError) throw err;
      throw new ValidationError(`Twilio could not place the call: ${twilioReason(err)}`);
    }
  }

  async #row(ctx: ServiceContext, id: string): Promise<CallRow> {
    assertId("Call", id);
    const row = await this.#db.call.findFirst({ where: { id, orgId: ctx.orgId } });
    if (!row) throw new NotFoundError("Call", id);
    return row;
  }

  /** `PATCH /call/:id`: name and metadata. */
  async update(ctx: ServiceContext, id: string, patch: { name?: string | null; metadata?: Json | null }) {
    const row = await this.#row(ctx, id);
    const data: Prisma.CallUncheckedUpdateInput = {};
    if (patch.name !== undefined) data.name = patch.name;
    if (patch.metadata !== undefined)
      data.metadata = patch.metadata === null ? Prisma.DbNull : (patch.metadata as Prisma.InputJsonValue);
    return this.#view(await this.#db.call.update({ where: { id: row.id }, data }));
  }

  /** `DELETE /call/:id`: an active call is hung up at Twilio first, then the record is removed. */
  async remove(ctx: ServiceContext, id: string): Promise<CallView> {
    const row = await this.#row(ctx, id);
    // A call's record may go, its billing may not: a call the media plane is running is ended
    // first (its usage is still being measured), and an ended call only once its cost is recorded.
    // Usage lines are not tied to the call row, so deleting the record keeps what was billed.
    if (row.status !== "ended" && row.streamConnectedAt) {
      throw new ConflictError(
        `Call ${id} is in progress: end it first (POST /call/${id}/control {"type":"end-call"}), then delete it`,
      );
    }
    if (row.status === "ended" && !row.finalizedAt) {
      throw new ConflictError(
        `Call ${id} has ended and its cost is still being recorded; try again in a few seconds`,
      );
    }
    if (row.status !== "ended") {
      if (row.providerCallId && row.phoneNumberId) {
        const number = await this.#db.phoneNumber.findUnique({ where: { id: row.phoneNumberId } });
        if (number) {
          try {
            await updateCall(
              {
                accountSid: number.twilioAccountSid,
                authToken: this.#authToken(number),
                apiUrl: this.#o.twilioApiUrl,
              },
              row.providerCallId,
              {
                status:
                  row.status === "in-progress" || row.status === "forwarding" ? "completed" : "canceled",
              },
            );
          } catch (err) {
            // Twilio no longer knowing the call (404) means it is over already; anything else must not
            // leave a live call without a record.
            if (!(err instanceof ValidationError)) throw err;
            ctx.log.warn({ err, callId: row.id }, "hanging up before delete failed");
          }
        }
      }
      await this.#o.admission.releaseCall(row.orgId, row.id);
    }
    // Vapi answers 503 when the recording cannot be erased: the record stays, so a retry can.
    await this.#o.eraseRecording?.(row);
    await this.#db.call.deleteMany({ where: { id: row.id } });
    return this.#view(row);
  }

  /** `POST /call/:id/control`: delivered to the media process holding the call. */
  async control(ctx: ServiceContext, id: string, msg: CallControlMessage): Promise<void> {
    await this.#deliverControl(await this.#row(ctx, id), msg);
  }

  /**
   * `POST /call/:id/monitor/control?token=` (the call's `monitor.controlUrl`): the same, authorised
   * by the call's control token, and by an API key of its organisation when the call's monitorPlan
   * asks for one. The token is checked before anything is read, so a wrong one tells nothing.
   */
  async controlByToken(
    id: string,
    token: string | undefined,
    authorization: string | undefined,
    msg: CallControlMessage,
  ): Promise<void> {
    if (!isUuid(id) || !isMonitorToken(this.#o.secretsKey, "control", id, token)) {
      throw new ForbiddenError(
        "Invalid control token for this call: use the call's monitor.controlUrl as given",
      );
    }
    const row = await this.#db.call.findUnique({ where: { id } });
    if (!row) throw new NotFoundError("Call", id);
    const plan = monitorPlanOf(row);
    if (plan.controlAuthenticationEnabled && !(await isOrgApiKey(this.#db, authorization, row.orgId))) {
      throw new UnauthorizedError(
        "This call's controlUrl needs `Authorization: Bearer <API key>` of the call's organisation (assistant.monitorPlan.controlAuthenticationEnabled)",
      );
    }
    if (!plan.controlEnabled) {
      throw new ForbiddenError(
        "Live control is off for this call (assistant.monitorPlan.controlEnabled is false)",
      );
    }
    await this.#deliverControl(row, msg);
  }

  async #deliverControl(row: CallRow, msg: CallControlMessage): Promise<void> {
    if (row.status === "ended") throw new ConflictError(`call ${row.id} has ended`);
    const received = await this.#o.controlBus.publish(row.id, msg);
    if (received === 0) throw new ConflictError("call is not active on any media process");
  }
}
