import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { CallControlMessage } from "../../../../libs/telephony/control-bus.ts";
import { errors, IdParam } from "./shared.ts";

// A call's `monitor.controlUrl`: live control authorised by the call's control token (in the URL)
// instead of an API key, so it can be handed to a supervisor's tool. No key means the route draws on
// the per-address budget of unauthenticated routes (the auth hook), before the token is checked.

const ControlAccepted = Type.Object({ ok: Type.Literal(true) }, { title: "CallControlAccepted" });
const MonitorTokenQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: 128 })) });

/** The largest control message (an `add-message` of 20,000 characters) with room to spare. */
const CONTROL_BODY_LIMIT_BYTES = 128 * 1024;

export async function callMonitorRoutes(app: FastifyInstance): Promise<void> {
  const { telephony } = app.deps.services;

  app.post<{ Params: IdParam; Querystring: { token?: string }; Body: CallControlMessage }>(
    "/call/:id/monitor/control",
    {
      config: { auth: "none" },
      bodyLimit: CONTROL_BODY_LIMIT_BYTES,
      schema: {
        operationId: "CallController_monitorControl",
        tags: ["Calls"],
        summary:
          "Live call control through the call's monitor.controlUrl: say, add-message, end-call, transfer",
        description:
          "The URL is the call's `monitor.controlUrl` as given (its `token` is the call's control token; no API key). With `assistant.monitorPlan.controlAuthenticationEnabled` it also needs `Authorization: Bearer <API key>` of the call's organisation. Delivered to the media process holding the call; 409 when the call has ended or no media process holds it.",
        security: [],
        params: IdParam,
        querystring: MonitorTokenQuery,
        body: CallControlMessage,
        response: { 202: ControlAccepted, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      await telephony.controlByToken(req.params.id, req.query.token, req.headers.authorization, req.body);
      return reply.code(202).send({ ok: true });
    },
  );
}
