-- CreateTable
CREATE TABLE "CallMetric" (
    "callId" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL,
    "type" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "endedReason" TEXT,
    "assistantId" UUID,
    "successEvaluation" TEXT,
    "startedAt" TIMESTAMPTZ(3),
    "endedAt" TIMESTAMPTZ(3),
    "cost" DECIMAL(18,6),
    "costTransport" DECIMAL(18,6),
    "costStt" DECIMAL(18,6),
    "costLlm" DECIMAL(18,6),
    "costTts" DECIMAL(18,6),
    "costVapi" DECIMAL(18,6),
    "costAnalysisSummary" DECIMAL(18,6),
    "llmPromptTokens" DECIMAL(18,0),
    "llmCompletionTokens" DECIMAL(18,0),
    "llmCachedPromptTokens" DECIMAL(18,0),
    "ttsCharacters" DECIMAL(18,0),
    "minutesUsed" DECIMAL(18,6),
    "concurrency" INTEGER,

    CONSTRAINT "CallMetric_pkey" PRIMARY KEY ("callId")
);

-- CreateIndex
CREATE INDEX "CallMetric_orgId_createdAt_idx" ON "CallMetric"("orgId", "createdAt");

-- CreateIndex
CREATE INDEX "CallMetric_orgId_endedAt_startedAt_idx" ON "CallMetric"("orgId", "endedAt", "startedAt");

-- AddForeignKey
ALTER TABLE "CallMetric" ADD CONSTRAINT "CallMetric_callId_fkey" FOREIGN KEY ("callId") REFERENCES "Call"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- The analytics row of a call is kept by the database, not by each writer: the media finaliser,
-- recordCallCost, the analysis recorder, the sweeper and the API all write Call, and a trigger
-- cannot be forgotten by the next one. A malformed value (a string where a number belongs, a
-- number out of range) becomes NULL rather than failing the write of the call itself.
-- Prisma's driver adapter splits a migration at every semicolon, even inside a function body, so
-- the PL/pgSQL bodies are escape strings that spell their semicolons \073 (and double their
-- quotes). PL/pgSQL rather than an SQL function: it keeps its statements' plans between calls,
-- which makes the trigger about as cheap as the insert of the call itself.
CREATE FUNCTION call_metric_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' AND abs(v::text::numeric) < 1e12
    THEN v::text::numeric END
$$;

-- Concurrency is counted once, when a call's start is written: the organisation's calls that had
-- started by then (within a day: a call lasts at most 12 hours) and had not ended, that is still
-- running (endedAt NULL) or ending after it (only when calls are written after the fact, in start
-- order). Both are short ranges of the (orgId, endedAt, startedAt) index.
CREATE FUNCTION call_metric_running(org uuid, s timestamptz) RETURNS integer
LANGUAGE plpgsql STABLE AS E'
BEGIN
  RETURN (SELECT count(*) FROM "CallMetric" AS o
           WHERE o."orgId" = org AND o."endedAt" IS NULL
             AND o."startedAt" > s - interval ''1 day'' AND o."startedAt" <= s)
       + (SELECT count(*) FROM "CallMetric" AS o
           WHERE o."orgId" = org AND o."endedAt" > s AND o."endedAt" <= s + interval ''1 day''
             AND o."startedAt" > s - interval ''1 day'' AND o."startedAt" <= s)\073
END';

CREATE FUNCTION call_metric_upsert(c "Call", recount boolean) RETURNS void
LANGUAGE plpgsql AS E'
DECLARE
  n integer := NULL\073
BEGIN
  IF recount AND c."startedAt" IS NOT NULL THEN
    -- Itself: 1, not its own row as it was before this write, if that row was counted.
    n := 1 + call_metric_running(c."orgId", c."startedAt") - (
      SELECT count(*) FROM "CallMetric" AS o
       WHERE o."callId" = c."id" AND o."startedAt" > c."startedAt" - interval ''1 day''
         AND o."startedAt" <= c."startedAt"
         AND (o."endedAt" IS NULL
           OR (o."endedAt" > c."startedAt" AND o."endedAt" <= c."startedAt" + interval ''1 day'')))::integer\073
  END IF\073
  INSERT INTO "CallMetric" ("callId", "orgId", "createdAt", "type", "status", "endedReason",
    "assistantId", "successEvaluation", "startedAt", "endedAt", "cost", "costTransport", "costStt",
    "costLlm", "costTts", "costVapi", "costAnalysisSummary", "llmPromptTokens",
    "llmCompletionTokens", "llmCachedPromptTokens", "ttsCharacters", "minutesUsed", "concurrency")
  SELECT c."id", c."orgId", c."createdAt", c."type", c."status", c."endedReason", c."assistantId",
    CASE WHEN jsonb_typeof(c."analysis" -> ''successEvaluation'') = ''string''
      THEN c."analysis" ->> ''successEvaluation'' END,
    c."startedAt", c."endedAt", c."cost",
    call_metric_number(cb -> ''transport''), call_metric_number(cb -> ''stt''),
    call_metric_number(cb -> ''llm''), call_metric_number(cb -> ''tts''),
    call_metric_number(cb -> ''vapi''),
    call_metric_number(cb -> ''analysisCostBreakdown'' -> ''summary''),
    round(call_metric_number(cb -> ''llmPromptTokens'')),
    round(call_metric_number(cb -> ''llmCompletionTokens'')),
    round(call_metric_number(cb -> ''llmCachedPromptTokens'')),
    round(call_metric_number(cb -> ''ttsCharacters'')),
    (SELECT call_metric_number(e -> ''minutes'')
       FROM jsonb_array_elements(CASE WHEN jsonb_typeof(c."costs") = ''array'' THEN c."costs"
         ELSE ''[]''::jsonb END) AS e
      WHERE e ->> ''type'' = ''vapi'' LIMIT 1),
    n
  FROM (SELECT CASE WHEN jsonb_typeof(c."costBreakdown") = ''object'' THEN c."costBreakdown" END AS cb) AS j
  ON CONFLICT ("callId") DO UPDATE SET
    "type" = EXCLUDED."type", "status" = EXCLUDED."status", "endedReason" = EXCLUDED."endedReason",
    "assistantId" = EXCLUDED."assistantId", "successEvaluation" = EXCLUDED."successEvaluation",
    "startedAt" = EXCLUDED."startedAt", "endedAt" = EXCLUDED."endedAt", "cost" = EXCLUDED."cost",
    "costTransport" = EXCLUDED."costTransport", "costStt" = EXCLUDED."costStt",
    "costLlm" = EXCLUDED."costLlm", "costTts" = EXCLUDED."costTts", "costVapi" = EXCLUDED."costVapi",
    "costAnalysisSummary" = EXCLUDED."costAnalysisSummary",
    "llmPromptTokens" = EXCLUDED."llmPromptTokens",
    "llmCompletionTokens" = EXCLUDED."llmCompletionTokens",
    "llmCachedPromptTokens" = EXCLUDED."llmCachedPromptTokens",
    "ttsCharacters" = EXCLUDED."ttsCharacters", "minutesUsed" = EXCLUDED."minutesUsed",
    "concurrency" = CASE WHEN recount THEN EXCLUDED."concurrency" ELSE "CallMetric"."concurrency" END\073
END';

CREATE FUNCTION call_metric_sync() RETURNS trigger
LANGUAGE plpgsql AS E'
BEGIN
  PERFORM call_metric_upsert(NEW, TG_OP = ''INSERT'' OR OLD."startedAt" IS DISTINCT FROM NEW."startedAt")\073
  RETURN NULL\073
END';

CREATE TRIGGER call_metric_insert AFTER INSERT ON "Call"
  FOR EACH ROW EXECUTE FUNCTION call_metric_sync();

-- Heartbeats and per-turn checkpoints update Call often: only a change analytics reads fires.
CREATE TRIGGER call_metric_update AFTER UPDATE ON "Call"
  FOR EACH ROW WHEN (
    OLD."status" IS DISTINCT FROM NEW."status"
    OR OLD."endedReason" IS DISTINCT FROM NEW."endedReason"
    OR OLD."startedAt" IS DISTINCT FROM NEW."startedAt"
    OR OLD."endedAt" IS DISTINCT FROM NEW."endedAt"
    OR OLD."cost" IS DISTINCT FROM NEW."cost"
    OR OLD."costBreakdown" IS DISTINCT FROM NEW."costBreakdown"
    OR OLD."costs" IS DISTINCT FROM NEW."costs"
    OR OLD."analysis" IS DISTINCT FROM NEW."analysis"
    OR OLD."type" IS DISTINCT FROM NEW."type"
    OR OLD."assistantId" IS DISTINCT FROM NEW."assistantId"
  ) EXECUTE FUNCTION call_metric_sync();

-- The calls that exist already, then their concurrency in one sweep per organisation: +1 at each
-- start, -1 at each end (an end sorts before a start at the same instant: they did not overlap).
SELECT call_metric_upsert(c, false) FROM "Call" AS c;
UPDATE "CallMetric" AS m SET "concurrency" = x.n FROM (
  SELECT "callId", n FROM (
    SELECT "callId", d, SUM(d) OVER (PARTITION BY "orgId" ORDER BY t, d, "callId") AS n FROM (
      SELECT "orgId", "callId", "startedAt" AS t, 1 AS d FROM "CallMetric" WHERE "startedAt" IS NOT NULL
      UNION ALL
      SELECT "orgId", "callId", "endedAt", -1 FROM "CallMetric"
       WHERE "startedAt" IS NOT NULL AND "endedAt" IS NOT NULL
    ) AS ev
  ) AS r WHERE d = 1
) AS x WHERE m."callId" = x."callId";
