// What the provider adapter tests share: waiting for a condition, what a connect or open rejects
// with, a caller's utterance for the STT fakes, TTS options, and reading STT and TTS events.
import {
  type AudioFormat,
  MULAW_8K,
  type SttEvent,
  type TextToSpeech,
  type TtsEvent,
  type TtsOptions,
} from "../../libs/providers/types.ts";
import type { AssistantVoice } from "../../libs/vapi/assistant.ts";
import { resolveVoiceDefaults } from "../../libs/vapi/defaults.ts";
import { encodeUtteranceFrames, SILENCE_FRAME } from "../fakes/deepgram.ts";
import { sleep } from "../fakes/util.ts";

/** Polls until `cond` holds: a bound for a stuck test (it fails after `timeoutMs`), not a timing assertion. */
export async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

/** What `promise` rejects with (undefined if it resolved). */
export function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** A fake's utterance as 20 ms phone frames (as Twilio sends them), then `silenceMs` of silence. */
export function speakUtterance(
  fake: { allocateUtterance(text: string): number },
  send: (b: Buffer) => void,
  text: string,
  durationMs: number,
  silenceMs: number,
): void {
  for (const f of encodeUtteranceFrames(fake.allocateUtterance(text), durationMs)) send(f);
  for (let t = 0; t < silenceMs; t += 20) send(SILENCE_FRAME);
}

/** Transcriber events by kind: `partial` and `final` for transcripts, the event type otherwise. */
export function kinds(events: SttEvent[]): string[] {
  return events.map((e) => (e.type === "transcript" ? (e.isFinal ? "final" : "partial") : e.type));
}

/** Bytes of audio among a TTS stream's events. */
export function audioBytes(events: TtsEvent[]): number {
  return events.reduce((n, e) => n + (e.type === "audio" ? e.audio.length : 0), 0);
}

/** Speaks each clause flushed on a new stream, ends it, and resolves with its events once done (or failed). */
export async function speakClauses(
  engine: TextToSpeech,
  options: TtsOptions,
  clauses: string[],
  timeoutMs?: number,
): Promise<TtsEvent[]> {
  const events: TtsEvent[] = [];
  const stream = await engine.open(options, (e) => events.push(e));
  for (const c of clauses) stream.sendText(c, true);
  stream.end();
  await until(() => events.some((e) => e.type === "done" || e.type === "error"), timeoutMs);
  return events;
}

/** Changes to a test's voice (Vapi's fields for its provider), key or output format. */
export type VoiceOver<V extends AssistantVoice> = Partial<Omit<V, "provider">> & {
  apiKey?: string;
  outputFormat?: AudioFormat;
};

/** TTS options for `voice` (Vapi's defaults filled in) changed by `over`; μ-law 8 kHz unless changed. */
export function ttsOptions<V extends AssistantVoice>(
  voice: V,
  apiKey: string,
  signal: AbortSignal,
  over: VoiceOver<V>,
): TtsOptions {
  const { apiKey: key = apiKey, outputFormat = MULAW_8K, ...changes } = over;
  return {
    apiKey: key,
    voice: resolveVoiceDefaults({ ...voice, ...changes }),
    outputFormat,
    signal,
  };
}
