// What each Deepgram model takes on live `/v1/listen`, from Deepgram's documentation
// (../shared/docs/PROVIDERS.md §1.2 names every source):
// - `keyterm` (Keyterm Prompting) is for Nova-3 models; `keywords` (Keyword Boosting, `word:intensifier`)
//   for Nova-2 and older. Nova-3 refuses `keywords` at the handshake: HTTP 400 "Keywords are not
//   supported for Nova-3. Please use `keyterm` instead." A keyterm takes no intensifier: a `:2` suffix
//   would become part of the literal term.
// - `numerals` (digits instead of number words) on every streaming Nova model, for the languages its
//   page lists (others are left as words; no error).
// - Flux models are served on `/v2/listen`, a different turn-based protocol this adapter does not
//   speak; Deepgram's Whisper Cloud has no live streaming ("Live streaming is not available").
// - `eotThreshold` / `eotTimeoutMs` (Vapi's names for Flux's `eot_threshold` / `eot_timeout_ms`) exist
//   only on Flux.
import type { OptionProblem } from "./types.ts";

export interface DeepgramModelRules {
  /** Takes `keyterm` (Nova-3). */
  keyterm: boolean;
  /** Takes `keywords` with intensifiers (Nova-2 and older). */
  keywords: boolean;
  /** Why the model cannot be streamed on `/v1/listen`, when it cannot. */
  unsupported?: string;
}

export function deepgramModelRules(model: string): DeepgramModelRules {
  if (model.startsWith("flux")) {
    return {
      keyterm: false,
      keywords: false,
      unsupported: `${model} is a Flux model, which Deepgram serves on its turn-based /v2/listen API; this platform streams on /v1/listen: use nova-3 or nova-2`,
    };
  }
  if (model.startsWith("whisper")) {
    return {
      keyterm: false,
      keywords: false,
      unsupported: `Deepgram's Whisper Cloud has no live streaming: use nova-3 or nova-2`,
    };
  }
  if (model.startsWith("nova-3")) return { keyterm: true, keywords: false };
  return { keyterm: false, keywords: true };
}

/** A `keywords` entry without its intensifier (`word:2` → `word`). */
function bareKeyword(keyword: string): string {
  return keyword.replace(/:[+-]?\d+(?:\.\d+)?$/, "");
}

function hasIntensifier(keyword: string): boolean {
  return bareKeyword(keyword) !== keyword;
}

/**
 * The vocabulary query parameters for a model: Nova-3 gets every term as `keyterm` (plain
 * `keywords` included, since it has no intensifier to lose); older models get `keywords`. What a
 * model does not take is never sent (the save-time check refuses it with a reason).
 */
export function deepgramVocabulary(
  model: string,
  options: { keywords?: string[]; keyterms?: string[] },
): { keyterm: string[]; keywords: string[] } {
  const rules = deepgramModelRules(model);
  const keywords = options.keywords ?? [];
  if (rules.keyterm) {
    const fromKeywords = keywords.filter((k) => !hasIntensifier(k));
    return { keyterm: [...(options.keyterms ?? []), ...fromKeywords], keywords: [] };
  }
  return { keyterm: [], keywords: rules.keywords ? keywords : [] };
}

/** Save-time check of a Deepgram `transcriber` block (Vapi's DeepgramTranscriber). */
export function deepgramTranscriberProblems(t: {
  model?: unknown;
  keywords?: unknown;
  keyterm?: unknown;
  eotThreshold?: unknown;
  eotTimeoutMs?: unknown;
}): OptionProblem[] {
  // Vapi's default for a Deepgram transcriber without a model (libs/vapi/defaults.ts).
  const model = typeof t.model === "string" ? t.model : "nova-3";
  const rules = deepgramModelRules(model);
  if (rules.unsupported) return [{ path: "transcriber.model", message: rules.unsupported }];
  const problems: OptionProblem[] = [];
  const keyterm = Array.isArray(t.keyterm) ? t.keyterm : [];
  const keywords = Array.isArray(t.keywords) ? t.keywords.filter((k) => typeof k === "string") : [];
  if (keyterm.length > 0 && !rules.keyterm) {
    problems.push({
      path: "transcriber.keyterm",
      message: `keyterm prompting is for Deepgram nova-3 models; ${model} takes transcriber.keywords (word or word:intensifier) instead`,
    });
  }
  const weighted = keywords.filter(hasIntensifier);
  if (rules.keyterm && weighted.length > 0) {
    problems.push({
      path: "transcriber.keywords",
      message: `${model} takes keyterm, not keywords, and a keyterm has no intensifier (${weighted.join(", ")}): list the words without ":intensifier" (they are sent as keyterm), or use a nova-2 model for keyword boosting`,
    });
  }
  for (const field of ["eotThreshold", "eotTimeoutMs"] as const) {
    if (t[field] !== undefined) {
      problems.push({
        path: `transcriber.${field}`,
        message: `${field} is an end-of-turn setting of Deepgram's Flux models only; ${model} has none: remove it`,
      });
    }
  }
  return problems;
}
