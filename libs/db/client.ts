import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/client.ts";

export type Db = PrismaClient;
export type {
  ApiKey,
  Assistant,
  Call,
  Credential,
  Org,
  PhoneNumber,
  Squad,
  Tool,
} from "./generated/client.ts";
export { Prisma } from "./generated/client.ts";

export interface DbOptions {
  /** Pool size. */
  max?: number;
  /**
   * What the connections are called in Postgres (`application_name`: `pg_stat_activity`, the server's
   * log): which of our processes holds them. A name in the URL (`?application_name=`) wins.
   */
  applicationName?: string;
}

export function createDb(connectionString: string, options: DbOptions = {}): Db {
  const named = options.applicationName && !/[?&]application_name=/.test(connectionString);
  const adapter = new PrismaPg({
    connectionString,
    max: options.max ?? 10,
    ...(named ? { application_name: options.applicationName } : {}),
  });
  return new PrismaClient({ adapter });
}
