import assert from "node:assert/strict";
import { test } from "node:test";
import { KeypadInput, type KeypadPlan, keypadEntryText } from "../../libs/media/keypad.ts";
import { resolveAssistantDefaults } from "../../libs/vapi/defaults.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";

function keypad(plan: Partial<KeypadPlan>): { input: KeypadInput; entries: string[]; clock: ManualTimers } {
  const clock = new ManualTimers();
  const entries: string[] = [];
  const input = new KeypadInput(
    { enabled: true, timeoutSeconds: 2, delimiters: ["#"], ...plan },
    (d) => entries.push(d),
    clock.schedule,
  );
  return { input, entries, clock };
}

test("five presses, then the timeout without a new digit: one entry", () => {
  const { input, entries, clock } = keypad({});
  for (const d of "12345") {
    input.press(d);
    clock.advance(1500); // under the 2 s window: each digit restarts it
  }
  assert.deepEqual(entries, []);
  assert.equal(input.pending, "12345");
  clock.advance(500);
  assert.deepEqual(entries, ["12345"]);
  assert.equal(clock.pending, 0, "no timer left");
});

test("the delimiter ends the entry at once and is not part of it", () => {
  const { input, entries, clock } = keypad({ delimiters: ["#"] });
  for (const d of "4521#") input.press(d);
  assert.deepEqual(entries, ["4521"]);
  clock.advance(5000);
  assert.deepEqual(entries, ["4521"], "the cancelled timeout does not fire again");
  input.press("#");
  assert.deepEqual(entries, ["4521"], "a delimiter with nothing gathered is no entry");
});

test("with * as the delimiter, # is an ordinary key", () => {
  const { input, entries } = keypad({ delimiters: ["*"] });
  for (const d of "1#2*") input.press(d);
  assert.deepEqual(entries, ["1#2"]);
});

test("timeoutSeconds 0 waits for the delimiter only", () => {
  const { input, entries, clock } = keypad({ timeoutSeconds: 0 });
  for (const d of "987") input.press(d);
  clock.advance(60_000);
  assert.deepEqual(entries, []);
  input.press("#");
  assert.deepEqual(entries, ["987"]);
});

test("no timeout and no delimiter: every digit is an entry of its own", () => {
  const { input, entries } = keypad({ timeoutSeconds: 0, delimiters: [] });
  for (const d of "12") input.press(d);
  assert.deepEqual(entries, ["1", "2"]);
});

test("keypad input off: digits are ignored", () => {
  const { input, entries, clock } = keypad({ enabled: false });
  for (const d of "123#") input.press(d);
  clock.advance(10_000);
  assert.deepEqual(entries, []);
  assert.equal(input.pending, "");
});

test("dispose drops the gathered digits and their timer", () => {
  const { input, entries, clock } = keypad({});
  input.press("5");
  input.dispose();
  clock.advance(10_000);
  assert.deepEqual(entries, []);
  assert.equal(clock.pending, 0);
});

test("an entry reaches the model in Vapi's wording", () => {
  assert.equal(keypadEntryText("1234"), "User's Keypad Entry: 1234");
});

test('Vapi\'s defaults: off, 2 s, and a delimiter of # ; "" or [] means none', () => {
  assert.deepEqual(resolveAssistantDefaults({}).keypadInputPlan, {
    enabled: false,
    timeoutSeconds: 2,
    delimiters: ["#"],
  });
  assert.deepEqual(
    resolveAssistantDefaults({ keypadInputPlan: { enabled: true, delimiters: "" } }).keypadInputPlan,
    {
      enabled: true,
      timeoutSeconds: 2,
      delimiters: [],
    },
  );
  assert.deepEqual(
    resolveAssistantDefaults({
      keypadInputPlan: { enabled: true, timeoutSeconds: 0, delimiters: ["*", "#"] },
    }).keypadInputPlan,
    { enabled: true, timeoutSeconds: 0, delimiters: ["*", "#"] },
  );
});
