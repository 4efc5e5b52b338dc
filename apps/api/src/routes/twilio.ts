import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { TwimlReply } from "../services/telephony-service.ts";

// Twilio's voice webhooks: form-encoded, signed with X-Twilio-Signature (HMAC-SHA1 with the owning
// account's auth token over PUBLIC_URL + path + query and the sorted form params). No API key: the
// signature is the authentication. They draw on the webhook budget per address, larger than the
// ordinary one, since one carrier address sends many calls' webhooks.

const FormParams = Type.Record(Type.String(), Type.String(), {
  description: "Twilio's standard voice webhook parameters (CallSid, AccountSid, From, To, CallStatus, …)",
});

const TwimlResponse = {
  description: "TwiML",
  content: { "text/xml": { schema: { type: "string" } } },
};
const PlainResponse = (description: string) => ({
  description,
  content: { "text/plain": { schema: { type: "string" } } },
});

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

  app.post<{ Body: Record<string, string> }>(
    "/twilio/inbound",
    {
      config: { auth: "none", addressLimit: "webhook" },
      schema: {
        operationId: "TwilioController_inbound",
        tags: ["Twilio"],
        summary: "Twilio voice webhook: answers an incoming call with TwiML <Connect><Stream>",
        description:
          "Set as the number's Voice URL when it is imported. Validates X-Twilio-Signature with the number's auth token, resolves the assistant (the number's assistant or squad, or an assistant-request to the number's or organisation's server), checks the organisation may take the call, creates the Call and streams it to the media plane.",
        security: [],
        consumes: ["application/x-www-form-urlencoded"],
        body: FormParams,
        response: {
          200: TwimlResponse,
          400: PlainResponse("CallSid missing"),
          403: PlainResponse("Invalid or missing X-Twilio-Signature"),
          404: PlainResponse("The number is not imported"),
        },
      },
    },
    async (req, reply) =>
      send(reply, await telephony.inbound(req.body ?? {}, signature(req), signedUrl(req))),
  );

  app.post<{ Body: Record<string, string>; Querystring: { callId?: string } }>(
    "/twilio/status",
    {
      config: { auth: "none", addressLimit: "webhook" },
      schema: {
        operationId: "TwilioController_status",
        tags: ["Twilio"],
        summary: "Twilio call status callback: moves the call queued → ringing → in-progress → ended",
        security: [],
        consumes: ["application/x-www-form-urlencoded"],
        querystring: Type.Object({ callId: Type.Optional(Type.String({ maxLength: 64 })) }),
        body: FormParams,
        response: {
          200: TwimlResponse,
          403: PlainResponse("Invalid or missing X-Twilio-Signature"),
          404: PlainResponse("Neither number of the call is imported"),
        },
      },
    },
    async (req, reply) =>
      send(reply, await telephony.status(req.body ?? {}, signature(req), signedUrl(req), req.query.callId)),
  );
}
