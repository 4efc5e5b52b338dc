import type { FastifyInstance } from "fastify";
import { registerHealthRoute } from "../../../../libs/http/health.ts";

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  registerHealthRoute(app, () => app.deps);
}
