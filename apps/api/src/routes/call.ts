import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { originAllowed } from "../../../../libs/calls/transport.ts";
import { ForbiddenError, ValidationError } from "../../../../libs/errors/index.ts";
import { CallControlMessage } from "../../../../libs/telephony/control-bus.ts";
import {
  Call,
  CallListQuery,
  CallPaginatedQuery,
  CallPaginatedResponse,
  CreateCallDTO,
  FreeformObject,
} from "../../../../libs/vapi/index.ts";
import type { CallListQuery as CallListQueryInput, CallPageQuery } from "../services/call-service.ts";
import { errors, IdParam } from "./shared.ts";

const UpdateCallDTO = Type.Object(
  {
    name: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
    metadata: Type.Optional(Type.Union([FreeformObject, Type.Null()])),
  },
  { additionalProperties: false, title: "UpdateCallDTO" },
);
type UpdateCallBody = { name?: string | null; metadata?: Record<string, unknown> | null };

const ControlAccepted = Type.Object({ ok: Type.Literal(true) }, { title: "CallControlAccepted" });

/**
 * CORS on `POST /call` alone, so a page can start a websocket call with a public key; the rest of
 * the API stays unreadable cross-origin. The preflight carries no key, so it echoes any Origin;
 * the answer echoes it unless the key is a public key whose `allowedOrigins` leave it out (and
 * then the call is refused with a 403). Keys are bearer tokens: no cookies ride along.
 */
const CALL_CORS = {
  origin: true,
  methods: ["POST"],
  allowedHeaders: ["authorization", "content-type"],
  maxAge: 600,
  strictPreflight: false,
};

const WEBSOCKET_ONLY =
  'POST /call with transport {"provider":"vapi.websocket"} and an assistant; the answer\'s transport.websocketCallUrl carries the call\'s audio';

export async function callRoutes(app: FastifyInstance): Promise<void> {
  const { calls, telephony, webCalls } = app.deps.services;

  app.post<{ Body: CreateCallDTO }>(
    "/call",
    {
      config: { auth: "public", cors: CALL_CORS },
      schema: {
        operationId: "CallController_create",
        tags: ["Calls"],
        summary: "Start an outbound phone call, or a web call over a websocket",
        description:
          'Exactly one of assistantId, assistant, squadId or squad (with assistantOverrides). A phone call: phoneNumberId (an imported Twilio number to call from) and customer.number; dials through Twilio; the call then moves queued → ringing → in-progress → ended. A web call: transport {"provider":"vapi.websocket", "audioFormat":{"format":"pcm_s16le"|"mulaw","container":"raw","sampleRate"}} and no phone number; the answer is a vapi.websocketCall whose transport.websocketCallUrl (in this answer only) takes the call\'s audio, once, within 60 s. Public keys may start web calls only, within their restrictions (allowedOrigins against the Origin header, allowedAssistantIds, allowTransientAssistant); browsers get CORS headers here.',
        body: CreateCallDTO,
        response: { 201: Call, ...errors(400, 401, 402, 403, 502) },
      },
    },
    async (req, reply) => {
      // The key is known only now: a page whose origin the public key does not allow is not told
      // anything, not even why (the service answers 403).
      if (
        req.auth.keyType === "public" &&
        !originAllowed(req.auth.restrictions?.allowedOrigins, req.headers.origin)
      ) {
        reply.removeHeader("access-control-allow-origin");
      }
      if (req.body.transport) {
        return reply.code(201).send(await webCalls.create(req.auth, req.body, req.headers.origin));
      }
      if (req.auth.keyType === "public") {
        throw new ForbiddenError(`A public key can only start web calls: ${WEBSOCKET_ONLY}`);
      }
      return reply.code(201).send(await telephony.createOutbound(req.auth, req.body));
    },
  );

  // The browser's preflight of POST /call (answered by @fastify/cors in its hook, before any key).
  app.options(
    "/call",
    { config: { auth: "none", cors: CALL_CORS }, schema: { hide: true } },
    async (_req, reply) => reply.code(204).send(),
  );

  app.post(
    "/call/web",
    {
      config: { auth: "public", cors: CALL_CORS },
      schema: {
        operationId: "CallController_createWebCall",
        tags: ["Calls"],
        summary: "Vapi's Daily WebRTC web call: not offered; start a websocket call with POST /call",
        description: `Always 400: there are no Daily rooms here. Use ${WEBSOCKET_ONLY}.`,
        response: errors(400, 401),
      },
    },
    async () => {
      throw new ValidationError(
        `Daily WebRTC web calls (POST /call/web) are not available: use ${WEBSOCKET_ONLY}`,
      );
    },
  );

  app.patch<{ Params: IdParam; Body: UpdateCallBody }>(
    "/call/:id",
    {
      schema: {
        operationId: "CallController_update",
        tags: ["Calls"],
        summary: "Update a call's name or metadata",
        params: IdParam,
        body: UpdateCallDTO,
        response: { 200: Call, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => telephony.update(req.auth, req.params.id, req.body),
  );

  app.delete<{ Params: IdParam }>(
    "/call/:id",
    {
      schema: {
        operationId: "CallController_deleteCallData",
        tags: ["Calls"],
        summary:
          "Delete a call record: a call not yet connected is hung up first; a call in progress or still being priced answers 409. Billed usage is kept.",
        params: IdParam,
        response: { 200: Call, ...errors(401, 403, 404, 409, 502) },
      },
    },
    async (req) => telephony.remove(req.auth, req.params.id),
  );

  app.post<{ Params: IdParam; Body: CallControlMessage }>(
    "/call/:id/control",
    {
      schema: {
        operationId: "CallController_control",
        tags: ["Calls"],
        summary: "Live call control: say, add-message, end-call, transfer",
        description:
          "Delivered to the media process holding the call. 409 when the call has ended or no media process holds it.",
        params: IdParam,
        body: CallControlMessage,
        response: { 202: ControlAccepted, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await telephony.control(req.auth, req.params.id, req.body);
      return reply.code(202).send({ ok: true });
    },
  );

  app.get<{ Querystring: CallListQueryInput }>(
    "/call",
    {
      schema: {
        operationId: "CallController_findAll",
        tags: ["Calls"],
        summary: "List calls, newest first",
        querystring: CallListQuery,
        response: { 200: { type: "array", items: Call }, ...errors(400, 401, 403) },
      },
    },
    async (req) => calls.list(req.auth, req.query),
  );

  app.get<{ Querystring: CallPageQuery }>(
    "/v2/call",
    {
      schema: {
        operationId: "CallController_findAllPaginated",
        tags: ["Calls"],
        summary: "List calls a page at a time, with filters and the number of calls matching",
        description:
          "Vapi's paginated list: the filters of GET /call and endedReason, successEvaluation, cost, costGe and costLe (USD); page (from 1) of limit calls, newest first unless sortOrder is ASC. metadata says how many calls match and how many pages they fill.",
        querystring: CallPaginatedQuery,
        response: { 200: CallPaginatedResponse, ...errors(400, 401, 403) },
      },
    },
    async (req) => calls.page(req.auth, req.query),
  );

  app.get<{ Params: IdParam }>(
    "/call/:id",
    {
      schema: {
        operationId: "CallController_findOne",
        tags: ["Calls"],
        summary: "Get a call",
        params: IdParam,
        response: { 200: Call, ...errors(401, 403, 404) },
      },
    },
    async (req) => calls.get(req.auth, req.params.id),
  );
}
