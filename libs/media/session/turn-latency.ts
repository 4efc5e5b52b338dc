import type { TurnLatency } from "../conversation.ts";
import type { Utterance } from "../speaker.ts";
import type { UserTurn } from "../turn-detector.ts";

// A turn's latency breakdown, measured when the reply's first frame leaves for the caller.

/** A reply's clock readings. */
export interface ReplyTimes {
  llmStartedAt: number;
  firstTokenAt: number | undefined;
  /** Wall time the caller's last voiced frame of the turn went to the transcriber (0: unknown). */
  voiceEndAt: number;
  /** Audio may not start before this (startSpeakingPlan.waitSeconds after the end of speech). */
  gateAt: number;
}

export function turnLatency(r: ReplyTimes, turn: UserTurn, u: Utterance, at: number): TurnLatency {
  const voiceLatency = Math.max(0, (u.firstAudioAt ?? at) - (u.firstTextAt ?? at));
  const latency: TurnLatency = {
    transcriberLatency: Math.max(0, turn.speechEndedAt - turn.lastWordAt),
    endpointingLatency: Math.max(0, turn.endpointedAt - turn.speechEndedAt),
    modelLatency: Math.max(0, (r.firstTokenAt ?? at) - r.llmStartedAt),
    voiceLatency,
    turnLatency: Math.max(0, at - turn.lastWordAt),
  };
  if (r.voiceEndAt > 0 && r.voiceEndAt <= turn.speechEndedAt) {
    // Our own share of the turn: from the caller's last voiced frame leaving for the transcriber
    // to the reply's first frame leaving for the caller, minus what the providers took (final
    // transcript; first speakable clause; first audio) and the waits the assistant asked for.
    const providerLatency =
      turn.speechEndedAt - r.voiceEndAt + Math.max(0, (u.firstTextAt ?? at) - r.llmStartedAt) + voiceLatency;
    const configuredWaits =
      Math.max(0, turn.endpointedAt - turn.speechEndedAt) +
      Math.max(0, Math.min(at, r.gateAt) - (u.firstAudioAt ?? at));
    latency.providerLatency = providerLatency;
    latency.platformLatency = Math.max(0, at - r.voiceEndAt - providerLatency - configuredWaits);
  }
  return latency;
}
