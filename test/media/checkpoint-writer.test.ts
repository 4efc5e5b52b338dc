import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type CallCheckpoint, CheckpointWriter } from "../../libs/media/checkpoint-writer.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

// The per-turn checkpoints of a media process's calls, written together (libs/media/checkpoint-
// writer.ts): what a call whose process dies is ended with (test/faults/media-killed.test.ts kills
// a real media process after a turn).

let t: TestApi;
let orgId: string;

before(async () => {
  t = await startTestApi();
  orgId = (await t.createOrg("Checkpoints")).orgId;
});
after(async () => {
  await t.close();
});

async function liveCall(status = "in-progress"): Promise<string> {
  const row = await t.db.call.create({ data: { orgId, type: "inboundPhoneCall", status } });
  return row.id;
}

/** A write that fails fails the test, naming why. */
function failOnError(err: unknown): void {
  assert.fail(`checkpoint write failed: ${err instanceof Error ? err.message : String(err)}`);
}

function checkpointOf(turn: number): CallCheckpoint {
  const messages = [
    { role: "bot", message: "Hi, this is Riley. How can I help?", time: 1_000, secondsFromStart: 0 },
    {
      role: "user",
      message: `Question ${turn}? It's "quoted"; and ünïcödé.`,
      time: 2_000,
      secondsFromStart: 1,
    },
  ];
  return {
    transcript: `AI: Hi, this is Riley. How can I help?\nUser: Question ${turn}?`,
    messages,
    usage: { durationSeconds: 10 * turn, llm: { promptTokens: 100 * turn } },
  };
}

describe("checkpoint writer", () => {
  it("writes the due checkpoints of several calls in one batch, each call's state as of the write", async () => {
    const writer = new CheckpointWriter(t.db, 60_000);
    const [a, b] = [await liveCall(), await liveCall()];
    let turnOfA = 1;
    writer.submit(a, () => checkpointOf(turnOfA), failOnError);
    writer.submit(b, () => checkpointOf(7), failOnError);
    turnOfA = 2;
    writer.submit(a, () => checkpointOf(turnOfA), failOnError);
    assert.equal(writer.pending, 2, "a call is written once per batch");
    await writer.flush();
    assert.equal(writer.pending, 0);
    const rows = await t.db.call.findMany({ where: { id: { in: [a, b] } } });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, turn] of [
      [a, 2],
      [b, 7],
    ] as const) {
      const row = byId.get(id);
      const want = checkpointOf(turn);
      assert.equal(row?.transcript, want.transcript);
      assert.deepEqual(row?.messages, want.messages);
      assert.deepEqual(row?.usage, want.usage);
      assert.equal(row?.status, "in-progress");
    }
  });

  it("writes within its window on its own, and never over a call that has ended or stopped checkpointing", async () => {
    const writer = new CheckpointWriter(t.db, 20);
    const live = await liveCall();
    const ended = await liveCall("ended");
    const ending = await liveCall();
    writer.submit(live, () => checkpointOf(3), failOnError);
    writer.submit(ended, () => checkpointOf(3), failOnError);
    writer.submit(ending, () => undefined, failOnError);
    const deadline = Date.now() + 5000;
    let row = await t.db.call.findUniqueOrThrow({ where: { id: live } });
    while (row.transcript === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      row = await t.db.call.findUniqueOrThrow({ where: { id: live } });
    }
    assert.equal(row.transcript, checkpointOf(3).transcript, "written without a flush");
    await writer.flush();
    const others = await t.db.call.findMany({ where: { id: { in: [ended, ending] } } });
    for (const other of others) {
      assert.equal(other.transcript, null);
      assert.equal(other.usage, null);
    }
  });

  it("reports a failed write to every call of the batch", async () => {
    const writer = new CheckpointWriter(t.db, 60_000);
    const failures: unknown[] = [];
    const bad = { transcript: "x", messages: [], usage: {} };
    writer.submit(
      "not-a-uuid",
      () => bad,
      (err) => failures.push(err),
    );
    writer.submit(
      await liveCall(),
      () => bad,
      (err) => failures.push(err),
    );
    await writer.flush();
    assert.equal(failures.length, 2);
  });
});
