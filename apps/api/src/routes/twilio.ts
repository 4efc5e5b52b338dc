import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { TwilioVoiceParams } from "../../../../libs/telephony/webhook-params.ts";
import { ErrorResponse } from "../../../../libs/vapi/index.ts";
import type { TwimlReply } from "../services/telephony-service.ts";

// Twilio's voice webhooks: form-encoded, signed with X-Twilio-Signature (HMAC-SHA1 with the owning
// account's auth token over PUBLIC_URL + path + query and the sorted form params). No API key: the
// signature is the authentication. They draw on the webhook budget per address, larger than the
// ordinary one, since one carrier address sends many calls' webhooks.

const TwimlResponse = {
  description: "TwiML",
  content: { "text/xml": { schema: { type: "string" } } },
};
const PlainResponse = (description: string) => ({
  description,
  content: { "text/plain": { schema: { type: "string" } } },
});

// One answer whether the number is unknown or the signature wrong: the webhook is no oracle for
// which numbers are imported.
const FORBIDDEN_DESCRIPTION =
  "Invalid or missing X-Twilio-Signature, or no imported number to check it with (the same answer for both)";

function formToObject(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  // Twilio sends each standard parameter once; a repeated key keeps its first value.
  for (const [k, v] of new URLSearchParams(raw)) if (!(k in out)) out[k] = v;
  return out;
}

export async function twilioRoutes(app: FastifyInstance): Promise<void> {
  const { telephony } = app.deps.services;
  const publicUrl = telephony.publicUrl;

  // Scoped to this plugin: only the Twilio webhooks accept form bodies.
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    done(null, formToObject(String(body)));
  });

  const signedUrl = (req: FastifyRequest): string => `${publicUrl}${req.url}`;
  const signature = (req: FastifyRequest): string | undefined => {
    const h = req.headers["x-twilio-signature"];
    return Array.isArray(h) ? h[0] : h;
  };
  const send = (reply: FastifyReply, r: TwimlReply) =>
    reply.code(r.statusCode).type(r.contentType).send(r.body);

  app.post<{ Body: TwilioVoiceParams }>(
    "/twilio/inbound",
    {
      config: { auth: "none", addressLimit: "webhook" },
      schema: {
        operationId: "TwilioController_inbound",
        tags: ["Twilio"],
        summary: "Twilio voice webhook: answers an incoming call with TwiML <Connect><Stream>",
        description:
          "Set as the number's Voice URL when it is imported. Validates X-Twilio-Signature with the number's auth token, resolves the assistant (the number's assistant or squad, or an assistant-request to the number's or organisation's server), checks the organisation may take the call, creates the Call and streams it to the media plane. Malformed parameters answer 400 before any lookup; an unknown number and a bad signature both answer 403.",
        security: [],
        consumes: ["application/x-www-form-urlencoded"],
        body: TwilioVoiceParams,
        response: {
          200: TwimlResponse,
          400: ErrorResponse,
          403: PlainResponse(FORBIDDEN_DESCRIPTION),
        },
      },
    },
    async (req, reply) =>
      send(reply, await telephony.inbound(req.body, signature(req), signedUrl(req), req.log)),
  );

  app.post<{ Body: TwilioVoiceParams; Querystring: { callId?: string } }>(
    "/twilio/status",
    {
      config: { auth: "none", addressLimit: "webhook" },
      schema: {
        operationId: "TwilioController_status",
        tags: ["Twilio"],
        summary: "Twilio call status callback: moves the call queued → ringing → in-progress → ended",
        security: [],
        consumes: ["application/x-www-form-urlencoded"],
        querystring: Type.Object({ callId: Type.Optional(Type.String({ format: "uuid" })) }),
        body: TwilioVoiceParams,
        response: {
          200: TwimlResponse,
          400: ErrorResponse,
          403: PlainResponse(FORBIDDEN_DESCRIPTION),
        },
      },
    },
    async (req, reply) =>
      send(
        reply,
        await telephony.status(req.body, signature(req), signedUrl(req), req.query.callId, req.log),
      ),
  );
}
