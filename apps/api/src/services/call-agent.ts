import { firstSquadMember, squadPlan } from "../../../../libs/assistants/index.ts";
import type { Db } from "../../../../libs/db/index.ts";
import { ValidationError } from "../../../../libs/errors/index.ts";
import { applyAssistantOverrides } from "../../../../libs/vapi/overrides.ts";
import { asObject, type ServiceContext } from "./common.ts";
import type { ConfigChecker } from "./config-checks.ts";
import { checkProviderOptions, checkSquadProviderOptions } from "./provider-options.ts";
import type { ReferenceChecker } from "./references.ts";

// Who runs a call started over `POST /call` (a phone call or a websocket call): exactly one of
// assistantId | assistant | squadId | squad, plus assistantOverrides, checked as saved ones and
// resolved to the assistant the call starts with. One owner for both kinds of call.

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface ResolvedAgent {
  assistant: Json;
  assistantId?: string;
  squadId?: string;
  /** Overrides recorded on the call (variableValues etc.). */
  assistantOverrides?: Json;
}

/** The agent a call runs, as `POST /call` resolved it: `assistant` has the overrides applied. */
export interface CallAgent extends ResolvedAgent {
  /** The assistant the call starts with, as configured (before the body's overrides). */
  base: Json;
}

export interface CallAgentDeps {
  db: Db;
  refs: ReferenceChecker;
  checks: ConfigChecker;
}

const AGENT_FIELDS = ["assistantId", "assistant", "squadId", "squad"] as const;

/** 400 unless exactly one of assistantId, assistant, squadId or squad is set. */
export function checkAgentFields(body: Json): void {
  const set = AGENT_FIELDS.filter((f) => body[f] !== undefined);
  if (set.length === 1) return;
  throw new ValidationError(
    set.length === 0
      ? "one of body.assistantId, body.assistant, body.squadId or body.squad is required"
      : `only one of body.assistantId, body.assistant, body.squadId or body.squad may be set (got ${set
          .map((f) => `body.${f}`)
          .join(" and ")})`,
  );
}

/** What a `POST /call` runs, as a 400 about one of its provider options names it. */
function agentPrefix(body: Json): string {
  if (isPlainObject(body.assistant)) return "body.assistant.";
  if (typeof body.assistantId === "string") return `body.assistantId (assistant ${body.assistantId}): `;
  if (isPlainObject(body.squad)) return "body.squad.members[0] (as the call starts): ";
  return `body.squadId (squad ${String(body.squadId)}, its first member): `;
}

/** A saved assistant or squad of the organisation, as the config the call runs with. */
export async function resolveSavedAgent(
  db: Db,
  orgId: string,
  ref: { assistantId?: string | null; squadId?: string | null; squad?: Json },
): Promise<ResolvedAgent | undefined> {
  if (ref.assistantId) {
    const a = await db.assistant.findFirst({ where: { id: ref.assistantId, orgId } });
    return a ? { assistant: asObject(a.config), assistantId: a.id } : undefined;
  }
  let squadConfig: Json | undefined = ref.squad;
  let squadId: string | undefined;
  if (ref.squadId) {
    const s = await db.squad.findFirst({ where: { id: ref.squadId, orgId } });
    if (!s) return undefined;
    squadConfig = asObject(s.config);
    squadId = s.id;
  }
  if (!squadConfig) return undefined;
  const first = await firstSquadMember(db, orgId, squadPlan(squadConfig));
  return first ? { assistant: first.assistant, assistantId: first.assistantId, squadId } : undefined;
}

/**
 * Checks the agent fields of a `POST /call` body (ownership of ids, inline configs as saved ones,
 * provider options as the call will run them) and resolves the assistant the call starts with.
 */
export async function resolveCallAgent(
  deps: CallAgentDeps,
  ctx: ServiceContext,
  body: Json,
): Promise<CallAgent> {
  checkAgentFields(body);
  const { refs, checks, db } = deps;
  if (typeof body.assistantId === "string") {
    await refs.check(ctx, "assistant", [{ field: "body.assistantId", id: body.assistantId }]);
  }
  if (typeof body.squadId === "string") {
    await refs.check(ctx, "squad", [{ field: "body.squadId", id: body.squadId }]);
  }
  if (body.assistant !== undefined) await checks.assistant(ctx, body.assistant, "body.assistant.");
  if (body.assistantOverrides !== undefined) {
    await checks.assistant(ctx, body.assistantOverrides, "body.assistantOverrides.");
  }
  if (body.squad !== undefined) await checks.squad(ctx, body.squad, "body.squad.");

  const agent: ResolvedAgent | undefined = isPlainObject(body.assistant)
    ? { assistant: body.assistant }
    : await resolveSavedAgent(db, ctx.orgId, {
        assistantId: typeof body.assistantId === "string" ? body.assistantId : undefined,
        squadId: typeof body.squadId === "string" ? body.squadId : undefined,
        squad: isPlainObject(body.squad) ? body.squad : undefined,
      });
  if (!agent) {
    throw new ValidationError("the squad's first member refers to an assistant that does not exist");
  }
  const overrides = isPlainObject(body.assistantOverrides) ? body.assistantOverrides : undefined;
  // Provider options as the call will run them: every member of an inline squad, then the
  // assistant it starts with, overrides applied.
  if (isPlainObject(body.squad)) await checkSquadProviderOptions(db, ctx, body.squad, "body.squad.");
  checkProviderOptions([
    { prefix: agentPrefix(body), config: agent.assistant },
    { prefix: "body.assistantOverrides.", config: overrides },
  ]);
  return {
    ...agent,
    base: agent.assistant,
    assistant: applyAssistantOverrides(agent.assistant, overrides),
    ...(overrides ? { assistantOverrides: overrides } : {}),
  };
}
