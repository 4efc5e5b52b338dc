import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assistantRequestMessage,
  conversationUpdateMessage,
  endOfCallReportMessage,
  hangMessage,
  shouldSend,
  speechUpdateMessage,
  statusUpdateMessage,
  transcriptMessage,
  transferDestinationRequestMessage,
  userInterruptedMessage,
} from "../../libs/webhooks/messages.ts";

const ctx = {
  call: { id: "c1", orgId: "o1", status: "in-progress" },
  assistant: { name: "Ava" },
  customer: { number: "+14155550100" },
  phoneNumber: { id: "p1", number: "+14155550199" },
  timestamp: 1_700_000_000_000,
};
const envelope = {
  timestamp: 1_700_000_000_000,
  call: ctx.call,
  assistant: ctx.assistant,
  customer: ctx.customer,
  phoneNumber: ctx.phoneNumber,
};

describe("server message payloads", () => {
  it("use Vapi's field names", () => {
    assert.deepEqual(statusUpdateMessage(ctx, { status: "ended", endedReason: "customer-ended-call" }), {
      message: { type: "status-update", status: "ended", endedReason: "customer-ended-call", ...envelope },
    });
    assert.deepEqual(transcriptMessage(ctx, { role: "user", transcriptType: "partial", transcript: "hel" }), {
      message: {
        type: "transcript",
        role: "user",
        transcriptType: "partial",
        transcript: "hel",
        ...envelope,
      },
    });
    assert.deepEqual(speechUpdateMessage(ctx, { status: "started", role: "assistant", turn: 2 }), {
      message: { type: "speech-update", status: "started", role: "assistant", turn: 2, ...envelope },
    });
    assert.deepEqual(userInterruptedMessage(ctx, { turnId: "t3" }), {
      message: { type: "user-interrupted", turnId: "t3", ...envelope },
    });
    assert.deepEqual(hangMessage(ctx), { message: { type: "hang", ...envelope } });
    assert.deepEqual(assistantRequestMessage(ctx), { message: { type: "assistant-request", ...envelope } });
    assert.deepEqual(transferDestinationRequestMessage(ctx), {
      message: { type: "transfer-destination-request", ...envelope },
    });
    const messages = [
      { role: "bot", message: "Hi", time: 1, secondsFromStart: 0 },
      { role: "user", message: "Hello", time: 2, secondsFromStart: 1 },
    ];
    assert.deepEqual(conversationUpdateMessage(ctx, { messages }), {
      message: {
        type: "conversation-update",
        messages,
        messagesOpenAIFormatted: [
          { role: "assistant", content: "Hi" },
          { role: "user", content: "Hello" },
        ],
        ...envelope,
      },
    });
  });

  it("end-of-call-report carries the artifact, analysis, costs and duration", () => {
    const body = endOfCallReportMessage(
      { ...ctx, artifact: { live: true } },
      {
        endedReason: "silence-timed-out",
        artifact: { transcript: "AI: Hi", messages: [], recordingUrl: "https://r/1.wav" },
        analysis: { summary: "Short." },
        cost: 0.02,
        costs: [],
        costBreakdown: { total: 0.02 },
        startedAt: "2026-01-01T00:00:00.000Z",
        endedAt: "2026-01-01T00:00:12.000Z",
      },
    );
    const m = body.message as Record<string, unknown>;
    assert.equal(m.type, "end-of-call-report");
    assert.equal(m.endedReason, "silence-timed-out");
    assert.deepEqual(m.artifact, { transcript: "AI: Hi", messages: [], recordingUrl: "https://r/1.wav" });
    assert.deepEqual(m.analysis, { summary: "Short." });
    assert.equal(m.durationSeconds, 12);
    assert.equal(m.recordingUrl, "https://r/1.wav");
    assert.equal(m.summary, "Short.");
    assert.equal(m.cost, 0.02);
    assert.deepEqual(m.costBreakdown, { total: 0.02 });
  });
});

describe("shouldSend", () => {
  it("uses Vapi's default list when serverMessages is unset", () => {
    for (const t of [
      "end-of-call-report",
      "status-update",
      "conversation-update",
      "speech-update",
      "hang",
      "tool-calls",
      "user-interrupted",
    ]) {
      assert.equal(shouldSend(t, undefined), true, t);
    }
    assert.equal(shouldSend("transcript", undefined), false);
    assert.equal(shouldSend("assistant-request", null), false);
  });

  it("follows the assistant's list, including final-only transcripts", () => {
    assert.equal(shouldSend("status-update", ["transcript"]), false);
    assert.equal(shouldSend({ type: "transcript", transcriptType: "partial" }, ["transcript"]), true);
    const finalOnly = ['transcript[transcriptType="final"]'];
    assert.equal(shouldSend({ type: "transcript", transcriptType: "partial" }, finalOnly), false);
    assert.equal(shouldSend({ type: "transcript", transcriptType: "final" }, finalOnly), true);
    assert.equal(shouldSend("end-of-call-report", []), false);
  });
});
