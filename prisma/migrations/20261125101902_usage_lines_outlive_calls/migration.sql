-- DropForeignKey
ALTER TABLE "UsageLine" DROP CONSTRAINT "UsageLine_callId_fkey";
