-- CreateTable
CREATE TABLE "UsageDaily" (
    "orgId" UUID NOT NULL,
    "day" DATE NOT NULL,
    "assistantKey" TEXT NOT NULL,
    "phoneNumberKey" TEXT NOT NULL,
    "category" TEXT NOT NULL,
    "billedBy" TEXT NOT NULL,
    "amountMicros" BIGINT NOT NULL,
    "quantity" DECIMAL(24,6) NOT NULL,
    "lines" INTEGER NOT NULL,

    CONSTRAINT "UsageDaily_pkey" PRIMARY KEY ("orgId","day","assistantKey","phoneNumberKey","category","billedBy")
);

-- AddForeignKey
ALTER TABLE "UsageDaily" ADD CONSTRAINT "UsageDaily_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Backfill from the lines already recorded (the rollup is maintained by the ledger from now on).
INSERT INTO "UsageDaily" ("orgId", "day", "assistantKey", "phoneNumberKey", "category", "billedBy", "amountMicros", "quantity", "lines")
SELECT "orgId", ("occurredAt" AT TIME ZONE 'UTC')::date, COALESCE("assistantId"::text, ''), COALESCE("phoneNumberId"::text, ''),
       "category", "billedBy", SUM("amountMicros"), SUM("quantity"), COUNT(*)::int
FROM "UsageLine"
GROUP BY 1, 2, 3, 4, 5, 6;
