import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { Call } from "../../libs/db/index.ts";
import type { ChatRequest, Script } from "../fakes/index.ts";
import { sleep } from "../fakes/util.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  type StoredArtifact,
  type StoredMessage,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "../media/harness.ts";

// The calls pages in a real browser (Debian's headless Chromium, playwright-core), against the
// API, media and worker apps built in process on the loopback provider fakes. Three phone calls
// are really made (a tool call, a barge-in, an assistant hanging up), on the organisation's own
// OpenAI key (BYO: its model line is passthrough), analysed by the worker; thirty older web calls
// are written straight into the database to have pages to turn. The pages must show what the API
// answers. Screenshots go to test-artifacts/ (gitignored).

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts");
const WAIT_MS = 30_000;
const STORY =
  "Once upon a time there was a small robot who lived in a lighthouse by the sea, and every night it counted the ships that passed, one by one, until the morning came and the fishermen sailed home again with their nets full of silver fish.";

let env: MediaEnv;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const errors: string[] = [];
const calls: Record<"tool" | "story" | "closer", Call> = {} as Record<"tool" | "story" | "closer", Call>;
const assistants: Record<string, string> = {};
const SEEDED_WEB_CALLS = 30;
/** The seeded call whose record predates bot messages' `interrupted`. */
let olderCallId = "";

const responders = new Map<string, (req: ChatRequest) => Script>();
const lastMessage = (req: ChatRequest) => req.messages[req.messages.length - 1];

function model(name: string, respond: (req: ChatRequest) => Script, extra: Record<string, unknown> = {}) {
  responders.set(name, respond);
  return {
    provider: "openai",
    model: "gpt-4o",
    messages: [{ role: "system", content: `TEST ${name}. Be helpful.` }],
    ...extra,
  };
}

/** The assistant's post-call analysis as the worker asks the model for it. */
function analysis(req: ChatRequest): Script | undefined {
  const system = String(req.messages[0]?.content ?? "");
  const everything = req.messages.map((m) => String(m.content ?? "")).join("\n");
  if (system.startsWith("You are an expert call evaluator")) {
    return { text: everything.includes("TEST story.") ? "false" : "true" };
  }
  if (system.startsWith("You are an expert note-taker") || /summar/i.test(system)) {
    return { text: "The caller asked about an order." };
  }
  return undefined;
}

const ANALYSIS_PLAN = { successEvaluationPlan: { enabled: true, rubric: "PassFail" } };

/**
 * The conversation of a call recorded before bot messages said whether they were cut off: it only
 * counts its one interruption. The caller's words follow the second line at once (cut off) and the
 * first after a pause.
 */
function olderRecord(startedAt: number): { messages: object[]; artifact: object } {
  const line = (role: string, message: string, fromMs: number, toMs: number) => ({
    role,
    message,
    time: startedAt + fromMs,
    endTime: startedAt + toMs,
    secondsFromStart: fromMs / 1000,
    duration: toMs - fromMs,
  });
  const messages = [
    line("bot", "Hello, Luigi's. How can I help?", 0, 2000),
    line("user", "A table for Friday, please.", 3200, 4800),
    line("bot", "For how many people? We have tables at six, seven and", 5400, 8000),
    line("user", "Two, at seven.", 8050, 9000),
    line("bot", "Booked: two at seven on Friday.", 9800, 11800),
  ];
  return { messages, artifact: { messages, performanceMetrics: { numAssistantInterrupted: 1 } } };
}

function newPage(ctx: BrowserContext): Promise<Page> {
  return ctx.newPage().then((p) => {
    p.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    return p;
  });
}

async function signIn(p: Page, path: string): Promise<void> {
  await p.goto(`${base}${path}`);
  await p.locator("#signin").waitFor({ state: "visible" });
  await p.fill("#api-key", env.org.key);
  await p.click("#signin-form button[type=submit]");
  await p.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });
}

async function listReady(p: Page): Promise<void> {
  await p.locator("body[data-list=ready]").waitFor({ timeout: WAIT_MS });
}

async function shownCallIds(p: Page): Promise<string[]> {
  return p.locator("#calls-table tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.call ?? ""));
}

interface ChartData {
  type: string;
  labels: string[];
  datasets: Array<{ label: string; data: Array<number | null>; reasons?: string[]; stage?: string }>;
}

async function chartData(p: Page, canvasId: string): Promise<ChartData | null> {
  return p.evaluate((id) => {
    const ChartJs = (globalThis as unknown as { Chart?: { getChart(c: unknown): unknown } }).Chart;
    const chart = ChartJs?.getChart(document.getElementById(id)) as
      | { config: { type: string }; data: ChartData & { datasets: Array<Record<string, unknown>> } }
      | undefined;
    if (!chart) return null;
    return {
      type: chart.config.type,
      labels: chart.data.labels,
      datasets: chart.data.datasets.map((d) => ({
        label: String(d.label),
        data: d.data as Array<number | null>,
        reasons: d.reasons as string[] | undefined,
        stage: d.stage as string | undefined,
      })),
    };
  }, canvasId);
}

async function analysed(id: string): Promise<Call> {
  return waitUntil(
    async () => {
      const row = await env.t.db.call.findUnique({ where: { id } });
      const a = row?.analysis as { successEvaluation?: string } | null | undefined;
      return a?.successEvaluation !== undefined ? row : undefined;
    },
    WAIT_MS,
    "the call's analysis",
  );
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  env = await startMediaEnv();
  env.openai.respond = (req) => {
    const a = analysis(req);
    if (a) return a;
    const name = /^TEST ([\w-]+)\./.exec(String(req.messages[0]?.content ?? ""))?.[1] ?? "";
    const r = responders.get(name);
    if (r) return r(req);
    return { text: "Hello." };
  };
  // The organisation's own OpenAI key: the model's cost passes through (BYO).
  const credential = await env.t.request({
    method: "POST",
    url: "/credential",
    key: env.org.key,
    payload: { provider: "openai", apiKey: "sk-customer-dashboard" },
  });
  assert.equal(credential.statusCode, 201, credential.body);
  env.customer.script([
    {
      status: 200,
      body: { results: [{ toolCallId: "call_order_1", result: "Order 42 shipped on Monday" }] },
    },
  ]);

  const place = async (name: string, overrides: Record<string, unknown>) => {
    const placed = await callAssistant(env, { name, analysisPlan: ANALYSIS_PLAN, ...overrides });
    assistants[name] = placed.assistantId;
    return placed.sim;
  };

  const toolCall = async () => {
    const sim = await place("Order desk", {
      model: model(
        "tool",
        (req) =>
          lastMessage(req)?.role === "tool"
            ? { text: "Your order shipped yesterday." }
            : { toolCalls: [{ id: "call_order_1", name: "lookup_order", arguments: { orderNumber: "42" } }] },
        {
          tools: [
            {
              type: "function",
              function: {
                name: "lookup_order",
                description: "Look up an order",
                parameters: { type: "object", properties: { orderNumber: { type: "string" } } },
              },
              server: { url: `${env.customer.url}/tools` },
              messages: [{ type: "request-start", content: "Let me check." }],
            },
          ],
        },
      ),
    });
    await waitForSpoken(sim, 1);
    await sim.say("Where is my order?");
    // The first message, the tool's filler while it runs, and the answer.
    await waitForSpoken(sim, 3, WAIT_MS);
    await sim.hangup();
    calls.tool = await finalizedCall(env, sim.callSid, WAIT_MS);
  };

  const storyCall = async () => {
    const sim = await place("Story line", {
      model: model("story", (req) =>
        String(lastMessage(req)?.content).includes("story")
          ? { text: STORY, interTokenDelayMs: 60 }
          : { text: "Okay, stopping." },
      ),
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 0 },
    });
    // The caller asks for the story over the first message, which may not be interrupted (no
    // barge-in), and then cuts the story off: two assistant lines followed by the caller's words,
    // one of them cut off.
    await sim.waitForAudio({ since: 0, timeoutMs: WAIT_MS });
    const turn = await sim.say("Tell me a story");
    await waitForSpoken(sim, 1, WAIT_MS);
    await sim.waitForAudio({ since: turn.lastVoicedAt ?? Date.now(), timeoutMs: WAIT_MS });
    await sleep(400);
    await sim.say("Wait, stop");
    await waitUntil(() => sim.clears > 0, WAIT_MS, "the barge-in's clear");
    await waitForSpoken(sim, 2, WAIT_MS);
    await sim.hangup();
    calls.story = await finalizedCall(env, sim.callSid, WAIT_MS);
  };

  const closerCall = async () => {
    const sim = await place("Closer", {
      model: model("closer", () => ({ toolCalls: [{ id: "call_end", name: "endCall", arguments: {} }] }), {
        tools: [{ type: "endCall" }],
      }),
    });
    await waitForSpoken(sim, 1);
    await sim.say("That's all, thanks.");
    calls.closer = await finalizedCall(env, sim.callSid, WAIT_MS);
  };

  await Promise.all([toolCall(), storyCall(), closerCall()]);
  for (const c of Object.values(calls)) await analysed(c.id);

  // Older web calls, two days back: pages to turn and a type to filter by. The first has a
  // conversation recorded before bot messages said whether they were cut off.
  // Noon UTC of the day before yesterday, so that all of them fall on that day whatever the time
  // of the run (the page's days are UTC days: the browser runs in UTC).
  const today = new Date();
  const twoDaysAgo = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - 2, 12);
  for (let i = 0; i < SEEDED_WEB_CALLS; i++) {
    const createdAt = new Date(twoDaysAgo + i * 60_000);
    const row = await env.t.db.call.create({
      data: {
        orgId: env.org.orgId,
        type: "vapi.websocketCall",
        status: "ended",
        endedReason: "silence-timed-out",
        startedAt: createdAt,
        endedAt: new Date(createdAt.getTime() + 45_000),
        cost: "0.010000",
        createdAt,
        ...(i === 0 ? olderRecord(createdAt.getTime()) : {}),
      },
    });
    if (i === 0) olderCallId = row.id;
  }

  base = env.t.config.publicUrl;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
    ],
  });
  context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: "en-US",
    timezoneId: "UTC",
    reducedMotion: "reduce",
  });
  page = await newPage(context);
});

after(async () => {
  await browser?.close();
  await env?.close();
});

describe("calls in the dashboard", () => {
  test("the overview: calls, minutes, cost and success rate of the period, by day, and how calls ended", async () => {
    await signIn(page, "/dashboard/calls.html");
    await listReady(page);
    const total = 3 + SEEDED_WEB_CALLS;
    assert.equal(await page.locator('[data-field="calls"]').getAttribute("data-value"), String(total));
    // Success: the worker's evaluations, two "true" of three.
    assert.equal(await page.locator('[data-field="success"]').textContent(), "67%");
    assert.equal(await page.locator('[data-field="success-sub"]').textContent(), "2 of 3 evaluated calls");

    const daily = await chartData(page, "daily-chart");
    assert.ok(daily, "the daily chart is drawn");
    assert.equal(daily.type, "bar");
    assert.equal(daily.labels.length, 7, "one bar per day of the last 7 days");
    assert.equal(
      daily.datasets[0]?.data.reduce<number>((n, v) => n + (v ?? 0), 0),
      total,
    );
    assert.equal(daily.datasets[0]?.data.at(-1), 3, "today's calls");
    assert.equal(daily.datasets[0]?.data.at(-3), SEEDED_WEB_CALLS, "two days ago");

    await page.getByLabel("Success").check();
    const success = await chartData(page, "daily-chart");
    assert.equal(success?.type, "line");
    assert.equal(success?.datasets[0]?.data.at(-1), 66.7);

    const reasons = await chartData(page, "reasons-chart");
    assert.ok(reasons, "the ended reasons chart is drawn");
    const counts = Object.fromEntries(
      (reasons.datasets[0]?.reasons ?? []).map((r, i) => [r, reasons.datasets[0]?.data[i]]),
    );
    assert.deepEqual(counts, {
      "silence-timed-out": SEEDED_WEB_CALLS,
      "customer-ended-call": 2,
      "assistant-ended-call": 1,
    });
    assert.ok(reasons.labels.includes("The caller hung up"), JSON.stringify(reasons.labels));
    await page.screenshot({ path: join(ARTIFACTS, "calls-overview.png"), fullPage: true });
  });

  test("the list pages over GET /v2/call and filters by assistant, ended reason, type and cost", async () => {
    await page.goto(`${base}/dashboard/calls.html`);
    await listReady(page);
    assert.equal(await page.locator("#page-info").textContent(), "Page 1 of 2 · 33 calls");
    const first = await shownCallIds(page);
    assert.equal(first.length, 25);
    assert.deepEqual(
      first.slice(0, 3).sort(),
      Object.values(calls)
        .map((c) => c.id)
        .sort(),
    );
    await page.click("#next");
    await listReady(page);
    assert.equal((await shownCallIds(page)).length, 8);
    assert.match(page.url(), /page=2/);
    assert.equal(await page.locator("#next").isDisabled(), true);

    // Ended reason.
    await page.selectOption("#f-reason", "customer-ended-call");
    await page.click("#filters button[type=submit]");
    await listReady(page);
    assert.deepEqual((await shownCallIds(page)).sort(), [calls.tool.id, calls.story.id].sort());
    assert.equal(await page.locator("#page-info").textContent(), "Page 1 of 1 · 2 calls");

    // Assistant (with the reason still set: nothing), then alone.
    await page.selectOption("#f-assistant", assistants.Closer ?? "");
    await page.click("#filters button[type=submit]");
    await listReady(page);
    assert.deepEqual(await shownCallIds(page), []);
    assert.match((await page.locator("#calls-empty").textContent()) ?? "", /No calls match these filters/);
    await page.selectOption("#f-reason", "");
    await page.click("#filters button[type=submit]");
    await listReady(page);
    assert.deepEqual(await shownCallIds(page), [calls.closer.id]);
    const row = page.locator(`#calls-table tr[data-call="${calls.closer.id}"]`);
    assert.equal(await row.locator("td").nth(1).textContent(), "Closer");
    assert.equal(await row.locator("td").nth(3).textContent(), "The assistant ended the call");

    // Type: web calls (filtered over the API's pages, a page of 25 at a time).
    await page.click("#filters button[type=reset]");
    await listReady(page);
    await page.selectOption("#f-type", "web");
    await page.click("#filters button[type=submit]");
    await listReady(page);
    const web = await shownCallIds(page);
    assert.equal(web.length, 25);
    assert.ok(!web.some((id) => Object.values(calls).some((c) => c.id === id)));
    await page.click("#next");
    await listReady(page);
    assert.equal((await shownCallIds(page)).length, SEEDED_WEB_CALLS - 25);
    await page.click("#prev");
    await listReady(page);
    assert.deepEqual(await shownCallIds(page), web);

    // Cost range: exact to the micro-dollar against the API's own answer.
    await page.selectOption("#f-type", "");
    await page.fill("#f-cost-min", "0.010001");
    await page.click("#filters button[type=submit]");
    await listReady(page);
    const dearer = await env.t.request({
      method: "GET",
      url: "/v2/call?costGe=0.010001&limit=100",
      key: env.org.key,
    });
    const expected = (dearer.json() as { results: Array<{ id: string }> }).results.map((c) => c.id);
    assert.ok(expected.length >= 1);
    assert.deepEqual(await shownCallIds(page), expected);
    await page.fill("#f-cost-max", "cheap");
    await page.click("#filters button[type=submit]");
    assert.equal(
      await page.locator("#filter-error").textContent(),
      "Cost to: enter an amount in US dollars, like 0.25.",
    );
    await page.screenshot({ path: join(ARTIFACTS, "calls-list.png"), fullPage: true });
    await page.click("#filters button[type=reset]");
    await listReady(page);
  });

  test("a call's page: transcript, end reason in words, latency chart, tool call and result, costs with BYO passthrough", async () => {
    await page.goto(`${base}/dashboard/calls.html`);
    await listReady(page);
    await page.locator(`#calls-table tr[data-call="${calls.tool.id}"] a`).click();
    await page.waitForURL(`${base}/dashboard/call.html?id=${calls.tool.id}`);
    await page.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });

    const view = (await (
      await env.t.request({ method: "GET", url: `/call/${calls.tool.id}`, key: env.org.key })
    ).json()) as {
      cost: number;
      costs: Array<{ type: string; billedBy: string }>;
      artifact: { performanceMetrics: { turnLatencies: Array<Record<string, number>> } };
    };

    assert.equal(await page.locator("#call-title").textContent(), "Inbound call with Order desk");
    assert.match((await page.locator("#ended").textContent()) ?? "", /The caller hung up/);
    assert.match((await page.locator("#ended").textContent()) ?? "", /customer-ended-call/);

    const lines = await page
      .locator("#call-transcript li")
      .evaluateAll((lis) => lis.map((li) => [li.dataset.role, li.querySelector(".line-text")?.textContent]));
    assert.deepEqual(lines, [
      ["bot", "Hi, this is Riley from Acme. How can I help?"],
      ["user", "Where is my order?"],
      ["tool_calls", "lookup_order"],
      ["bot", "Let me check."],
      ["bot", "Your order shipped yesterday."],
    ]);

    const tool = page.locator('#tools li[data-tool="lookup_order"]');
    assert.deepEqual(JSON.parse((await tool.locator('[data-field="arguments"]').textContent()) ?? ""), {
      orderNumber: "42",
    });
    assert.equal(await tool.locator('[data-field="result"]').textContent(), "Order 42 shipped on Monday");
    assert.match((await tool.locator(".badge").textContent()) ?? "", /^Answered in \d/);

    // One bar stack per measured turn, each stage the API's figure.
    const turns = view.artifact.performanceMetrics.turnLatencies;
    assert.ok(turns.length >= 1);
    const latency = await chartData(page, "latency-chart");
    assert.ok(latency, "the latency chart is drawn");
    assert.equal(latency.labels.length, turns.length);
    const byStage = Object.fromEntries(latency.datasets.map((d) => [d.stage, d.data]));
    for (const stage of [
      "transcriberLatency",
      "endpointingLatency",
      "modelLatency",
      "voiceLatency",
      "turnLatency",
    ]) {
      assert.deepEqual(
        byStage[stage],
        turns.map((t) => t[stage]),
        stage,
      );
    }
    assert.deepEqual(
      byStage.platformLatency,
      turns.map((t) => t.platformLatency ?? 0),
    );

    // The breakdown: the model on the organisation's key, the rest billed.
    const billedBy = await page
      .locator("#breakdown-table tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [tr.dataset.type, tr.dataset.billedBy]));
    assert.deepEqual(
      billedBy,
      view.costs.map((c) => [c.type, c.billedBy]),
    );
    assert.ok(billedBy.some(([type, by]) => type === "model" && by === "passthrough"));
    assert.equal(
      await page.locator('#breakdown-table tr[data-type="model"] .badge').textContent(),
      "Your key (passthrough)",
    );
    assert.match((await page.locator("#analysis").textContent()) ?? "", /The caller asked about an order\./);

    // Server messages: where they went; no log for this call yet, and the page says so.
    assert.match((await page.locator("#server-messages").textContent()) ?? "", new RegExp(env.customer.url));
    await page.screenshot({ path: join(ARTIFACTS, "call-page.png"), fullPage: true });
  });

  test("the player loads the call's recording; choosing a transcript line plays it from there", async () => {
    await page.goto(`${base}/dashboard/call.html?id=${calls.tool.id}`);
    await page.locator("#player[data-state=ready]").waitFor({ timeout: WAIT_MS });
    const audio = page.locator("#audio");
    const duration = await audio.evaluate((a) => (a as HTMLAudioElement).duration);
    // The last line the recording holds, then the first: the recording plays from each.
    const starts = await page
      .locator("#call-transcript li")
      .evaluateAll((lis) => lis.map((li) => Number((li as HTMLElement).dataset.seconds)));
    const last = starts.findLastIndex((at) => at > 0.5 && at < duration - 0.2);
    assert.ok(last > 0, `a line inside the recording (${duration} s): ${JSON.stringify(starts)}`);
    const at = starts[last] ?? 0;
    const line = page.locator("#call-transcript li").nth(last);
    await line.locator("button").click();
    const position = await audio.evaluate((a) => (a as HTMLAudioElement).currentTime);
    assert.ok(
      position >= at - 0.05 && position < at + 1,
      `playing from ${position} s, the line is at ${at} s`,
    );
    assert.equal(await line.locator("button").getAttribute("aria-current"), "true");
    await page.locator("#call-transcript li").first().locator("button").click();
    const back = await audio.evaluate((a) => (a as HTMLAudioElement).currentTime);
    assert.ok(back < at, `back to ${back} s`);
  });

  test("the answer the caller cut off is marked, from the call's record, where counting would mark another; clicking a line marks it as the place to play from", async () => {
    const view = (await (
      await env.t.request({ method: "GET", url: `/call/${calls.story.id}`, key: env.org.key })
    ).json()) as { messages: StoredMessage[]; artifact: StoredArtifact };
    assert.equal(view.artifact.performanceMetrics.numAssistantInterrupted, 1);
    // The count-based guess (the bot line the caller's next words followed most closely) would mark
    // the first message: the caller spoke over it, without a barge-in.
    const spoken = view.messages
      .filter((m) => m.role === "bot" || m.role === "user")
      .sort((a, b) => a.time - b.time);
    const gapAfter = (m: StoredMessage | undefined) => {
      const next = spoken[spoken.indexOf(m as StoredMessage) + 1];
      assert.equal(next?.role, "user", `the caller's words follow "${m?.message}"`);
      return (next?.time ?? 0) - (m?.endTime ?? 0);
    };
    const [greeting, story] = spoken.filter((m) => m.role === "bot");
    assert.ok(gapAfter(greeting) < gapAfter(story), "the caller's words followed the greeting more closely");

    await page.goto(`${base}/dashboard/call.html?id=${calls.story.id}`);
    await page.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });
    const cut = page.locator('#call-transcript li[data-interrupted="true"]');
    assert.equal(await cut.count(), 1);
    assert.ok(STORY.startsWith((await cut.locator(".line-text").textContent()) ?? "-"));
    assert.equal(await cut.locator(".badge").textContent(), "Interrupted");
    const first = page.locator("#call-transcript li").first();
    assert.equal(
      await first.locator(".line-text").textContent(),
      "Hi, this is Riley from Acme. How can I help?",
    );
    assert.equal(await first.getAttribute("data-interrupted"), null, "the greeting was heard out");
    await cut.locator("button").click();
    assert.equal(await cut.locator("button").getAttribute("aria-current"), "true");
    assert.match((await page.locator("#ended").textContent()) ?? "", /The caller hung up/);
  });

  test("a call recorded before lines said whether they were cut off: the counted interruption is still placed", async () => {
    await page.goto(`${base}/dashboard/call.html?id=${olderCallId}`);
    await page.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });
    const marked = await page
      .locator('#call-transcript li[data-interrupted="true"] .line-text')
      .evaluateAll((spans) => spans.map((s) => s.textContent));
    assert.deepEqual(marked, ["For how many people? We have tables at six, seven and"]);
  });

  test("on a phone-sized screen (390×844) nothing overflows sideways", async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      locale: "en-US",
      timezoneId: "UTC",
      reducedMotion: "reduce",
    });
    try {
      const p = await newPage(phone);
      await signIn(p, "/dashboard/calls.html");
      await listReady(p);
      const width = () => p.evaluate(() => document.documentElement.scrollWidth);
      assert.ok((await width()) <= 390, `calls page is ${await width()} px wide`);
      await p.screenshot({ path: join(ARTIFACTS, "calls-phone.png"), fullPage: true });
      await p.goto(`${base}/dashboard/call.html?id=${calls.tool.id}`);
      await p.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });
      assert.ok((await width()) <= 390, `call page is ${await width()} px wide`);
      await p.screenshot({ path: join(ARTIFACTS, "call-phone.png"), fullPage: true });
    } finally {
      await phone.close();
    }
  });

  test("the call page alone may play media, from this origin or a blob; the others may not", async () => {
    const call = await env.t.request({ method: "GET", url: "/dashboard/call.html" });
    assert.equal(call.statusCode, 200);
    assert.match(
      String(call.headers["content-security-policy"]),
      /media-src 'self' blob:; connect-src 'self';/,
    );
    const list = await env.t.request({ method: "GET", url: "/dashboard/calls.html" });
    assert.doesNotMatch(String(list.headers["content-security-policy"]), /media-src/);
  });

  test("an empty period says what to do next; the page logged no errors", async () => {
    await page.goto(`${base}/dashboard/calls.html?period=custom&from=2020-01-01&to=2020-01-31`);
    await listReady(page);
    assert.equal(await page.locator("#overview-empty").isVisible(), true);
    assert.match((await page.locator("#overview-empty").textContent()) ?? "", /talk to your assistant/);
    assert.match((await page.locator("#calls-empty").textContent()) ?? "", /No calls in this period/);
    await page.goto(`${base}/dashboard/call.html?id=00000000-0000-4000-8000-000000000000`);
    await page.locator("body[data-ready=true]").waitFor({ timeout: WAIT_MS });
    assert.match((await page.locator("#status").textContent()) ?? "", /There is no such call/);
    // The missing call's 404 is the page's question, not a fault.
    assert.deepEqual(
      errors.filter((e) => !e.includes("status of 404")),
      [],
    );
  });
});
