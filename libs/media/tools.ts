import type { Db } from "../db/index.ts";
import type { LlmTool } from "../providers/types.ts";
import type { Server } from "../vapi/common.ts";

// The tools an assistant can call during a call: inline `model.tools`, saved `model.toolIds`, and
// for squad members the hand-off destinations. Each becomes one function the model sees.

export interface ToolMessageDef {
  type: string;
  content?: string;
  blocking?: boolean;
  timingMilliseconds?: number;
}

export interface DestinationDef {
  type: "number" | "assistant";
  number?: string;
  extension?: string;
  callerId?: string;
  assistantName?: string;
  message?: string | { type: "custom-message"; content?: string };
  description?: string;
}

export interface ToolDef {
  type: "function" | "endCall" | "transferCall" | "dtmf";
  /** The name the model calls it by. */
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  async?: boolean;
  server?: Server;
  messages?: ToolMessageDef[];
  destinations?: DestinationDef[];
  /** The tool as configured (sent back in `toolWithToolCallList`). */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function toToolDef(raw: Json): ToolDef | undefined {
  const type = raw.type;
  const messages = Array.isArray(raw.messages) ? (raw.messages as ToolMessageDef[]) : undefined;
  if (type === "function") {
    const fn = isObj(raw.function) ? raw.function : undefined;
    if (!fn || typeof fn.name !== "string") return undefined;
    return {
      type,
      name: fn.name,
      description: typeof fn.description === "string" ? fn.description : undefined,
      parameters: isObj(fn.parameters) ? fn.parameters : { type: "object", properties: {} },
      async: raw.async === true,
      server: isObj(raw.server) ? (raw.server as Server) : undefined,
      messages,
      raw,
    };
  }
  if (type === "endCall") {
    return {
      type,
      name: "endCall",
      description: "End the call. Use it when the conversation is over and the caller has said goodbye.",
      parameters: { type: "object", properties: {} },
      messages,
      raw,
    };
  }
  if (type === "dtmf") {
    return {
      type,
      name: "dtmf",
      description: "Press keys on the phone keypad (for automated phone menus).",
      parameters: {
        type: "object",
        properties: { keys: { type: "string", description: "The keys to press, e.g. 1 or 123#." } },
        required: ["keys"],
      },
      messages,
      raw,
    };
  }
  if (type === "transferCall") {
    const destinations = Array.isArray(raw.destinations) ? (raw.destinations as DestinationDef[]) : [];
    return transferTool(destinations, messages, raw);
  }
  return undefined;
}

export function destinationKey(d: DestinationDef): string {
  return d.type === "assistant" ? (d.assistantName ?? "") : (d.number ?? "");
}

function transferTool(
  destinations: DestinationDef[],
  messages: ToolMessageDef[] | undefined,
  raw: Json,
): ToolDef {
  const keys = destinations.map(destinationKey).filter(Boolean);
  const described = destinations
    .filter((d) => d.description)
    .map((d) => `${destinationKey(d)}: ${d.description}`)
    .join("; ");
  return {
    type: "transferCall",
    name: "transferCall",
    description: `Transfer the call to one of the destinations.${described ? ` ${described}` : ""}`,
    parameters: {
      type: "object",
      properties: { destination: { type: "string", enum: keys, description: "Where to transfer the call." } },
      required: ["destination"],
    },
    destinations,
    messages,
    raw,
  };
}

/** Inline tools, saved tools (by id, this org only) and squad hand-offs, merged by name (first wins). */
export async function loadTools(
  db: Db,
  orgId: string,
  model: { tools?: unknown[]; toolIds?: string[] } | undefined,
  assistantDestinations: DestinationDef[] = [],
): Promise<ToolDef[]> {
  const raws: Json[] = [];
  for (const t of model?.tools ?? []) if (isObj(t)) raws.push(t);
  const ids = model?.toolIds ?? [];
  if (ids.length > 0) {
    const rows = await db.tool.findMany({ where: { orgId, id: { in: [...ids] } } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of ids) {
      const row = byId.get(id);
      if (row) raws.push({ ...(isObj(row.config) ? row.config : {}), type: row.type, id: row.id });
    }
  }
  const out: ToolDef[] = [];
  const names = new Set<string>();
  let transfer: ToolDef | undefined;
  for (const raw of raws) {
    const def = toToolDef(raw);
    if (!def) continue;
    if (def.type === "transferCall") {
      // All transfer tools merge into one function with every destination.
      if (transfer) transfer.destinations = [...(transfer.destinations ?? []), ...(def.destinations ?? [])];
      else transfer = def;
      continue;
    }
    if (names.has(def.name)) continue;
    names.add(def.name);
    out.push(def);
  }
  if (assistantDestinations.length > 0) {
    if (transfer) transfer.destinations = [...(transfer.destinations ?? []), ...assistantDestinations];
    else
      transfer = transferTool(assistantDestinations, undefined, {
        type: "transferCall",
        destinations: assistantDestinations,
      });
  }
  if (transfer) out.push(transferTool(transfer.destinations ?? [], transfer.messages, transfer.raw));
  return out;
}

export function llmTools(tools: readonly ToolDef[]): LlmTool[] {
  return tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }));
}

export function toolMessage(tool: ToolDef, type: string): string | undefined {
  const m = tool.messages?.find((x) => x.type === type);
  return m?.content;
}

const FILLERS = [
  "Hold on a sec.",
  "One moment.",
  "Just a sec.",
  "Give me a moment.",
  "This'll just take a sec.",
];

/** Vapi speaks a random filler before a (non-async) function tool without a request-start message. */
export function requestStartMessage(tool: ToolDef): string | undefined {
  const configured = tool.messages?.find((x) => x.type === "request-start");
  if (configured) return configured.content || undefined;
  return FILLERS[Math.floor(Math.random() * FILLERS.length)];
}

export function destinationMessage(d: DestinationDef): string | undefined {
  if (typeof d.message === "string") return d.message || undefined;
  return d.message?.content || undefined;
}
