import type { FastifyInstance } from "fastify";
import { Assistant, CreateAssistantDTO, SharedRef, UpdateAssistantDTO } from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function assistantRoutes(app: FastifyInstance): Promise<void> {
  crudRoutes(app, {
    path: "/assistant",
    controller: "AssistantController",
    tag: "Assistants",
    noun: "an assistant",
    create: SharedRef(CreateAssistantDTO),
    update: UpdateAssistantDTO,
    response: Assistant,
    service: app.deps.services.assistants,
  });
}
