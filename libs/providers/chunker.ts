// Streaming clause chunker: LLM tokens in, speakable chunks out, as early as a clause is complete.
// Time to first audio is set by the first chunk, so it may be short; later chunks wait for clause
// boundaries that keep prosody natural. A boundary is only confirmed by the character after it
// (whitespace), so "3.5", "$1,000", "10:30", "example.com/x" and "a@b.co" never split.

export interface ChunkerOptions {
  /** A comma (or an ellipsis) ends the first chunk once it has this many characters. Default 20. */
  firstMinChars?: number;
  /** A comma (or an ellipsis) ends later chunks once they have this many characters. Default 50. */
  minChars?: number;
  /** With no boundary in sight, split at the last space past this length. Default 250. */
  maxChars?: number;
}

const NONE: readonly string[] = Object.freeze([]);

// Lower-case, without the final dot. Words that usually end sentences ("etc", "no") are left out.
const ABBREVIATIONS = new Set([
  "mr",
  "mrs",
  "ms",
  "dr",
  "prof",
  "sr",
  "jr",
  "st",
  "mt",
  "vs",
  "approx",
  "dept",
  "est",
  "fig",
  "inc",
  "ltd",
  "co",
  "corp",
  "ave",
  "blvd",
  "rd",
  "apt",
  "jan",
  "feb",
  "mar",
  "apr",
  "jun",
  "jul",
  "aug",
  "sep",
  "sept",
  "oct",
  "nov",
  "dec",
]);

const CH_SPACE = 32;
const CH_NL = 10;
const CH_CR = 13;
const CH_TAB = 9;

function isSpace(c: number): boolean {
  return c === CH_SPACE || c === CH_NL || c === CH_CR || c === CH_TAB || c === 0xa0;
}

// Closing quotes/brackets that belong to the clause they end: `"Stop!" he said`.
function isCloser(c: number): boolean {
  return c === 34 || c === 39 || c === 41 || c === 93 || c === 0x201d || c === 0x2019 || c === 0xbb;
}

export class ClauseChunker {
  readonly #firstMin: number;
  readonly #min: number;
  readonly #max: number;
  #buf = "";
  /** Where scanning resumes: everything before it is known not to be a boundary. */
  #scan = 0;
  #emitted = 0;

  constructor(options: ChunkerOptions = {}) {
    this.#firstMin = options.firstMinChars ?? 20;
    this.#min = options.minChars ?? 50;
    this.#max = options.maxChars ?? 250;
  }

  /** Feed a token; returns the chunks it completed (a shared empty array when none). */
  push(delta: string): readonly string[] {
    if (delta.length === 0) return NONE;
    this.#buf += delta;
    let out: string[] | undefined;
    for (;;) {
      const end = this.#findBoundary();
      if (end < 0) break;
      const chunk = this.#take(end);
      if (!chunk) continue;
      if (out) out.push(chunk);
      else out = [chunk];
    }
    return out ?? NONE;
  }

  /** The rest of the text (end of the LLM stream); "" when nothing is left. Resets the chunker. */
  flush(): string {
    const rest = this.#buf.trim();
    // The next stream (e.g. the answer after a tool call) gets a short first chunk again.
    this.reset();
    return rest;
  }

  /** Drop everything (barge-in) and start a new reply. */
  reset(): void {
    this.#buf = "";
    this.#scan = 0;
    this.#emitted = 0;
  }

  #take(end: number): string {
    const chunk = this.#buf.slice(0, end).trim();
    this.#buf = this.#buf.slice(end);
    this.#scan = 0;
    if (chunk) this.#emitted++;
    return chunk;
  }

  /** Index just past the next confirmed boundary, or -1 (need more text). */
  #findBoundary(): number {
    const s = this.#buf;
    const n = s.length;
    const softMin = this.#emitted === 0 ? this.#firstMin : this.#min;
    // Leading whitespace left over from the previous chunk is not content.
    let contentStart = 0;
    while (contentStart < n && isSpace(s.charCodeAt(contentStart))) contentStart++;
    for (let i = Math.max(this.#scan, contentStart); i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === CH_NL) {
        if (hasContent(s, contentStart, i)) return i + 1;
        continue;
      }
      const strong = c === 46 /* . */ || c === 33 /* ! */ || c === 63 /* ? */ || c === 59 || c === 58; // ; :
      const soft = c === 44 /* , */ || c === 0x2026; /* … */
      if (!strong && !soft) continue;
      // Swallow runs of terminal punctuation and closers: "?!", "...", `."`, ".)".
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (d === 46 || d === 33 || d === 63 || d === 0x2026 || isCloser(d)) j++;
        else break;
      }
      if (j >= n) {
        // Can't tell yet ("3." may become "3.5"); resume here when more text arrives.
        this.#scan = i;
        return this.#maxSplit(s, contentStart);
      }
      if (!isSpace(s.charCodeAt(j))) {
        i = j - 1;
        continue;
      }
      const length = i - contentStart + 1;
      const ellipsis = c === 0x2026 || (c === 46 && j - i >= 3 && s.charCodeAt(i + 1) === 46);
      if (soft || ellipsis) {
        if (length >= softMin) return j;
        i = j - 1;
        continue;
      }
      if (c === 46 && j === i + 1 && this.#isAbbreviation(s, contentStart, i)) continue;
      return j;
    }
    this.#scan = n;
    return this.#maxSplit(s, contentStart);
  }

  /** `s[dot]` is a "." followed by whitespace at `next`: is the word before it an abbreviation? */
  #isAbbreviation(s: string, contentStart: number, dot: number): boolean {
    let w = dot;
    while (w > contentStart && !isSpace(s.charCodeAt(w - 1)) && s.charCodeAt(w - 1) !== 40 /* ( */) w--;
    if (w === dot) return false;
    const word = s.slice(w, dot).toLowerCase();
    // A list number opening the chunk: "1. Open the app".
    if (w === contentStart && /^\d+$/.test(word)) return true;
    // Initialisms: "e.g", "i.e", "u.s", "a.m", and a single initial "J".
    if (/^([a-z]\.)+[a-z]$/.test(word)) return true;
    // A single capital is an initial ("J. Smith"), except the pronoun ("So do I. Then").
    const first = s.charCodeAt(w);
    if (word.length === 1 && first >= 65 && first <= 90 && first !== 73) return true;
    return ABBREVIATIONS.has(word);
  }

  /** Runaway text with no boundary: cut at the last space so TTS is not starved. */
  #maxSplit(s: string, contentStart: number): number {
    if (s.length - contentStart < this.#max) return -1;
    const cut = s.lastIndexOf(" ", contentStart + this.#max);
    return cut > contentStart ? cut + 1 : -1;
  }
}

function hasContent(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(s.charCodeAt(i))) return true;
  return false;
}
