import type { FastifyInstance } from "fastify";
import { CreateSquadDTO, Squad, UpdateSquadDTO } from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function squadRoutes(app: FastifyInstance): Promise<void> {
  crudRoutes(app, {
    path: "/squad",
    controller: "SquadController",
    tag: "Squads",
    noun: "a squad",
    create: CreateSquadDTO,
    update: UpdateSquadDTO,
    response: Squad,
    service: app.deps.services.squads,
  });
}
