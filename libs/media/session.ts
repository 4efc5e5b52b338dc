import {
  type CredentialKeyRow,
  callVariables,
  type ProviderKey,
  pickProviderKeys,
  renderTemplate,
  type Variables,
} from "../assistants/index.ts";
import type { PriceCatalog } from "../billing/prices.ts";
import type { OrgPricingInput } from "../billing/pricing.ts";
import { type CallUsage, zeroCallUsage } from "../billing/usage.ts";
import type { SecretBox } from "../crypto/index.ts";
import type { Call as CallRow, Db, PhoneNumber as PhoneNumberRow, Prisma } from "../db/index.ts";
import { callsStarted, observeTurn, providerFailed } from "../metrics/index.ts";
import { hasVoice, isSilence } from "../providers/audio.ts";
import { ClauseChunker } from "../providers/chunker.ts";
import type { Providers } from "../providers/index.ts";
import {
  isAbortError,
  type LanguageModel,
  type LlmEvent,
  ProviderError,
  type SpeechToText,
  type SttEvent,
  type SttStream,
  type TextToSpeech,
  type TtsOptions,
} from "../providers/types.ts";
import type { JobQueue } from "../queue/index.ts";
import type { CallControlMessage, ControlBus } from "../telephony/control-bus.ts";
import { consumeMediaToken } from "../telephony/media-token.ts";
import { transferTwiml, updateCall } from "../telephony/twilio-client.ts";
import type { CreateAssistantDTO } from "../vapi/assistant.ts";
import { type ResolvedAssistantConfig, resolveAssistantDefaults } from "../vapi/defaults.ts";
import { squadMemberAssistant } from "../vapi/overrides.ts";
import {
  type ConversationMessage,
  callPayload,
  conversationUpdateMessage,
  hangMessage,
  type MessageContext,
  resolveServer,
  type ServerTarget,
  sendServerMessage,
  shouldSend,
  speechUpdateMessage,
  statusUpdateMessage,
  toolCall,
  toolCallsMessage,
  toolWithToolCall,
  transcriptMessage,
  userInterruptedMessage,
  type WebhookDispatcher,
} from "../webhooks/index.ts";
import { loadCallSetup } from "./call-setup.ts";
import { type BotEntry, Conversation, type TurnLatency, truncateAtWord } from "./conversation.ts";
import { dtmfAudio } from "./dtmf.ts";
import { ENDED, providerFailureReason } from "./ended-reasons.ts";
import { finalizeEndedCall } from "./finalize.ts";
import { KeypadInput, keypadEntryText } from "./keypad.ts";
import { OutboundAudio, type SharedPacer } from "./pacer.ts";
import { SilenceBatcher } from "./silence-batcher.ts";
import { Utterance } from "./speaker.ts";
import { realTimer, type ScheduleTimer } from "./stream-guard.ts";
import {
  type DestinationDef,
  destinationKey,
  destinationMessage,
  llmTools,
  loadTools,
  requestStartMessage,
  type ToolDef,
  toolMessage,
} from "./tools.ts";
import { TurnDetector, type UserTurn } from "./turn-detector.ts";

// One live phone call: the Twilio media stream, the transcriber, the turn loop (endpointing →
// LLM → clause chunker → TTS → paced audio), barge-in, tools, live control and the ending. The
// session owns every resource of the call through one AbortController; `end()` releases all of
// them and writes the call exactly once, whatever way the call ends.

export interface MediaLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): MediaLogger;
}

/** The websocket to Twilio as the session sees it. */
export interface MediaTransport {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  readonly open: boolean;
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
  platformKeys: { openai?: string; deepgram?: string; "11labs"?: string };
  twilioApiUrl: string;
  allowPrivateWebhookUrls: boolean;
  pacer: SharedPacer;
  queue?: JobQueue;
  dispatcher?: WebhookDispatcher;
  controlBus?: ControlBus;
  spend?: LeaseControls;
  catalog?: PriceCatalog;
  processId: string;
  logger: MediaLogger;
  now?: () => number;
  /** Arms the session's timers that tests drive (keypad input's gathering window). Default setTimeout. */
  schedule?: ScheduleTimer;
}

const APOLOGY = "I'm sorry, I'm having some technical difficulties right now. Please try calling back later.";
const SILENCE_REMINDER = "Are you still there?";
/** A reply with no audio this long after the turn ended is reported as `hang`. */
const HANG_AFTER_MS = 5000;
const MAX_TOOL_ROUNDS = 5;
/** Bounds how long a final message (goodbye, apology) may hold the call open. */
const FINAL_MESSAGE_TIMEOUT_MS = 15_000;
/** Caller audio kept while the call starts (token check, loading, transcriber connect): 5 s of μ-law. */
export const EARLY_AUDIO_MAX_BYTES = 40_000;

type Json = Record<string, unknown>;

interface TwilioStart {
  streamSid?: string;
  callSid?: string;
  accountSid?: string;
  customParameters?: Record<string, string>;
}

const MEDIA_EVENT = Buffer.from('"event":"media"');
const PAYLOAD_KEY = Buffer.from('"payload":"');
const QUOTE = 0x22;
/** Deepgram's utterance-end window (`utterance_end_ms`): the longest the transcriber times silence. */
const UTTERANCE_END_MS = 1000;
/** Margin past the transcriber's silence windows before the caller's silence is gathered. */
const SILENCE_BATCH_MARGIN_MS = 500;

interface Reply {
  ctrl: AbortController;
  utterance: Utterance | undefined;
  entry: BotEntry | undefined;
  turn: UserTurn | undefined;
  llmStartedAt: number;
  firstTokenAt: number | undefined;
  /** Wall time the caller's last voiced frame of the turn went to the transcriber (0: unknown). */
  voiceEndAt: number;
  /** Audio may not start before this (startSpeakingPlan.waitSeconds after the end of speech). */
  gateAt: number;
  recorded: boolean;
  hangTimer: NodeJS.Timeout | undefined;
}

type Phase = "connecting" | "starting" | "live" | "ending" | "ended";

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function normalise(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s'-]/gu, " ")
    .replace(/'/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

/** A call's setup stopped because the call ended meanwhile (not a failure). */
class SetupAborted extends Error {
  constructor() {
    super("call setup stopped: the call ended while it was starting");
    this.name = "SetupAborted";
  }
}

export class CallSession {
  readonly #deps: SessionDeps;
  readonly #transport: MediaTransport;
  #log: MediaLogger;
  readonly #now: () => number;
  readonly #abort = new AbortController();
  readonly out: OutboundAudio;
  #phase: Phase = "connecting";
  #streamSid = "";
  #callSid = "";
  callId = "";
  orgId = "";
  #row: CallRow | undefined;
  #phoneNumber: PhoneNumberRow | null = null;
  /** The organisation's provider credentials as loaded at call start (sealed). */
  #credentials: CredentialKeyRow[] = [];
  #orgServer: Json | undefined;
  /** The organisation's pricing as loaded at call start (prices the call at its end). */
  #orgPricing: OrgPricingInput | undefined;
  /** Wall time the last voiced frame of the caller went to the transcriber. */
  #lastVoiceSentAt = 0;
  /** The caller's long silences, gathered into fewer messages to the transcriber. */
  readonly #silence = new SilenceBatcher();
  /** Quiet this long (no transcriber decision pending on it), the caller's silence is gathered. */
  #quietAfterMs = Number.POSITIVE_INFINITY;
  #assistant!: ResolvedAssistantConfig;
  #assistantJson: Json = {};
  #variables: Variables = {};
  #tools: ToolDef[] = [];
  #squadMembers: Json[] = [];
  /** The squad's `membersOverrides`, applied to every member it hands the call to. */
  #squadMembersOverrides: Json | undefined;
  #stt: SttStream | undefined;
  #sttProvider!: SpeechToText;
  #llmProvider!: LanguageModel;
  #ttsProvider!: TextToSpeech;
  #keys = {
    stt: { apiKey: "", byo: false },
    llm: { apiKey: "", byo: false },
    tts: { apiKey: "", byo: false },
  };
  #ttsOptions!: TtsOptions;
  #conversation!: Conversation;
  #detector!: TurnDetector;
  /** The caller's keypad digits, gathered per the assistant's keypadInputPlan. */
  #keypad: KeypadInput | undefined;
  #reply: Reply | undefined;
  /** The utterance being spoken now (reply, first message, tool message, goodbye…). */
  #speaking: Utterance | undefined;
  #startedAt = 0;
  #sttAudioStartedAt = 0;
  #sttBytes = 0;
  /** Caller audio received before the transcriber was open, oldest first (bounded). */
  #early: Buffer[] = [];
  #earlyBytes = 0;
  /** The caller is speaking (a `speech-update` started was sent, stopped not yet). */
  #userSpeaking = false;
  #usage = { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0, ttsCharacters: 0 };
  /** The checkpoint being written (#checkpoint), and whether another turn completed meanwhile. */
  #checkpointing: Promise<void> | undefined;
  #checkpointAgain = false;
  #voicedMs = 0;
  #unvoicedFrames = 0;
  #firstMessagePlaying = false;
  #silenceTimer: NodeJS.Timeout | undefined;
  #reminderTimer: NodeJS.Timeout | undefined;
  #maxTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #endAfterReply: { reason: string; message?: string } | undefined;
  #transfer: { destination: DestinationDef } | undefined;
  /** Twilio is being asked to `<Dial>` elsewhere: its `stop` / close is the transfer, not a hang-up. */
  #forwarding = false;
  /** Twilio sent `stop` (the caller hung up), as opposed to the socket just dropping. */
  #stopReceived = false;
  #seq = 0;
  #spendChecked = false;
  /** A provider failed: the apology is playing and the call is about to end. */
  #failing = false;
  /** Resolves once the call is written and released. */
  readonly finished: Promise<void>;
  #resolveFinished!: () => void;

  constructor(deps: SessionDeps, transport: MediaTransport) {
    this.#deps = deps;
    this.#transport = transport;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.finished = new Promise((r) => {
      this.#resolveFinished = r;
    });
    this.out = new OutboundAudio({
      sendMedia: (b64) => {
        this.#transport.send(
          `{"event":"media","streamSid":"${this.#streamSid}","media":{"payload":"${b64}"}}`,
        );
      },
      sendMark: (name) => {
        this.#transport.send(`{"event":"mark","streamSid":"${this.#streamSid}","mark":{"name":"${name}"}}`);
      },
    });
    this.out.onFirstFrame = (at) => this.#onFirstFrame(at);
  }

  get phase(): Phase {
    return this.#phase;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  // ------------------------------------------------------------------ Twilio messages

  /** One text frame from Twilio. Malformed or out-of-order messages are ignored. */
  /**
   * A websocket text message as received. The hot path, 50 per second per call: a `media` frame's
   * payload is cut out of the bytes and decoded without turning the whole message into a string;
   * anything else goes to `#onEvent`.
   */
  onFrame(data: Buffer): void {
    if (this.#phase === "ended") return;
    if (data.indexOf(MEDIA_EVENT) >= 0) {
      // While the call starts, the caller's audio is kept for the transcriber (see #onAudio).
      if (this.#phase !== "live" && this.#phase !== "starting") return;
      const at = data.indexOf(PAYLOAD_KEY);
      if (at < 0) return;
      const from = at + PAYLOAD_KEY.length;
      const end = data.indexOf(QUOTE, from);
      if (end < 0) return;
      this.#onAudio(Buffer.from(data.toString("latin1", from, end), "base64"));
      return;
    }
    this.#onEvent(data.toString("utf8"));
  }

  /** Every message but `media` (connected, start, mark, dtmf, stop): parsed in full. */
  #onEvent(raw: string): void {
    let msg: Json;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!isObj(parsed)) return;
      msg = parsed;
    } catch {
      return;
    }
    switch (msg.event) {
      case "connected":
        return;
      case "start":
        if (this.#phase === "connecting" && isObj(msg.start)) {
          this.#phase = "starting";
          void this.#start(
            msg.start as TwilioStart,
            typeof msg.streamSid === "string" ? msg.streamSid : undefined,
          );
        }
        return;
      case "mark":
        if (isObj(msg.mark) && typeof msg.mark.name === "string") this.#onMark(msg.mark.name);
        return;
      case "dtmf":
        if (this.#phase === "live" && isObj(msg.dtmf) && typeof msg.dtmf.digit === "string")
          this.#onDigit(msg.dtmf.digit);
        return;
      case "stop":
        if (this.#forwarding) return;
        // A hang-up while the call is still starting is a normal ending too: the call is written
        // and priced now, and the setup in flight stops at its next step (#ensureStarting).
        this.#stopReceived = true;
        if (this.#phase === "live" || this.#phase === "starting") void this.end(ENDED.customerEnded);
        else if (this.#phase === "connecting") this.#closeUnstarted();
        return;
      default:
        return;
    }
  }

  /** The websocket closed (Twilio hung up without `stop`, or the network dropped). */
  onClose(): void {
    if (this.#forwarding) return;
    if (this.#phase === "live" || this.#phase === "starting") void this.end(ENDED.socketClosed);
    else if (this.#phase === "connecting") this.#closeUnstarted();
  }

  #closeUnstarted(): void {
    if (this.#phase === "ended") return;
    this.#phase = "ended";
    this.#abort.abort();
    if (this.#transport.open) this.#transport.close(1008, "stream refused");
    this.#resolveFinished();
  }

  // ------------------------------------------------------------------ start

  async #start(start: TwilioStart, streamSid: string | undefined): Promise<void> {
    this.#streamSid = streamSid ?? start.streamSid ?? "";
    this.#callSid = start.callSid ?? "";
    const params = start.customParameters ?? {};
    const callId = params.callId ?? "";
    const token = params.token ?? "";
    // The token is checked before anything else; a bad or reused one costs nothing.
    let call: CallRow;
    const now = this.#now();
    try {
      // The same statement marks the call in progress on this process (its heartbeat starts now).
      const res = await consumeMediaToken(this.#deps.db, this.#deps.secretsKey, token, callId, now, {
        status: "in-progress",
        startedAt: new Date(now),
        mediaProcessId: this.#deps.processId,
        heartbeatAt: new Date(now),
      });
      if (!res.ok) {
        this.#log.warn({ callId: callId.slice(0, 36), reason: res.reason }, "media stream refused");
        this.#closeUnstarted();
        return;
      }
      call = res.call;
    } catch (err) {
      this.#log.warn({ err }, "media stream token check failed");
      this.#closeUnstarted();
      return;
    }
    this.callId = call.id;
    this.orgId = call.orgId;
    // Every later line of this call carries its ids.
    this.#log = this.#deps.logger.child({ callId: call.id, orgId: call.orgId });
    callsStarted.inc();
    this.#row = call;
    this.#startedAt = now;
    if (this.#phase !== "starting") {
      // Twilio hung up (stop) or the socket closed while the token was being checked.
      await this.#endUnprepared(call, this.#stopReceived ? ENDED.customerEnded : ENDED.socketClosed);
      return;
    }
    try {
      await this.#prepare(call);
    } catch (err) {
      // The call ended (hang-up, socket close, shutdown) while it was starting: end() wrote it.
      if (err instanceof SetupAborted) return;
      this.#log.error({ err }, "call setup failed");
      if (err instanceof ProviderError) providerFailed(err, err);
      const reason =
        err instanceof ProviderError
          ? providerFailureReason(err, { provider: err.provider, kind: err.kind })
          : ENDED.noLlmModel;
      await this.#endUnprepared(call, reason);
      return;
    }
    if (this.#phase !== "starting") {
      await this.end(ENDED.socketClosed);
      return;
    }
    this.#phase = "live";
    this.#log.info({}, "call started");
    this.#emit("status-update", () => statusUpdateMessage(this.#ctx(), { status: "in-progress" }));
    this.#armMaxDuration();
    void this.#firstMessage();
  }

  async #prepare(call: CallRow): Promise<void> {
    const { db } = this.#deps;
    const now = this.#startedAt;
    const { phoneNumber, org, credentials } = await loadCallSetup(db, call);
    this.#ensureStarting();
    this.#phoneNumber = phoneNumber;
    this.#credentials = credentials;
    this.#orgServer = isObj(org?.server) ? org.server : undefined;
    if (org)
      this.#orgPricing = { pricingOverrides: org.pricingOverrides, billingIncrement: org.billingIncrement };
    if (call.squadId) {
      const squad = await db.squad.findFirst({ where: { id: call.squadId, orgId: call.orgId } });
      const cfg = isObj(squad?.config) ? squad.config : {};
      const members: unknown[] = Array.isArray(cfg.members) ? cfg.members : [];
      this.#squadMembers = members.filter(isObj);
      this.#squadMembersOverrides = isObj(cfg.membersOverrides) ? cfg.membersOverrides : undefined;
    }
    const raw = isObj(call.assistant) ? call.assistant : {};
    const overrides = isObj(call.assistantOverrides) ? call.assistantOverrides : {};
    this.#variables = callVariables({
      now: new Date(now),
      customer: isObj(call.customer) ? call.customer : null,
      phoneNumber: this.#phoneNumber
        ? { number: this.#phoneNumber.number, name: this.#phoneNumber.name }
        : null,
      call: { id: call.id, type: call.type },
      callSid: this.#callSid,
      variableValues: {
        ...(isObj(overrides.variableValues) ? overrides.variableValues : {}),
        ...(isObj(raw.variableValues) ? raw.variableValues : {}),
      },
    });
    this.#conversation = new Conversation(now);
    await this.#useAssistant(raw, this.#memberDestinations(this.#startingMember(call, raw)));
    this.#ensureStarting();
    // The API records Twilio's CallSid when it creates the call; a call that reached us without it
    // gets it now (never overwriting one already there).
    if (this.#callSid && !call.providerCallId) {
      await db.call.updateMany({
        where: { id: call.id, providerCallId: null },
        data: { providerCallId: this.#callSid },
      });
      this.#ensureStarting();
    }
    this.#deps.pacer.add(this.out);

    if (this.#deps.controlBus) {
      const unsubscribe = await this.#deps.controlBus.subscribe(call.id, (m) => this.#onControl(m));
      if (this.#phase !== "starting") {
        await unsubscribe();
        throw new SetupAborted();
      }
      this.#unsubscribe = unsubscribe;
    }
    const t = this.#assistant.transcriber;
    const endpointingMs = t?.endpointing ?? 10;
    const stt = await this.#sttProvider.connect(
      {
        apiKey: this.#keys.stt.apiKey,
        model: t?.model ?? "nova-3",
        language: t?.language ?? "en",
        endpointingMs,
        utteranceEndMs: UTTERANCE_END_MS,
        keywords: t?.keywords,
        keyterms: t?.keyterm,
        smartFormat: t?.smartFormat,
        numerals: t?.numerals,
        profanityFilter: t?.profanityFilter,
        mipOptOut: t?.mipOptOut,
        signal: this.#abort.signal,
      },
      (e) => this.#onStt(e),
    );
    if (this.#phase !== "starting") {
      await stt.close();
      throw new SetupAborted();
    }
    // What the caller said while the call was starting goes first, in order (and counts as their
    // latest voice: silence after it is timed by the transcriber, so it is not gathered yet).
    for (const buf of this.#early) {
      this.#sttBytes += buf.length;
      stt.sendAudio(buf);
      if (hasVoice(buf)) this.#lastVoiceSentAt = this.#now();
    }
    this.#early = [];
    this.#earlyBytes = 0;
    this.#quietAfterMs = Math.max(endpointingMs, UTTERANCE_END_MS) + SILENCE_BATCH_MARGIN_MS;
    this.#stt = stt;
  }

  /** Stops a call's setup at its next step once the call has started ending. */
  #ensureStarting(): void {
    if (this.#phase !== "starting") throw new SetupAborted();
  }

  /** Loads an assistant's providers, keys, tools and prompt (call start, or a squad hand-off). */
  async #useAssistant(raw: Json, destinations: DestinationDef[]): Promise<void> {
    const { db, secrets, providers, platformKeys } = this.#deps;
    const assistant = resolveAssistantDefaults(raw as CreateAssistantDTO);
    if (!assistant.model || !assistant.voice || !assistant.transcriber) {
      throw new Error("the assistant has no model, voice or transcriber");
    }
    const stt = providers.stt[assistant.transcriber.provider];
    const llm = providers.llm[assistant.model.provider];
    const tts = providers.tts[assistant.voice.provider];
    if (!stt || !llm || !tts) throw new Error("an assistant provider is not supported");
    const ids = assistant.credentialIds ?? [];
    // From the credentials loaded with the call's setup (no query here).
    const [sttKey, llmKey, ttsKey] = pickProviderKeys(
      secrets,
      this.#credentials,
      [
        { provider: stt.provider, platformKey: platformKeys.deepgram },
        { provider: llm.provider, platformKey: platformKeys.openai },
        { provider: tts.provider, platformKey: platformKeys["11labs"] },
      ],
      ids,
    ) as [ProviderKey, ProviderKey, ProviderKey];
    this.#tools = await loadTools(db, this.orgId, assistant.model, destinations);
    if (!this.#stt) {
      this.#sttProvider = stt;
      this.#keys.stt = sttKey;
    }
    this.#llmProvider = llm;
    this.#keys.llm = llmKey;
    this.#ttsProvider = tts;
    this.#keys.tts = ttsKey;
    this.#assistant = assistant;
    this.#assistantJson = raw;
    const v = assistant.voice;
    this.#ttsOptions = {
      apiKey: ttsKey.apiKey,
      voiceId: v.voiceId,
      model: v.model ?? "eleven_turbo_v2",
      outputFormat: "ulaw_8000",
      voiceSettings: {
        stability: v.stability,
        similarityBoost: v.similarityBoost,
        style: v.style,
        useSpeakerBoost: v.useSpeakerBoost,
        speed: v.speed,
      },
      optimizeStreamingLatency: v.optimizeStreamingLatency,
      language: v.language,
      enableSsmlParsing: v.enableSsmlParsing,
      autoMode: v.autoMode,
      signal: this.#abort.signal,
    };
    tts.prewarm?.(this.#ttsOptions);
    const messages = assistant.model.messages ?? [];
    const system = messages.find((m) => m.role === "system");
    this.#conversation.setSystem(renderTemplate(system?.content ?? "", this.#variables), this.#now());
    if (this.#conversation.llm.length <= 1) {
      for (const m of messages) {
        if (m.role === "system" || m.role === "function") continue;
        this.#conversation.addSeed({
          role: m.role,
          content: renderTemplate(m.content ?? "", this.#variables),
        });
      }
    }
    const plan = assistant.startSpeakingPlan.transcriptionEndpointingPlan;
    this.#detector?.dispose();
    this.#detector = new TurnDetector(plan, (turn) => this.#onUserTurn(turn), this.#now);
    // Digits gathered for the previous assistant are dropped with it.
    this.#keypad?.dispose();
    this.#keypad = new KeypadInput(
      assistant.keypadInputPlan,
      (digits) => this.#onKeypadEntry(digits),
      this.#deps.schedule ?? realTimer,
    );
  }

  /** The squad member that starts the call (the API resolves the first member). */
  #startingMember(call: CallRow, raw: Json): Json | undefined {
    const name = typeof raw.name === "string" ? raw.name : undefined;
    return (
      (call.assistantId ? this.#squadMembers.find((m) => m.assistantId === call.assistantId) : undefined) ??
      this.#squadMembers.find((m) => isObj(m.assistant) && name !== undefined && m.assistant.name === name) ??
      this.#squadMembers[0]
    );
  }

  /** The assistants a squad member may hand the call to. */
  #memberDestinations(member: Json | undefined): DestinationDef[] {
    const dests = member && Array.isArray(member.assistantDestinations) ? member.assistantDestinations : [];
    return dests
      .filter(isObj)
      .map((d) => ({ ...(d as unknown as DestinationDef), type: "assistant" as const }));
  }

  // ------------------------------------------------------------------ first message

  async #firstMessage(): Promise<void> {
    const a = this.#assistant;
    const mode = a.firstMessageMode;
    if (mode === "assistant-waits-for-user") {
      this.#armSilence();
      return;
    }
    if (mode === "assistant-speaks-first-with-model-generated-message") {
      void this.#respond(undefined);
      return;
    }
    const text = a.firstMessage ? renderTemplate(a.firstMessage, this.#variables) : "";
    if (!text) {
      this.#armSilence();
      return;
    }
    this.#firstMessagePlaying = !a.firstMessageInterruptionsEnabled;
    await this.#speak(text, { interruptible: a.firstMessageInterruptionsEnabled, source: "first-message" });
    this.#firstMessagePlaying = false;
  }

  // ------------------------------------------------------------------ audio in

  #onAudio(buf: Buffer): void {
    // Audio time 0 at the transcriber is the first byte it gets: the first frame kept.
    if (this.#sttAudioStartedAt === 0) this.#sttAudioStartedAt = this.#now();
    const stt = this.#stt;
    if (!stt) {
      this.#keepEarly(buf);
      return;
    }
    this.#sttBytes += buf.length;
    const voiced = hasVoice(buf);
    if (!voiced && this.#now() - this.#lastVoiceSentAt >= this.#quietAfterMs) {
      const batch = this.#silence.hold(buf);
      if (batch) stt.sendAudio(batch);
    } else {
      stt.sendAudio(this.#silence.release(buf));
      if (voiced) this.#lastVoiceSentAt = this.#now();
    }
    if (this.#phase !== "live") return;
    // Local voice activity only matters while the assistant can be interrupted.
    const speaking = this.#speaking;
    if (!speaking?.interruptible || !speaking.audible || this.#firstMessagePlaying) {
      this.#voicedMs = 0;
      return;
    }
    if (this.#assistant.stopSpeakingPlan.numWords > 0) return;
    // `hasVoice` (every 8th sample) found nothing: the frame is taken as silence without the full
    // 160-sample pass, which runs only on frames that may hold voice (a listening caller's frames
    // mostly do not). Speech always shows on those samples (test/providers/audio.test.ts).
    if (!voiced || isSilence(buf)) {
      if (++this.#unvoicedFrames >= 2) this.#voicedMs = 0;
      return;
    }
    this.#unvoicedFrames = 0;
    this.#voicedMs += buf.length / 8;
    const needMs = Math.max(20, this.#assistant.stopSpeakingPlan.voiceSeconds * 1000);
    if (this.#voicedMs >= needMs) {
      this.#voicedMs = 0;
      this.#bargeIn();
    }
  }

  /** Keeps audio that arrived before the transcriber was open, dropping the oldest beyond the bound. */
  #keepEarly(buf: Buffer): void {
    this.#early.push(buf);
    this.#earlyBytes += buf.length;
    let excess = this.#earlyBytes - EARLY_AUDIO_MAX_BYTES;
    while (excess > 0) {
      const oldest = this.#early[0];
      if (!oldest) break;
      const drop = Math.min(excess, oldest.length);
      if (drop === oldest.length) this.#early.shift();
      else this.#early[0] = oldest.subarray(drop);
      this.#earlyBytes -= drop;
      excess -= drop;
      // The transcriber's audio clock now starts later by what was dropped (8 bytes per ms).
      this.#sttAudioStartedAt += drop / 8;
    }
  }

  #onStt(e: SttEvent): void {
    if (this.#phase !== "live") return;
    switch (e.type) {
      case "speech-started":
        this.#clearSilence();
        this.#userSpeech("started");
        this.#detector.speechStarted();
        return;
      case "transcript": {
        const text = e.text.trim();
        if (text !== "") {
          this.#clearSilence();
          this.#userSpeech("started");
          const transcriptType = e.isFinal ? "final" : "partial";
          this.#emit({ type: "transcript", transcriptType }, () =>
            transcriptMessage(this.#ctx(), { role: "user", transcriptType, transcript: text }),
          );
          this.#maybeWordBargeIn(text);
        }
        const lastWordAt = (this.#sttAudioStartedAt || this.#now()) + e.endMs;
        this.#detector.transcript(text, e.isFinal, e.speechFinal, lastWordAt);
        return;
      }
      case "utterance-end":
        this.#detector.utteranceEnd();
        // Voice that never became words (noise): no turn will end it, the utterance end does.
        if (!this.#detector.hasPending) this.#userSpeech("stopped");
        return;
      case "error":
        void this.#fail(e.error, { provider: this.#sttProvider.provider, kind: "transcriber" });
        return;
      case "closed":
        if (this.#phase === "live") {
          void this.#fail(
            new ProviderError(this.#sttProvider.provider, "transcriber", "transcriber closed", true),
            {
              provider: this.#sttProvider.provider,
              kind: "transcriber",
            },
          );
        }
        return;
    }
  }

  /** `speech-update` for the caller: started on voice or the first words, stopped at the endpoint. */
  #userSpeech(status: "started" | "stopped"): void {
    if (this.#userSpeaking === (status === "started")) return;
    this.#userSpeaking = status === "started";
    this.#emit("speech-update", () => speechUpdateMessage(this.#ctx(), { status, role: "user" }));
  }

  /** stopSpeakingPlan.numWords > 0: interrupt on words, never on an acknowledgement. */
  #maybeWordBargeIn(text: string): void {
    const plan = this.#assistant.stopSpeakingPlan;
    const speaking = this.#speaking;
    if (plan.numWords <= 0 || !speaking?.interruptible || !speaking.audible || this.#firstMessagePlaying)
      return;
    if (this.#interrupts(text)) this.#bargeIn();
  }

  /** Under stopSpeakingPlan.numWords > 0: whether what the caller said interrupts the assistant. */
  #interrupts(text: string): boolean {
    const plan = this.#assistant.stopSpeakingPlan;
    const said = normalise(text);
    const words = said.split(" ").filter(Boolean);
    const interruption = plan.interruptionPhrases.some((p) => words.includes(normalise(p)));
    const acknowledgement = plan.acknowledgementPhrases.some((p) => normalise(p) === said);
    return interruption || (!acknowledgement && words.length >= plan.numWords);
  }

  /** A key the caller pressed: gathered per the keypad plan; with keypad input off (Vapi's default), ignored. */
  #onDigit(digit: string): void {
    const keypad = this.#keypad;
    if (!keypad?.enabled) return;
    this.#clearSilence();
    keypad.press(digit);
    // Still gathering (no delimiter yet): the caller was active, their silence is timed from now.
    if (keypad.pending !== "" && !this.#reply) this.#armSilence();
  }

  /** The caller's keypad entry is complete: one user turn, in Vapi's wording. */
  #onKeypadEntry(digits: string): void {
    if (this.#phase !== "live") return;
    this.#detector.reset();
    const now = this.#now();
    this.#onUserTurn({
      text: keypadEntryText(digits),
      speechEndedAt: now,
      lastWordAt: now,
      endpointedAt: now,
      startedAt: now,
      dtmf: true,
    });
  }

  // ------------------------------------------------------------------ turns

  #onUserTurn(turn: UserTurn & { dtmf?: boolean }): void {
    if (this.#phase !== "live" || this.#failing) return;
    if (!turn.dtmf) this.#userSpeech("stopped");
    const speaking = this.#speaking;
    if (
      !turn.dtmf &&
      this.#assistant.stopSpeakingPlan.numWords > 0 &&
      speaking?.interruptible &&
      speaking.audible &&
      !this.#interrupts(turn.text)
    ) {
      // Too few words (or an acknowledgement) to interrupt: the assistant carries on; what the
      // caller said stays in the conversation without a reply of its own.
      this.#conversation.addUser(turn.text, turn.startedAt, turn.speechEndedAt);
      this.#emitConversation();
      return;
    }
    // A new turn supersedes a reply still in flight (the caller carried on talking).
    if (this.#reply) this.#cancelReply(true);
    this.#conversation.addUser(turn.text, turn.startedAt, turn.speechEndedAt);
    this.#emitConversation();
    const gate = turn.speechEndedAt + this.#assistant.startSpeakingPlan.waitSeconds * 1000;
    this.out.notBefore = Math.max(this.out.notBefore, gate);
    void this.#respond(turn);
  }

  /** One assistant reply: LLM (with tool rounds) → clauses → TTS → caller. */
  async #respond(turn: (UserTurn & { dtmf?: boolean }) | undefined): Promise<void> {
    this.#clearSilence();
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort();
    this.#abort.signal.addEventListener("abort", onAbort, { once: true });
    const reply: Reply = {
      ctrl,
      utterance: undefined,
      entry: undefined,
      turn,
      llmStartedAt: this.#now(),
      firstTokenAt: undefined,
      voiceEndAt: turn && !turn.dtmf ? this.#lastVoiceSentAt : 0,
      gateAt: turn ? turn.speechEndedAt + this.#assistant.startSpeakingPlan.waitSeconds * 1000 : 0,
      recorded: false,
      hangTimer: setTimeout(() => {
        if (this.#reply === reply && !reply.utterance?.firstAudioAt)
          this.#emit("hang", () => hangMessage(this.#ctx()));
      }, HANG_AFTER_MS),
    };
    this.#reply = reply;
    try {
      for (let round = 0; round < MAX_TOOL_ROUNDS && !ctrl.signal.aborted; round++) {
        const calls = await this.#llmRound(reply);
        if (ctrl.signal.aborted || calls.length === 0) break;
        const more = await this.#runTools(reply, calls);
        if (!more) break;
      }
      const utterance = reply.utterance;
      if (utterance && !ctrl.signal.aborted) {
        utterance.end();
        await utterance.played;
        this.#finishBot(reply);
      }
    } catch (err) {
      if (!ctrl.signal.aborted && !isAbortError(err)) {
        if (reply.utterance) reply.utterance.abort(false);
        this.#finishBot(reply);
        if (this.#reply === reply) this.#reply = undefined;
        await this.#fail(err, { provider: this.#llmProvider.provider, kind: "llm" });
        return;
      }
    } finally {
      clearTimeout(reply.hangTimer);
      this.#abort.signal.removeEventListener("abort", onAbort);
    }
    if (this.#reply !== reply) return;
    this.#reply = undefined;
    if (this.#speaking === reply.utterance) this.#speaking = undefined;
    await this.#afterReply();
  }

  /** What happens once a reply has been heard: an ending, a transfer, the spend limit, or silence. */
  async #afterReply(): Promise<void> {
    if (this.#phase !== "live") return;
    if (this.#transfer) {
      const { destination } = this.#transfer;
      this.#transfer = undefined;
      await this.#transferTo(destination);
      return;
    }
    if (this.#endAfterReply) {
      const { reason, message } = this.#endAfterReply;
      if (message) await this.#speakFinal(message);
      await this.end(reason);
      return;
    }
    if (!this.#spendChecked && this.#deps.spend) {
      try {
        if (await this.#deps.spend.isOverSpendLimit(this.orgId)) {
          this.#spendChecked = true;
          await this.end(ENDED.spendLimit);
          return;
        }
      } catch (err) {
        this.#log.warn({ err }, "spend limit check failed");
      }
    }
    this.#armSilence();
  }

  async #llmRound(reply: Reply): Promise<Array<{ id: string; name: string; arguments: string }>> {
    const model = this.#assistant.model;
    if (!model) return [];
    const chunker = new ClauseChunker();
    const calls: Array<{ id: string; name: string; arguments: string }> = [];
    const tools = llmTools(this.#tools);
    const started = this.#now();
    const stream = this.#llmProvider.stream({
      apiKey: this.#keys.llm.apiKey,
      model: model.model,
      messages: this.#conversation.llmView(),
      tools: tools.length > 0 ? tools : undefined,
      temperature: model.temperature,
      maxTokens: model.maxTokens,
      signal: reply.ctrl.signal,
    });
    for await (const ev of stream as AsyncIterable<LlmEvent>) {
      if (reply.ctrl.signal.aborted) break;
      if (ev.type === "text") {
        if (reply.firstTokenAt === undefined) {
          reply.firstTokenAt = this.#now();
          reply.llmStartedAt = started;
        }
        for (const clause of chunker.push(ev.delta)) this.#sayClause(reply, clause);
      } else if (ev.type === "tool-call") {
        if (reply.firstTokenAt === undefined) {
          reply.firstTokenAt = this.#now();
          reply.llmStartedAt = started;
        }
        calls.push({ id: ev.id, name: ev.name, arguments: ev.arguments });
      } else {
        this.#usage.promptTokens += ev.usage.promptTokens;
        this.#usage.completionTokens += ev.usage.completionTokens;
        this.#usage.cachedPromptTokens += ev.usage.cachedPromptTokens;
      }
    }
    if (reply.ctrl.signal.aborted) return [];
    const rest = chunker.flush();
    if (rest) this.#sayClause(reply, rest);
    return calls;
  }

  #sayClause(reply: Reply, clause: string): void {
    if (!reply.utterance) {
      reply.utterance = this.#newUtterance(true);
      reply.entry = this.#conversation.beginBot(this.#now());
    }
    reply.utterance.say(clause);
    this.#checkEndCallPhrase(reply.utterance.text);
  }

  #checkEndCallPhrase(text: string): void {
    if (this.#endAfterReply) return;
    const said = ` ${normalise(text)} `;
    for (const phrase of this.#assistant.endCallPhrases) {
      const p = normalise(phrase);
      if (p && said.includes(` ${p} `)) {
        this.#endAfterReply = { reason: ENDED.endCallPhrase };
        return;
      }
    }
  }

  #finishBot(reply: Reply): void {
    const u = reply.utterance;
    const entry = reply.entry;
    if (!u || !entry) return;
    const spoken = u.cleared || u.aborted ? truncateAtWord(u.text, u.heardChars()) : u.text;
    this.#conversation.finishBot(entry, spoken, this.#now());
    this.#usage.ttsCharacters += u.text.length;
    reply.entry = undefined;
    if (spoken) {
      this.#emit({ type: "transcript", transcriptType: "final" }, () =>
        transcriptMessage(this.#ctx(), { role: "assistant", transcriptType: "final", transcript: spoken }),
      );
    }
    this.#emitConversation();
    this.#checkpoint();
  }

  // ------------------------------------------------------------------ tools

  /** Runs one round of tool calls; true when the model should be asked again. */
  async #runTools(
    reply: Reply,
    calls: Array<{ id: string; name: string; arguments: string }>,
  ): Promise<boolean> {
    // The text spoken so far this round and the calls become one assistant message.
    if (reply.utterance && reply.entry) {
      this.#conversation.appendBot(reply.entry, "");
    }
    this.#conversation.addToolCalls(reply.entry, calls, this.#now());
    let askAgain = false;
    const functionCalls: Array<{ call: (typeof calls)[number]; tool: ToolDef }> = [];
    for (const call of calls) {
      const tool = this.#tools.find((t) => t.name === call.name);
      const at = this.#now();
      if (!tool) {
        this.#conversation.addToolResult(call.id, call.name, `Error: no tool named ${call.name}`, at);
        askAgain = true;
        continue;
      }
      if (tool.type === "function") {
        functionCalls.push({ call, tool });
        continue;
      }
      if (tool.type === "endCall") {
        this.#conversation.addToolResult(call.id, call.name, "Success. The call is ending.", at);
        const message = this.#assistant.endCallMessage
          ? renderTemplate(this.#assistant.endCallMessage, this.#variables)
          : undefined;
        this.#endAfterReply = { reason: ENDED.assistantEnded, message };
        continue;
      }
      if (tool.type === "transferCall") {
        const wanted = parseArgs(call.arguments).destination;
        const dest =
          tool.destinations?.find((d) => destinationKey(d) === wanted) ??
          (tool.destinations?.length === 1 ? tool.destinations[0] : undefined);
        if (!dest) {
          this.#conversation.addToolResult(call.id, call.name, "Error: unknown transfer destination", at);
          askAgain = true;
          continue;
        }
        this.#conversation.addToolResult(call.id, call.name, "Transferring the call.", at);
        this.#transfer = { destination: dest };
        continue;
      }
      if (tool.type === "dtmf") {
        const keys = String(parseArgs(call.arguments).keys ?? "");
        const audio = dtmfAudio(keys);
        if (audio.length > 0) {
          if (reply.utterance) {
            reply.utterance.end();
            await reply.utterance.played;
            this.#finishBot(reply);
            reply.utterance = undefined;
          }
          const u = this.#newUtterance(false);
          u.play(audio);
          u.end();
          await u.played;
        }
        this.#conversation.addToolResult(
          call.id,
          call.name,
          audio.length > 0 ? `Sent ${keys}` : "Error: no valid keys",
          this.#now(),
        );
        askAgain = true;
      }
    }
    if (functionCalls.length > 0) {
      await this.#callFunctions(reply, functionCalls);
      askAgain = true;
    }
    if (this.#transfer || this.#endAfterReply?.reason === ENDED.assistantEnded) return false;
    if (askAgain && reply.utterance) {
      // The next round speaks as a new utterance after what was said so far.
      reply.utterance.end();
      await reply.utterance.played;
      if (reply.ctrl.signal.aborted) return false;
      this.#finishBot(reply);
      reply.utterance = undefined;
    }
    return askAgain;
  }

  async #callFunctions(
    reply: Reply,
    items: Array<{ call: { id: string; name: string; arguments: string }; tool: ToolDef }>,
  ): Promise<void> {
    // Spoken while the tool runs (not for async tools).
    const fillers = items.filter((i) => !i.tool.async).map((i) => requestStartMessage(i.tool));
    const filler = fillers.find((f) => f !== undefined);
    let fillerUtterance: Utterance | undefined;
    if (filler && !reply.utterance) {
      fillerUtterance = this.#newUtterance(true);
      const entry = this.#conversation.beginBot(this.#now());
      fillerUtterance.say(filler);
      fillerUtterance.end();
      reply.utterance = fillerUtterance;
      reply.entry = entry;
    }
    const groups = new Map<string, { server: ServerTarget | undefined; items: typeof items }>();
    for (const item of items) {
      const server = resolveServer({
        tool: item.tool,
        assistant: this.#assistant as { server?: ServerTarget },
        phoneNumber: { server: this.#phoneServer() },
        org: { server: this.#orgServer as ServerTarget | undefined },
      });
      const key = server?.url ?? "";
      const g = groups.get(key) ?? { server, items: [] };
      g.items.push(item);
      groups.set(key, g);
    }
    const failedMessages: string[] = [];
    await Promise.all(
      [...groups.values()].map(async ({ server, items: group }) => {
        const results = await this.#postToolCalls(reply, server, group);
        const at = this.#now();
        for (const { call, tool } of group) {
          if (tool.async) {
            this.#conversation.addToolResult(call.id, call.name, "Success.", at);
            continue;
          }
          const r = results.get(call.id);
          const text = r?.result ?? (r?.error ? `Error: ${r.error}` : "Error: no result returned");
          this.#conversation.addToolResult(call.id, call.name, text, at);
          if (r?.result === undefined) {
            const failed = toolMessage(tool, "request-failed");
            if (failed) failedMessages.push(failed);
          }
        }
      }),
    );
    this.#emitConversation();
    if (failedMessages.length > 0 && !reply.ctrl.signal.aborted) {
      // The filler has ended (no more text can join it): the failure is spoken as its own message.
      if (reply.utterance?.ended) {
        await reply.utterance.played;
        if (reply.ctrl.signal.aborted) return;
        this.#finishBot(reply);
        reply.utterance = undefined;
      }
      for (const text of failedMessages) this.#queueToolSpeech(reply, text);
    }
  }

  #queueToolSpeech(reply: Reply, text: string): void {
    if (!reply.utterance) {
      reply.utterance = this.#newUtterance(true);
      reply.entry = this.#conversation.beginBot(this.#now());
    }
    reply.utterance.say(text);
  }

  async #postToolCalls(
    reply: Reply,
    server: ServerTarget | undefined,
    group: Array<{ call: { id: string; name: string; arguments: string }; tool: ToolDef }>,
  ): Promise<Map<string, { result?: string; error?: string }>> {
    const out = new Map<string, { result?: string; error?: string }>();
    if (!server) {
      for (const { call } of group) out.set(call.id, { error: "no server URL is configured for this tool" });
      return out;
    }
    const toolCallList = group.map(({ call }) => toolCall(call.id, call.name, call.arguments));
    const body = toolCallsMessage(this.#ctx(), {
      toolCallList,
      toolWithToolCallList: group.map(({ tool }, i) =>
        toolWithToolCall(tool.raw, toolCallList[i] as ReturnType<typeof toolCall>),
      ),
    });
    const allAsync = group.every(({ tool }) => tool.async);
    const send = sendServerMessage<Json>(server, body, {
      signal: allAsync ? this.#abort.signal : reply.ctrl.signal,
      allowPrivate: this.#deps.allowPrivateWebhookUrls,
    });
    if (allAsync) {
      send.catch((err: unknown) => this.#log.warn({ err }, "async tool call failed"));
      return out;
    }
    try {
      const res = await send;
      const results = Array.isArray(res.results) ? res.results.filter(isObj) : [];
      for (const r of results) {
        if (typeof r.toolCallId !== "string") continue;
        const stringify = (v: unknown) =>
          v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v);
        out.set(r.toolCallId, { result: stringify(r.result), error: stringify(r.error) });
      }
      if (typeof res.error === "string") {
        for (const { call } of group) if (!out.has(call.id)) out.set(call.id, { error: res.error });
      }
    } catch (err) {
      if (reply.ctrl.signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      this.#log.warn({ err: message }, "tool call failed");
      for (const { call } of group) out.set(call.id, { error: message });
    }
    return out;
  }

  #phoneServer(): ServerTarget | undefined {
    const cfg = this.#phoneNumber?.config;
    return isObj(cfg) && isObj(cfg.server) ? (cfg.server as ServerTarget) : undefined;
  }

  // ------------------------------------------------------------------ transfers

  async #transferTo(dest: DestinationDef): Promise<void> {
    const message = destinationMessage(dest);
    if (dest.type === "assistant") {
      await this.#handOff(dest, message);
      return;
    }
    if (message) await this.#speakFinal(renderTemplate(message, this.#variables));
    const account = this.#twilioAccount();
    if (!account || !this.#callSid || !dest.number) {
      this.#log.warn({}, "transfer impossible: no Twilio account for the call");
      await this.end(ENDED.transferFailed);
      return;
    }
    // Twilio stops the media stream while it runs the new TwiML, often before the REST call returns.
    this.#forwarding = true;
    try {
      await updateCall({ ...account, apiUrl: this.#deps.twilioApiUrl }, this.#callSid, {
        twiml: transferTwiml(dest.number, { callerId: dest.callerId }),
      });
    } catch (err) {
      this.#forwarding = false;
      this.#log.warn({ err }, "transfer failed");
      await this.end(ENDED.transferFailed);
      return;
    }
    this.#emit("status-update", () =>
      statusUpdateMessage(this.#ctx(), {
        status: "forwarding",
        destination: { type: "number", number: dest.number },
      }),
    );
    await this.end(ENDED.forwarded, { keepTwilio: true });
  }

  /** Squad hand-off: another member takes the call with the conversation carried over. */
  async #handOff(dest: DestinationDef, message: string | undefined): Promise<void> {
    const name = dest.assistantName;
    let member = this.#squadMembers.find((m) => isObj(m.assistant) && m.assistant.name === name);
    let raw: Json | undefined = member && isObj(member.assistant) ? member.assistant : undefined;
    if (!raw && name) {
      // Members by assistantId: the squad's own assistant of that name (never another squad's).
      const ids = this.#squadMembers
        .map((m) => m.assistantId)
        .filter((id): id is string => typeof id === "string");
      const rows =
        ids.length > 0
          ? await this.#deps.db.assistant.findMany({ where: { id: { in: ids }, orgId: this.orgId } })
          : [];
      const row = rows.find((r) => (r.name ?? (isObj(r.config) ? r.config.name : undefined)) === name);
      if (row) {
        member = this.#squadMembers.find((m) => m.assistantId === row.id);
        raw = isObj(row.config) ? { ...row.config, name: row.name ?? undefined } : undefined;
      }
    }
    if (!raw) {
      const row = name
        ? await this.#deps.db.assistant.findFirst({ where: { orgId: this.orgId, name } })
        : null;
      raw = row && isObj(row.config) ? { ...row.config, name: row.name ?? undefined } : undefined;
    }
    if (!raw) {
      this.#log.warn({}, "hand-off destination not found");
      this.#armSilence();
      return;
    }
    if (message)
      await this.#speak(renderTemplate(message, this.#variables), {
        interruptible: true,
        source: "transfer",
      });
    // As at call start (the API's first member): the squad's membersOverrides, then the member's own.
    const merged = squadMemberAssistant(raw, this.#squadMembersOverrides, member?.assistantOverrides);
    try {
      await this.#useAssistant(merged, this.#memberDestinations(member));
    } catch (err) {
      await this.#fail(err, { provider: this.#llmProvider.provider, kind: "llm" });
      return;
    }
    this.#emit("status-update", () => statusUpdateMessage(this.#ctx(), { status: "in-progress" }));
    const first = this.#assistant.firstMessage
      ? renderTemplate(this.#assistant.firstMessage, this.#variables)
      : "";
    if (first && this.#assistant.firstMessageMode === "assistant-speaks-first") {
      await this.#speak(first, { interruptible: true, source: "first-message" });
    } else {
      void this.#respond(undefined);
    }
  }

  #twilioAccount(): { accountSid: string; authToken: string } | undefined {
    const pn = this.#phoneNumber;
    if (!pn?.twilioAccountSid || !pn.twilioAuthToken) return undefined;
    try {
      const authToken = this.#deps.secrets.open({
        ciphertext: pn.twilioAuthToken,
        keyId: pn.twilioAuthTokenKeyId ?? "",
      });
      return { accountSid: pn.twilioAccountSid, authToken };
    } catch {
      return undefined;
    }
  }

  // ------------------------------------------------------------------ speaking

  #newUtterance(interruptible: boolean): Utterance {
    const u = new Utterance(
      {
        out: this.out,
        tts: this.#ttsProvider,
        ttsOptions: this.#ttsOptions,
        now: this.#now,
        onError: (err) => void this.#fail(err, { provider: this.#ttsProvider.provider, kind: "voice" }),
      },
      interruptible,
    );
    this.#speaking = u;
    this.#emit("speech-update", () =>
      speechUpdateMessage(this.#ctx(), { status: "started", role: "assistant" }),
    );
    void u.played.then(() => {
      if (!u.cleared)
        this.#emit("speech-update", () =>
          speechUpdateMessage(this.#ctx(), { status: "stopped", role: "assistant" }),
        );
    });
    return u;
  }

  /** Speaks fixed text as one assistant message and waits until it was heard (or cut off). */
  async #speak(
    text: string,
    opts: { interruptible: boolean; source: string; keepSilenceClock?: boolean },
  ): Promise<void> {
    if (this.#phase !== "live" && this.#phase !== "ending") return;
    if (!opts.keepSilenceClock) this.#clearSilence();
    const u = this.#newUtterance(opts.interruptible);
    const entry = this.#conversation.beginBot(this.#now());
    entry.vapi.source = opts.source;
    u.say(text);
    u.end();
    await u.played;
    const spoken = u.cleared || u.aborted ? truncateAtWord(u.text, u.heardChars()) : u.text;
    this.#conversation.finishBot(entry, spoken, this.#now());
    this.#usage.ttsCharacters += u.text.length;
    if (this.#speaking === u) this.#speaking = undefined;
    this.#emitConversation();
    this.#checkpoint();
    if (this.#phase === "live" && !this.#reply && !opts.keepSilenceClock) this.#armSilence();
  }

  /** A last message before the call ends (goodbye, apology, transfer notice); bounded in time. */
  async #speakFinal(text: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#speak(text, { interruptible: false, source: "final" }),
      new Promise<void>((r) => {
        timer = setTimeout(r, FINAL_MESSAGE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  #onFirstFrame(at: number): void {
    const reply = this.#reply;
    if (!reply || reply.recorded || !reply.turn || this.#speaking !== reply.utterance || !reply.utterance)
      return;
    reply.recorded = true;
    const turn = reply.turn;
    const u = reply.utterance;
    const voiceLatency = Math.max(0, (u.firstAudioAt ?? at) - (u.firstTextAt ?? at));
    const latency: TurnLatency = {
      transcriberLatency: Math.max(0, turn.speechEndedAt - turn.lastWordAt),
      endpointingLatency: Math.max(0, turn.endpointedAt - turn.speechEndedAt),
      modelLatency: Math.max(0, (reply.firstTokenAt ?? at) - reply.llmStartedAt),
      voiceLatency,
      turnLatency: Math.max(0, at - turn.lastWordAt),
    };
    if (reply.voiceEndAt > 0 && reply.voiceEndAt <= turn.speechEndedAt) {
      // Our own share of the turn: from the caller's last voiced frame leaving for the transcriber
      // to the reply's first frame leaving for the caller, minus what the providers took (final
      // transcript; first speakable clause; first audio) and the waits the assistant asked for.
      const providerLatency =
        turn.speechEndedAt -
        reply.voiceEndAt +
        Math.max(0, (u.firstTextAt ?? at) - reply.llmStartedAt) +
        voiceLatency;
      const configuredWaits =
        Math.max(0, turn.endpointedAt - turn.speechEndedAt) +
        Math.max(0, Math.min(at, reply.gateAt) - (u.firstAudioAt ?? at));
      latency.providerLatency = providerLatency;
      latency.platformLatency = Math.max(0, at - reply.voiceEndAt - providerLatency - configuredWaits);
    }
    this.#conversation.recordTurn(latency);
    observeTurn(latency);
  }

  #onMark(name: string): void {
    const u = this.#speaking;
    if (u?.onMark(name)) return;
    // A mark of an earlier utterance (e.g. the filler before a tool result).
    for (const r of [this.#reply?.utterance]) r?.onMark(name);
  }

  // ------------------------------------------------------------------ barge-in

  #bargeIn(): void {
    const u = this.#speaking;
    if (!u) return;
    // `clear` first: the caller must stop hearing the assistant within a frame.
    this.#transport.send(`{"event":"clear","streamSid":"${this.#streamSid}"}`);
    this.out.clear();
    u.abort(true);
    this.#conversation.numAssistantInterrupted++;
    this.out.notBefore = this.#now() + this.#assistant.stopSpeakingPlan.backoffSeconds * 1000;
    this.#emit("user-interrupted", () => userInterruptedMessage(this.#ctx()));
    this.#emit("speech-update", () =>
      speechUpdateMessage(this.#ctx(), { status: "stopped", role: "assistant" }),
    );
    const reply = this.#reply;
    if (reply && reply.utterance === u) this.#cancelReply(false);
    this.#speaking = undefined;
    this.#log.debug({}, "barge-in");
  }

  /** Aborts the reply in flight (LLM request and TTS stream) and keeps what was heard. */
  #cancelReply(clear: boolean): void {
    const reply = this.#reply;
    if (!reply) return;
    this.#reply = undefined;
    clearTimeout(reply.hangTimer);
    reply.ctrl.abort();
    const u = reply.utterance;
    if (u && !u.aborted) {
      if (clear && u.audible) {
        this.#transport.send(`{"event":"clear","streamSid":"${this.#streamSid}"}`);
        this.out.clear();
      }
      u.abort(clear || u.cleared);
    }
    this.#finishBot(reply);
    if (this.#speaking === u) this.#speaking = undefined;
  }

  // ------------------------------------------------------------------ timers

  #armSilence(): void {
    if (this.#phase !== "live" || this.#failing) return;
    this.#clearSilence();
    const ms = this.#assistant.silenceTimeoutSeconds * 1000;
    this.#reminderTimer = setTimeout(() => {
      if (this.#phase === "live" && !this.#reply && !this.#speaking) {
        // The reminder does not restart the clock: only the caller speaking does.
        void this.#speak(SILENCE_REMINDER, {
          interruptible: true,
          source: "silence-reminder",
          keepSilenceClock: true,
        });
      }
    }, ms / 2);
    this.#silenceTimer = setTimeout(() => void this.end(ENDED.silence), ms);
  }

  #clearSilence(): void {
    clearTimeout(this.#silenceTimer);
    clearTimeout(this.#reminderTimer);
    this.#silenceTimer = undefined;
    this.#reminderTimer = undefined;
  }

  #armMaxDuration(): void {
    const ms = this.#assistant.maxDurationSeconds * 1000;
    this.#maxTimer = setTimeout(() => void this.end(ENDED.maxDuration), ms);
  }

  // ------------------------------------------------------------------ live control

  #onControl(msg: CallControlMessage): void {
    if (this.#phase !== "live") return;
    switch (msg.type) {
      case "say":
        void (async () => {
          await this.#speak(msg.content, { interruptible: true, source: "force-say" });
          if (msg.endCallAfterSpoken) await this.end(ENDED.assistantEndedAfterMessage);
        })();
        return;
      case "add-message": {
        const { role, content } = msg.message;
        const now = this.#now();
        if (role === "user") this.#conversation.addUser(content, now, now);
        else if (role === "system") this.#conversation.addSystemNote(content, now);
        else if (role === "assistant") {
          const e = this.#conversation.beginBot(now);
          this.#conversation.finishBot(e, content, now);
        }
        this.#emitConversation();
        if (msg.triggerResponseEnabled && !this.#reply) void this.#respond(undefined);
        return;
      }
      case "end-call":
        void this.end(ENDED.manuallyCanceled);
        return;
      case "transfer":
        void (async () => {
          if (this.#reply) this.#cancelReply(true);
          if (msg.content) await this.#speakFinal(msg.content);
          await this.#transferTo({ ...msg.destination, message: undefined });
        })();
        return;
    }
  }

  // ------------------------------------------------------------------ failures and ending

  /** A provider failed mid-call: apologise (when the voice still works) and end with a specific reason. */
  async #fail(err: unknown, where: { provider: string; kind: ProviderError["kind"] }): Promise<void> {
    if (this.#phase !== "live" || this.#failing) return;
    this.#failing = true;
    const reason = providerFailureReason(err, where);
    providerFailed(err, where);
    this.#log.warn({ reason, err: err instanceof Error ? err.message : String(err) }, "provider failed");
    if (this.#reply) this.#cancelReply(true);
    this.#clearSilence();
    const voiceFailed = (err instanceof ProviderError ? err.kind : where.kind) === "voice";
    if (!voiceFailed) await this.#speakFinal(APOLOGY);
    await this.end(reason);
  }

  /** Worker shutdown / drain timeout. */
  shutdown(): Promise<void> {
    if (this.#phase === "connecting") {
      this.#closeUnstarted();
      return Promise.resolve();
    }
    return this.end(ENDED.workerShutdown);
  }

  /** Ends the call: releases everything, writes the record in one transaction, bills it. Idempotent. */
  async end(reason: string, opts: { keepTwilio?: boolean } = {}): Promise<void> {
    if (this.#phase === "ending" || this.#phase === "ended") return this.finished;
    if (this.#phase === "connecting") {
      this.#closeUnstarted();
      return;
    }
    const wasStarting = this.#phase === "starting";
    this.#phase = "ending";
    const endedAt = this.#now();
    try {
      this.#clearSilence();
      clearTimeout(this.#maxTimer);
      if (this.#reply) this.#cancelReply(true);
      this.#speaking?.abort(false);
      this.#detector?.dispose();
      this.#keypad?.dispose();
      this.#deps.pacer.remove(this.out);
      const stt = this.#stt;
      this.#stt = undefined;
      // The caller's gathered silence goes before the stream closes: every byte is transcribed audio.
      const held = this.#silence.flush();
      if (held) stt?.sendAudio(held);
      await Promise.allSettled([stt?.close(), this.#unsubscribe?.()]);
      this.#abort.abort();
      if (!opts.keepTwilio && this.#transport.open) {
        // A stream whose token is still being checked is no call yet: it hears what a bad token
        // hears, not "call ended" (a good token still claims the call, which #start then ends).
        if (wasStarting && this.callId === "") this.#transport.close(1008, "stream refused");
        else this.#transport.close(1000, "call ended");
      }
      // Ended while still starting (hang-up, socket close, shutdown): the setup in flight stops at
      // its next step; the call is written as ended with what little was used (nothing billable).
      if (wasStarting) {
        if (this.#row) await this.#endUnprepared(this.#row, reason);
        return;
      }
      await this.#write(reason, endedAt);
    } catch (err) {
      this.#log.error({ err }, "ending the call failed");
    } finally {
      this.#phase = "ended";
      if (this.#transport.open && !opts.keepTwilio) this.#transport.close(1000, "call ended");
      this.#resolveFinished();
    }
  }

  async #write(reason: string, endedAt: number): Promise<void> {
    const conv = this.#conversation;
    const names = this.#assistant?.artifactPlan.transcriptPlan ?? { assistantName: "AI", userName: "User" };
    const transcript = conv.transcript(names);
    const usage = this.#usageAt(endedAt);
    const messages = conv.messages as unknown as ConversationMessage[];
    await finalizeEndedCall(this.#deps, {
      callId: this.callId,
      orgId: this.orgId,
      endedReason: reason,
      startedAt: new Date(this.#startedAt),
      endedAt: new Date(endedAt),
      transcript,
      messages,
      artifact: {
        transcript,
        messages,
        performanceMetrics: conv.performanceMetrics(),
        variableValues: this.#variables,
      },
      usage,
      ...(this.#orgPricing && this.#row
        ? {
            billing: {
              org: this.#orgPricing,
              assistantId: this.#row.assistantId,
              phoneNumberId: this.#row.phoneNumberId,
            },
          }
        : {}),
    });
    this.#log.info({ endedReason: reason }, "call ended");
    if (this.#row) {
      this.#row = { ...this.#row, status: "ended", endedReason: reason, endedAt: new Date(endedAt) };
      this.#emit("status-update", () =>
        statusUpdateMessage(this.#ctx(), { status: "ended", endedReason: reason }),
      );
    }
  }

  /** What the call has used up to `at`: priced at its end, persisted at every completed turn. */
  #usageAt(at: number): CallUsage {
    const duration = Math.max(0, (at - this.#startedAt) / 1000);
    return {
      durationSeconds: duration,
      transport: {
        provider: "twilio",
        direction: this.#row?.type === "outboundPhoneCall" ? "outbound" : "inbound",
        seconds: duration,
        // Numbers are imported with the customer's own Twilio account: Twilio bills them directly.
        byo: true,
      },
      stt: {
        provider: this.#sttProvider?.provider ?? "deepgram",
        model: this.#assistant?.transcriber?.model ?? "",
        audioSeconds: this.#sttBytes / 8000,
        byo: this.#keys.stt.byo,
      },
      llm: {
        provider: this.#llmProvider?.provider ?? "openai",
        model: this.#assistant?.model?.model ?? "",
        promptTokens: this.#usage.promptTokens,
        cachedPromptTokens: this.#usage.cachedPromptTokens,
        completionTokens: this.#usage.completionTokens,
        byo: this.#keys.llm.byo,
      },
      tts: {
        provider: this.#ttsProvider?.provider ?? "11labs",
        model: this.#assistant?.voice?.model ?? "",
        characters: this.#usage.ttsCharacters,
        byo: this.#keys.tts.byo,
      },
    };
  }

  /**
   * Persists the conversation and the usage of the turns completed so far (one UPDATE per turn,
   * never on the frame path): if this process dies, the call is ended with them (libs/media/
   * orphans.ts). One write at a time; turns completed meanwhile go in the next one. The status
   * guard keeps a late checkpoint from overwriting the ended record.
   */
  #checkpoint(): void {
    if (this.#phase !== "live" || !this.callId) return;
    if (this.#checkpointing) {
      this.#checkpointAgain = true;
      return;
    }
    const conv = this.#conversation;
    const names = this.#assistant?.artifactPlan.transcriptPlan ?? { assistantName: "AI", userName: "User" };
    const json = (v: unknown) => v as Prisma.InputJsonValue;
    this.#checkpointing = this.#deps.db.call
      .updateMany({
        where: { id: this.callId, status: "in-progress" },
        data: {
          transcript: conv.transcript(names),
          messages: json(conv.messages),
          usage: json(this.#usageAt(this.#now())),
        },
      })
      .then(
        () => {},
        (err: unknown) => this.#log.warn({ err }, "call checkpoint not written"),
      )
      .finally(() => {
        this.#checkpointing = undefined;
        if (this.#checkpointAgain) {
          this.#checkpointAgain = false;
          this.#checkpoint();
        }
      });
  }

  /** The stream was claimed but the call never got going (setup failed, socket gone). */
  async #endUnprepared(call: CallRow, reason: string): Promise<void> {
    const now = this.#now();
    this.#phase = "ending";
    this.#abort.abort();
    this.#deps.pacer.remove(this.out);
    if (this.#transport.open) this.#transport.close(1011, "call setup failed");
    const conv = this.#conversation ?? new Conversation(now);
    try {
      await finalizeEndedCall(this.#deps, {
        callId: call.id,
        orgId: call.orgId,
        endedReason: reason,
        startedAt: new Date(this.#startedAt || now),
        endedAt: new Date(now),
        transcript: "",
        messages: [],
        artifact: { transcript: "", messages: [], performanceMetrics: conv.performanceMetrics() },
        usage: zeroCallUsage(call.type === "outboundPhoneCall" ? "outbound" : "inbound"),
      });
    } catch (err) {
      this.#log.error({ err }, "ending the call failed");
    }
    this.#phase = "ended";
    this.#resolveFinished();
  }

  // ------------------------------------------------------------------ server messages

  #ctx(): MessageContext {
    const row = this.#row;
    return {
      call: row ? callPayload(row) : { id: this.callId, orgId: this.orgId },
      assistant: this.#assistantJson,
      customer: row && isObj(row.customer) ? row.customer : undefined,
      phoneNumber: this.#phoneNumber
        ? {
            id: this.#phoneNumber.id,
            number: this.#phoneNumber.number,
            name: this.#phoneNumber.name ?? undefined,
          }
        : undefined,
    };
  }

  #emitConversation(): void {
    if (!this.#conversation) return;
    const messages = this.#conversation.messages as unknown as ConversationMessage[];
    if (!this.#wants("conversation-update")) return;
    this.#emit("conversation-update", () =>
      conversationUpdateMessage(this.#ctx(), { messages: [...messages] }),
    );
  }

  #wants(type: string): boolean {
    return shouldSend(type, this.#assistant?.serverMessages);
  }

  /**
   * Fire-and-forget server messages go through the queue, only the types the assistant asked for.
   * The body is built only when it will be sent: transcripts and speech updates come several times
   * a second per call, and most assistants subscribe to few message types.
   */
  #emit(
    kind: string | { type: string; transcriptType?: string },
    build: () => { message: { type: string; transcriptType?: string; status?: unknown } },
  ): void {
    const dispatcher = this.#deps.dispatcher;
    if (!dispatcher || !this.#assistant) return;
    if (!shouldSend(kind, this.#assistant.serverMessages)) return;
    const body = build();
    if (!shouldSend(body.message, this.#assistant.serverMessages)) return;
    const server = resolveServer({
      assistant: this.#assistant as { server?: ServerTarget },
      phoneNumber: { server: this.#phoneServer() },
      org: { server: this.#orgServer as ServerTarget | undefined },
    });
    if (!server) return;
    const seq = ++this.#seq;
    dispatcher
      .enqueue(this.orgId, this.callId, server, body, body.message.type === "status-update" ? {} : { seq })
      .catch((err: unknown) => this.#log.warn({ err }, "server message not queued"));
  }
}

function parseArgs(args: string): Json {
  try {
    const v: unknown = JSON.parse(args || "{}");
    return isObj(v) ? v : {};
  } catch {
    return {};
  }
}
