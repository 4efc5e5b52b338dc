import { createHmac, timingSafeEqual } from "node:crypto";
import { hashApiKey, isWellFormedApiKey } from "../crypto/index.ts";
import type { Call as CallRow, Db } from "../db/index.ts";
import { bearerToken } from "../http/bearer.ts";

// A call's live monitor (Vapi's `call.monitor`): `listenUrl`, a media-plane websocket streaming the
// call's audio, and `controlUrl`, an API URL taking Vapi's control messages. Each carries a token
// that is the call's id signed (HMAC-SHA256) with a key derived from SECRETS_KEY under its own label,
// one label per kind: nothing is stored, a listen token cannot control the call, and no token is
// good for anything else. The tokens live as long as the call (its end makes them useless).
//
// The assistant's `monitorPlan` decides: `listenEnabled` / `controlEnabled` (default true) whether
// the URL exists, `listenAuthenticationEnabled` / `controlAuthenticationEnabled` (default false)
// whether the URL also needs `Authorization: Bearer <API key>` of the call's organisation (Vapi
// says its public key; a private key of the organisation works too).

export type MonitorKind = "listen" | "control";

const LABELS: Record<MonitorKind, string> = {
  listen: "switchboard/call-listen-token/v1",
  control: "switchboard/call-control-token/v1",
};

/** What building the URLs needs (every app has it from the platform config). */
export interface MonitorLinks {
  publicUrl: string;
  mediaPublicUrl: string;
  secretsKey: Buffer;
}

export interface MonitorPlanSettings {
  listenEnabled: boolean;
  listenAuthenticationEnabled: boolean;
  controlEnabled: boolean;
  controlAuthenticationEnabled: boolean;
}

const keys = new WeakMap<Buffer, Record<MonitorKind, Buffer>>();

function keyFor(secretsKey: Buffer, kind: MonitorKind): Buffer {
  let k = keys.get(secretsKey);
  if (!k) {
    k = {
      listen: createHmac("sha256", secretsKey).update(LABELS.listen).digest(),
      control: createHmac("sha256", secretsKey).update(LABELS.control).digest(),
    };
    keys.set(secretsKey, k);
  }
  return k[kind];
}

/** The call's `kind` token: 43 base64url characters (256 bits). */
export function monitorToken(secretsKey: Buffer, kind: MonitorKind, callId: string): string {
  return createHmac("sha256", keyFor(secretsKey, kind)).update(callId).digest("base64url");
}

/** Whether `token` is the call's `kind` token (constant time; no I/O). */
export function isMonitorToken(
  secretsKey: Buffer,
  kind: MonitorKind,
  callId: string,
  token: string | undefined,
): boolean {
  if (token?.length !== 43) return false;
  const expected = Buffer.from(monitorToken(secretsKey, kind, callId));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function flag(plan: Record<string, unknown> | undefined, name: string, fallback: boolean): boolean {
  const v = plan?.[name];
  return typeof v === "boolean" ? v : fallback;
}

/** The call's monitorPlan (of the assistant it started with, overrides applied), defaults filled in. */
export function monitorPlanOf(row: Pick<CallRow, "assistant">): MonitorPlanSettings {
  const a = row.assistant;
  const raw =
    a && typeof a === "object" && !Array.isArray(a) ? (a as Record<string, unknown>).monitorPlan : undefined;
  const plan =
    raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  return {
    listenEnabled: flag(plan, "listenEnabled", true),
    listenAuthenticationEnabled: flag(plan, "listenAuthenticationEnabled", false),
    controlEnabled: flag(plan, "controlEnabled", true),
    controlAuthenticationEnabled: flag(plan, "controlAuthenticationEnabled", false),
  };
}

/** MEDIA_PUBLIC_URL as a websocket base (http → ws, https → wss). */
function websocketBase(mediaPublicUrl: string): string {
  return mediaPublicUrl.replace(/\/$/, "").replace(/^http(s?):\/\//i, "ws$1://");
}

export function listenUrl(links: MonitorLinks, callId: string): string {
  const token = monitorToken(links.secretsKey, "listen", callId);
  return `${websocketBase(links.mediaPublicUrl)}/call/${callId}/monitor/listen?token=${token}`;
}

export function controlUrl(links: MonitorLinks, callId: string): string {
  const token = monitorToken(links.secretsKey, "control", callId);
  return `${links.publicUrl.replace(/\/$/, "")}/call/${callId}/monitor/control?token=${token}`;
}

/** `call.monitor`: the URLs its monitorPlan enables (undefined when it enables neither). */
export function callMonitor(
  links: MonitorLinks,
  row: Pick<CallRow, "id" | "assistant">,
): { listenUrl?: string; controlUrl?: string } | undefined {
  const plan = monitorPlanOf(row);
  if (!plan.listenEnabled && !plan.controlEnabled) return undefined;
  return {
    ...(plan.listenEnabled ? { listenUrl: listenUrl(links, row.id) } : {}),
    ...(plan.controlEnabled ? { controlUrl: controlUrl(links, row.id) } : {}),
  };
}

/**
 * Whether `authorization` (the request's header) carries `Bearer <key>` with a live API key of
 * `orgId`, public or private. A value not shaped like a key costs no lookup.
 */
export async function isOrgApiKey(
  db: Db,
  authorization: string | undefined,
  orgId: string,
): Promise<boolean> {
  const bearer = bearerToken(authorization);
  if (!bearer || !isWellFormedApiKey(bearer)) return false;
  const row = await db.apiKey.findUnique({
    where: { hash: hashApiKey(bearer) },
    select: { orgId: true, revokedAt: true },
  });
  return row !== null && row.revokedAt === null && row.orgId === orgId;
}
