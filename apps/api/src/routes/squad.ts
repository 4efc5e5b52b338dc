import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import {
  CreateSquadDTO,
  listQueryProperties,
  SharedRef,
  Squad,
  STRICT,
  UpdateSquadDTO,
  Uuid,
} from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function squadRoutes(app: FastifyInstance): Promise<void> {
  crudRoutes(app, {
    path: "/squad",
    controller: "SquadController",
    tag: "Squads",
    noun: "a squad",
    create: SharedRef(CreateSquadDTO),
    update: UpdateSquadDTO,
    response: Squad,
    // Vapi's SDK lists squads by ids with `idAny` (repeated query parameter).
    listQuery: Type.Object({ idAny: Type.Optional(Type.Array(Uuid)), ...listQueryProperties }, STRICT),
    service: app.deps.services.squads,
  });
}
