import type { FastifyInstance } from "fastify";
import { Assistant, CreateAssistantDTO, UpdateAssistantDTO } from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function assistantRoutes(app: FastifyInstance): Promise<void> {
  crudRoutes(app, {
    path: "/assistant",
    controller: "AssistantController",
    tag: "Assistants",
    noun: "an assistant",
    create: CreateAssistantDTO,
    update: UpdateAssistantDTO,
    response: Assistant,
    service: app.deps.services.assistants,
  });
}
