import { memberDestinations, squadPlan, startingSquadMember } from "../../assistants/index.ts";
import type { CallLog } from "../../call-logs/index.ts";
import { type Call as CallRow, Prisma } from "../../db/index.ts";
import { callsStarted, providerFailed } from "../../metrics/index.ts";
import { ProviderError } from "../../providers/types.ts";
import type { CallControlMessage } from "../../telephony/control-bus.ts";
import { consumeMediaToken, verifyMediaToken } from "../../telephony/media-token.ts";
import { statusUpdateMessage } from "../../webhooks/index.ts";
import { loadCallSetup } from "../call-setup.ts";
import { Conversation } from "../conversation.ts";
import { ENDED, providerFailureReason } from "../ended-reasons.ts";
import { OutboundAudio } from "../pacer.ts";
import { realTimer } from "../stream-guard.ts";
import type { DestinationDef } from "../tools.ts";
import { loadAssistant, seedConversation } from "./assistant.ts";
import { AudioTaps } from "./audio-tap.ts";
import { createCallLog, errorText, logAssistant, logCallClaimed, logCallLive, logUrlOf } from "./call-log.ts";
import { CallCheckpoints, writeEndedCall, writeUnpreparedCall } from "./call-record.ts";
import { CallerInput } from "./caller-input.ts";
import {
  type CallContext,
  isObj,
  type Json,
  type Phase,
  type ProviderFailure,
  type SessionDeps,
} from "./context.ts";
import { Interruption } from "./interruption.ts";
import { onControl } from "./live-control.ts";
import { CallRecording } from "./recording.ts";
import { ProviderRecovery } from "./resilience.ts";
import { ServerMessages } from "./server-messages.ts";
import { CallState, variablesOf } from "./state.ts";
import { CallTimers } from "./timers.ts";
import { ToolRunner } from "./tool-runner.ts";
import { CallTransfer } from "./transfer.ts";
import type { CallTransport, StartRefusal, TransportEvents, TransportStart } from "./transport.ts";
import { TurnLoop } from "./turn-loop.ts";
import { UsageMeter } from "./usage-meter.ts";
import { AssistantVoice } from "./voice.ts";

// One live call over a media transport: the orchestrator of the session's parts (the caller's
// input, turn-taking, interruption, the voice, tools, transfers, timers, the usage meter). It owns
// the call's lifecycle — claiming the stream, setting the call up, live control, failures and the
// ending — and every resource of the call through one AbortController: `end()` releases all of
// them and writes the call exactly once, whatever way the call ends.

const APOLOGY = "I'm sorry, I'm having some technical difficulties right now. Please try calling back later.";

/** A call's setup stopped because the call ended meanwhile (not a failure). */
class SetupAborted extends Error {
  constructor() {
    super("call setup stopped: the call ended while it was starting");
    this.name = "SetupAborted";
  }
}

export class CallSession implements CallContext, TransportEvents {
  readonly deps: SessionDeps;
  readonly now: () => number;
  readonly #abort = new AbortController();
  readonly signal = this.#abort.signal;
  readonly transport: CallTransport;
  readonly state: CallState;
  readonly out: OutboundAudio;
  readonly messages: ServerMessages;
  readonly timers: CallTimers;
  readonly meter = new UsageMeter();
  readonly checkpoints: CallCheckpoints = new CallCheckpoints(this);
  readonly input: CallerInput = new CallerInput(this);
  readonly interruption: Interruption = new Interruption(this);
  readonly voice: AssistantVoice = new AssistantVoice(this);
  readonly turns: TurnLoop = new TurnLoop(this);
  readonly tools: ToolRunner = new ToolRunner(this);
  readonly transfer: CallTransfer = new CallTransfer(this);
  readonly recording: CallRecording = new CallRecording(this);
  readonly recovery: ProviderRecovery = new ProviderRecovery(this);
  /** The pacer's queue reports what it sends to whoever taps the call's audio. */
  readonly taps: AudioTaps = new AudioTaps((tap) => {
    this.out.tap = tap;
  });
  readonly callLog: CallLog;
  #unsubscribe: (() => Promise<void>) | undefined;
  /** The far end hung up (Twilio's `stop`), as opposed to the socket just dropping. */
  #hangupReceived = false;
  /** The endedReason of the connection's close, when it closed before the call was claimed. */
  #closedWith: string | undefined;
  /** Resolves once the call is written and released. */
  readonly finished: Promise<void>;
  #resolveFinished!: () => void;

  constructor(deps: SessionDeps, transport: CallTransport) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.transport = transport;
    this.state = new CallState(deps.logger);
    this.callLog = createCallLog(deps, this.now, () => this.state.log);
    this.callLog.add("transport", "media connection opened", { transport: transport.provider });
    // A transport with a client (a websocket call) gets the assistant's client messages.
    const client = transport.sendClientMessage?.bind(transport);
    this.messages = new ServerMessages(deps, this.state, client, this.callLog);
    this.timers = new CallTimers(deps.schedule ?? realTimer);
    this.finished = new Promise((r) => {
      this.#resolveFinished = r;
    });
    this.out = new OutboundAudio(transport);
    this.out.onFirstFrame = (at) => this.turns.onFirstFrame(at);
    transport.bind(this);
  }

  get phase(): Phase {
    return this.state.phase;
  }

  get callId(): string {
    return this.state.callId;
  }

  get orgId(): string {
    return this.state.orgId;
  }

  #setPhase(phase: Phase): void {
    this.state.phase = phase;
    // While the call starts, the caller's audio is kept for the transcriber.
    this.transport.acceptingAudio = phase === "starting" || phase === "live";
  }

  // ------------------------------------------------------------------ the transport's events

  /** One websocket message (the hot path for audio: see the transport). */
  onFrame(data: Buffer, isBinary = false): void {
    if (this.state.phase === "ended") return;
    this.transport.receive(data, isBinary);
  }

  onStart(start: TransportStart): void {
    if (this.state.phase !== "connecting") return;
    this.#setPhase("starting");
    this.callLog.add("transport", "stream started", { providerCallId: start.providerCallId || undefined });
    void this.#start(start);
  }

  onAudio(audio: Buffer): void {
    this.input.onAudio(audio);
  }

  onMark(name: string): void {
    this.voice.onMark(name);
  }

  onDigit(digit: string): void {
    if (this.state.phase === "live") this.input.onDigit(digit);
  }

  onHangup(): void {
    if (this.transfer.forwarding) return;
    // A hang-up while the call is still starting is a normal ending too: the call is written and
    // priced now, and the setup in flight stops at its next step (#ensureStarting).
    this.#hangupReceived = true;
    this.callLog.add("transport", "the far end hung up");
    const phase = this.state.phase;
    if (phase === "live" || phase === "starting") void this.end(ENDED.customerEnded);
    else if (phase === "connecting") this.#closeUnstarted();
  }

  /** The websocket closed (the far end went without hanging up, or the network dropped). */
  onClose(code = 1006): void {
    if (this.transfer.forwarding) return;
    const phase = this.state.phase;
    const reason = this.transport.endedReasonOnClose?.(code) ?? ENDED.socketClosed;
    this.#closedWith = reason;
    if (phase !== "ended") this.callLog.add("transport", "media connection closed", { code });
    if (phase === "live" || phase === "starting") void this.end(reason);
    else if (phase === "connecting") this.#closeUnstarted();
  }

  /** The transport ends the call (a websocket client that never sent audio). */
  onEnded(endedReason: string): void {
    const phase = this.state.phase;
    this.callLog.warn("transport", "the transport ended the call", { endedReason });
    if (phase === "live" || phase === "starting") void this.end(endedReason);
    else if (phase === "connecting") this.#closeUnstarted();
  }

  onControl(msg: CallControlMessage): void {
    onControl(this, msg);
  }

  onProtocolWarning(kind: string, message: string): void {
    this.callLog.warn("transport", message, { kind });
  }

  #closeUnstarted(refusal: StartRefusal = "error"): void {
    if (this.state.phase === "ended") return;
    this.#setPhase("ended");
    this.#abort.abort();
    this.timers.stopAll();
    if (this.transport.open) this.transport.refuse(refusal);
    this.#resolveFinished();
  }

  // ------------------------------------------------------------------ start

  async #start(start: TransportStart): Promise<void> {
    const { state, deps } = this;
    state.providerCallId = start.providerCallId;
    const { callId, token } = start;
    // The token is checked before anything else; a bad or reused one costs nothing.
    let call: CallRow;
    const now = this.now();
    try {
      // A transport with its own conditions (a browser's origin) judges the call before it is claimed.
      const refusal = this.transport.admit ? await this.#admit(start, now) : undefined;
      if (refusal) {
        state.log.warn({ callId: callId.slice(0, 36), reason: refusal }, "media stream refused");
        this.#closeUnstarted(refusal);
        return;
      }
      // The same statement marks the call in progress on this process (its heartbeat starts now).
      const res = await consumeMediaToken(deps.db, deps.secretsKey, token, callId, now, {
        status: "in-progress",
        startedAt: new Date(now),
        mediaProcessId: deps.processId,
        heartbeatAt: new Date(now),
      });
      if (!res.ok) {
        state.log.warn({ callId: callId.slice(0, 36), reason: res.reason }, "media stream refused");
        this.#closeUnstarted(res.reason);
        return;
      }
      call = res.call;
    } catch (err) {
      state.log.warn({ err }, "media stream token check failed");
      this.#closeUnstarted();
      return;
    }
    state.callId = call.id;
    state.orgId = call.orgId;
    // Every later line of this call carries its ids.
    state.log = deps.logger.child({ callId: call.id, orgId: call.orgId });
    callsStarted.inc();
    state.row = call;
    state.startedAt = now;
    this.#useCallAudio(call);
    logCallClaimed(this, call, now);
    if (state.phase !== "starting") {
      // The far end hung up or the socket closed while the token was being checked.
      await this.#endUnprepared(
        call,
        this.#hangupReceived ? ENDED.customerEnded : (this.#closedWith ?? ENDED.socketClosed),
      );
      return;
    }
    try {
      await this.#prepare(call);
    } catch (err) {
      // The call ended (hang-up, socket close, shutdown) while it was starting: end() writes it.
      // Its abort can reach a step in flight (the transcriber's connect) as that step's own error
      // before the step's next check: still end()'s call to write, not a setup failure.
      if (err instanceof SetupAborted || state.phase !== "starting") return;
      state.log.error({ err }, "call setup failed");
      this.callLog.error("call", "call setup failed", {
        error: errorText(err),
        ...(err instanceof ProviderError
          ? { provider: err.provider, kind: err.kind, status: err.status }
          : {}),
      });
      if (err instanceof ProviderError) providerFailed(err, err);
      const reason =
        err instanceof ProviderError
          ? providerFailureReason(err, { provider: err.provider, kind: err.kind })
          : ENDED.noLlmModel;
      await this.#endUnprepared(call, reason);
      return;
    }
    if (state.phase !== "starting") {
      await this.end(ENDED.socketClosed);
      return;
    }
    this.#setPhase("live");
    this.recording.start();
    state.log.info({}, "call started");
    logCallLive(this);
    this.messages.emit("status-update", () =>
      statusUpdateMessage(this.messages.context(), { status: "in-progress" }),
    );
    this.timers.armMaxDuration(
      state.assistant.config.maxDurationSeconds * 1000,
      () => void this.end(ENDED.maxDuration),
    );
    void this.turns.firstMessage();
  }

  /** Before the claim: the token's signature and binding, then the transport's own conditions. */
  async #admit(start: TransportStart, now: number): Promise<StartRefusal | undefined> {
    const check = verifyMediaToken(this.deps.secretsKey, start.token, start.callId, now);
    if (!check.ok) return check.reason;
    const [row] = await this.deps.db.$queryRaw<Pick<CallRow, "transport">[]>(
      Prisma.sql`SELECT "transport" FROM "Call" WHERE "id" = ${start.callId}::uuid`,
    );
    if (!row) return "call-not-found";
    return this.transport.admit?.(row);
  }

  /** The claimed call's audio formats reach every part that reads or writes audio. */
  #useCallAudio(call: CallRow): void {
    this.transport.useCall?.(call);
    const { caller, playback } = this.transport.audio;
    this.out.format = playback;
    this.input.useFormat(caller);
    this.interruption.useFormat(caller);
  }

  async #prepare(call: CallRow): Promise<void> {
    const { deps, state } = this;
    const { db } = deps;
    const now = state.startedAt;
    const { phoneNumber, org, credentials } = await loadCallSetup(db, call);
    this.#ensureStarting();
    state.phoneNumber = phoneNumber;
    state.credentials = credentials;
    state.orgServer = isObj(org?.server) ? org.server : undefined;
    if (org)
      state.orgPricing = { pricingOverrides: org.pricingOverrides, billingIncrement: org.billingIncrement };
    if (call.squadId) {
      const squad = await db.squad.findFirst({ where: { id: call.squadId, orgId: call.orgId } });
      state.squad = squadPlan(squad?.config);
    }
    const raw = isObj(call.assistant) ? call.assistant : {};
    state.variables = variablesOf(call, phoneNumber, state.providerCallId, now);
    state.conversation = new Conversation(now);
    const member = startingSquadMember(state.squad, call);
    await this.useAssistant(raw, memberDestinations<DestinationDef>(member));
    this.#ensureStarting();
    // The API records the carrier's call id when it creates the call; a call that reached us
    // without it gets it now (never overwriting one already there).
    if (state.providerCallId && !call.providerCallId) {
      await db.call.updateMany({
        where: { id: call.id, providerCallId: null },
        data: { providerCallId: state.providerCallId },
      });
      this.#ensureStarting();
    }
    deps.pacer.add(this.out);

    if (deps.controlBus) {
      const unsubscribe = await deps.controlBus.subscribe(call.id, (m) => onControl(this, m));
      if (state.phase !== "starting") {
        await unsubscribe();
        throw new SetupAborted();
      }
      this.#unsubscribe = unsubscribe;
    }
    const sttAsked = this.now();
    const stt = await this.input.connect();
    this.callLog.add("transcriber", "transcriber connected", {
      provider: state.transcriber?.provider.provider,
      connectMs: Math.round(this.now() - sttAsked),
    });
    if (state.phase !== "starting") {
      await stt.close();
      throw new SetupAborted();
    }
    this.input.startTranscribing(stt);
  }

  /** Stops a call's setup at its next step once the call has started ending. */
  #ensureStarting(): void {
    if (this.state.phase !== "starting") throw new SetupAborted();
  }

  /** Loads an assistant's providers, keys, tools and prompt (call start, or a squad hand-off). */
  async useAssistant(raw: Json, destinations: DestinationDef[]): Promise<void> {
    const { state } = this;
    const assistant = await loadAssistant(
      this.deps,
      { orgId: state.orgId, credentials: state.credentials, signal: this.signal },
      raw,
      destinations,
    );
    // The transcriber open since the call started stays (a hand-off keeps the caller's stream).
    if (!this.input.transcribing) state.transcriber = assistant.stt;
    // A hand-off: what the previous member's model and voice used is priced as theirs (their
    // provider, model and key), not as the new member's.
    if (state.phase === "live") {
      this.meter.switchLlm(state);
      this.meter.switchTts(state);
    }
    // The voice makes the call's own format when it can (nothing converted); the rest is converted.
    assistant.ttsOptions.outputFormat = assistant.tts.provider.outputFor(this.transport.audio.playback);
    state.assistant = assistant;
    logAssistant(this, assistant, raw, state.phase === "live");
    assistant.tts.provider.prewarm?.(assistant.ttsOptions);
    seedConversation(state.conversation, assistant, state.variables, this.now());
    this.input.useAssistant(assistant.config);
  }

  // ------------------------------------------------------------------ failures and ending

  async fail(err: unknown, where: ProviderFailure): Promise<void> {
    const { state } = this;
    if (state.phase !== "live" || state.failing) return;
    state.failing = true;
    const reason = providerFailureReason(err, where);
    providerFailed(err, where);
    state.log.warn({ reason, err: err instanceof Error ? err.message : String(err) }, "provider failed");
    this.callLog.error(
      where.kind === "voice" ? "voice" : where.kind === "llm" ? "model" : "transcriber",
      "provider failed",
      {
        provider: where.provider,
        error: errorText(err),
        ...(err instanceof ProviderError ? { status: err.status, retryable: err.retryable } : {}),
        endedReason: reason,
      },
    );
    if (this.turns.replying) this.turns.cancelReply(true);
    this.turns.clearSilence();
    const voiceFailed = (err instanceof ProviderError ? err.kind : where.kind) === "voice";
    if (!voiceFailed) await this.voice.speakFinal(APOLOGY);
    await this.end(reason);
  }

  /** Worker shutdown / drain timeout. */
  shutdown(): Promise<void> {
    if (this.state.phase === "connecting") {
      this.#closeUnstarted();
      return Promise.resolve();
    }
    return this.end(ENDED.workerShutdown);
  }

  /**
   * Ends the call: releases everything, writes the record in one transaction, bills it. Idempotent.
   * `keepTransport`: the carrier took the call elsewhere (a transfer); its media stream is not ours to close.
   */
  async end(reason: string, opts: { keepTransport?: boolean } = {}): Promise<void> {
    const { state } = this;
    if (state.phase === "ending" || state.phase === "ended") return this.finished;
    if (state.phase === "connecting") {
      this.#closeUnstarted();
      return;
    }
    const wasStarting = state.phase === "starting";
    this.#setPhase("ending");
    const endedAt = this.now();
    this.callLog.add("call", "call ended", { endedReason: reason });
    try {
      this.timers.stopAll();
      if (this.turns.replying) this.turns.cancelReply(true);
      this.voice.stop();
      this.deps.pacer.remove(this.out);
      await Promise.allSettled([this.input.stop(), this.#unsubscribe?.()]);
      this.#abort.abort();
      // A client learns why the call ended before its connection closes.
      this.messages.client("status-update", () =>
        statusUpdateMessage(this.messages.context(), { status: "ended", endedReason: reason }),
      );
      if (!opts.keepTransport && this.transport.open) {
        // A stream whose token is still being checked is no call yet: it hears what a bad token
        // hears, not "call ended" (a good token still claims the call, which #start then ends).
        if (wasStarting && state.callId === "") this.transport.close(1008, "stream refused");
        else this.transport.close(1000, "call ended");
      }
      // Ended while still starting (hang-up, socket close, shutdown): the setup in flight stops at
      // its next step; the call is written as ended with what little was used (nothing billable).
      if (wasStarting) {
        if (state.row) await this.#endUnprepared(state.row, reason);
        return;
      }
      await writeEndedCall(this, reason, endedAt);
    } catch (err) {
      state.log.error({ err }, "ending the call failed");
    } finally {
      this.#setPhase("ended");
      if (this.transport.open && !opts.keepTransport) this.transport.close(1000, "call ended");
      this.#resolveFinished();
    }
  }

  /** The stream was claimed but the call never got going (setup failed, socket gone). */
  async #endUnprepared(call: CallRow, reason: string): Promise<void> {
    const now = this.now();
    this.#setPhase("ending");
    this.#abort.abort();
    this.timers.stopAll();
    this.deps.pacer.remove(this.out);
    if (this.transport.open) this.transport.close(1011, "call setup failed");
    await this.recording.discard();
    this.callLog.add("call", "call ended before it got going", { endedReason: reason });
    await this.callLog.close();
    await writeUnpreparedCall(this.deps, this.state, call, reason, now, logUrlOf(this));
    this.#setPhase("ended");
    this.#resolveFinished();
  }
}
