-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "restrictions" JSONB;

-- AlterTable
ALTER TABLE "Call" ADD COLUMN     "transport" JSONB;
