// Switchboard billing dashboard: a plain ES module, no build step. Everything comes from the
// same-origin API with the organisation's API key (kept in sessionStorage, sent as a Bearer token).
// Money is handled as exact integers (micro-dollars, BigInt) parsed from the API's decimal strings;
// floats appear only as chart bar heights.

const KEY_STORAGE = "switchboard.dashboard.apiKey";
const CATEGORIES = ["transport", "stt", "llm", "tts", "platform", "analysis"];
const CATEGORY_LABELS = {
  transport: "Telephony",
  stt: "Transcriber (STT)",
  llm: "Model (LLM)",
  tts: "Voice (TTS)",
  platform: "Platform fee",
  analysis: "Call analysis (LLM)",
};
const CATEGORY_COLORS = {
  transport: "#4c6ef5",
  stt: "#15aabf",
  llm: "#ae3ec9",
  tts: "#f59f00",
  platform: "#2f9e44",
  analysis: "#e8590c",
};
const COST_TYPE_LABELS = {
  transport: "Telephony",
  transcriber: "Transcriber (STT)",
  model: "Model (LLM)",
  voice: "Voice (TTS)",
  vapi: "Platform fee",
  analysis: "Call analysis (LLM)",
};
const ANALYSIS_TYPE_LABELS = {
  summary: "summary",
  structuredData: "structured data",
  successEvaluation: "success evaluation",
};
const LOCALE = "en-US";

// ---------------------------------------------------------------- money (exact) --------------

const USD_RE = /^(-?)(\d+)\.(\d{6})$/;

/** "12.345678" → 12345678n. Throws on anything that is not the API's exact six-decimal form. */
export function usdToMicros(usd) {
  const m = USD_RE.exec(usd);
  if (!m) throw new Error(`not a USD amount: ${usd}`);
  const v = BigInt(m[2]) * 1_000_000n + BigInt(m[3]);
  return m[1] ? -v : v;
}

/** A JSON number carrying USD with at most six decimals (call cost) → micros, without arithmetic. */
export function numberToMicros(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return null;
  return usdToMicros(n.toFixed(6));
}

function group(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Micros → "$1,234.57" (half-up to `decimals`, 0–6). */
export function formatMicros(micros, decimals = 2) {
  let v = BigInt(micros);
  const neg = v < 0n;
  if (neg) v = -v;
  const unit = 10n ** BigInt(6 - decimals);
  let q = v / unit;
  if ((v % unit) * 2n >= unit) q += 1n;
  const scale = 10n ** BigInt(decimals);
  const whole = group((q / scale).toString());
  const frac = decimals > 0 ? `.${(q % scale).toString().padStart(decimals, "0")}` : "";
  return `${neg ? "-" : ""}$${whole}${frac}`;
}

/** Integer cents (Stripe) → "$12.34". */
function formatCents(cents, currency) {
  const v = BigInt(cents);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const cur = (currency ?? "usd").toLowerCase();
  const sym = cur === "usd" ? "$" : `${cur.toUpperCase()} `;
  return `${neg ? "-" : ""}${sym}${group((a / 100n).toString())}.${(a % 100n).toString().padStart(2, "0")}`;
}

const minutesFmt = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2 });
const intFmt = new Intl.NumberFormat(LOCALE);
export const formatMinutes = (m) => minutesFmt.format(m);

function formatDuration(startedAt, endedAt) {
  if (!startedAt || !endedAt) return "—";
  const s = Math.max(0, Math.round((Date.parse(endedAt) - Date.parse(startedAt)) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m ${sec}s` : `${m}m ${sec}s`;
}

const dateTimeFmt = new Intl.DateTimeFormat(LOCALE, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZone: "UTC",
  timeZoneName: "short",
});
const dayFmt = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric", timeZone: "UTC" });
const monthFmt = new Intl.DateTimeFormat(LOCALE, { month: "long", year: "numeric", timeZone: "UTC" });

// ---------------------------------------------------------------- DOM helpers ---------------

const $ = (sel) => document.querySelector(sel);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A money cell: rounded to cents, the exact amount in the title and data-micros. */
function money(micros, decimals = 2) {
  return el(
    "span",
    { title: formatMicros(micros, 6), "data-micros": micros.toString() },
    formatMicros(micros, decimals),
  );
}

function setField(name, ...children) {
  const node = document.querySelector(`[data-field="${name}"]`);
  node.replaceChildren(...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

function badge(text, tone) {
  return el("span", { class: `badge badge-${tone}` }, text);
}

// ---------------------------------------------------------------- API -----------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function getKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(path, key = getKey()) {
  let res;
  try {
    res = await fetch(path, {
      headers: { authorization: `Bearer ${key}`, accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "The API could not be reached. Check your connection and try again.");
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const message = body && typeof body.message === "string" ? body.message : `HTTP ${res.status}`;
    throw new ApiError(res.status, message);
  }
  return body;
}

function signInMessage(err) {
  if (err.status === 401) return "That API key was not accepted: it is invalid or has been revoked.";
  if (err.status === 403) return "That is a public key. Sign in with a private API key.";
  if (err.status === 429) return "Too many requests. Wait a minute and try again.";
  return `Sign-in failed: ${err.message}`;
}

// ---------------------------------------------------------------- state & views -------------

let chart = null;
let dailyRows = [];
const assistantNames = new Map();

function showSignIn(message = "") {
  if (chart) {
    chart.destroy();
    chart = null;
  }
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#period").textContent = "";
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  const input = $("#api-key");
  input.value = "";
  input.setAttribute("aria-invalid", message ? "true" : "false");
  input.focus();
}

function showApp() {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
}

function renderSummary(s) {
  $("#period").textContent = monthFmt.format(new Date(s.period.start));
  const billed = usdToMicros(s.billedUsd);
  setField("billed", money(billed));
  setField("billed-exact", `exact ${formatMicros(billed, 6)}`);
  setField("minutes", formatMinutes(s.minutes)).dataset.value = String(s.minutes);
  setField("calls", intFmt.format(s.calls)).dataset.value = String(s.calls);
  if (s.spendLimitUsd === null || s.remainingUsd === null) {
    setField("remaining", "No limit");
    setField("limit", "no monthly spend limit set");
  } else {
    setField("remaining", money(usdToMicros(s.remainingUsd)));
    setField("limit", `of ${formatMicros(usdToMicros(s.spendLimitUsd))} monthly limit`);
  }
  const tone = s.billingState === "active" ? "good" : s.billingState === "past_due" ? "warn" : "bad";
  const stateLabel =
    { active: "Active", past_due: "Payment failed", canceled: "Canceled" }[s.billingState] ?? s.billingState;
  setField("state", badge(stateLabel, tone)).dataset.value = s.billingState;
  setField(
    "concurrency",
    `${intFmt.format(s.activeCalls)} of ${intFmt.format(s.concurrencyLimit)} concurrent calls in use`,
  );
  setField("saved", money(usdToMicros(s.passthroughUsd)));

  const body = $("#category-table tbody");
  body.replaceChildren(
    ...CATEGORIES.map((c) => {
      const split = s.byCategory[c];
      return el(
        "tr",
        { "data-category": c },
        el("th", { scope: "row" }, swatch(c), CATEGORY_LABELS[c]),
        el("td", { class: "num", "data-col": "billed" }, money(usdToMicros(split.billedUsd))),
        el("td", { class: "num", "data-col": "passthrough" }, money(usdToMicros(split.passthroughUsd))),
      );
    }),
  );
  $("#category-table tfoot").replaceChildren(
    el(
      "tr",
      {},
      el("td", {}, "Total"),
      el("td", { class: "num" }, money(billed)),
      el("td", { class: "num", "data-col": "passthrough-total" }, money(usdToMicros(s.passthroughUsd))),
    ),
  );
}

function swatch(category) {
  const s = el("span", { class: "swatch", "aria-hidden": "true" });
  s.style.background = CATEGORY_COLORS[category];
  return s;
}

function chartMode() {
  return document.querySelector('input[name="chart-mode"]:checked')?.value === "total" ? "total" : "billed";
}

function dayMicros(row, category, mode) {
  const split = row.byCategory?.[category];
  if (!split) return 0n;
  return usdToMicros(mode === "total" ? split.totalUsd : split.billedUsd);
}

function renderDaily(report) {
  dailyRows = report.rows;
  const mode = chartMode();
  const split = dailyRows.every((r) => r.byCategory);
  const labels = dailyRows.map((r) => dayFmt.format(new Date(`${r.key}T00:00:00Z`)));
  const series = split
    ? CATEGORIES.map((c) => ({
        key: c,
        label: CATEGORY_LABELS[c],
        micros: dailyRows.map((r) => dayMicros(r, c, mode)),
      }))
    : [
        {
          key: "all",
          label: "All categories",
          micros: dailyRows.map((r) => usdToMicros(mode === "total" ? r.totalUsd : r.billedUsd)),
        },
      ];
  const datasets = series.map((s) => ({
    label: s.label,
    category: s.key,
    // Exact amounts for tooltips and tests; the float is only the bar height.
    micros: s.micros.map((m) => m.toString()),
    data: s.micros.map((m) => Number(m) / 1e6),
    backgroundColor: CATEGORY_COLORS[s.key] ?? "#4c6ef5",
    borderWidth: 0,
    stack: "spend",
  }));

  const ChartJs = globalThis.Chart;
  if (!ChartJs) {
    $("#status").textContent = "The chart library did not load; the daily figures are in the table below.";
  } else if (chart) {
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.update();
  } else {
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    ChartJs.defaults.color = dark ? "#a0a9b4" : "#5b6470";
    ChartJs.defaults.borderColor = dark ? "#2c333c" : "#e2e5ea";
    chart = new ChartJs($("#daily-chart"), {
      type: "bar",
      data: { labels, datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, grid: { display: false } },
          y: {
            stacked: true,
            beginAtZero: true,
            ticks: { callback: (v) => `$${Number(v).toLocaleString(LOCALE, { maximumFractionDigits: 2 })}` },
          },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: (ctx) => `${ctx.dataset.label}: ${formatMicros(ctx.dataset.micros[ctx.dataIndex], 4)}`,
              footer: (items) => {
                const i = items[0]?.dataIndex ?? 0;
                const sum = items.reduce((acc, it) => acc + BigInt(it.dataset.micros[i]), 0n);
                return `Total: ${formatMicros(sum, 4)}`;
              },
            },
          },
        },
      },
    });
  }
  $("#daily-chart").setAttribute(
    "aria-label",
    `Stacked bar chart of ${mode === "total" ? "spend including your own keys" : "billed spend"} per day by category; the figures are also in the table below.`,
  );

  // The same figures as a table (days with usage only).
  const head = el(
    "tr",
    {},
    el("th", { scope: "col" }, "Day"),
    ...series.map((s) => el("th", { scope: "col", class: "num" }, s.label)),
    el("th", { scope: "col", class: "num" }, "Total"),
  );
  $("#daily-table thead").replaceChildren(head);
  const rows = [];
  dailyRows.forEach((r, i) => {
    if (r.calls === 0 && r.totalMicros === 0) return;
    const total = usdToMicros(mode === "total" ? r.totalUsd : r.billedUsd);
    rows.push(
      el(
        "tr",
        { "data-day": r.key },
        el("th", { scope: "row" }, labels[i]),
        ...series.map((s) => el("td", { class: "num" }, money(s.micros[i], 4))),
        el("td", { class: "num" }, money(total, 4)),
      ),
    );
  });
  if (rows.length === 0)
    rows.push(el("tr", {}, el("td", { colspan: series.length + 2 }, "No usage this period yet.")));
  $("#daily-table tbody").replaceChildren(...rows);
}

function assistantName(id, fallback) {
  if (!id || id === "none") return fallback ?? "No saved assistant";
  return assistantNames.get(id) ?? fallback ?? `Assistant ${id.slice(0, 8)}`;
}

function renderAssistants(report) {
  const rows = report.rows.map((r) =>
    el(
      "tr",
      { "data-assistant": r.key },
      el("th", { scope: "row", "data-col": "name" }, assistantName(r.key, r.label)),
      el("td", { class: "num", "data-col": "calls", "data-value": r.calls }, intFmt.format(r.calls)),
      el("td", { class: "num", "data-col": "minutes", "data-value": r.minutes }, formatMinutes(r.minutes)),
      el("td", { class: "num", "data-col": "billed" }, money(usdToMicros(r.billedUsd))),
      el("td", { class: "num", "data-col": "passthrough" }, money(usdToMicros(r.passthroughUsd))),
    ),
  );
  $("#assistant-table tbody").replaceChildren(...rows);
  $("#assistant-table").hidden = rows.length === 0;
  $("#assistant-empty").hidden = rows.length > 0;
}

const CALL_TYPES = { inboundPhoneCall: "Inbound", outboundPhoneCall: "Outbound", webCall: "Web" };

function renderCalls(calls) {
  const rows = calls.map((c) => {
    const micros = numberToMicros(c.cost);
    const name = c.assistantId ? assistantName(c.assistantId) : (c.assistant?.name ?? "Transient assistant");
    const open = el(
      "button",
      {
        type: "button",
        class: "linkish",
        "aria-controls": "breakdown",
        "aria-label": `Cost breakdown of the call started ${c.startedAt ? dateTimeFmt.format(new Date(c.startedAt)) : "—"}`,
      },
      c.startedAt ? dateTimeFmt.format(new Date(c.startedAt)) : dateTimeFmt.format(new Date(c.createdAt)),
    );
    const tr = el(
      "tr",
      { "data-call": c.id, "aria-selected": "false" },
      el("td", {}, open),
      el("td", {}, name),
      el("td", {}, CALL_TYPES[c.type] ?? c.type),
      el("td", {}, c.status === "ended" ? (c.endedReason ?? "ended") : c.status),
      el("td", { class: "num", "data-col": "duration" }, formatDuration(c.startedAt, c.endedAt)),
      el("td", { class: "num", "data-col": "cost" }, micros === null ? "—" : money(micros, 4)),
    );
    tr.addEventListener("click", () => openBreakdown(c.id, tr));
    return tr;
  });
  $("#call-table tbody").replaceChildren(...rows);
  $("#call-table").hidden = rows.length === 0;
  $("#call-empty").hidden = rows.length > 0;
}

function quantityText(item) {
  switch (item.type) {
    case "transport":
    case "transcriber":
    case "vapi":
      return `${formatMinutes(item.minutes)} min`;
    case "model":
    case "analysis": {
      const parts = [`${intFmt.format(item.promptTokens)} prompt`];
      if (item.cachedPromptTokens) parts.push(`${intFmt.format(item.cachedPromptTokens)} cached`);
      parts.push(`${intFmt.format(item.completionTokens)} completion tokens`);
      return parts.join(" · ");
    }
    case "voice":
      return `${intFmt.format(item.characters)} characters`;
    default:
      return "";
  }
}

function providerText(item) {
  const p = item.transcriber ?? item.model ?? item.voice;
  if (p && typeof p === "object") {
    const step = item.type === "analysis" ? ANALYSIS_TYPE_LABELS[item.analysisType] : undefined;
    return [p.provider, p.model, step].filter(Boolean).join(" · ");
  }
  if (item.type === "vapi") return "Switchboard";
  return item.provider ?? "";
}

async function openBreakdown(callId, row) {
  for (const tr of document.querySelectorAll("#call-table tbody tr"))
    tr.setAttribute("aria-selected", "false");
  row.setAttribute("aria-selected", "true");
  const box = $("#breakdown");
  box.hidden = false;
  box.dataset.call = callId;
  box.replaceChildren(el("p", { class: "muted" }, "Loading the breakdown…"));
  let call;
  try {
    call = await api(`/call/${encodeURIComponent(callId)}`);
  } catch (err) {
    if (err.status === 401) return signOut("Your API key is no longer accepted. Sign in again.");
    box.replaceChildren(
      el("p", { class: "error", role: "alert" }, `Could not load the call: ${err.message}`),
    );
    return;
  }
  if (box.dataset.call !== callId) return;
  const costs = Array.isArray(call.costs) ? call.costs : [];
  if (costs.length === 0) {
    box.replaceChildren(
      el("h3", {}, "Cost breakdown"),
      el("p", { class: "empty" }, "This call has not been priced yet (it is in progress or has just ended)."),
    );
    return;
  }
  let billed = 0n;
  let passthrough = 0n;
  const lines = costs.map((item) => {
    const micros = numberToMicros(item.cost) ?? 0n;
    const byo = item.billedBy === "passthrough";
    if (byo) passthrough += micros;
    else billed += micros;
    return el(
      "tr",
      { "data-type": item.type, "data-billed-by": item.billedBy },
      el("th", { scope: "row" }, COST_TYPE_LABELS[item.type] ?? item.type),
      el("td", {}, providerText(item)),
      el("td", {}, quantityText(item)),
      el("td", {}, byo ? badge("Your key (passthrough)", "good") : badge("Billed by platform", "neutral")),
      el("td", { class: "num", "data-col": "cost" }, money(micros, 6)),
    );
  });
  const total = numberToMicros(call.cost);
  box.replaceChildren(
    el("h3", {}, `Cost breakdown · ${formatDuration(call.startedAt, call.endedAt)} call`),
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { id: "breakdown-table" },
        el("caption", { class: "visually-hidden" }, "Cost lines of the selected call"),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { scope: "col" }, "Line"),
            el("th", { scope: "col" }, "Provider"),
            el("th", { scope: "col" }, "Quantity"),
            el("th", { scope: "col" }, "Billed by"),
            el("th", { scope: "col", class: "num" }, "Amount"),
          ),
        ),
        el("tbody", {}, ...lines),
      ),
    ),
    el(
      "dl",
      { class: "totals" },
      el("div", {}, el("dt", {}, "Billed"), el("dd", { "data-field": "call-billed" }, money(billed, 6))),
      el(
        "div",
        {},
        el("dt", {}, "Paid with your keys"),
        el("dd", { "data-field": "call-passthrough" }, money(passthrough, 6)),
      ),
      el(
        "div",
        {},
        el("dt", {}, "Call total"),
        el("dd", { "data-field": "call-total" }, total === null ? "—" : money(total, 6)),
      ),
    ),
  );
  box.focus();
}

function renderInvoices(list) {
  const invoices = [...(list.upcoming ? [{ ...list.upcoming, upcoming: true }] : []), ...list.data];
  const rows = invoices.map((inv) => {
    const period = `${dayFmt.format(new Date(inv.period_start * 1000))} – ${dayFmt.format(new Date(inv.period_end * 1000))}`;
    let link = null;
    if (typeof inv.hosted_invoice_url === "string" && inv.hosted_invoice_url.startsWith("https://")) {
      link = el("a", { href: inv.hosted_invoice_url, target: "_blank", rel: "noopener noreferrer" }, "View");
    }
    const status = inv.upcoming ? "upcoming" : (inv.status ?? "—");
    const tone =
      status === "paid"
        ? "good"
        : status === "open" || status === "upcoming"
          ? "warn"
          : status === "uncollectible"
            ? "bad"
            : "neutral";
    return el(
      "tr",
      { "data-invoice": inv.id ?? "upcoming" },
      el("th", { scope: "row" }, inv.upcoming ? "Upcoming" : (inv.number ?? inv.id ?? "—")),
      el("td", {}, period),
      el("td", {}, badge(status, tone)),
      el(
        "td",
        { class: "num" },
        formatCents(status === "paid" ? inv.amount_paid : inv.amount_due, inv.currency),
      ),
      el("td", {}, link),
    );
  });
  $("#invoice-table tbody").replaceChildren(...rows);
  $("#invoice-table").hidden = rows.length === 0;
  $("#invoice-empty").hidden = rows.length > 0;
  $("#invoice-error").hidden = true;
}

// ---------------------------------------------------------------- loading -------------------

async function loadDashboard() {
  showApp();
  $("#status").textContent = "Loading…";
  const summary = await api("/billing/summary");
  renderSummary(summary);
  const range = `start=${encodeURIComponent(summary.period.start)}&end=${encodeURIComponent(summary.period.end)}`;
  const [daily, byAssistant, assistants, calls] = await Promise.all([
    api(`/billing/usage?${range}&groupBy=day&split=category`),
    api(`/billing/usage?${range}&groupBy=assistant`),
    api("/assistant?limit=1000"),
    api("/call?limit=20"),
  ]);
  assistantNames.clear();
  for (const a of assistants) if (a?.id) assistantNames.set(a.id, a.name ?? `Assistant ${a.id.slice(0, 8)}`);
  renderDaily(daily);
  renderAssistants(byAssistant);
  renderCalls(calls);
  $("#status").textContent = "";
  // Invoices come from Stripe: a slow or failing Stripe must not hold up the rest.
  try {
    renderInvoices(await api("/billing/invoices"));
  } catch (err) {
    if (err.status === 401) throw err;
    $("#invoice-table").hidden = true;
    $("#invoice-empty").hidden = true;
    const box = $("#invoice-error");
    box.hidden = false;
    box.textContent = `Invoices are unavailable right now: ${err.message}`;
  }
  document.body.dataset.ready = "true";
}

async function start() {
  document.body.dataset.ready = "false";
  if (!getKey()) return showSignIn();
  try {
    await loadDashboard();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      return signOut(signInMessage(err));
    $("#status").textContent = `Could not load billing data: ${err.message}`;
  }
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  document.body.dataset.ready = "false";
  showSignIn(message);
}

$("#signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#api-key");
  const key = input.value.trim();
  const error = $("#signin-error");
  if (!key) {
    error.textContent = "Enter an API key.";
    input.setAttribute("aria-invalid", "true");
    return;
  }
  error.textContent = "";
  const button = e.submitter ?? $("#signin-form button");
  button.disabled = true;
  try {
    await api("/billing/summary", key);
    sessionStorage.setItem(KEY_STORAGE, key);
    input.value = "";
    await start();
    $("#main").focus();
  } catch (err) {
    error.textContent = err instanceof ApiError ? signInMessage(err) : `Sign-in failed: ${err.message}`;
    input.setAttribute("aria-invalid", "true");
    input.select();
  } finally {
    button.disabled = false;
  }
});

$("#signout").addEventListener("click", () => signOut());

for (const radio of document.querySelectorAll('input[name="chart-mode"]')) {
  radio.addEventListener("change", () => renderDaily({ rows: dailyRows }));
}

start();
