import type { FastifyInstance } from "fastify";
import { NotImplementedError } from "../../../../libs/errors/index.ts";
import { Call, CallListQuery, CreateCallDTO } from "../../../../libs/vapi/index.ts";
import type { CallListQuery as CallListQueryInput } from "../services/call-service.ts";
import { errors, IdParam } from "./shared.ts";

export async function callRoutes(app: FastifyInstance): Promise<void> {
  const { calls } = app.deps.services;

  app.post(
    "/call",
    {
      schema: {
        operationId: "CallController_create",
        tags: ["Calls"],
        summary: "Start an outbound phone call (not available yet: the media plane is not deployed)",
        body: CreateCallDTO,
        response: { ...errors(400, 401, 403, 501) },
      },
    },
    async () => {
      throw new NotImplementedError(
        "Outbound calls are not available yet on this deployment: POST /call arrives with the media plane",
      );
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
