-- AlterTable
ALTER TABLE "Call" ADD COLUMN     "finalizedAt" TIMESTAMPTZ(3),
ADD COLUMN     "heartbeatAt" TIMESTAMPTZ(3),
ADD COLUMN     "mediaProcessId" TEXT,
ADD COLUMN     "streamConnectedAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "Org" ADD COLUMN     "billingIncrement" TEXT NOT NULL DEFAULT 'second',
ADD COLUMN     "billingState" TEXT NOT NULL DEFAULT 'active',
ADD COLUMN     "monthlySpendLimitMicros" BIGINT,
ADD COLUMN     "pricingOverrides" JSONB,
ADD COLUMN     "stripeCustomerId" TEXT,
ADD COLUMN     "stripeSubscriptionId" TEXT;

-- CreateTable
CREATE TABLE "UsageLine" (
    "id" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "callId" UUID NOT NULL,
    "category" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT,
    "quantity" DECIMAL(20,6) NOT NULL,
    "unit" TEXT NOT NULL,
    "unitPrice" DECIMAL(20,12) NOT NULL,
    "amountMicros" BIGINT NOT NULL,
    "billedBy" TEXT NOT NULL,
    "priceVersion" TEXT NOT NULL,
    "assistantId" UUID,
    "phoneNumberId" UUID,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "reportedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageLine_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "UsageLine_orgId_occurredAt_idx" ON "UsageLine"("orgId", "occurredAt");

-- CreateIndex
CREATE INDEX "UsageLine_billedBy_reportedAt_idx" ON "UsageLine"("billedBy", "reportedAt");

-- CreateIndex
CREATE UNIQUE INDEX "UsageLine_callId_category_key" ON "UsageLine"("callId", "category");

-- CreateIndex
CREATE INDEX "Call_status_heartbeatAt_idx" ON "Call"("status", "heartbeatAt");

-- AddForeignKey
ALTER TABLE "UsageLine" ADD CONSTRAINT "UsageLine_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageLine" ADD CONSTRAINT "UsageLine_callId_fkey" FOREIGN KEY ("callId") REFERENCES "Call"("id") ON DELETE CASCADE ON UPDATE CASCADE;
