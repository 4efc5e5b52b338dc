// What every process of `npm run bench:media` agrees on: the fixed provider delays, what the caller
// says and what the assistant answers, and the utterance ids the Deepgram fake (in the fakes
// process) and the simulated callers (in the callers process) share.
export const ENDPOINTING_MS = 100;
export const STT_DELAY_MS = 50;
export const TTFT_MS = 200;
export const ITL_MS = 10;
export const TTFB_MS = 150;
export const MS_PER_CHAR = 40;
/** The caller waits this long after a reply finished playing before the next turn. */
export const THINK_MS = 200;
/** The barge-in turn is spoken this long after the caller started hearing the previous reply. */
export const BARGE_AFTER_MS = 700;

export const FIRST_MESSAGE = "Hi, this is Riley from Acme. How can I help?";
export const REPLY = "Sure, we are open from nine to five on weekdays, and from ten to two on Saturdays.";
export const UTTERANCES = [
  "What are your opening hours?",
  "Do you open on Saturdays?",
  "Wait, what about Sundays then?",
  "Can I book a table for two?",
  "Thanks, that is all I needed.",
] as const;

/** Utterance i is encoded in the caller's audio as id UTTERANCE_ID_BASE + i. */
export const UTTERANCE_ID_BASE = 9_000_001;

/** The callers' registry: a fixed id per text (the fakes process registered the same). */
export const utteranceRegistry = {
  allocateUtterance(text: string): number {
    const i = UTTERANCES.indexOf(text as (typeof UTTERANCES)[number]);
    if (i < 0) throw new Error(`bench: unknown utterance ${text}`);
    return UTTERANCE_ID_BASE + i;
  },
};

/** CPU and RSS samples and event-loop delay: what each child reports to the orchestrator. */
export interface LoopDelay {
  p99: number;
  max: number;
  /** The child's garbage-collection pauses over the same interval (servers only). */
  gc?: GcPauses;
}

/** Main-thread GC pauses: scavenges (minor) and the rest (mark-compact, incremental steps…), in ms. */
export interface GcPauses {
  minorCount: number;
  minorMs: number;
  majorCount: number;
  majorMs: number;
  maxMs: number;
}
