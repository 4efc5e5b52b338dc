import {
  appendCallLogChunk,
  CallLog,
  callLogRouteUrl,
  DEFAULT_CALL_LOG_LIMITS,
  loggingEnabledOf,
} from "../../call-logs/index.ts";
import { type Call as CallRow, Prisma } from "../../db/index.ts";
import type { AudioFormat } from "../audio-format.ts";
import type { ActiveAssistant } from "./assistant.ts";
import type { CallContext, Json, MediaLogger, SessionDeps } from "./context.ts";

// The call session's side of the call log (libs/call-logs): making it, telling it the call, the
// assistant and the secrets to keep out, and the entries of the call's lifecycle. The parts add
// their own entries (`c.callLog.add(…)`) where things happen; none of it is on the frame path.

/** The call's log; without `deps.callLogs` it keeps nothing. */
export function createCallLog(deps: SessionDeps, now: () => number, log: () => MediaLogger): CallLog {
  const callLog = new CallLog({
    limits: deps.callLogs?.limits ?? DEFAULT_CALL_LOG_LIMITS,
    now,
    append: (chunk) => appendCallLogChunk(deps.db, chunk),
    onAppendError: (err) => log().warn({ err }, "call log entries not stored"),
  });
  if (!deps.callLogs) callLog.setEnabled(false);
  // The platform's own keys never appear, whatever quotes them (an error message, a URL).
  for (const key of Object.values(deps.platformKeys)) callLog.redact.addSecret(key);
  return callLog;
}

export function formatName(f: AudioFormat): string {
  return `${f.encoding === "mulaw" ? "mulaw" : "pcm_s16le"} ${f.sampleRate} Hz`;
}

/** A short, secret-free description of a failure (the log's redaction applies on top). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The stream was claimed: the log belongs to this call now (and is off if its assistant says so). */
export function logCallClaimed(c: CallContext, call: CallRow, startedAt: number): void {
  const { callLog, transport } = c;
  callLog.bind(call.id, call.orgId, startedAt);
  // A squad's call has no assistant of its own: the member that starts it decides.
  if (call.assistant && typeof call.assistant === "object")
    callLog.setEnabled(loggingEnabledOf(call.assistant));
  callLog.add("transport", "stream claimed the call", {
    transport: transport.provider,
    callerAudio: formatName(transport.audio.caller),
    playbackAudio: formatName(transport.audio.playback),
  });
}

/** An assistant takes the call (its start, or a squad hand-off): its providers; its secrets kept out. */
export function logAssistant(c: CallContext, assistant: ActiveAssistant, raw: Json, handOff: boolean): void {
  const { callLog } = c;
  const { redact } = callLog;
  for (const k of [assistant.stt.key, assistant.llm.key, assistant.tts.key]) redact.addSecret(k.apiKey);
  redact.addSecretsIn(raw);
  redact.addSecretsIn(assistant.config);
  for (const tool of assistant.tools) redact.addSecretsIn(tool.raw);
  callLog.setEnabled(assistant.config.artifactPlan.loggingEnabled);
  const config = assistant.config as unknown as {
    name?: string;
    model?: { model?: string };
    voice?: { voiceId?: string; model?: string };
    transcriber?: { model?: string; speechModel?: string };
  };
  callLog.add("call", handOff ? "another assistant took the call" : "assistant loaded", {
    assistant: config.name,
    transcriber: {
      provider: assistant.stt.provider.provider,
      model: config.transcriber?.model ?? config.transcriber?.speechModel,
      byo: assistant.stt.key.byo,
    },
    model: {
      provider: assistant.llm.provider.provider,
      model: config.model?.model,
      byo: assistant.llm.key.byo,
    },
    voice: {
      provider: assistant.tts.provider.provider,
      voiceId: config.voice?.voiceId,
      model: config.voice?.model,
      byo: assistant.tts.key.byo,
    },
    tools: assistant.tools.map((t) => `${t.type}:${t.name}`),
  });
}

/** The stored artifact's `logUrl` (the authenticated route; API answers show a signed URL instead). */
export function logUrlOf(c: CallContext): { logUrl?: string } {
  const publicUrl = c.deps.callLogs?.publicUrl;
  return publicUrl && c.callLog.stored ? { logUrl: callLogRouteUrl(publicUrl, c.state.callId) } : {};
}

/**
 * The call is live: its first entries are stored now, and its row names its log at once, so a call
 * whose process dies keeps the link (the sweeper's ending keeps `artifact.logUrl`).
 */
export function logCallLive(c: CallContext): void {
  const { callLog, deps, state } = c;
  callLog.add("call", "call started");
  const publicUrl = deps.callLogs?.publicUrl;
  void callLog.flush().then(async () => {
    if (!publicUrl || !callLog.stored) return;
    const logUrl = callLogRouteUrl(publicUrl, state.callId);
    try {
      await deps.db.$executeRaw(Prisma.sql`
        UPDATE "Call" SET "artifact" = coalesce("artifact", '{}'::jsonb) || jsonb_build_object('logUrl', ${logUrl}::text)
        WHERE "id" = ${state.callId}::uuid AND "status" = 'in-progress'`);
    } catch (err) {
      state.log.warn({ err }, "call log link not written to the call");
    }
  });
}
