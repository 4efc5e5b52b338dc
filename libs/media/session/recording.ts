import {
  type CallRecordings,
  type RecordingArtifact,
  type RecordingDestination,
  recordingSettingsOf,
} from "../../recordings/index.ts";
import { CallRecorder, recordingRate } from "../recorder.ts";
import type { CallContext } from "./context.ts";

// The call's recording, as a part of its session: started when the call goes live (when the
// assistant's artifactPlan.recordingEnabled, Vapi's default), fed by the session's audio tap, and
// stored when the call ends, before the call is written so its artifact names it. A recording that
// cannot be written never fails the call: the artifact says why (`recordingError`) and a warning is
// logged.

/** What the call's artifact gets: the recording's fields, or why there is none. */
export type RecordingOutcome = Partial<RecordingArtifact> & { recordingError?: string };

export class CallRecording {
  readonly #c: CallContext;
  #recorder: CallRecorder | undefined;
  #untap: (() => void) | undefined;
  #destination: Promise<RecordingDestination> | undefined;

  constructor(c: CallContext) {
    this.#c = c;
  }

  get #recordings(): CallRecordings | undefined {
    return this.#c.deps.recordings;
  }

  /** Starts recording if the platform records and the assistant wants it. */
  start(): void {
    const { state, transport } = this.#c;
    const recordings = this.#recordings;
    if (!recordings || this.#recorder) return;
    const settings = recordingSettingsOf(state.assistant.config);
    if (!settings.enabled) return;
    const call = { id: state.callId, orgId: state.orgId };
    this.#recorder = new CallRecorder(
      recordings.spoolPath(call.id),
      recordingRate(transport.audio.caller),
      state.startedAt,
    );
    this.#untap = this.#c.taps.add(this.#recorder);
    this.#destination = recordings.destination(call, settings);
    // Awaited at the end; never an unhandled rejection meanwhile.
    this.#destination.catch(() => {});
  }

  /** Stops at `endedAt` and stores the recording; the artifact's fields (never throws). */
  async finish(endedAt: number): Promise<RecordingOutcome> {
    const recorder = this.#recorder;
    const recordings = this.#recordings;
    if (!recorder || !recordings || !this.#destination) return {};
    this.#recorder = undefined;
    this.#untap?.();
    const { state } = this.#c;
    const done = await recorder.finish(endedAt);
    try {
      if (!done.ok) throw new Error(`writing the recording failed: ${done.error}`);
      const dest = await this.#destination;
      return await recordings.store({ id: state.callId, orgId: state.orgId }, dest, done.sampleRate);
    } catch (err) {
      const recordingError = err instanceof Error ? err.message : String(err);
      state.log.warn({ err: recordingError }, "call recording not stored");
      await recorder.discard().catch(() => {});
      return { recordingError };
    }
  }

  /** Drops the recording (the call never got going). */
  async discard(): Promise<void> {
    const recorder = this.#recorder;
    this.#recorder = undefined;
    this.#untap?.();
    await recorder?.discard();
  }
}
