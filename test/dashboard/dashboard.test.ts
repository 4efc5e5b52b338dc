import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { CATEGORIES, type CallUsage, recordCallAnalysis, recordCallCost } from "../../libs/billing/index.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

// The billing dashboard in a real browser: Debian's headless Chromium driven by playwright-core
// loads /dashboard from the API listening on loopback, against a seeded database, signs in with
// the organisation's key, and everything it shows must equal what the API answers.

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = join(process.cwd(), "test-artifacts", "dashboard.png");

let t: TestApi;
let org: TestOrg;
let base: string;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
let byoCallId: string;
let analysedCallId: string;
const requested: string[] = [];
const consoleErrors: string[] = [];

const DAY_MS = 86_400_000;
const now = new Date();
const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);

/** Usage of a call of `seconds`, scaled like a real conversation; `byo` marks the org's own keys. */
function usage(seconds: number, byo = false): CallUsage {
  const turns = Math.max(1, Math.round(seconds / 15));
  return {
    durationSeconds: seconds,
    transport: { provider: "twilio", direction: "inbound", seconds, byo: false },
    stt: { provider: "deepgram", model: "nova-3", audioSeconds: seconds - 1.2, byo },
    llm: {
      provider: "openai",
      model: "gpt-4o",
      promptTokens: 1_200 * turns,
      cachedPromptTokens: 400 * turns,
      completionTokens: 90 * turns,
      byo,
    },
    tts: { provider: "11labs", model: "eleven_flash_v2_5", characters: 180 * turns, byo },
  };
}

async function endedCall(
  orgId: string,
  day: number,
  seconds: number,
  opts: { assistantId?: string; byo?: boolean; type?: string } = {},
): Promise<string> {
  const startedAt = new Date(monthStart + day * DAY_MS + 10 * 3_600_000 + seconds * 1000);
  const call = await t.db.call.create({
    data: {
      orgId,
      type: opts.type ?? "inboundPhoneCall",
      status: "ended",
      endedReason: "customer-ended-call",
      assistantId: opts.assistantId ?? null,
      startedAt,
      endedAt: new Date(startedAt.getTime() + seconds * 1000),
      usage: usage(seconds, opts.byo),
      createdAt: startedAt,
    },
  });
  await recordCallCost(t.db, call.id);
  return call.id;
}

async function api<T>(url: string): Promise<T> {
  const res = await t.request({ method: "GET", url, key: org.key });
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  return res.json() as T;
}

/** The page's rounding, re-derived independently: exact USD string → "$1,234.57" (half-up). */
function cents(usd: string): string {
  const m = /^(\d+)\.(\d{6})$/.exec(usd);
  assert.ok(m, usd);
  const micros = BigInt(m[1] ?? "0") * 1_000_000n + BigInt(m[2] ?? "0");
  let q = micros / 10_000n;
  if ((micros % 10_000n) * 2n >= 10_000n) q += 1n;
  return `$${(q / 100n).toLocaleString("en-US")}.${(q % 100n).toString().padStart(2, "0")}`;
}

function microsOf(n: number): string {
  const [whole, frac = ""] = n.toFixed(6).split(".");
  return (BigInt(whole ?? "0") * 1_000_000n + BigInt(frac.padEnd(6, "0"))).toString();
}

const minutesText = (m: number) => new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(m);

interface Split {
  billedMicros: number;
  billedUsd: string;
  passthroughMicros: number;
  passthroughUsd: string;
  totalMicros: number;
  totalUsd: string;
}
interface Summary extends Split {
  period: { start: string; end: string };
  minutes: number;
  calls: number;
  remainingUsd: string | null;
  remainingMicros: number | null;
  spendLimitUsd: string | null;
  billingState: string;
}
interface UsageRow extends Split {
  key: string;
  label?: string;
  calls: number;
  minutes: number;
  byCategory?: Record<string, Split>;
}
interface Usage {
  rows: UsageRow[];
  totals: Split & { calls: number; minutes: number };
}
interface CostLine {
  type: string;
  cost: number;
  billedBy: string;
}
interface CallJson {
  id: string;
  cost?: number;
  costs?: CostLine[];
  startedAt?: string;
  endedAt?: string;
}

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Acme");
  const other = await t.createOrg("Globex");

  const a1 = await t.request({
    method: "POST",
    url: "/assistant",
    key: org.key,
    payload: assistantBody({ name: "Front desk" }),
  });
  const a2 = await t.request({
    method: "POST",
    url: "/assistant",
    key: org.key,
    payload: assistantBody({ name: "Sales line" }),
  });
  assert.equal(a1.statusCode, 201, a1.body);
  assert.equal(a2.statusCode, 201, a2.body);
  const frontDesk = a1.json().id as string;
  const sales = a2.json().id as string;

  // Six calls over four days of this month; one on the organisation's own model keys (BYO).
  await endedCall(org.orgId, 0, 125.4, { assistantId: frontDesk });
  await endedCall(org.orgId, 1, 62, { assistantId: frontDesk });
  byoCallId = await endedCall(org.orgId, 1, 125.4, { assistantId: sales, byo: true });
  await endedCall(org.orgId, 2, 181.7, { assistantId: sales });
  await endedCall(org.orgId, 2, 30.2, { type: "webCall" });
  analysedCallId = await endedCall(org.orgId, 3, 300, { assistantId: frontDesk });
  // Its post-call analysis ran: a sixth line (category "analysis").
  await recordCallAnalysis(t.db, {
    callId: analysedCallId,
    analysis: { summary: "The caller asked for a quote.", successEvaluation: "true" },
    usage: {
      provider: "openai",
      model: "gpt-4o",
      byo: false,
      summary: { promptTokens: 1_500, cachedPromptTokens: 0, completionTokens: 45 },
      successEvaluation: { promptTokens: 1_700, cachedPromptTokens: 0, completionTokens: 1 },
    },
  });
  // Another tenant's call: never on Acme's dashboard.
  await endedCall(other.orgId, 1, 600);

  const limit = await t.request({
    method: "PATCH",
    url: "/billing/settings",
    key: org.key,
    payload: { monthlySpendLimitUsd: "5" },
  });
  assert.equal(limit.statusCode, 200, limit.body);

  await t.app.listen({ host: "127.0.0.1", port: 0 });
  const address = t.app.server.address();
  assert.ok(address && typeof address === "object");
  base = `http://127.0.0.1:${address.port}`;

  userDataDir = await mkdtemp(join(tmpdir(), "switchboard-dashboard-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    locale: "en-US",
    timezoneId: "UTC",
    reducedMotion: "reduce",
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("request", (r) => requested.push(r.url()));
  page.on("response", (r) => {
    if (r.status() === 404) consoleErrors.push(`404 ${r.url()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // A refused sign-in logs the 401 of its fetch; anything else is a fault of the page.
    if (m.type() === "error" && !m.text().includes("status of 401")) consoleErrors.push(m.text());
  });
});

after(async () => {
  await context?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  await t?.close();
});

describe("billing dashboard in a browser", () => {
  test("the usage API splits rows by category on request, leaving the rest unchanged", async () => {
    const plain = await api<Usage>("/billing/usage?groupBy=day");
    const split = await api<Usage>("/billing/usage?groupBy=day&split=category");
    assert.deepEqual(split.totals, plain.totals);
    assert.deepEqual(
      split.rows.map(({ byCategory: _b, ...rest }) => rest),
      plain.rows,
    );
    for (const row of split.rows) {
      assert.deepEqual(Object.keys(row.byCategory ?? {}), [...CATEGORIES]);
      const parts = Object.values(row.byCategory ?? {});
      assert.equal(
        parts.reduce((s, p) => s + p.billedMicros, 0),
        row.billedMicros,
      );
      assert.equal(
        parts.reduce((s, p) => s + p.passthroughMicros, 0),
        row.passthroughMicros,
      );
    }
    const bad = await t.request({
      method: "GET",
      url: "/billing/usage?groupBy=category&split=category",
      key: org.key,
    });
    assert.equal(bad.statusCode, 400, bad.body);
  });

  test("a wrong key is refused with a clear message; the right key signs in", async () => {
    await page.goto(`${base}/dashboard`);
    assert.equal(new URL(page.url()).pathname, "/dashboard/");
    await page.locator("#signin").waitFor({ state: "visible" });
    assert.equal(await page.locator("#app").isVisible(), false);

    await page.fill("#api-key", "sk_not_a_real_key");
    await page.click("#signin-form button[type=submit]");
    await page.locator("#signin-error", { hasText: "not accepted" }).waitFor();
    assert.match((await page.locator("#signin-error").textContent()) ?? "", /invalid or has been revoked/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    await page.fill("#api-key", org.key);
    await page.click("#signin-form button[type=submit]");
    await page.locator("body[data-ready=true]").waitFor();
    assert.equal(await page.locator("#signin").isVisible(), false);
  });

  test("the period at a glance equals GET /billing/summary", async () => {
    const s = await api<Summary>("/billing/summary");
    assert.equal(s.calls, 6);
    assert.ok(s.passthroughMicros > 0, "the BYO call has passthrough lines");
    const money = async (field: string) => {
      const span = page.locator(`[data-field="${field}"] [data-micros]`);
      return { micros: await span.getAttribute("data-micros"), text: await span.textContent() };
    };
    assert.deepEqual(await money("billed"), { micros: String(s.billedMicros), text: cents(s.billedUsd) });
    assert.deepEqual(await money("saved"), {
      micros: String(s.passthroughMicros),
      text: cents(s.passthroughUsd),
    });
    assert.ok(s.remainingUsd !== null && s.remainingMicros !== null);
    assert.deepEqual(await money("remaining"), {
      micros: String(s.remainingMicros),
      text: cents(s.remainingUsd),
    });
    assert.equal(await page.locator('[data-field="limit"]').textContent(), "of $5.00 monthly limit");

    const minutes = page.locator('[data-field="minutes"]');
    assert.equal(await minutes.getAttribute("data-value"), String(s.minutes));
    assert.equal(await minutes.textContent(), minutesText(s.minutes));
    const calls = page.locator('[data-field="calls"]');
    assert.equal(await calls.getAttribute("data-value"), String(s.calls));
    assert.equal(await calls.textContent(), String(s.calls));
    assert.equal(await page.locator('[data-field="state"]').getAttribute("data-value"), s.billingState);
    assert.equal(await page.locator('[data-field="state"]').textContent(), "Active");

    // What BYO keys saved, per category, equals the summary's split.
    const passthroughTotal = page.locator('#category-table [data-col="passthrough-total"] [data-micros]');
    assert.equal(await passthroughTotal.getAttribute("data-micros"), String(s.passthroughMicros));
  });

  test("the daily chart has one dataset per category with the API's amounts", async () => {
    const s = await api<Summary>("/billing/summary");
    const range = `start=${encodeURIComponent(s.period.start)}&end=${encodeURIComponent(s.period.end)}`;
    const daily = await api<Usage>(`/billing/usage?${range}&groupBy=day&split=category`);
    const shown = await page.evaluate(() => {
      const canvas = document.getElementById("daily-chart");
      const ChartJs = (globalThis as unknown as { Chart: { getChart(c: unknown): unknown } }).Chart;
      const chart = ChartJs.getChart(canvas) as
        | {
            data: { labels: string[]; datasets: { label: string; category: string; micros: string[] }[] };
          }
        | undefined;
      if (!chart || !(canvas instanceof HTMLCanvasElement)) return null;
      return {
        width: canvas.width,
        height: canvas.height,
        labels: chart.data.labels.length,
        datasets: chart.data.datasets.map((d) => ({
          label: d.label,
          category: d.category,
          micros: d.micros,
        })),
      };
    });
    assert.ok(shown, "a Chart.js instance is bound to the canvas");
    assert.ok(shown.width > 0 && shown.height > 0);
    assert.equal(shown.labels, daily.rows.length);
    assert.deepEqual(
      shown.datasets.map((d) => d.category),
      [...CATEGORIES],
    );
    for (const d of shown.datasets) {
      assert.deepEqual(
        d.micros,
        daily.rows.map((r) => String(r.byCategory?.[d.category]?.billedMicros)),
        `dataset ${d.label}`,
      );
    }
    // Days with usage: the four seeded days.
    assert.equal(await page.locator("#daily-table tbody tr[data-day]").count(), 4);
  });

  test("the per-assistant table equals GET /billing/usage?groupBy=assistant", async () => {
    const byAssistant = await api<Usage>("/billing/usage?groupBy=assistant");
    const assistants = await api<{ id: string; name: string }[]>("/assistant");
    const names = new Map(assistants.map((a) => [a.id, a.name]));
    const rows = page.locator("#assistant-table tbody tr");
    assert.equal(await rows.count(), byAssistant.rows.length);
    assert.equal(byAssistant.rows.length, 3);
    for (const [i, r] of byAssistant.rows.entries()) {
      const row = rows.nth(i);
      assert.equal(await row.getAttribute("data-assistant"), r.key);
      assert.equal(
        await row.locator('[data-col="name"]').textContent(),
        names.get(r.key) ?? "No saved assistant",
      );
      assert.equal(await row.locator('[data-col="calls"]').getAttribute("data-value"), String(r.calls));
      assert.equal(await row.locator('[data-col="minutes"]').getAttribute("data-value"), String(r.minutes));
      assert.equal(await row.locator('[data-col="minutes"]').textContent(), minutesText(r.minutes));
      const billed = row.locator('[data-col="billed"] [data-micros]');
      assert.equal(await billed.getAttribute("data-micros"), String(r.billedMicros));
      assert.equal(await billed.textContent(), cents(r.billedUsd));
      const byo = row.locator('[data-col="passthrough"] [data-micros]');
      assert.equal(await byo.getAttribute("data-micros"), String(r.passthroughMicros));
    }
  });

  test("recent calls show duration and cost; a click shows the call's breakdown", async () => {
    const calls = await api<CallJson[]>("/call?limit=20");
    const rows = page.locator("#call-table tbody tr");
    assert.equal(await rows.count(), calls.length);
    assert.equal(calls.length, 6);
    for (const [i, c] of calls.entries()) {
      const row = rows.nth(i);
      assert.equal(await row.getAttribute("data-call"), c.id);
      assert.ok(c.cost !== undefined);
      assert.equal(
        await row.locator('[data-col="cost"] [data-micros]').getAttribute("data-micros"),
        microsOf(c.cost),
      );
    }
    const byoRow = page.locator(`#call-table tbody tr[data-call="${byoCallId}"]`);
    assert.equal(await byoRow.locator('[data-col="duration"]').textContent(), "2m 05s");

    await byoRow.click();
    await page.locator("#breakdown-table").waitFor();
    const call = await api<CallJson>(`/call/${byoCallId}`);
    const costs = call.costs ?? [];
    const lines = page.locator("#breakdown-table tbody tr");
    assert.equal(await lines.count(), costs.length);
    let passthrough = 0n;
    for (const [i, c] of costs.entries()) {
      const line = lines.nth(i);
      assert.equal(await line.getAttribute("data-type"), c.type);
      assert.equal(await line.getAttribute("data-billed-by"), c.billedBy);
      assert.equal(
        await line.locator('[data-col="cost"] [data-micros]').getAttribute("data-micros"),
        microsOf(c.cost),
      );
      if (c.billedBy === "passthrough") passthrough += BigInt(microsOf(c.cost));
    }
    assert.deepEqual(
      costs.filter((c) => c.billedBy === "passthrough").map((c) => c.type),
      ["transcriber", "model", "voice"],
    );
    assert.equal(
      await page.locator('[data-field="call-passthrough"] [data-micros]').getAttribute("data-micros"),
      passthrough.toString(),
    );
    assert.ok(call.cost !== undefined);
    assert.equal(
      await page.locator('[data-field="call-total"] [data-micros]').getAttribute("data-micros"),
      microsOf(call.cost),
    );
    assert.equal(
      await page.locator("#call-table tbody tr[aria-selected=true]").getAttribute("data-call"),
      byoCallId,
    );
  });

  test("an analysed call's breakdown lists one analysis line per step, billed by the platform", async () => {
    await page.locator(`#call-table tbody tr[data-call="${analysedCallId}"]`).click();
    await page.locator(`#breakdown[data-call="${analysedCallId}"] #breakdown-table`).waitFor();
    const call = await api<CallJson>(`/call/${analysedCallId}`);
    const costs = call.costs ?? [];
    assert.deepEqual(
      costs.map((c) => c.type),
      ["transport", "transcriber", "model", "voice", "vapi", "analysis", "analysis"],
    );
    const rows = page.locator('#breakdown-table tbody tr[data-type="analysis"]');
    assert.equal(await rows.count(), 2);
    assert.deepEqual(
      await rows.evaluateAll((trs) => trs.map((tr) => Array.from(tr.children, (c) => c.textContent?.trim()))),
      [
        [
          "Call analysis (LLM)",
          "openai · gpt-4o · summary",
          "1,500 prompt · 45 completion tokens",
          "Billed by platform",
          await rows.nth(0).locator('[data-col="cost"]').textContent(),
        ],
        [
          "Call analysis (LLM)",
          "openai · gpt-4o · success evaluation",
          "1,700 prompt · 1 completion tokens",
          "Billed by platform",
          await rows.nth(1).locator('[data-col="cost"]').textContent(),
        ],
      ],
    );
    // 1545 + 1701 tokens at gpt-4o: 3200 × $2.50 + 46 × $10.00 per 1M = $0.00846.
    const analysisMicros = costs
      .filter((c) => c.type === "analysis")
      .reduce((a, c) => a + BigInt(microsOf(c.cost)), 0n);
    assert.equal(analysisMicros, 8_460n);
    assert.ok(call.cost !== undefined);
    assert.equal(
      await page.locator('[data-field="call-total"] [data-micros]').getAttribute("data-micros"),
      microsOf(call.cost),
    );
  });

  test("invoices show an empty state; the page made no request off this origin; screenshot", async () => {
    const invoices = await api<{ data: unknown[]; upcoming: unknown }>("/billing/invoices");
    assert.deepEqual(invoices, { data: [], upcoming: null });
    assert.equal(await page.locator("#invoice-empty").isVisible(), true);
    assert.equal(await page.locator("#invoice-table").isVisible(), false);

    const offOrigin = requested.filter((u) => !u.startsWith(`${base}/`));
    assert.deepEqual(offOrigin, []);
    assert.ok(requested.includes(`${base}/dashboard/vendor/chart.js`));
    assert.deepEqual(consoleErrors, []);

    await mkdir(join(process.cwd(), "test-artifacts"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Narrow screens: nothing overflows the viewport sideways (tables scroll in their own box).
    await page.setViewportSize({ width: 390, height: 844 });
    const fits = await page
      .waitForFunction(() => document.documentElement.scrollWidth <= 390, undefined, { timeout: 5_000 })
      .then(() => true)
      .catch(() => false);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(fits, `page is ${width}px wide on a 390px screen`);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test("sign out forgets the key", async () => {
    await page.click("#signout");
    await page.locator("#signin").waitFor({ state: "visible" });
    assert.equal(await page.locator("#app").isVisible(), false);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload();
    await page.locator("#signin").waitFor({ state: "visible" });
  });
});
