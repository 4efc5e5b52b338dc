import type { CredentialKeyRow } from "../assistants/index.ts";
import type { OrgPricingInput } from "../billing/pricing.ts";
import { type Db, type PhoneNumber as PhoneNumberRow, Prisma } from "../db/index.ts";

// What a call needs from the database before it can start, beyond the call row the stream claim
// returned: its phone number, its organisation's server and pricing, and the organisation's provider
// credentials. One statement (three scalar subqueries, each on a primary key or the credential
// index) instead of three Prisma queries: this runs at every call start, on the media process, where
// a Prisma query costs more CPU than seconds of audio forwarding.

export interface CallSetup {
  /** The number the call came in on or went out from (scoped to the call's organisation). */
  phoneNumber: PhoneNumberRow | null;
  /** Null when the organisation no longer exists. */
  org: ({ server: Prisma.JsonValue } & OrgPricingInput) | null;
  /**
   * Every credential of the organisation, newest first (sealed; opened only when used). A squad
   * hand-off picks its member's keys from these too: keys are the call's, as of its start.
   */
  credentials: CredentialKeyRow[];
}

interface SetupJsonRow {
  org: { server: Prisma.JsonValue; pricingOverrides: Prisma.JsonValue; billingIncrement: string } | null;
  /** `to_json` of the PhoneNumber row: timestamps come back as ISO strings. */
  phoneNumber:
    | (Omit<PhoneNumberRow, "createdAt" | "updatedAt"> & { createdAt: string; updatedAt: string })
    | null;
  credentials: CredentialKeyRow[];
}

export async function loadCallSetup(
  db: Db,
  call: { orgId: string; phoneNumberId: string | null },
): Promise<CallSetup> {
  const [row] = await db.$queryRaw<SetupJsonRow[]>(Prisma.sql`
    SELECT
      (SELECT json_build_object(
                'server', o."server",
                'pricingOverrides', o."pricingOverrides",
                'billingIncrement', o."billingIncrement")
         FROM "Org" o WHERE o."id" = ${call.orgId}::uuid) AS "org",
      (SELECT to_json(p) FROM "PhoneNumber" p
        WHERE p."id" = ${call.phoneNumberId}::uuid AND p."orgId" = ${call.orgId}::uuid) AS "phoneNumber",
      (SELECT COALESCE(json_agg(json_build_object(
                'id', c."id", 'provider', c."provider", 'secret', c."secret", 'keyId', c."keyId")
                ORDER BY c."createdAt" DESC, c."id" DESC), '[]'::json)
         FROM "Credential" c WHERE c."orgId" = ${call.orgId}::uuid) AS "credentials"`);
  const pn = row?.phoneNumber ?? null;
  return {
    phoneNumber: pn ? { ...pn, createdAt: new Date(pn.createdAt), updatedAt: new Date(pn.updatedAt) } : null,
    org: row?.org ?? null,
    credentials: row?.credentials ?? [],
  };
}
