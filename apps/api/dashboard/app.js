// Switchboard billing dashboard: a plain ES module, no build step. Everything comes from the
// same-origin API with the organisation's API key (kept in sessionStorage, sent as a Bearer token).
// Money is handled as exact integers (micro-dollars, BigInt) parsed from the API's decimal strings;
// floats appear only as chart bar heights.

import {
  $,
  ApiError,
  api as apiCall,
  badge,
  bindSignIn,
  el,
  forgetKey,
  formatMicros,
  formatMinutes,
  getKey,
  group,
  intFmt,
  LOCALE,
  money,
  renderCallTable,
  signInMessage,
  UNAUTHORIZED_EVENT,
  usdToMicros,
} from "./common.js";

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

/** Integer cents (Stripe) → "$12.34". */
function formatCents(cents, currency) {
  const v = BigInt(cents);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const cur = (currency ?? "usd").toLowerCase();
  const sym = cur === "usd" ? "$" : `${cur.toUpperCase()} `;
  return `${neg ? "-" : ""}${sym}${group((a / 100n).toString())}.${(a % 100n).toString().padStart(2, "0")}`;
}

const dayFmt = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric", timeZone: "UTC" });
const monthFmt = new Intl.DateTimeFormat(LOCALE, { month: "long", year: "numeric", timeZone: "UTC" });

// ---------------------------------------------------------------- DOM helpers ---------------

function setField(name, ...children) {
  const node = document.querySelector(`[data-field="${name}"]`);
  node.replaceChildren(...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

// ---------------------------------------------------------------- API -----------------------

const api = (path, key) => apiCall(path, key === undefined ? {} : { key });

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

function renderCalls(calls) {
  renderCallTable(calls, (c) =>
    c.assistantId ? assistantName(c.assistantId) : (c.assistant?.name ?? "Transient assistant"),
  );
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
  forgetKey();
  document.body.dataset.ready = "false";
  showSignIn(message);
}

bindSignIn((key) => api("/billing/summary", key), start);

$("#signout").addEventListener("click", () => signOut());
document.addEventListener(UNAUTHORIZED_EVENT, () =>
  signOut("Your API key is no longer accepted. Sign in again."),
);

for (const radio of document.querySelectorAll('input[name="chart-mode"]')) {
  radio.addEventListener("change", () => renderDaily({ rows: dailyRows }));
}

start();
