// Post-call analysis (assistant.analysisPlan), end to end through the worker: ended, priced calls as
// the media plane leaves them; the `call.post-process` job asks the (fake) OpenAI for the summary,
// structured data and success evaluation, records them on the call with a sixth ledger line, and
// sends the end-of-call report; Stripe (fake) gets the analysis line even when the call's usage was
// reported before it existed.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, it } from "node:test";
import { buildWorker, type WorkerApp } from "../../apps/worker/src/app.ts";
import { workerConfigFromEnv } from "../../apps/worker/src/config.ts";
import { recordCallAnalysis, recordCallCost } from "../../libs/billing/index.ts";
import type { Prisma } from "../../libs/db/index.ts";
import { InProcessQueue } from "../../libs/queue/index.ts";
import { callUsage } from "../billing/fixtures.ts";
import { stripeEnv } from "../billing/stripe-helpers.ts";
import { type ChatRequest, FakeOpenAI, type Script } from "../fakes/index.ts";
import { FakeStripe } from "../fakes/stripe.ts";
import { startTestApi, type TestApi, type TestOrg, testEnv } from "../helpers/api.ts";
import {
  type CustomerServer,
  messageOf,
  type ReceivedRequest,
  startCustomerServer,
} from "./customer-server.ts";

const SYSTEM_PROMPT = "You are Ava, the front desk of Acme Dental. Book cleanings and check-ups.";
const TWO_TURNS = [
  { role: "system", message: SYSTEM_PROMPT },
  { role: "bot", message: "Hi, this is Ava from Acme Dental. How can I help?" },
  { role: "user", message: "I'd like to book a cleaning on Tuesday. I'm a new patient." },
  { role: "bot", message: "Tuesday at 10am is free. Shall I book it?" },
  { role: "user", message: "Yes please." },
  { role: "bot", message: "Done. See you Tuesday at 10am." },
];
const TWO_TURNS_TRANSCRIPT = [
  "AI: Hi, this is Ava from Acme Dental. How can I help?",
  "User: I'd like to book a cleaning on Tuesday. I'm a new patient.",
  "AI: Tuesday at 10am is free. Shall I book it?",
  "User: Yes please.",
  "AI: Done. See you Tuesday at 10am.",
].join("\n");

const SUMMARY = "A new patient booked a cleaning for Tuesday at 10am.";
const SCHEMA = {
  type: "object",
  properties: { appointmentDay: { type: "string" }, newPatient: { type: "boolean" } },
  required: ["appointmentDay", "newPatient"],
};
// Scripted token usage (gpt-4o: $2.50 / $1.25 cached / $10.00 per 1M tokens = µ$ per token).
const SUMMARY_USAGE = { promptTokens: 1_000, completionTokens: 40, cachedTokens: 0 }; // 2900 µ$
const EVALUATION_USAGE = { promptTokens: 1_200, completionTokens: 2, cachedTokens: 200 }; // 2770 µ$
const STRUCTURED_USAGE = { promptTokens: 1_100, completionTokens: 25, cachedTokens: 0 }; // 3000 µ$

type Step = "summary" | "structuredData" | "successEvaluation" | "other";

function stepOf(req: ChatRequest): Step {
  const system = String(req.messages[0]?.content ?? "");
  if (system.startsWith("You are an expert note-taker")) return "summary";
  if (system.startsWith("You are an expert data extractor")) return "structuredData";
  if (system.startsWith("You are an expert call evaluator")) return "successEvaluation";
  return "other";
}

function defaultAnswer(req: ChatRequest): Script {
  switch (stepOf(req)) {
    case "summary":
      return { text: SUMMARY, usage: SUMMARY_USAGE };
    case "structuredData":
      return { text: '{"appointmentDay":"Tuesday","newPatient":true}', usage: STRUCTURED_USAGE };
    case "successEvaluation":
      return { text: "true", usage: EVALUATION_USAGE };
    default:
      return { text: "Custom answer.", usage: { promptTokens: 500, completionTokens: 10 } };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface CallView {
  id: string;
  analysis?: { summary?: string; structuredData?: Record<string, unknown>; successEvaluation?: string };
  cost: number;
  costBreakdown: Record<string, unknown> & {
    total: number;
    analysisCostBreakdown?: Record<string, number>;
  };
  costs: Array<Record<string, unknown> & { type: string; cost: number; billedBy: string }>;
}

describe("post-call analysis (call.post-process)", () => {
  let t: TestApi;
  let openai: FakeOpenAI;
  let stripe: FakeStripe;
  let customer: CustomerServer;
  let queue: InProcessQueue;
  let worker: WorkerApp;
  let org: TestOrg;
  const logs: Array<{ level: number; msg: string } & Record<string, unknown>> = [];

  before(async () => {
    [openai, stripe, customer] = await Promise.all([
      FakeOpenAI.start({ respond: defaultAnswer }),
      FakeStripe.start(),
      startCustomerServer(),
    ]);
    const env = {
      OPENAI_BASE_URL: openai.baseUrl,
      OPENAI_API_KEY: "sk-platform-analysis",
      ...stripeEnv(stripe),
    };
    t = await startTestApi(env);
    queue = new InProcessQueue();
    const stream = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    });
    worker = await buildWorker(
      workerConfigFromEnv(
        testEnv({
          ...env,
          DATABASE_URL: t.database.url,
          SECRETS_KEY: t.config.secretsKey.toString("base64"),
        }),
      ),
      { db: t.db, redis: t.redis, queue, schedule: false, logger: { level: "info", stream } },
    );
    org = await t.createOrg("Acme Dental");
  });
  after(async () => {
    await worker.close();
    await queue.close();
    await Promise.all([openai.close(), stripe.close(), customer.close()]);
    await t.close();
  });
  beforeEach(() => {
    openai.respond = defaultAnswer;
    openai.reset();
  });

  /** An ended call as the media plane leaves it (record + usage), priced into its five lines. */
  async function endedCall(
    opts: {
      orgId?: string;
      analysisPlan?: Record<string, unknown>;
      messages?: Array<Record<string, unknown>>;
      transcript?: string;
      serverMessages?: string[];
    } = {},
  ): Promise<string> {
    const startedAt = new Date(Date.now() - 130_000);
    const messages = opts.messages ?? TWO_TURNS;
    const row = await t.db.call.create({
      data: {
        orgId: opts.orgId ?? org.orgId,
        type: "inboundPhoneCall",
        status: "ended",
        endedReason: "customer-ended-call",
        providerCallId: `CA${randomBytes(16).toString("hex")}`,
        customer: { number: "+14155550100" },
        assistant: {
          name: "Ava",
          model: {
            provider: "openai",
            model: "gpt-4o",
            messages: [{ role: "system", content: SYSTEM_PROMPT }],
          },
          server: { url: customer.url },
          serverMessages: opts.serverMessages ?? ["end-of-call-report"],
          ...(opts.analysisPlan ? { analysisPlan: opts.analysisPlan } : {}),
        } as Prisma.InputJsonObject,
        startedAt,
        endedAt: new Date(startedAt.getTime() + 125_400),
        transcript: opts.transcript ?? TWO_TURNS_TRANSCRIPT,
        messages: messages as Prisma.InputJsonArray,
        artifact: { transcript: opts.transcript ?? TWO_TURNS_TRANSCRIPT },
        usage: callUsage() as unknown as Prisma.InputJsonObject,
      },
    });
    await recordCallCost(t.db, row.id);
    return row.id;
  }

  async function postProcess(callId: string, jobId = `post.${callId}`): Promise<void> {
    await queue.enqueue("call.post-process", { callId }, { jobId });
  }

  function reportsFor(callId: string): ReceivedRequest[] {
    return customer.received.filter(
      (r) =>
        messageOf(r).type === "end-of-call-report" &&
        (messageOf(r).call as { id?: string } | undefined)?.id === callId,
    );
  }

  async function reportFor(callId: string): Promise<Record<string, unknown>> {
    const [r] = await waitUntil("the end-of-call-report", async () => {
      const found = reportsFor(callId);
      return found.length > 0 ? found : undefined;
    });
    return messageOf(r);
  }

  async function getCall(callId: string, key = org.key): Promise<CallView> {
    const res = await t.request({ method: "GET", url: `/call/${callId}`, key });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as CallView;
  }

  async function linesOf(callId: string) {
    return t.db.usageLine.findMany({ where: { callId }, orderBy: { createdAt: "asc" } });
  }

  it("a two-turn call gets a summary and a success evaluation, in GET /call/:id and in the end-of-call-report; the tokens are a sixth line and the cost is the sum of the six", async () => {
    const callId = await endedCall();
    await postProcess(callId);
    const report = await reportFor(callId);

    const expected = { summary: SUMMARY, successEvaluation: "true" };
    assert.deepEqual(report.analysis, expected);
    assert.equal(report.summary, SUMMARY, "the top-level copy older integrations read");
    const call = await getCall(callId);
    assert.deepEqual(call.analysis, expected);

    // What was asked: Vapi's default prompts, the transcript and the call's system prompt filled in,
    // on the assistant's model with the platform key, once per step.
    assert.equal(openai.requests.length, 2);
    const byStep = new Map(openai.requests.map((r) => [stepOf(r.body), r]));
    const summaryReq = byStep.get("summary");
    const evalReq = byStep.get("successEvaluation");
    assert.ok(summaryReq && evalReq);
    for (const r of [summaryReq, evalReq]) {
      assert.equal(r.body.model, "gpt-4o");
      assert.equal(r.authorization, "Bearer sk-platform-analysis");
      assert.equal(r.body.stream, true);
    }
    assert.deepEqual(summaryReq.body.messages, [
      {
        role: "system",
        content:
          "You are an expert note-taker. You will be given a transcript of a call. Summarize the call in 2-3 sentences. DO NOT return anything except the summary.",
      },
      {
        role: "user",
        content: `Here is the transcript:\n\n${TWO_TURNS_TRANSCRIPT}\n\n. Here is the ended reason of the call:\n\ncustomer-ended-call\n\n`,
      },
    ]);
    const evalText = evalReq.body.messages.map((m) => String(m.content)).join("\n");
    assert.match(evalText, /Rubric:\nPassFail: A simple 'true' if call passed, 'false' if not\./);
    assert.ok(evalText.includes(TWO_TURNS_TRANSCRIPT), "the transcript");
    assert.ok(evalText.includes(`Here was the system prompt of the call:\n\n${SYSTEM_PROMPT}`));

    // Billing: one analysis line, platform-billed, priced at gpt-4o's prices; cost = Σ six lines.
    const lines = await linesOf(callId);
    assert.deepEqual(lines.map((l) => l.category).sort(), [
      "analysis",
      "llm",
      "platform",
      "stt",
      "transport",
      "tts",
    ]);
    const line = lines.find((l) => l.category === "analysis");
    assert.ok(line);
    assert.equal(line.amountMicros, 2_900n + 2_770n);
    assert.equal(line.billedBy, "platform");
    assert.equal(line.model, "gpt-4o");
    assert.equal(line.quantity.toFixed(), String(1_040 + 1_202));
    const sum = lines.reduce((a, l) => a + l.amountMicros, 0n);
    assert.equal(Math.round(call.cost * 1e6), Number(sum));
    assert.equal(call.costBreakdown.total, call.cost);
    assert.equal(Math.round(call.costs.reduce((a, c) => a + c.cost, 0) * 1e6), Number(sum));
    assert.deepEqual(
      call.costs.filter((c) => c.type === "analysis"),
      [
        {
          type: "analysis",
          analysisType: "summary",
          model: { provider: "openai", model: "gpt-4o" },
          promptTokens: 1_000,
          completionTokens: 40,
          cachedPromptTokens: 0,
          cost: 0.0029,
          billedBy: "platform",
        },
        {
          type: "analysis",
          analysisType: "successEvaluation",
          model: { provider: "openai", model: "gpt-4o" },
          promptTokens: 1_200,
          completionTokens: 2,
          cachedPromptTokens: 200,
          cost: 0.00277,
          billedBy: "platform",
        },
      ],
    );
    assert.deepEqual(call.costBreakdown.analysisCostBreakdown, {
      summary: 0.0029,
      summaryPromptTokens: 1_000,
      summaryCompletionTokens: 40,
      summaryCachedPromptTokens: 0,
      successEvaluation: 0.00277,
      successEvaluationPromptTokens: 1_200,
      successEvaluationCompletionTokens: 2,
      successEvaluationCachedPromptTokens: 200,
    });
    // The report carries the same money as the call.
    assert.equal(report.cost, call.cost);
    assert.deepEqual(report.costBreakdown, call.costBreakdown);

    // The billing API shows it as its own category.
    const day = lines[0]?.occurredAt.toISOString().slice(0, 10) ?? "";
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    const usage = await t.request({
      method: "GET",
      url: `/billing/usage?start=${day}&end=${next}&groupBy=category`,
      key: org.key,
    });
    assert.equal(usage.statusCode, 200, usage.body);
    const analysisRow = (usage.json().rows as Array<Record<string, unknown>>).find(
      (r) => r.key === "analysis",
    );
    assert.ok(analysisRow, "an analysis row");
    assert.equal(analysisRow.label, "Call analysis (LLM)");
    assert.deepEqual(
      [analysisRow.billedMicros, analysisRow.passthroughMicros, analysisRow.calls],
      [5_670, 0, 1],
    );
  });

  it("a custom summaryPlan.messages prompt is used, with {{transcript}} and {{systemPrompt}} filled in", async () => {
    openai.respond = (req) =>
      stepOf(req) === "other" ? { text: "CRM: cleaning booked, Tuesday 10am." } : defaultAnswer(req);
    const callId = await endedCall({
      analysisPlan: {
        summaryPlan: {
          messages: [
            { role: "system", content: "Write one CRM line. The agent was briefed: {{systemPrompt}}" },
            { role: "user", content: "Call:\n{{transcript}}" },
          ],
        },
        successEvaluationPlan: { enabled: false },
      },
    });
    await postProcess(callId);
    const report = await reportFor(callId);
    assert.deepEqual(report.analysis, { summary: "CRM: cleaning booked, Tuesday 10am." });
    assert.equal(openai.requests.length, 1, "success evaluation disabled: one request");
    assert.deepEqual(openai.requests[0]?.body.messages, [
      { role: "system", content: `Write one CRM line. The agent was briefed: ${SYSTEM_PROMPT}` },
      { role: "user", content: `Call:\n${TWO_TURNS_TRANSCRIPT}` },
    ]);
    assert.deepEqual((await getCall(callId)).analysis, { summary: "CRM: cleaning booked, Tuesday 10am." });
  });

  it("structuredData with a schema is asked for as JSON and recorded; an unparseable answer is left out (logged), the other steps kept", async () => {
    const plan = { structuredDataPlan: { enabled: true, schema: SCHEMA } };
    const good = await endedCall({ analysisPlan: plan });
    await postProcess(good);
    const report = await reportFor(good);
    assert.deepEqual(report.analysis, {
      summary: SUMMARY,
      structuredData: { appointmentDay: "Tuesday", newPatient: true },
      successEvaluation: "true",
    });
    const req = openai.requests.find((r) => stepOf(r.body) === "structuredData");
    assert.ok(req);
    assert.deepEqual(req.body.response_format, { type: "json_object" });
    const sent = /Json Schema:\n([\s\S]*)\n\nOnly respond with the JSON\.$/.exec(
      String(req.body.messages[0]?.content),
    );
    assert.deepEqual(JSON.parse(sent?.[1] ?? "null"), SCHEMA, "the plan's schema is in the prompt");
    assert.equal(
      openai.requests.find((r) => stepOf(r.body) === "summary")?.body.response_format,
      undefined,
      "plain text for the other steps",
    );
    const call = await getCall(good);
    assert.deepEqual(call.analysis?.structuredData, { appointmentDay: "Tuesday", newPatient: true });
    assert.equal(call.costBreakdown.analysisCostBreakdown?.structuredData, 0.003);

    openai.respond = (r) =>
      stepOf(r) === "structuredData"
        ? { text: "Sorry, I can't tell.", usage: STRUCTURED_USAGE }
        : defaultAnswer(r);
    const bad = await endedCall({ analysisPlan: plan });
    await postProcess(bad);
    const badReport = await reportFor(bad);
    assert.deepEqual(badReport.analysis, { summary: SUMMARY, successEvaluation: "true" });
    assert.ok(
      logs.some((l) => l.level === 40 && l.msg === "call analysis: structuredData skipped"),
      "a warning names the skipped step",
    );
    // The tokens were spent all the same: billed.
    const line = (await linesOf(bad)).find((l) => l.category === "analysis");
    assert.equal(line?.amountMicros, 2_900n + 3_000n + 2_770n);
  });

  it("a step that times out is skipped; the others are recorded and the report still arrives", async () => {
    openai.respond = (req) =>
      stepOf(req) === "summary" ? { ...defaultAnswer(req), ttftMs: 4_000 } : defaultAnswer(req);
    const callId = await endedCall({ analysisPlan: { summaryPlan: { timeoutSeconds: 1 } } });
    const started = Date.now();
    await postProcess(callId);
    const report = await reportFor(callId);
    assert.ok(Date.now() - started < 3_500, "the report did not wait for the slow summary");
    assert.deepEqual(report.analysis, { successEvaluation: "true" });
    assert.equal(report.summary, undefined);
    const summaryReq = openai.requests.find((r) => stepOf(r.body) === "summary");
    await waitUntil("the summary request to be abandoned", async () => summaryReq?.aborted);
    const call = await getCall(callId);
    assert.deepEqual(call.analysis, { successEvaluation: "true" });
    assert.deepEqual(
      call.costs.filter((c) => c.type === "analysis").map((c) => c.analysisType),
      ["successEvaluation"],
      "only the step that answered is billed",
    );
    assert.ok(
      logs.some((l) => l.msg === "call analysis: summary skipped" && /timed out/.test(String(l.err))),
    );
  });

  it("below minMessagesThreshold no LLM request is made and the report has an empty analysis", async () => {
    const callId = await endedCall({
      messages: TWO_TURNS.slice(0, 2),
      transcript: "AI: Hi, this is Ava from Acme Dental. How can I help?",
    });
    await postProcess(callId);
    const report = await reportFor(callId);
    assert.deepEqual(report.analysis, {});
    assert.equal(openai.requests.length, 0);
    assert.equal((await getCall(callId)).analysis, undefined);
    assert.equal((await linesOf(callId)).length, 5);

    // A threshold of its own counts the same messages (user and bot, not system).
    const strict = await endedCall({ analysisPlan: { minMessagesThreshold: 6 } });
    await postProcess(strict);
    assert.deepEqual((await reportFor(strict)).analysis, {});
    assert.equal(openai.requests.length, 0);
  });

  it("the job running twice asks the LLM once and writes one analysis line", async () => {
    const callId = await endedCall();
    await postProcess(callId);
    await reportFor(callId);
    const before = await getCall(callId);
    assert.equal(openai.requests.length, 2);

    // A retry of the same job, and a duplicate with another id.
    await postProcess(callId, `post.${callId}.retry`);
    await postProcess(callId, `post.${callId}.again`);
    await queue.idle();
    await sleep(200);
    assert.equal(openai.requests.length, 2, "no step asked twice");
    const lines = (await linesOf(callId)).filter((l) => l.category === "analysis");
    assert.equal(lines.length, 1);
    const afterwards = await getCall(callId);
    assert.equal(afterwards.cost, before.cost);
    assert.deepEqual(afterwards.analysis, before.analysis);
    const keys = new Set(reportsFor(callId).map((r) => r.headers["x-vapi-idempotency-key"]));
    assert.deepEqual([...keys], [`${callId}.end-of-call-report`], "the customer sees one report");

    // Two recorders at once (two workers): one records and bills, the other finds it done.
    const raced = await endedCall({ serverMessages: [] });
    const usage = {
      provider: "openai",
      model: "gpt-4o",
      byo: false,
      summary: { promptTokens: 1_000, cachedPromptTokens: 0, completionTokens: 40 },
    };
    const results = await Promise.all([
      recordCallAnalysis(t.db, { callId: raced, analysis: { summary: "One." }, usage }),
      recordCallAnalysis(t.db, { callId: raced, analysis: { summary: "Two." }, usage }),
    ]);
    assert.deepEqual(results.map((r) => r.recorded).sort(), [false, true]);
    const racedLines = (await linesOf(raced)).filter((l) => l.category === "analysis");
    assert.equal(racedLines.length, 1);
    const daily = await t.db.usageDaily.findMany({ where: { orgId: org.orgId, category: "analysis" } });
    const racedCall = await getCall(raced);
    assert.equal(
      Math.round(racedCall.cost * 1e6),
      Number((await linesOf(raced)).reduce((a, l) => a + l.amountMicros, 0n)),
    );
    const ledger = await t.db.usageLine.aggregate({
      where: { orgId: org.orgId, category: "analysis" },
      _sum: { amountMicros: true },
      _count: true,
    });
    assert.equal(
      daily.reduce((a, d) => a + d.lines, 0),
      ledger._count,
      "the daily rollup counts each analysis line once",
    );
    assert.equal(
      daily.reduce((a, d) => a + d.amountMicros, 0n),
      ledger._sum.amountMicros,
    );
  });

  it("with the organisation's own OpenAI credential the org's key is used and the line is passthrough", async () => {
    const byoOrg = await t.createOrg("BYO Dental");
    const res = await t.request({
      method: "POST",
      url: "/credential",
      key: byoOrg.key,
      payload: { provider: "openai", apiKey: "sk-org-own-openai" },
    });
    assert.equal(res.statusCode, 201, res.body);
    const callId = await endedCall({ orgId: byoOrg.orgId });
    await postProcess(callId);
    const report = await reportFor(callId);
    assert.deepEqual(report.analysis, { summary: SUMMARY, successEvaluation: "true" });
    assert.equal(openai.requests.length, 2);
    for (const r of openai.requests) assert.equal(r.authorization, "Bearer sk-org-own-openai");

    const line = (await linesOf(callId)).find((l) => l.category === "analysis");
    assert.equal(line?.billedBy, "passthrough");
    assert.equal(line?.amountMicros, 5_670n, "still computed and shown");
    const call = await getCall(callId, byoOrg.key);
    assert.deepEqual(
      call.costs.filter((c) => c.type === "analysis").map((c) => c.billedBy),
      ["passthrough", "passthrough"],
    );
    // The billing API: what the organisation's own key paid, not billed.
    const day = line?.occurredAt.toISOString().slice(0, 10) ?? "";
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    const usage = await t.request({
      method: "GET",
      url: `/billing/usage?start=${day}&end=${next}&groupBy=category`,
      key: byoOrg.key,
    });
    const row = (usage.json().rows as Array<Record<string, unknown>>).find((r) => r.key === "analysis");
    assert.deepEqual([row?.billedMicros, row?.passthroughMicros], [0, 5_670]);
    // Passthrough lines are never reported to Stripe.
    await queue.idle();
    assert.equal(stripe.eventsFor(line?.id ?? "").length, 0);
  });

  it("the analysis line written after the call's usage was reported to Stripe is reported too, once, and nothing twice", async () => {
    const callId = await endedCall({ serverMessages: [] });
    // The media plane's usage job runs first: the five lines are reported.
    await queue.enqueue("billing.report-usage", { callId }, { jobId: `usage.${callId}` });
    await waitUntil("the five lines reported", async () => {
      const lines = await linesOf(callId);
      return lines.length === 5 && lines.every((l) => l.reportedAt !== null);
    });
    const first = await linesOf(callId);

    await postProcess(callId);
    const line = await waitUntil("the analysis line reported", async () => {
      const l = (await linesOf(callId)).find((x) => x.category === "analysis");
      return l?.reportedAt ? l : undefined;
    });
    const events = stripe.eventsFor(line.id);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.event_name, "provider_usage");
    assert.equal(events[0]?.value, Number(line.amountMicros));
    for (const l of first) {
      assert.equal(stripe.attemptsFor(l.id).length, 1, `${l.category} sent once`);
    }
    // Running the job again reports nothing more.
    await postProcess(callId, `post.${callId}.again`);
    await queue.idle();
    await sleep(100);
    assert.equal(stripe.attemptsFor(line.id).length, 1);
  });
});
