import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { listQueryProperties, Server } from "../../../../libs/vapi/index.ts";
import { TokenRestrictions } from "../services/key-restrictions.ts";
import { errors, IdParam } from "./shared.ts";

const Org = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    name: Type.String(),
    concurrencyLimit: Type.Integer(),
    server: Type.Optional(Server),
    createdAt: Type.String({ format: "date-time" }),
    updatedAt: Type.String({ format: "date-time" }),
  },
  { title: "Org" },
);

const Token = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    orgId: Type.String({ format: "uuid" }),
    tag: Type.Union([Type.Literal("private"), Type.Literal("public")]),
    name: Type.Optional(Type.String()),
    prefix: Type.String({ description: "First characters of the key, to tell keys apart" }),
    value: Type.Optional(
      Type.String({ description: "The key itself: returned only once, when it is created" }),
    ),
    restrictions: Type.Optional(TokenRestrictions),
    createdAt: Type.String({ format: "date-time" }),
    updatedAt: Type.String({ format: "date-time" }),
    revokedAt: Type.Optional(Type.String({ format: "date-time" })),
    lastUsedAt: Type.Optional(Type.String({ format: "date-time" })),
  },
  { title: "Token" },
);

const CreateOrgDTO = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 80 }) },
  { additionalProperties: false, title: "CreateOrgDTO" },
);
const UpdateOrgDTO = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 80 })),
    server: Type.Optional(Type.Union([Server, Type.Null()])),
  },
  { additionalProperties: false, title: "UpdateOrgDTO" },
);
const CreateTokenDTO = Type.Object(
  {
    tag: Type.Optional(Type.Union([Type.Literal("private"), Type.Literal("public")])),
    name: Type.Optional(Type.String({ maxLength: 80 })),
    restrictions: Type.Optional(TokenRestrictions),
  },
  { additionalProperties: false, title: "CreateTokenDTO" },
);
const UpdateTokenDTO = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 80 })),
    restrictions: Type.Optional(TokenRestrictions),
  },
  { additionalProperties: false, title: "UpdateTokenDTO" },
);

export async function orgRoutes(app: FastifyInstance): Promise<void> {
  const { orgs } = app.deps.services;

  app.post<{ Body: Static<typeof CreateOrgDTO> }>(
    "/org",
    {
      config: { auth: "admin" },
      schema: {
        operationId: "OrgController_create",
        tags: ["Orgs"],
        summary: "Create an organisation and its first private API key (operator only: Bearer ADMIN_TOKEN)",
        body: CreateOrgDTO,
        response: {
          201: Type.Object({ org: Org, apiKey: Token }, { title: "CreateOrgResponse" }),
          ...errors(400, 401),
        },
      },
    },
    async (req, reply) => reply.status(201).send(await orgs.createOrg(req.body.name)),
  );

  app.get(
    "/org",
    {
      schema: {
        operationId: "OrgController_findMine",
        tags: ["Orgs"],
        summary: "The organisation of the calling key",
        response: { 200: Org, ...errors(401, 403) },
      },
    },
    async (req) => orgs.getOrg(req.auth),
  );

  app.patch<{ Body: Static<typeof UpdateOrgDTO> }>(
    "/org",
    {
      schema: {
        operationId: "OrgController_updateMine",
        tags: ["Orgs"],
        summary: "Update the organisation of the calling key: its name, or its server (null removes it)",
        description:
          "The organisation's server receives webhooks when neither the tool, the assistant nor the phone number has one. Its URL, headers and secret are checked as on every other server.",
        body: UpdateOrgDTO,
        response: { 200: Org, ...errors(400, 401, 403) },
      },
    },
    async (req) => orgs.updateOrg(req.auth, req.body),
  );

  app.post<{ Body: Static<typeof CreateTokenDTO> }>(
    "/token",
    {
      schema: {
        operationId: "TokenController_create",
        tags: ["Tokens"],
        summary: "Create an API key; its value is shown only in this response",
        body: CreateTokenDTO,
        response: { 201: Token, ...errors(400, 401, 403) },
      },
    },
    async (req, reply) => reply.status(201).send(await orgs.createToken(req.auth, req.body)),
  );

  app.get<{ Querystring: Record<string, string | number> }>(
    "/token",
    {
      schema: {
        operationId: "TokenController_findAll",
        tags: ["Tokens"],
        summary: "List API keys (prefix only, never the key)",
        querystring: Type.Object(listQueryProperties, { additionalProperties: false }),
        response: { 200: Type.Array(Token), ...errors(400, 401, 403) },
      },
    },
    async (req) => orgs.listTokens(req.auth, req.query),
  );

  app.get<{ Params: IdParam }>(
    "/token/:id",
    {
      schema: {
        operationId: "TokenController_findOne",
        tags: ["Tokens"],
        summary: "Get an API key",
        params: IdParam,
        response: { 200: Token, ...errors(401, 403, 404) },
      },
    },
    async (req) => orgs.getToken(req.auth, req.params.id),
  );

  app.patch<{ Params: IdParam; Body: Static<typeof UpdateTokenDTO> }>(
    "/token/:id",
    {
      schema: {
        operationId: "TokenController_update",
        tags: ["Tokens"],
        summary: "Rename an API key or replace its restrictions; they apply at once",
        params: IdParam,
        body: UpdateTokenDTO,
        response: { 200: Token, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const token = await orgs.updateToken(req.auth, req.params.id, req.body);
      if (req.body.restrictions) await app.evictApiKeyEverywhere(token.id);
      return token;
    },
  );

  app.delete<{ Params: IdParam }>(
    "/token/:id",
    {
      schema: {
        operationId: "TokenController_remove",
        tags: ["Tokens"],
        summary: "Revoke an API key; it stops working at once",
        params: IdParam,
        response: { 200: Token, ...errors(401, 403, 404) },
      },
    },
    async (req) => {
      const token = await orgs.revokeToken(req.auth, req.params.id);
      await app.revokeApiKeyEverywhere(token.id);
      return token;
    },
  );
}
