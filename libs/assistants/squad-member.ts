import type { Db } from "../db/index.ts";
import { squadMemberAssistant } from "../vapi/overrides.ts";

// Which squad member runs a call, and with what assistant. One owner for the choice: the API picks
// the member that starts a call (the first), the media plane finds that member again at call start
// (for its hand-off destinations) and picks the member a hand-off names.

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A squad's config as the call runs it: its members and the overrides it applies to each. */
export interface SquadPlan {
  members: Json[];
  /** The squad's `membersOverrides`, applied to every member it hands the call to. */
  membersOverrides: Json | undefined;
}

/** A member chosen to run the call. */
export interface ChosenMember {
  /** The member as listed in the squad (undefined for an assistant of the organisation found by name). */
  member: Json | undefined;
  /** The assistant it runs: its own config, then the squad's `membersOverrides`, then the member's. */
  assistant: Json;
  /** Set when the assistant is a saved one. */
  assistantId?: string;
}

export function squadPlan(config: unknown): SquadPlan {
  const cfg = isObj(config) ? config : {};
  const members: unknown[] = Array.isArray(cfg.members) ? cfg.members : [];
  return {
    members: members.filter(isObj),
    membersOverrides: isObj(cfg.membersOverrides) ? cfg.membersOverrides : undefined,
  };
}

function chosen(plan: SquadPlan, member: Json | undefined, base: Json, assistantId?: string): ChosenMember {
  return {
    member,
    assistant: squadMemberAssistant(base, plan.membersOverrides, member?.assistantOverrides),
    ...(assistantId !== undefined ? { assistantId } : {}),
  };
}

/**
 * The member that starts a call: the first. A saved member's assistant is loaded (scoped to the
 * organisation); undefined when it does not exist or the member names no assistant.
 */
export async function firstSquadMember(
  db: Db,
  orgId: string,
  plan: SquadPlan,
): Promise<ChosenMember | undefined> {
  const first = plan.members[0];
  if (!first) return undefined;
  if (typeof first.assistantId === "string") {
    const row = await db.assistant.findFirst({ where: { id: first.assistantId, orgId } });
    return row ? chosen(plan, first, isObj(row.config) ? row.config : {}, row.id) : undefined;
  }
  return isObj(first.assistant) ? chosen(plan, first, first.assistant) : undefined;
}

/**
 * The member running a call that has started (the API chose it: see `firstSquadMember`), found
 * again from the call's assistant id or its inline assistant's name.
 */
export function startingSquadMember(
  plan: SquadPlan,
  call: { assistantId: string | null; assistant: unknown },
): Json | undefined {
  const name =
    isObj(call.assistant) && typeof call.assistant.name === "string" ? call.assistant.name : undefined;
  return (
    (call.assistantId ? plan.members.find((m) => m.assistantId === call.assistantId) : undefined) ??
    plan.members.find((m) => isObj(m.assistant) && name !== undefined && m.assistant.name === name) ??
    plan.members[0]
  );
}

/**
 * The member a hand-off names (`assistantName`): an inline member of that name, else a saved member
 * whose assistant has it (the squad's own, never another squad's), else the organisation's assistant
 * of that name (run with the squad's overrides only).
 */
export async function squadMemberByName(
  db: Db,
  orgId: string,
  plan: SquadPlan,
  name: string | undefined,
): Promise<ChosenMember | undefined> {
  const inline = plan.members.find((m) => isObj(m.assistant) && m.assistant.name === name);
  if (inline && isObj(inline.assistant)) return chosen(plan, inline, inline.assistant);
  if (!name) return undefined;
  const ids = plan.members.map((m) => m.assistantId).filter((id): id is string => typeof id === "string");
  const rows = ids.length > 0 ? await db.assistant.findMany({ where: { id: { in: ids }, orgId } }) : [];
  const row = rows.find((r) => (r.name ?? (isObj(r.config) ? r.config.name : undefined)) === name);
  if (row && isObj(row.config)) {
    const member = plan.members.find((m) => m.assistantId === row.id);
    return chosen(plan, member, { ...row.config, name: row.name ?? undefined }, row.id);
  }
  const own = await db.assistant.findFirst({ where: { orgId, name } });
  return own && isObj(own.config)
    ? chosen(plan, undefined, { ...own.config, name: own.name ?? undefined }, own.id)
    : undefined;
}

/** The assistants a squad member may hand the call to. */
export function memberDestinations<T>(member: Json | undefined): Array<T & { type: "assistant" }> {
  const dests = member && Array.isArray(member.assistantDestinations) ? member.assistantDestinations : [];
  return dests.filter(isObj).map((d) => ({ ...(d as unknown as T), type: "assistant" as const }));
}
