// `{{variable}}` substitution in prompts and spoken messages (Vapi uses LiquidJS; we support the
// plain `{{name}}` / `{{a.b}}` form, which is what assistants use in practice). Unknown variables
// are left as written so a typo is visible in the transcript rather than silently blank.

const VARIABLE = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

export type Variables = Record<string, unknown>;

function lookup(vars: Variables, path: string): unknown {
  if (path in vars) return vars[path];
  let cur: unknown = vars;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function renderTemplate(text: string, vars: Variables): string {
  if (!text.includes("{{")) return text;
  return text.replace(VARIABLE, (whole, path: string) => {
    const v = lookup(vars, path);
    if (v === undefined || v === null) return whole;
    return typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  });
}

/** Built-ins (UTC, as Vapi) merged under the call's `variableValues` (which win). */
export function callVariables(input: {
  now: Date;
  customer?: Record<string, unknown> | null;
  phoneNumber?: Record<string, unknown> | null;
  call: { id: string; type: string };
  callSid?: string;
  variableValues?: Record<string, unknown> | null;
}): Variables {
  const iso = input.now.toISOString();
  const months = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
  ];
  const builtins: Variables = {
    now: `${input.now.toUTCString()}`,
    date: iso.slice(0, 10),
    time: iso.slice(11, 16),
    month: months[input.now.getUTCMonth()],
    day: String(input.now.getUTCDate()),
    year: String(input.now.getUTCFullYear()),
    customer: input.customer ?? {},
    phoneNumber: input.phoneNumber ?? {},
    call: input.call,
    transport: { callSid: input.callSid, conversationType: "voice" },
  };
  return { ...builtins, ...(input.variableValues ?? {}) };
}
