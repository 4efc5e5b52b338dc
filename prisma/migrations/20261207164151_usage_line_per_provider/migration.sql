-- DropIndex
DROP INDEX "UsageLine_callId_category_key";

-- AlterTable
-- Lines without a model (transport, platform) store "": the model is part of the new unique key,
-- which cannot hold NULLs as equal. Existing lines, one per call and category, already meet it.
UPDATE "UsageLine" SET "model" = '' WHERE "model" IS NULL;
ALTER TABLE "UsageLine" ALTER COLUMN "model" SET NOT NULL,
ALTER COLUMN "model" SET DEFAULT '';

-- CreateIndex
CREATE UNIQUE INDEX "UsageLine_callId_category_provider_model_billedBy_key" ON "UsageLine"("callId", "category", "provider", "model", "billedBy");
