-- CreateTable
CREATE TABLE "CallMetricHour" (
    "orgId" UUID NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "groupSet" SMALLINT NOT NULL,
    "key" TEXT NOT NULL,
    "type" TEXT,
    "status" TEXT,
    "endedReason" TEXT,
    "successEvaluation" TEXT,
    "assistantId" UUID,
    "calls" INTEGER NOT NULL,
    "costSum" DECIMAL(30,6) NOT NULL,
    "costCount" INTEGER NOT NULL,
    "costTransportSum" DECIMAL(30,6) NOT NULL,
    "costTransportCount" INTEGER NOT NULL,
    "costSttSum" DECIMAL(30,6) NOT NULL,
    "costSttCount" INTEGER NOT NULL,
    "costLlmSum" DECIMAL(30,6) NOT NULL,
    "costLlmCount" INTEGER NOT NULL,
    "costTtsSum" DECIMAL(30,6) NOT NULL,
    "costTtsCount" INTEGER NOT NULL,
    "costVapiSum" DECIMAL(30,6) NOT NULL,
    "costVapiCount" INTEGER NOT NULL,
    "costAnalysisSummarySum" DECIMAL(30,6) NOT NULL,
    "costAnalysisSummaryCount" INTEGER NOT NULL,
    "llmPromptTokensSum" DECIMAL(30,0) NOT NULL,
    "llmPromptTokensCount" INTEGER NOT NULL,
    "llmCompletionTokensSum" DECIMAL(30,0) NOT NULL,
    "llmCompletionTokensCount" INTEGER NOT NULL,
    "llmCachedPromptTokensSum" DECIMAL(30,0) NOT NULL,
    "llmCachedPromptTokensCount" INTEGER NOT NULL,
    "ttsCharactersSum" DECIMAL(30,0) NOT NULL,
    "ttsCharactersCount" INTEGER NOT NULL,
    "minutesUsedSum" DECIMAL(30,6) NOT NULL,
    "minutesUsedCount" INTEGER NOT NULL,
    "durationMsSum" DECIMAL(30,0) NOT NULL,
    "durationMsCount" INTEGER NOT NULL,
    "concurrencySum" DECIMAL(30,0) NOT NULL,
    "concurrencyCount" INTEGER NOT NULL,

    CONSTRAINT "CallMetricHour_pkey" PRIMARY KEY ("orgId","groupSet","hour","key")
);

-- The hourly rollup of CallMetric that POST /analytics reads for the whole UTC hours of a range
-- (CallMetric itself only for the partial hours at its edges, for min and max, and for buckets
-- that do not start on a whole UTC hour). One row per organisation, UTC hour, grouping set and
-- the set's values: set 0 all calls of the hour, set 1 per assistantId, set 2 per (type, status,
-- endedReason, successEvaluation). Keyed by all five fields at once the rollup would hold about as
-- many rows as there are calls (a month of 100,000 calls over 20 assistants: 87,000 rows), per set
-- it holds 744, 15,000 and 27,000. Each column is a sum and a count of the calls that have it, so
-- sum, count, avg (sum / count) and history stay exact. Money and tokens are summed as numeric,
-- duration in milliseconds (timestamps have millisecond precision).
-- A trigger on CallMetric adds a row's values when it is written and takes its old values away
-- when it changes or goes (a cost recorded after the call, an analysis, a deleted call), in the
-- same transaction. A set's row left with no calls is deleted, so only groups with calls answer.
-- The PL/pgSQL bodies spell semicolons \073 (see the call_metrics migration).
CREATE FUNCTION call_metric_hour_apply(m "CallMetric", s integer) RETURNS void
LANGUAGE plpgsql AS E'
DECLARE
  h timestamptz := date_trunc(''hour'', m."createdAt", ''UTC'')\073
BEGIN
  INSERT INTO "CallMetricHour" AS r ("orgId", "hour", "groupSet", "key", "type", "status",
    "endedReason", "successEvaluation", "assistantId", "calls",
    "costSum", "costCount",
    "costTransportSum", "costTransportCount",
    "costSttSum", "costSttCount",
    "costLlmSum", "costLlmCount",
    "costTtsSum", "costTtsCount",
    "costVapiSum", "costVapiCount",
    "costAnalysisSummarySum", "costAnalysisSummaryCount",
    "llmPromptTokensSum", "llmPromptTokensCount",
    "llmCompletionTokensSum", "llmCompletionTokensCount",
    "llmCachedPromptTokensSum", "llmCachedPromptTokensCount",
    "ttsCharactersSum", "ttsCharactersCount",
    "minutesUsedSum", "minutesUsedCount",
    "durationMsSum", "durationMsCount",
    "concurrencySum", "concurrencyCount")
  SELECT m."orgId", h, g.gs, g.k, g.t, g.st, g.er, g.se, g.a, s,
    s * COALESCE(m."cost", 0), s * (m."cost" IS NOT NULL)::integer,
    s * COALESCE(m."costTransport", 0), s * (m."costTransport" IS NOT NULL)::integer,
    s * COALESCE(m."costStt", 0), s * (m."costStt" IS NOT NULL)::integer,
    s * COALESCE(m."costLlm", 0), s * (m."costLlm" IS NOT NULL)::integer,
    s * COALESCE(m."costTts", 0), s * (m."costTts" IS NOT NULL)::integer,
    s * COALESCE(m."costVapi", 0), s * (m."costVapi" IS NOT NULL)::integer,
    s * COALESCE(m."costAnalysisSummary", 0), s * (m."costAnalysisSummary" IS NOT NULL)::integer,
    s * COALESCE(m."llmPromptTokens", 0), s * (m."llmPromptTokens" IS NOT NULL)::integer,
    s * COALESCE(m."llmCompletionTokens", 0), s * (m."llmCompletionTokens" IS NOT NULL)::integer,
    s * COALESCE(m."llmCachedPromptTokens", 0), s * (m."llmCachedPromptTokens" IS NOT NULL)::integer,
    s * COALESCE(m."ttsCharacters", 0), s * (m."ttsCharacters" IS NOT NULL)::integer,
    s * COALESCE(m."minutesUsed", 0), s * (m."minutesUsed" IS NOT NULL)::integer,
    s * COALESCE(EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) * 1000, 0), s * (EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) * 1000 IS NOT NULL)::integer,
    s * COALESCE(m."concurrency", 0), s * (m."concurrency" IS NOT NULL)::integer
  FROM (VALUES
    (0::smallint, ''''::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::uuid),
    (1::smallint, COALESCE(m."assistantId"::text, ''''), NULL, NULL, NULL, NULL, m."assistantId"),
    (2::smallint, jsonb_build_array(m."type", m."status", m."endedReason", m."successEvaluation")::text,
      m."type", m."status", m."endedReason", m."successEvaluation", NULL)
  ) AS g(gs, k, t, st, er, se, a)
  ON CONFLICT ("orgId", "groupSet", "hour", "key") DO UPDATE SET "calls" = r."calls" + EXCLUDED."calls",
    "costSum" = r."costSum" + EXCLUDED."costSum", "costCount" = r."costCount" + EXCLUDED."costCount",
    "costTransportSum" = r."costTransportSum" + EXCLUDED."costTransportSum", "costTransportCount" = r."costTransportCount" + EXCLUDED."costTransportCount",
    "costSttSum" = r."costSttSum" + EXCLUDED."costSttSum", "costSttCount" = r."costSttCount" + EXCLUDED."costSttCount",
    "costLlmSum" = r."costLlmSum" + EXCLUDED."costLlmSum", "costLlmCount" = r."costLlmCount" + EXCLUDED."costLlmCount",
    "costTtsSum" = r."costTtsSum" + EXCLUDED."costTtsSum", "costTtsCount" = r."costTtsCount" + EXCLUDED."costTtsCount",
    "costVapiSum" = r."costVapiSum" + EXCLUDED."costVapiSum", "costVapiCount" = r."costVapiCount" + EXCLUDED."costVapiCount",
    "costAnalysisSummarySum" = r."costAnalysisSummarySum" + EXCLUDED."costAnalysisSummarySum", "costAnalysisSummaryCount" = r."costAnalysisSummaryCount" + EXCLUDED."costAnalysisSummaryCount",
    "llmPromptTokensSum" = r."llmPromptTokensSum" + EXCLUDED."llmPromptTokensSum", "llmPromptTokensCount" = r."llmPromptTokensCount" + EXCLUDED."llmPromptTokensCount",
    "llmCompletionTokensSum" = r."llmCompletionTokensSum" + EXCLUDED."llmCompletionTokensSum", "llmCompletionTokensCount" = r."llmCompletionTokensCount" + EXCLUDED."llmCompletionTokensCount",
    "llmCachedPromptTokensSum" = r."llmCachedPromptTokensSum" + EXCLUDED."llmCachedPromptTokensSum", "llmCachedPromptTokensCount" = r."llmCachedPromptTokensCount" + EXCLUDED."llmCachedPromptTokensCount",
    "ttsCharactersSum" = r."ttsCharactersSum" + EXCLUDED."ttsCharactersSum", "ttsCharactersCount" = r."ttsCharactersCount" + EXCLUDED."ttsCharactersCount",
    "minutesUsedSum" = r."minutesUsedSum" + EXCLUDED."minutesUsedSum", "minutesUsedCount" = r."minutesUsedCount" + EXCLUDED."minutesUsedCount",
    "durationMsSum" = r."durationMsSum" + EXCLUDED."durationMsSum", "durationMsCount" = r."durationMsCount" + EXCLUDED."durationMsCount",
    "concurrencySum" = r."concurrencySum" + EXCLUDED."concurrencySum", "concurrencyCount" = r."concurrencyCount" + EXCLUDED."concurrencyCount"\073
  IF s < 0 THEN
    DELETE FROM "CallMetricHour"
     WHERE "orgId" = m."orgId" AND "groupSet" IN (0, 1, 2) AND "hour" = h AND "calls" = 0\073
  END IF\073
END';

CREATE FUNCTION call_metric_hour_sync() RETURNS trigger
LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP <> ''DELETE'' THEN
    PERFORM call_metric_hour_apply(NEW, 1)\073
  END IF\073
  IF TG_OP <> ''INSERT'' THEN
    PERFORM call_metric_hour_apply(OLD, -1)\073
  END IF\073
  RETURN NULL\073
END';

CREATE TRIGGER call_metric_hour_insert AFTER INSERT ON "CallMetric"
  FOR EACH ROW EXECUTE FUNCTION call_metric_hour_sync();

CREATE TRIGGER call_metric_hour_update AFTER UPDATE ON "CallMetric"
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION call_metric_hour_sync();

CREATE TRIGGER call_metric_hour_delete AFTER DELETE ON "CallMetric"
  FOR EACH ROW EXECUTE FUNCTION call_metric_hour_sync();

-- The calls that exist already.
INSERT INTO "CallMetricHour" ("orgId", "hour", "groupSet", "key", "type", "status", "endedReason",
  "successEvaluation", "assistantId", "calls",
  "costSum", "costCount",
  "costTransportSum", "costTransportCount",
  "costSttSum", "costSttCount",
  "costLlmSum", "costLlmCount",
  "costTtsSum", "costTtsCount",
  "costVapiSum", "costVapiCount",
  "costAnalysisSummarySum", "costAnalysisSummaryCount",
  "llmPromptTokensSum", "llmPromptTokensCount",
  "llmCompletionTokensSum", "llmCompletionTokensCount",
  "llmCachedPromptTokensSum", "llmCachedPromptTokensCount",
  "ttsCharactersSum", "ttsCharactersCount",
  "minutesUsedSum", "minutesUsedCount",
  "durationMsSum", "durationMsCount",
  "concurrencySum", "concurrencyCount")
SELECT m."orgId", date_trunc('hour', m."createdAt", 'UTC'), g.gs, g.k, g.t, g.st, g.er, g.se, g.a,
  count(*)::integer,
  COALESCE(SUM(m."cost"), 0), COUNT(m."cost")::integer,
  COALESCE(SUM(m."costTransport"), 0), COUNT(m."costTransport")::integer,
  COALESCE(SUM(m."costStt"), 0), COUNT(m."costStt")::integer,
  COALESCE(SUM(m."costLlm"), 0), COUNT(m."costLlm")::integer,
  COALESCE(SUM(m."costTts"), 0), COUNT(m."costTts")::integer,
  COALESCE(SUM(m."costVapi"), 0), COUNT(m."costVapi")::integer,
  COALESCE(SUM(m."costAnalysisSummary"), 0), COUNT(m."costAnalysisSummary")::integer,
  COALESCE(SUM(m."llmPromptTokens"), 0), COUNT(m."llmPromptTokens")::integer,
  COALESCE(SUM(m."llmCompletionTokens"), 0), COUNT(m."llmCompletionTokens")::integer,
  COALESCE(SUM(m."llmCachedPromptTokens"), 0), COUNT(m."llmCachedPromptTokens")::integer,
  COALESCE(SUM(m."ttsCharacters"), 0), COUNT(m."ttsCharacters")::integer,
  COALESCE(SUM(m."minutesUsed"), 0), COUNT(m."minutesUsed")::integer,
  COALESCE(SUM(EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) * 1000), 0), COUNT(EXTRACT(EPOCH FROM (m."endedAt" - m."startedAt")) * 1000)::integer,
  COALESCE(SUM(m."concurrency"), 0), COUNT(m."concurrency")::integer
FROM "CallMetric" AS m
CROSS JOIN LATERAL (VALUES
  (0::smallint, ''::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::uuid),
  (1::smallint, COALESCE(m."assistantId"::text, ''), NULL, NULL, NULL, NULL, m."assistantId"),
  (2::smallint, jsonb_build_array(m."type", m."status", m."endedReason", m."successEvaluation")::text,
    m."type", m."status", m."endedReason", m."successEvaluation", NULL)
) AS g(gs, k, t, st, er, se, a)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
