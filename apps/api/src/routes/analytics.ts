import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import {
  AnalyticsQueryDTO,
  AnalyticsQueryResult,
  MAX_ANALYTICS_OPERATIONS,
  MAX_ANALYTICS_QUERIES,
} from "../../../../libs/vapi/index.ts";
import { AnalyticsService, MAX_BUCKETS, MAX_RESULT_ROWS } from "../services/analytics-service.ts";
import { errors } from "./shared.ts";

// POST /analytics: Vapi's analytics queries over the organisation's calls (see AnalyticsService).

export async function analyticsRoutes(app: FastifyInstance): Promise<void> {
  const analytics = new AnalyticsService(app.deps.db);

  app.post<{ Body: AnalyticsQueryDTO }>(
    "/analytics",
    {
      schema: {
        operationId: "AnalyticsController_query",
        tags: ["Analytics"],
        summary: "Create Analytics Queries",
        description: `Runs named queries over the organisation's calls: sum, avg, count, min, max or history of a column, per bucket of timeRange.step in timeRange.timezone and per groupBy fields; answers one result per query, in order. Calls are bucketed by their creation time; only buckets and groups with calls are answered. 400 naming the field for a table other than "call", an unknown timezone, end not after start, an alias used twice, more than ${MAX_BUCKETS.toLocaleString("en-US")} buckets or ${MAX_RESULT_ROWS.toLocaleString("en-US")} rows in a query; at most ${MAX_ANALYTICS_QUERIES} queries of ${MAX_ANALYTICS_OPERATIONS} operations.`,
        body: AnalyticsQueryDTO,
        response: { 200: Type.Array(AnalyticsQueryResult), ...errors(400, 401, 403) },
      },
    },
    async (req) => analytics.query(req.auth, req.body),
  );
}
