import type { FastifyInstance } from "fastify";
import {
  CreateToolDTO,
  createToolSchemas,
  SharedRef,
  Tool,
  UpdateToolDTO,
  updateToolSchemas,
} from "../../../../libs/vapi/index.ts";
import type { ToolBody } from "../services/tool-service.ts";
import { crudRoutes } from "./crud.ts";

export async function toolRoutes(app: FastifyInstance): Promise<void> {
  const tools = app.deps.services.tools;
  crudRoutes(app, {
    path: "/tool",
    controller: "ToolController",
    tag: "Tools",
    noun: "a tool",
    create: SharedRef(CreateToolDTO),
    update: UpdateToolDTO,
    response: Tool,
    service: {
      create: (ctx, body) => tools.create(ctx, body as ToolBody),
      get: (ctx, id) => tools.get(ctx, id),
      list: (ctx, q) => tools.list(ctx, q),
      update: (ctx, id, patch) => tools.update(ctx, id, patch),
      remove: (ctx, id) => tools.remove(ctx, id),
    },
    dispatch: {
      field: "type",
      create: createToolSchemas,
      update: updateToolSchemas,
      current: (ctx, id) => tools.typeOf(ctx, id),
    },
  });
}
