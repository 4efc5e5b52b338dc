import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { CallLogEntries } from "../../../../libs/call-logs/index.ts";
import { errors, IdParam } from "./shared.ts";

// A call's log (artifactPlan.loggingEnabled): Vapi's download route, a 302 to a signed URL valid
// for five minutes, and the signed URL itself (no API key), which `artifact.logUrl` names too.

const SignedQuery = Type.Object({
  expires: Type.Optional(Type.String({ maxLength: 16 })),
  signature: Type.Optional(Type.String({ maxLength: 64 })),
});

export async function callLogRoutes(app: FastifyInstance): Promise<void> {
  const { callLogs } = app.deps.services;

  app.get<{ Params: IdParam }>(
    "/call/:id/call-logs",
    {
      schema: {
        operationId: "CallArtifactController_callLogsDownload",
        tags: ["Calls"],
        summary: "Download the call's log",
        description:
          "302 to a signed URL of the call's log (a JSON array of entries, oldest first), valid for 5 minutes: follow it, do not keep it. 404 when the call keeps no log (artifactPlan.loggingEnabled false) or is not in your organisation.",
        params: IdParam,
        response: {
          302: Type.Null({ description: "Location: the signed URL" }),
          ...errors(401, 403, 404),
        },
      },
    },
    async (req, reply) => {
      const url = await callLogs.redirect(req.auth, req.params.id);
      return reply.code(302).header("location", url).header("cache-control", "no-store").send();
    },
  );

  app.get<{ Params: IdParam; Querystring: { expires?: string; signature?: string } }>(
    "/call/:id/call-logs.json",
    {
      config: { auth: "none" },
      schema: {
        operationId: "CallArtifactController_signedCallLogs",
        tags: ["Calls"],
        summary: "A call's log through its signed URL (artifact.logUrl): no API key",
        description:
          "The URL as given in the call's `artifact.logUrl` (valid for an hour from the answer that carried it) or the Location of `GET /call/:id/call-logs`. Entries: `{time, secondsFromStart, level, category, message, data}`, oldest first, at most CALL_LOG_MAX_ENTRIES (the last one says when the log was cut). 403 when the signature is wrong or has expired.",
        security: [],
        params: IdParam,
        querystring: SignedQuery,
        response: { 200: CallLogEntries, ...errors(403, 404) },
      },
    },
    async (req, reply) => {
      const entries = await callLogs.download(req.params.id, req.query);
      // A live call's log grows: never cached.
      return reply.header("cache-control", "private, no-store").send(entries);
    },
  );
}
