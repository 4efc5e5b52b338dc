-- AlterTable
ALTER TABLE "Call" ADD COLUMN     "providerDurationSeconds" INTEGER,
ADD COLUMN     "providerEndedAt" TIMESTAMPTZ(3);
