-- AlterTable
ALTER TABLE "Org" ADD COLUMN     "billingEventCreatedAt" TIMESTAMPTZ(3),
ADD COLUMN     "billingEventId" TEXT;

-- CreateTable
CREATE TABLE "StripeEvent" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "objectId" TEXT,
    "created" TIMESTAMPTZ(3) NOT NULL,
    "orgId" UUID,
    "outcome" TEXT NOT NULL,
    "billingState" TEXT,
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StripeEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "StripeEvent_objectId_type_idx" ON "StripeEvent"("objectId", "type");

-- CreateIndex
CREATE INDEX "StripeEvent_orgId_created_idx" ON "StripeEvent"("orgId", "created");
