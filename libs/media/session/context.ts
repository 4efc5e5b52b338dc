import type { PriceCatalog } from "../../billing/prices.ts";
import type { CallLog, CallLogLimits } from "../../call-logs/index.ts";
import type { SecretBox } from "../../crypto/index.ts";
import type { Db } from "../../db/index.ts";
import type { Providers } from "../../providers/index.ts";
import type { ProviderError } from "../../providers/types.ts";
import type { JobQueue } from "../../queue/index.ts";
import type { CallRecordings } from "../../recordings/index.ts";
import type { ControlBus } from "../../telephony/control-bus.ts";
import type { WebhookDispatcher } from "../../webhooks/index.ts";
import type { OutboundAudio, SharedPacer } from "../pacer.ts";
import type { ScheduleTimer } from "../stream-guard.ts";
import type { DestinationDef } from "../tools.ts";
import type { AudioTaps } from "./audio-tap.ts";
import type { CallCheckpoints } from "./call-record.ts";
import type { CallerInput } from "./caller-input.ts";
import type { Interruption } from "./interruption.ts";
import type { CallRecording } from "./recording.ts";
import type { ProviderRecovery } from "./resilience.ts";
import type { ServerMessages } from "./server-messages.ts";
import type { CallState } from "./state.ts";
import type { CallTimers } from "./timers.ts";
import type { ToolRunner } from "./tool-runner.ts";
import type { CallTransfer } from "./transfer.ts";
import type { CallTransport } from "./transport.ts";
import type { TurnLoop } from "./turn-loop.ts";
import type { UsageMeter } from "./usage-meter.ts";
import type { AssistantVoice } from "./voice.ts";

// What the parts of a call session share: the session's dependencies, the call's state, each other
// (each part owns its own state and reaches the others through this), and the lifecycle calls only
// the orchestrator implements.

export interface MediaLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): MediaLogger;
}

export interface LeaseControls {
  renewLease(orgId: string, callId: string): Promise<boolean>;
  releaseCall(orgId: string, callId: string): Promise<void>;
  isOverSpendLimit(orgId: string): Promise<boolean>;
}

export interface SessionDeps {
  db: Db;
  secrets: SecretBox;
  secretsKey: Buffer;
  providers: Providers;
  /** The platform's own key per provider name (`openai`, `deepgram`, `11labs`, `assembly-ai` …). */
  platformKeys: Readonly<Record<string, string | undefined>>;
  twilioApiUrl: string;
  allowPrivateWebhookUrls: boolean;
  pacer: SharedPacer;
  queue?: JobQueue;
  dispatcher?: WebhookDispatcher;
  controlBus?: ControlBus;
  spend?: LeaseControls;
  catalog?: PriceCatalog;
  /** Where calls are recorded (artifactPlan.recordingEnabled); none: calls are not recorded. */
  recordings?: CallRecordings;
  /**
   * Where each call's log goes (artifactPlan.loggingEnabled): its cap, and the API's public URL its
   * artifact names. None: calls keep no log.
   */
  callLogs?: { limits: CallLogLimits; publicUrl: string };
  processId: string;
  logger: MediaLogger;
  now?: () => number;
  /**
   * Arms the session's timers (silence, max duration, keypad gathering, hang reports, the bound on
   * a final message), so tests can advance them. Default setTimeout.
   */
  schedule?: ScheduleTimer;
}

export type Phase = "connecting" | "starting" | "live" | "ending" | "ended";

export type Json = Record<string, unknown>;

export function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Words as compared with phrases (end-call, interruption, acknowledgement). */
export function normalise(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s'-]/gu, " ")
    .replace(/'/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

export interface ProviderFailure {
  provider: string;
  kind: ProviderError["kind"];
}

export interface CallContext {
  readonly deps: SessionDeps;
  readonly now: () => number;
  /** Aborted when the call ends: every socket, stream and request of the call listens to it. */
  readonly signal: AbortSignal;
  readonly state: CallState;
  readonly transport: CallTransport;
  readonly out: OutboundAudio;
  readonly messages: ServerMessages;
  readonly timers: CallTimers;
  readonly meter: UsageMeter;
  readonly checkpoints: CallCheckpoints;
  readonly input: CallerInput;
  readonly interruption: Interruption;
  readonly voice: AssistantVoice;
  readonly turns: TurnLoop;
  readonly tools: ToolRunner;
  readonly transfer: CallTransfer;
  /** Whoever consumes the call's audio as it happens (live listeners); `active` undefined when nobody. */
  readonly taps: AudioTaps;
  /** The call's recording (started when the call goes live, stored when it ends). */
  readonly recording: CallRecording;
  /**
   * The call's log (artifactPlan.loggingEnabled): `callLog.add(category, message, data)` records what
   * happened (a provider retry, a fallback …); secrets are scrubbed, never on the frame path.
   */
  readonly callLog: CallLog;
  /** Retries and fallback plans of the call's providers (what to do when one fails mid-call). */
  readonly recovery: ProviderRecovery;
  /** Ends the call (idempotent). */
  end(reason: string, opts?: { keepTransport?: boolean }): Promise<void>;
  /** A provider failed mid-call and nothing is left to try: apologise when the voice still works, and end. */
  fail(err: unknown, where: ProviderFailure): Promise<void>;
  /** Switches the call to an assistant (call start, squad hand-off). */
  useAssistant(raw: Json, destinations: DestinationDef[]): Promise<void>;
}
