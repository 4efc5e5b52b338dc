import type { Db } from "../../../../libs/db/index.ts";
import { ValidationError } from "../../../../libs/errors/index.ts";
import { assistantProviderProblems, type OptionProblem } from "../../../../libs/providers/index.ts";
import { applyAssistantOverrides, combineOverrides } from "../../../../libs/vapi/overrides.ts";
import { asObject, type ServiceContext } from "./common.ts";

// The save-time check of provider options (libs/providers/rules.ts) wherever an assistant is
// accepted: saved assistants, squads (inline or saved members, with the squad's and the member's
// overrides), and what POST /call or an assistant-request answer runs with. The check is made on
// the assistant a call would run with (overrides applied), and each problem is reported under the
// name of the object that set the option: `body.assistantOverrides.model.temperature` when the
// override set it, `body.model.temperature` when the assistant did.

type Json = Record<string, unknown>;

/** One object an assistant is made of, with the name the caller sent it under. */
export interface Layer {
  /** `body.`, `body.members[0].assistantOverrides.`, or `assistant <id>: ` for a saved one. */
  prefix: string;
  config: Json | undefined;
}

/** Whether `config` itself sets the option at `path` (`voice.model`). */
function sets(config: Json | undefined, path: string): boolean {
  let node: unknown = config;
  for (const key of path.split(".")) {
    if (typeof node !== "object" || node === null || !(key in node)) return false;
    node = (node as Json)[key];
  }
  return node !== undefined;
}

/**
 * The problems of an assistant made of `layers` (the base first, then overrides in the order they
 * apply), each named after the last layer that sets the option.
 */
export function providerOptionProblems(layers: Layer[]): string[] {
  const [base, ...overrides] = layers;
  // As at call start: the overrides combined first (the later win), then applied to the assistant.
  const combined = overrides.reduce<Json | undefined>(
    (acc, o) => combineOverrides(acc, o.config && Object.keys(o.config).length > 0 ? o.config : undefined),
    undefined,
  );
  const assistant = applyAssistantOverrides(base?.config ?? {}, combined);
  return assistantProviderProblems(assistant).map((p: OptionProblem) => {
    const layer = [...layers].reverse().find((l) => sets(l.config, p.path)) ?? base;
    return `${layer?.prefix ?? ""}${p.path}: ${p.message}`;
  });
}

/** Refuses (400) an assistant whose provider options its models do not take. */
export function checkProviderOptions(layers: Layer[]): void {
  const problems = providerOptionProblems(layers);
  if (problems.length > 0) throw new ValidationError(problems.join("; "));
}

/**
 * The layers of each member of a squad as a call runs it: the member's assistant (inline, or saved
 * and loaded here; a missing one is left to the reference check), then the squad's
 * `membersOverrides`, then the member's own `assistantOverrides`.
 */
export async function squadMemberLayers(
  db: Db,
  ctx: ServiceContext,
  squad: Json,
  prefix: string,
): Promise<Layer[][]> {
  const members = Array.isArray(squad.members) ? squad.members : [];
  const out: Layer[][] = [];
  for (const [i, m] of members.entries()) {
    const member = asObject(m);
    const at = `${prefix}members[${i}].`;
    let base: Layer | undefined;
    if (member.assistant !== undefined) {
      base = { prefix: `${at}assistant.`, config: asObject(member.assistant) };
    } else if (typeof member.assistantId === "string") {
      const row = await db.assistant.findFirst({
        where: { id: member.assistantId, orgId: ctx.orgId },
        select: { config: true },
      });
      if (row)
        base = {
          prefix: `${at}assistantId (assistant ${member.assistantId}): `,
          config: asObject(row.config),
        };
    }
    if (!base) continue;
    out.push([
      base,
      { prefix: `${prefix}membersOverrides.`, config: asObject(squad.membersOverrides) },
      { prefix: `${at}assistantOverrides.`, config: asObject(member.assistantOverrides) },
    ]);
  }
  return out;
}

/** Refuses (400) a squad any member of which would run with options its models do not take. */
export async function checkSquadProviderOptions(
  db: Db,
  ctx: ServiceContext,
  squad: Json,
  prefix: string,
): Promise<void> {
  const problems = (await squadMemberLayers(db, ctx, squad, prefix)).flatMap(providerOptionProblems);
  if (problems.length > 0) throw new ValidationError(problems.join("; "));
}
