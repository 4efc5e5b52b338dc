-- CreateTable
CREATE TABLE "CallLog" (
    "id" BIGSERIAL NOT NULL,
    "callId" UUID NOT NULL,
    "orgId" UUID NOT NULL,
    "entries" JSONB NOT NULL,
    "count" INTEGER NOT NULL,
    "bytes" INTEGER NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CallLog_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "CallLog_callId_id_idx" ON "CallLog"("callId", "id");

-- AddForeignKey
ALTER TABLE "CallLog" ADD CONSTRAINT "CallLog_callId_fkey" FOREIGN KEY ("callId") REFERENCES "Call"("id") ON DELETE CASCADE ON UPDATE CASCADE;
