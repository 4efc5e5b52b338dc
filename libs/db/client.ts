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
}

export function createDb(connectionString: string, options: DbOptions = {}): Db {
  const adapter = new PrismaPg({ connectionString, max: options.max ?? 10 });
  return new PrismaClient({ adapter });
}
