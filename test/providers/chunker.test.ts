import assert from "node:assert/strict";
import { test } from "node:test";
import { type ChunkerOptions, ClauseChunker } from "../../libs/providers/chunker.ts";

/** Feeds `text` in LLM-like tokens (and, separately, one character at a time); both must agree. */
function chunk(text: string, options?: ChunkerOptions): string[] {
  const byToken = run(text.match(/\s*\S+|\s+/g) ?? [], options);
  const byChar = run([...text], options);
  assert.deepEqual(byChar, byToken, "token size must not change the chunks");
  assert.equal(byToken.join(" ").replace(/\s+/g, " "), text.trim().replace(/\s+/g, " "), "no text lost");
  return byToken;
}

function run(tokens: string[], options?: ChunkerOptions): string[] {
  const c = new ClauseChunker(options);
  const out: string[] = [];
  for (const t of tokens) out.push(...c.push(t));
  const rest = c.flush();
  if (rest) out.push(rest);
  return out;
}

test("splits at sentence ends as soon as the next word starts", () => {
  assert.deepEqual(chunk("Sure! I can help. What time works for you?"), [
    "Sure!",
    "I can help.",
    "What time works for you?",
  ]);
});

test("emits a finished clause before the rest of the reply arrives", () => {
  const c = new ClauseChunker();
  assert.deepEqual(c.push("Hello"), []);
  assert.deepEqual(c.push(" there."), [], "waits: the dot could be a decimal point");
  assert.deepEqual(c.push(" How"), ["Hello there."]);
  assert.deepEqual(c.push(" are you"), []);
  assert.equal(c.flush(), "How are you");
  assert.equal(c.flush(), "");
});

test("semicolons, colons and newlines end clauses", () => {
  assert.deepEqual(chunk("We open at nine; we close at five. Here it is: the menu\nand the prices"), [
    "We open at nine;",
    "we close at five.",
    "Here it is:",
    "the menu",
    "and the prices",
  ]);
});

test("a comma ends the first chunk after firstMinChars, later chunks after minChars", () => {
  assert.deepEqual(
    chunk("Okay, so for your appointment, I have Tuesday at ten, Wednesday at noon, or Friday morning."),
    ["Okay, so for your appointment,", "I have Tuesday at ten, Wednesday at noon, or Friday morning."],
  );
  assert.deepEqual(
    chunk("Okay, so for your appointment, I have Tuesday at ten, Wednesday at noon, or Friday.", {
      firstMinChars: 4,
      minChars: 15,
    }),
    ["Okay,", "so for your appointment,", "I have Tuesday at ten,", "Wednesday at noon,", "or Friday."],
  );
});

test("never splits numbers, money, times, or decimals", () => {
  assert.deepEqual(chunk("It costs $1,000.50 in total. The rate is 3.5 percent at 10:30 today."), [
    "It costs $1,000.50 in total.",
    "The rate is 3.5 percent at 10:30 today.",
  ]);
});

test("never splits abbreviations, initialisms or list numbers", () => {
  assert.deepEqual(
    chunk("Mr. Smith and Dr. Jones met at St. Mary's. They went to the U.S. in Jan. last year."),
    ["Mr. Smith and Dr. Jones met at St. Mary's.", "They went to the U.S. in Jan. last year."],
  );
  assert.deepEqual(chunk("Bring ID e.g. a passport or i.e. anything official. J. R. Tolkien wrote it."), [
    "Bring ID e.g. a passport or i.e. anything official.",
    "J. R. Tolkien wrote it.",
  ]);
  assert.deepEqual(chunk("Steps:\n1. Open the app.\n2. Tap login."), [
    "Steps:",
    "1. Open the app.",
    "2. Tap login.",
  ]);
});

test("the pronoun I still ends a sentence", () => {
  assert.deepEqual(chunk("So do I. See you then."), ["So do I.", "See you then."]);
});

test("ellipses stay whole and only split like a comma", () => {
  assert.deepEqual(chunk("Well... let me think about that for a second... Okay, got it."), [
    "Well... let me think about that for a second...",
    "Okay, got it.",
  ]);
  assert.deepEqual(chunk("Hmm… let me see. Right… so the answer is yes."), [
    "Hmm… let me see.",
    "Right… so the answer is yes.",
  ]);
});

test("URLs and emails are not split at their dots", () => {
  assert.deepEqual(chunk("Go to example.com/help.html or write to help@example.co.uk. Thanks!"), [
    "Go to example.com/help.html or write to help@example.co.uk.",
    "Thanks!",
  ]);
  assert.deepEqual(chunk("Visit https://switchboard.dev/docs?x=1: it has everything."), [
    "Visit https://switchboard.dev/docs?x=1:",
    "it has everything.",
  ]);
});

test("terminal punctuation runs and closing quotes stay with their clause", () => {
  assert.deepEqual(chunk('He said "Stop!" and left. Really?! Yes (mostly.) Done.'), [
    'He said "Stop!"',
    "and left.",
    "Really?!",
    "Yes (mostly.)",
    "Done.",
  ]);
});

test("runaway text without punctuation is cut at a space after maxChars", () => {
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
  const chunks = chunk(words, { maxChars: 60 });
  assert.ok(chunks.length >= 4);
  for (const c of chunks) assert.ok(c.length <= 60, c);
});

test("push returns a shared empty array when nothing completes, and reset drops the buffer", () => {
  const c = new ClauseChunker();
  const a = c.push("Hel");
  const b = c.push("lo");
  assert.equal(a, b);
  assert.equal(a.length, 0);
  c.reset();
  assert.equal(c.flush(), "");
  assert.deepEqual(c.push(""), []);
});

test("after flush the next reply gets a short first chunk again", () => {
  const c = new ClauseChunker({ firstMinChars: 5, minChars: 100 });
  assert.deepEqual(c.push("Right, one moment. "), ["Right,", "one moment."]);
  assert.deepEqual(c.push("Okay, then "), [], "a later comma needs minChars");
  assert.equal(c.flush(), "Okay, then");
  assert.deepEqual(c.push("Found it, "), ["Found it,"]);
});
