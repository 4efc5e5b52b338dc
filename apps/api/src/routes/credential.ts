import type { FastifyInstance } from "fastify";
import {
  CreateCredentialDTO,
  Credential,
  createCredentialSchemas,
  UpdateCredentialDTO,
  updateCredentialSchemas,
} from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function credentialRoutes(app: FastifyInstance): Promise<void> {
  const credentials = app.deps.services.credentials;
  crudRoutes(app, {
    path: "/credential",
    controller: "CredentialController",
    tag: "Credentials",
    noun: "a provider credential (BYO key; the secret is never returned)",
    create: CreateCredentialDTO,
    update: UpdateCredentialDTO,
    response: Credential,
    service: credentials,
    dispatch: {
      field: "provider",
      create: createCredentialSchemas,
      update: updateCredentialSchemas,
      current: async (ctx, id) => (await credentials.row(ctx, id)).provider,
    },
  });
}
