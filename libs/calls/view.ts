import { withSignedLogUrl } from "../call-logs/index.ts";
import type { Call as CallRow } from "../db/index.ts";
import { presignedRecordingFields, recordingLocationOf } from "../recordings/index.ts";
import { callMonitor, type MonitorLinks } from "./monitor.ts";
import { callTransport } from "./transport.ts";

// A call row in Vapi's `Call` shape: what `GET /call/:id` answers and, without the heavy fields,
// the `call` object of every server message (libs/webhooks callPayload).

export type CallView = Record<string, unknown> & { id: string; status: string };

function opt<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

/** `links`: where the call's monitor URLs point (absent: no `monitor`, as in server messages). */
export function callView(row: CallRow, links?: MonitorLinks): CallView {
  const transport = callTransport(row.transport);
  return {
    id: row.id,
    orgId: row.orgId,
    type: row.type,
    status: row.status,
    endedReason: opt(row.endedReason),
    assistantId: opt(row.assistantId),
    squadId: opt(row.squadId),
    phoneNumberId: opt(row.phoneNumberId),
    customer: opt(row.customer),
    assistant: opt(row.assistant),
    assistantOverrides: opt(row.assistantOverrides),
    name: opt(row.name),
    metadata: opt(row.metadata),
    phoneCallProvider: row.type === "webCall" || transport ? undefined : "twilio",
    phoneCallProviderId: opt(row.providerCallId),
    // Without allowedOrigins: the key's restrictions are not the call's to show.
    transport: transport && { provider: transport.provider, audioFormat: transport.audioFormat },
    startedAt: row.startedAt?.toISOString(),
    endedAt: row.endedAt?.toISOString(),
    transcript: opt(row.transcript),
    messages: opt(row.messages),
    // A call's log is linked by a signed URL (an hour) in an answer with links; as stored otherwise.
    artifact: links
      ? withSignedLogUrl(artifactView(row, links), links, row.id, Date.now())
      : artifactView(row),
    analysis: opt(row.analysis),
    // Money is exact in the database (decimal); JSON carries it as a number, as Vapi's API does.
    cost: row.cost === null ? undefined : Number(row.cost.toString()),
    costBreakdown: opt(row.costBreakdown),
    costs: opt(row.costs),
    monitor: links ? callMonitor(links, row) : undefined,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/**
 * The stored artifact without the recording's location (the platform's business), and with Vapi's
 * presigned URLs of a recording, fresh for each answer (an hour), when the answer has links.
 */
function artifactView(row: CallRow, links?: MonitorLinks): unknown {
  const artifact = row.artifact;
  if (!recordingLocationOf(artifact)) return opt(artifact);
  const { recordingStorage: _location, ...rest } = artifact as Record<string, unknown>;
  return links ? { ...rest, ...presignedRecordingFields(links, row.id, Date.now()) } : rest;
}
