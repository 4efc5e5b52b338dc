// Vapi's `assistantOverrides` semantics, shared by the control plane (call start) and the media plane
// (squad hand-off). Which squad member runs a call is chosen in libs/assistants/squad-member.ts.

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * An assistant config with overrides applied: top-level fields replace, nested objects (model,
 * voice, transcriber, plans) merge one level deep, `tools:append` adds to `model.tools`.
 * `variableValues` is not part of the assistant: it stays in the call's overrides.
 */
export function applyAssistantOverrides(base: Json, overrides: Json | undefined): Json {
  if (!overrides) return { ...base };
  const { variableValues: _vars, "tools:append": append, ...rest } = overrides;
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] = isPlainObject(cur) && isPlainObject(v) ? { ...cur, ...v } : v;
  }
  if (Array.isArray(append) && append.length > 0) {
    const model = isPlainObject(out.model) ? out.model : {};
    const tools = Array.isArray(model.tools) ? model.tools : [];
    out.model = { ...model, tools: [...tools, ...append] };
  }
  return out;
}

/** Two override objects combined, the second winning (variableValues merged). */
export function combineOverrides(a: Json | undefined, b: Json | undefined): Json | undefined {
  if (!a) return b;
  if (!b) return a;
  const out = { ...a, ...b };
  if (isPlainObject(a.variableValues) || isPlainObject(b.variableValues)) {
    out.variableValues = {
      ...(isPlainObject(a.variableValues) ? a.variableValues : {}),
      ...(isPlainObject(b.variableValues) ? b.variableValues : {}),
    };
  }
  return out;
}

/**
 * The assistant a squad member runs with: its assistant, then the squad's `membersOverrides`
 * combined with the member's own `assistantOverrides` (the member's win), as at call start.
 */
export function squadMemberAssistant(
  base: Json,
  squadMembersOverrides: unknown,
  memberOverrides: unknown,
): Json {
  const overrides = combineOverrides(
    isPlainObject(squadMembersOverrides) ? squadMembersOverrides : undefined,
    isPlainObject(memberOverrides) ? memberOverrides : undefined,
  );
  return applyAssistantOverrides(base, overrides);
}
