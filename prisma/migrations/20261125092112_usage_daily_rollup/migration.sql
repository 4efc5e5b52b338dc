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
