import { NotFoundError } from "../../../../libs/errors/index.ts";

/** The logger a service writes through: the request's own, so every line carries its `reqId`. */
export interface ServiceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What every service call carries besides its inputs. */
export interface ServiceContext {
  orgId: string;
  log: ServiceLogger;
}

export interface ListQuery {
  limit?: number;
  createdAtGt?: string;
  createdAtLt?: string;
  createdAtGe?: string;
  createdAtLe?: string;
  updatedAtGt?: string;
  updatedAtLt?: string;
  updatedAtGe?: string;
  updatedAtLe?: string;
}

interface DateRange {
  gt?: Date;
  lt?: Date;
  gte?: Date;
  lte?: Date;
}

/**
 * The earliest instant Prisma can send: RFC 3339 and ISO 8601 allow year 0000 (and 0001-01-01 east
 * of UTC, which is year 0 in UTC), which it refuses (a 500 if it got there).
 */
export const EARLIEST_INSTANT_MS = Date.parse("0001-01-01T00:00:00Z");

// Nothing is stored that early, so the earliest time Prisma can send filters the same.
function filterDate(value: string): Date {
  const d = new Date(value);
  return d.getTime() < EARLIEST_INSTANT_MS ? new Date(EARLIEST_INSTANT_MS) : d;
}

function range(gt?: string, lt?: string, ge?: string, le?: string): DateRange | undefined {
  const r: DateRange = {};
  if (gt) r.gt = filterDate(gt);
  if (lt) r.lt = filterDate(lt);
  if (ge) r.gte = filterDate(ge);
  if (le) r.lte = filterDate(le);
  return Object.keys(r).length > 0 ? r : undefined;
}

/** Vapi's list filters, always scoped to the caller's organisation, newest first. */
export function listArgs(ctx: ServiceContext, q: ListQuery) {
  const createdAt = range(q.createdAtGt, q.createdAtLt, q.createdAtGe, q.createdAtLe);
  const updatedAt = range(q.updatedAtGt, q.updatedAtLt, q.updatedAtGe, q.updatedAtLe);
  return {
    where: {
      orgId: ctx.orgId,
      ...(createdAt ? { createdAt } : {}),
      ...(updatedAt ? { updatedAt } : {}),
    },
    orderBy: [{ createdAt: "desc" as const }, { id: "desc" as const }],
    take: q.limit ?? 100,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A malformed id answers exactly like a missing one (and like another organisation's): 404,
 * so ids reveal nothing.
 */
export function assertId(resource: string, id: string): void {
  if (!UUID.test(id)) throw new NotFoundError(resource, id);
}

export function isUuid(id: string): boolean {
  return UUID.test(id);
}

export function iso(d: Date): string {
  return d.toISOString();
}

/** JSON columns hold plain objects; Prisma types them loosely. */
export function asObject(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Vapi's PATCH replaces the top-level fields it is given and leaves the others. */
export function mergeTopLevel<T extends Record<string, unknown>>(
  current: T,
  patch: Record<string, unknown>,
): T {
  const out: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out as T;
}
