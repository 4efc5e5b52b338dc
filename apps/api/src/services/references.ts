import type { Db } from "../../../../libs/db/index.ts";
import { ValidationError } from "../../../../libs/errors/index.ts";
import { isUuid, type ServiceContext } from "./common.ts";

type Kind = "tool" | "credential" | "assistant" | "squad" | "phoneNumber";

/**
 * Checks that ids a body refers to belong to the caller's organisation. Another organisation's
 * id is reported exactly like a missing one (400 naming the field), so ids reveal nothing.
 */
export class ReferenceChecker {
  constructor(private readonly db: Db) {}

  async check(ctx: ServiceContext, kind: Kind, refs: { field: string; id: string }[]): Promise<void> {
    if (refs.length === 0) return;
    const ids = [...new Set(refs.map((r) => r.id).filter(isUuid))];
    const found = new Set(await this.existing(ctx.orgId, kind, ids));
    for (const r of refs) {
      if (!found.has(r.id))
        throw new ValidationError(`${r.field} refers to ${label(kind)} ${r.id}, which does not exist`);
    }
  }

  private async existing(orgId: string, kind: Kind, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const args = { where: { orgId, id: { in: ids } }, select: { id: true } };
    const rows =
      kind === "tool"
        ? await this.db.tool.findMany(args)
        : kind === "credential"
          ? await this.db.credential.findMany(args)
          : kind === "assistant"
            ? await this.db.assistant.findMany(args)
            : kind === "squad"
              ? await this.db.squad.findMany(args)
              : await this.db.phoneNumber.findMany(args);
    return rows.map((r) => r.id);
  }
}

function label(kind: Kind): string {
  return kind === "phoneNumber" ? "phone number" : kind;
}

/** Collects `{field, id}` pairs from an array field, naming each element's position. */
export function refsOf(field: string, ids: unknown): { field: string; id: string }[] {
  if (!Array.isArray(ids)) return [];
  return ids.map((id, i) => ({ field: `${field}[${i}]`, id: String(id) }));
}
