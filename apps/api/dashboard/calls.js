// Calls: the period's overview (POST /analytics: calls, minutes, cost and success rate by day, and
// how calls ended) and the call list (GET /v2/call with Vapi's filters, a page at a time). A plain
// ES module, no build step. The period and the filters live in the page's URL, so a call page's
// "back to calls" and a reload return to the same list.

import {
  $,
  ApiError,
  api,
  badge,
  bindSignIn,
  CALL_TYPES,
  dateTimeFmt,
  el,
  forgetKey,
  formatDuration,
  formatMicros,
  formatMinutes,
  getKey,
  intFmt,
  LOCALE,
  money,
  numberToMicros,
  signInMessage,
  UNAUTHORIZED_EVENT,
} from "./common.js";
import { COMMON_ENDED_REASONS, endedReasonLabel, explainEndedReason } from "./ended-reasons.js";

const PAGE_SIZE = 25;
/** A type filter is applied here (GET /v2/call has none): pages of this many calls are scanned… */
const SCAN_BATCH = 100;
/** …at most this many per page shown; "Older" scans on from where it stopped. */
const SCAN_MAX_BATCHES = 10;
/** The list's query, for the call page's link back to it. */
const LIST_QUERY_STORAGE = "switchboard.dashboard.callsQuery";
const TIMEZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const DAY_MS = 86_400_000;
const WEB_TYPES = new Set(["webCall", "vapi.websocketCall"]);
const COLORS = { calls: "#4c6ef5", minutes: "#15aabf", cost: "#ae3ec9", success: "#2f9e44" };
const TONE_COLORS = { good: "#2f9e44", warn: "#f59f00", bad: "#e03131", neutral: "#868e96" };

const dayLabelFmt = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" });
const percentFmt = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 0 });

const assistantNames = new Map();
const charts = { daily: null, reasons: null };
let daily = null;
let loadSeq = 0;
/** Type-filtered paging: where each page shown so far began, and where the next one begins. */
let scanStarts = [{ page: 1, index: 0 }];
let scanNext = null;

// ---------------------------------------------------------------- state in the URL -----------

function readState() {
  const q = new URLSearchParams(location.search);
  const period = q.get("period") ?? "7";
  return {
    period: ["1", "7", "30", "90", "custom"].includes(period) ? period : "7",
    from: q.get("from") ?? "",
    to: q.get("to") ?? "",
    assistantId: q.get("assistantId") ?? "",
    endedReason: q.get("endedReason") ?? "",
    type: q.get("type") ?? "",
    costGe: q.get("costGe") ?? "",
    costLe: q.get("costLe") ?? "",
    page: Math.max(1, Number.parseInt(q.get("page") ?? "1", 10) || 1),
  };
}

const state = readState();

function writeState() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === "" || (k === "page" && v === 1) || (k === "period" && v === "7")) continue;
    if ((k === "from" || k === "to") && state.period !== "custom") continue;
    q.set(k, String(v));
  }
  const search = q.toString() ? `?${q}` : "";
  history.replaceState(null, "", `${location.pathname}${search}`);
  sessionStorage.setItem(LIST_QUERY_STORAGE, search);
}

// ---------------------------------------------------------------- the period ----------------

const pad = (n) => String(n).padStart(2, "0");
/** A local date's key, YYYY-MM-DD (this browser's timezone, the analytics' timezone). */
const dayKey = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function parseDay(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : null;
}

/** {start, end} (end exclusive) of the chosen period, or a message saying what is wrong. */
function periodRange() {
  const now = new Date();
  if (state.period === "custom") {
    const from = parseDay(state.from);
    const to = parseDay(state.to);
    if (!from || !to) return { error: "Choose the first and the last day of the period." };
    if (to < from) return { error: "The period's last day is before its first day." };
    const end = new Date(to.getFullYear(), to.getMonth(), to.getDate() + 1);
    if ((end - from) / DAY_MS > 366) return { error: "Choose a period of a year or less." };
    return { start: from, end };
  }
  const days = Number(state.period);
  if (days === 1) return { start: new Date(now.getTime() - DAY_MS), end: now };
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (days - 1));
  return { start, end: now };
}

/** Every local day the range touches, in order. */
function daysOf(range) {
  const out = [];
  const first = new Date(range.start.getFullYear(), range.start.getMonth(), range.start.getDate());
  for (let d = first; d < range.end; d = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1)) {
    out.push(d);
  }
  return out;
}

// ---------------------------------------------------------------- overview ------------------

const isSuccess = (v) => v === true || String(v).toLowerCase() === "true";
const isFailure = (v) => v === false || String(v).toLowerCase() === "false";

function setField(name, ...children) {
  const node = document.querySelector(`[data-field="${name}"]`);
  node.replaceChildren(...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
}

async function loadOverview(range) {
  const timeRange = { start: range.start.toISOString(), end: range.end.toISOString(), timezone: TIMEZONE };
  const count = { operation: "count", column: "id", alias: "calls" };
  const results = await api("/analytics", {
    body: {
      queries: [
        {
          name: "daily",
          table: "call",
          timeRange: { ...timeRange, step: "day" },
          operations: [
            count,
            { operation: "sum", column: "duration", alias: "minutes" },
            { operation: "sum", column: "cost", alias: "cost" },
          ],
        },
        {
          name: "success",
          table: "call",
          timeRange: { ...timeRange, step: "day" },
          groupBy: ["analysis.successEvaluation"],
          operations: [count],
        },
        { name: "reasons", table: "call", timeRange, groupBy: ["endedReason"], operations: [count] },
      ],
    },
  });
  const byName = Object.fromEntries(results.map((r) => [r.name, r.result]));
  const days = daysOf(range).map((d) => ({
    key: dayKey(d),
    label: dayLabelFmt.format(d),
    calls: 0,
    minutes: 0,
    costMicros: 0n,
    succeeded: 0,
    failed: 0,
  }));
  const dayAt = new Map(days.map((d) => [d.key, d]));
  for (const row of byName.daily ?? []) {
    const d = dayAt.get(dayKey(new Date(row.date)));
    if (!d) continue;
    d.calls += Number(row.calls ?? 0);
    d.minutes += Number(row.minutes ?? 0);
    d.costMicros += numberToMicros(Number(row.cost ?? 0)) ?? 0n;
  }
  for (const row of byName.success ?? []) {
    const d = dayAt.get(dayKey(new Date(row.date)));
    const v = row["analysis.successEvaluation"];
    if (!d || v === null || v === undefined) continue;
    if (isSuccess(v)) d.succeeded += Number(row.calls ?? 0);
    else if (isFailure(v)) d.failed += Number(row.calls ?? 0);
  }
  const reasons = (byName.reasons ?? [])
    .map((r) => ({ reason: r.endedReason ?? null, calls: Number(r.calls ?? 0) }))
    .sort((a, b) => b.calls - a.calls);
  daily = days;
  renderTiles(days);
  const any = days.some((d) => d.calls > 0);
  $("#overview-empty").hidden = any;
  $("#charts").hidden = !any;
  renderDaily();
  renderReasons(reasons);
  fillReasonFilter(reasons);
}

function renderTiles(days) {
  const calls = days.reduce((n, d) => n + d.calls, 0);
  const minutes = days.reduce((n, d) => n + d.minutes, 0);
  const cost = days.reduce((n, d) => n + d.costMicros, 0n);
  const succeeded = days.reduce((n, d) => n + d.succeeded, 0);
  const judged = days.reduce((n, d) => n + d.succeeded + d.failed, 0);
  setField("calls", intFmt.format(calls)).dataset.value = String(calls);
  setField("minutes", formatMinutes(minutes)).dataset.value = String(minutes);
  setField("cost", money(cost));
  if (judged === 0) {
    setField("success", "—").dataset.value = "";
    setField("success-sub", "no success evaluations yet (the assistant's analysisPlan)");
  } else {
    setField("success", percentFmt.format(succeeded / judged)).dataset.value = String(succeeded / judged);
    setField("success-sub", `${intFmt.format(succeeded)} of ${intFmt.format(judged)} evaluated calls`);
  }
}

function dailyMetric() {
  return document.querySelector('input[name="daily-metric"]:checked')?.value ?? "calls";
}

function chartDefaults(ChartJs) {
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  ChartJs.defaults.color = dark ? "#a0a9b4" : "#5b6470";
  ChartJs.defaults.borderColor = dark ? "#2c333c" : "#e2e5ea";
}

const animation = () => (matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 });

function renderDaily() {
  const ChartJs = globalThis.Chart;
  if (!daily || !ChartJs) {
    if (!ChartJs)
      $("#status").textContent = "The chart library did not load; the figures above are complete.";
    return;
  }
  chartDefaults(ChartJs);
  const metric = dailyMetric();
  const labels = daily.map((d) => d.label);
  const values = daily.map((d) => {
    if (metric === "calls") return d.calls;
    if (metric === "minutes") return Math.round(d.minutes * 100) / 100;
    if (metric === "cost") return Number(d.costMicros) / 1e6;
    const judged = d.succeeded + d.failed;
    return judged === 0 ? null : Math.round((d.succeeded / judged) * 1000) / 10;
  });
  const names = { calls: "Calls", minutes: "Minutes", cost: "Cost (USD)", success: "Success rate (%)" };
  const dataset = {
    label: names[metric],
    metric,
    data: values,
    micros: daily.map((d) => d.costMicros.toString()),
    backgroundColor: COLORS[metric],
    borderColor: COLORS[metric],
    borderWidth: metric === "success" ? 2 : 0,
    spanGaps: true,
  };
  const yTicks =
    metric === "cost"
      ? (v) => `$${Number(v).toLocaleString(LOCALE, { maximumFractionDigits: 2 })}`
      : metric === "success"
        ? (v) => `${v}%`
        : (v) => Number(v).toLocaleString(LOCALE);
  charts.daily?.destroy();
  charts.daily = new ChartJs($("#daily-chart"), {
    type: metric === "success" ? "line" : "bar",
    data: { labels, datasets: [dataset] },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: animation(),
      scales: {
        x: { grid: { display: false } },
        y: {
          beginAtZero: true,
          ...(metric === "success" ? { max: 100 } : {}),
          ticks: { callback: yTicks, ...(metric === "calls" ? { precision: 0 } : {}) },
        },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (ctx) =>
              metric === "cost"
                ? `Cost: ${formatMicros(ctx.dataset.micros[ctx.dataIndex], 4)}`
                : metric === "success"
                  ? `Success rate: ${ctx.parsed.y}%`
                  : `${ctx.dataset.label}: ${Number(ctx.parsed.y).toLocaleString(LOCALE)}`,
          },
        },
      },
    },
  });
  $("#daily-chart").setAttribute("aria-label", `${names[metric]} per day of the period`);
}

function renderReasons(reasons) {
  const ChartJs = globalThis.Chart;
  if (!ChartJs) return;
  chartDefaults(ChartJs);
  const shown = reasons.slice(0, 10);
  charts.reasons?.destroy();
  charts.reasons = new ChartJs($("#reasons-chart"), {
    type: "bar",
    data: {
      labels: shown.map((r) => (r.reason ? endedReasonLabel(r.reason) : "Not ended yet")),
      datasets: [
        {
          label: "Calls",
          reasons: shown.map((r) => r.reason),
          data: shown.map((r) => r.calls),
          backgroundColor: shown.map((r) => TONE_COLORS[explainEndedReason(r.reason).tone]),
          borderWidth: 0,
        },
      ],
    },
    options: {
      indexAxis: "y",
      responsive: true,
      maintainAspectRatio: false,
      animation: animation(),
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { grid: { display: false } } },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => items[0]?.label ?? "",
            afterTitle: (items) => items[0]?.dataset.reasons[items[0].dataIndex] ?? "",
          },
        },
      },
      // Choosing a bar lists those calls.
      onClick: (_e, elements) => {
        const reason = elements[0] ? shown[elements[0].index]?.reason : undefined;
        if (!reason) return;
        ensureReasonOption(reason);
        $("#f-reason").value = reason;
        $("#filters").requestSubmit();
      },
    },
  });
  $("#reasons-chart").setAttribute(
    "aria-label",
    `Calls by how they ended: ${shown.map((r) => `${endedReasonLabel(r.reason)} ${r.calls}`).join(", ")}`,
  );
}

// ---------------------------------------------------------------- filters -------------------

function ensureReasonOption(reason) {
  const select = $("#f-reason");
  if ([...select.options].some((o) => o.value === reason)) return;
  select.append(el("option", { value: reason }, `${endedReasonLabel(reason)} (${reason})`));
}

function fillReasonFilter(reasons) {
  const select = $("#f-reason");
  const seen = new Set();
  const options = [el("option", { value: "" }, "Any reason")];
  for (const reason of [...reasons.map((r) => r.reason), ...COMMON_ENDED_REASONS, state.endedReason]) {
    if (!reason || seen.has(reason)) continue;
    seen.add(reason);
    options.push(el("option", { value: reason }, `${endedReasonLabel(reason)} (${reason})`));
  }
  select.replaceChildren(...options);
  select.value = state.endedReason;
}

function fillAssistantFilter() {
  const select = $("#f-assistant");
  const options = [el("option", { value: "" }, "All assistants")];
  for (const [id, name] of assistantNames) options.push(el("option", { value: id }, name));
  select.replaceChildren(...options);
  select.value = assistantNames.has(state.assistantId) ? state.assistantId : "";
}

const USD_INPUT = /^\d{1,9}(\.\d{1,6})?$/;

/** The form's filters, or the message that says which one is wrong. */
function readFilters() {
  const min = $("#f-cost-min");
  const max = $("#f-cost-max");
  const costGe = min.value.trim().replace(/^\$/, "");
  const costLe = max.value.trim().replace(/^\$/, "");
  for (const [value, input, name] of [
    [costGe, min, "Cost from"],
    [costLe, max, "Cost to"],
  ]) {
    input.setAttribute("aria-invalid", "false");
    if (value !== "" && !USD_INPUT.test(value)) {
      input.setAttribute("aria-invalid", "true");
      return { error: `${name}: enter an amount in US dollars, like 0.25.`, input };
    }
  }
  if (costGe !== "" && costLe !== "" && Number(costGe) > Number(costLe)) {
    max.setAttribute("aria-invalid", "true");
    return { error: "Cost to is less than cost from.", input: max };
  }
  return {
    assistantId: $("#f-assistant").value,
    endedReason: $("#f-reason").value,
    type: $("#f-type").value,
    costGe,
    costLe,
  };
}

function showFiltersInForm() {
  $("#f-assistant").value = state.assistantId;
  if (state.endedReason) ensureReasonOption(state.endedReason);
  $("#f-reason").value = state.endedReason;
  $("#f-type").value = state.type;
  $("#f-cost-min").value = state.costGe;
  $("#f-cost-max").value = state.costLe;
  $("#period").value = state.period;
  $("#from").value = state.from;
  $("#to").value = state.to;
  $("#custom-range").hidden = state.period !== "custom";
}

const filtered = () =>
  Boolean(state.assistantId || state.endedReason || state.type || state.costGe || state.costLe);

// ---------------------------------------------------------------- the list ------------------

function listQuery(range, limit, page) {
  const q = new URLSearchParams({
    limit: String(limit),
    page: String(page),
    createdAtGe: range.start.toISOString(),
    createdAtLt: range.end.toISOString(),
  });
  for (const k of ["assistantId", "endedReason", "costGe", "costLe"]) if (state[k]) q.set(k, state[k]);
  return q;
}

function typeMatches(call) {
  if (!state.type) return true;
  return state.type === "web" ? WEB_TYPES.has(call.type) : call.type === state.type;
}

/** Up to a page of calls of the chosen type, scanning the API's pages from `start`. */
async function scan(range, start) {
  const rows = [];
  let pos = { ...start };
  for (let batch = 0; batch < SCAN_MAX_BATCHES; batch++) {
    const res = await api(`/v2/call?${listQuery(range, SCAN_BATCH, pos.page)}`);
    const list = res.results;
    for (let i = pos.index; i < list.length; i++) {
      if (!typeMatches(list[i])) continue;
      rows.push(list[i]);
      if (rows.length === PAGE_SIZE) {
        const more = i + 1 < list.length || res.metadata.hasNextPage;
        const next =
          i + 1 < list.length ? { page: pos.page, index: i + 1 } : { page: pos.page + 1, index: 0 };
        return { rows, next: more ? next : null };
      }
    }
    if (!res.metadata.hasNextPage) return { rows, next: null };
    pos = { page: pos.page + 1, index: 0 };
  }
  return { rows, next: pos };
}

function assistantName(call) {
  if (call.assistantId)
    return assistantNames.get(call.assistantId) ?? `Assistant ${call.assistantId.slice(0, 8)}`;
  return call.assistant?.name ?? (call.squadId ? "Squad" : "Transient assistant");
}

function callRow(c) {
  const href = `/dashboard/call.html?id=${encodeURIComponent(c.id)}`;
  const started = dateTimeFmt.format(new Date(c.startedAt ?? c.createdAt));
  const micros = numberToMicros(c.cost);
  const reason = c.status === "ended" ? explainEndedReason(c.endedReason) : null;
  const tr = el(
    "tr",
    { "data-call": c.id, "data-type": c.type, "data-ended-reason": c.endedReason },
    el("td", {}, el("a", { href }, started)),
    el("td", {}, assistantName(c)),
    el("td", {}, CALL_TYPES[c.type] ?? c.type),
    el(
      "td",
      { title: c.endedReason ?? c.status },
      reason ? badge(reason.title, reason.tone) : badge(c.status, "neutral"),
    ),
    el("td", { class: "num", "data-col": "duration" }, formatDuration(c.startedAt, c.endedAt)),
    el("td", { class: "num", "data-col": "cost" }, micros === null ? "—" : money(micros, 4)),
  );
  // The whole row opens the call; the link in it is what keyboards and screen readers use.
  tr.addEventListener("click", (e) => {
    if (!(e.target instanceof Element && e.target.closest("a"))) location.assign(href);
  });
  return tr;
}

function renderList(rows, info) {
  $("#calls-table tbody").replaceChildren(...rows.map(callRow));
  $("#calls-table").hidden = rows.length === 0;
  const empty = $("#calls-empty");
  empty.hidden = rows.length > 0;
  if (rows.length === 0) {
    empty.replaceChildren(
      ...(filtered()
        ? ["No calls match these filters in this period. Clear the filters or choose a longer period."]
        : [
            "No calls in this period. ",
            el("a", { href: "/dashboard/talk.html" }, "Talk to your assistant"),
            " to make one, or choose a longer period.",
          ]),
    );
  }
  $("#page-info").textContent = info.text;
  $("#prev").disabled = !info.prev;
  $("#next").disabled = !info.next;
}

async function loadList(range) {
  if (!state.type) {
    const res = await api(`/v2/call?${listQuery(range, PAGE_SIZE, state.page)}`);
    const m = res.metadata;
    if (res.results.length === 0 && state.page > 1 && m.totalPages > 0) {
      // The list shrank under the page (calls deleted, the period moved on): show its last page.
      state.page = m.totalPages;
      writeState();
      return loadList(range);
    }
    renderList(res.results, {
      text:
        m.totalItems === 0
          ? ""
          : `Page ${intFmt.format(m.currentPage)} of ${intFmt.format(m.totalPages)} · ${intFmt.format(m.totalItems)} calls`,
      prev: m.currentPage > 1,
      next: m.hasNextPage,
    });
    return;
  }
  const shown = scanStarts.length;
  const { rows, next } = await scan(range, scanStarts[shown - 1]);
  scanNext = next;
  renderList(rows, {
    text: rows.length === 0 ? "" : `Page ${intFmt.format(shown)}`,
    prev: shown > 1,
    next: next !== null,
  });
}

// ---------------------------------------------------------------- loading -------------------

async function load({ overview = true } = {}) {
  const seq = ++loadSeq;
  document.body.dataset.list = "loading";
  const range = periodRange();
  if (range.error) {
    $("#status").textContent = range.error;
    document.body.dataset.list = "ready";
    return;
  }
  $("#status").textContent = "Loading…";
  try {
    if (overview) await loadOverview(range);
    if (seq !== loadSeq) return;
    await loadList(range);
    if (seq !== loadSeq) return;
    $("#status").textContent = "";
    document.body.dataset.list = "ready";
    document.body.dataset.ready = "true";
  } catch (err) {
    if (seq !== loadSeq) return;
    if (err instanceof ApiError && err.status === 401) return signOut(signInMessage(err));
    $("#status").textContent = `Could not load the calls: ${err.message}`;
    document.body.dataset.list = "ready";
    document.body.dataset.ready = "true";
  }
}

async function start() {
  document.body.dataset.ready = "false";
  if (!getKey()) return showSignIn();
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  showFiltersInForm();
  writeState();
  try {
    const assistants = await api("/assistant?limit=1000");
    assistantNames.clear();
    for (const a of assistants)
      if (a?.id) assistantNames.set(a.id, a.name ?? `Assistant ${a.id.slice(0, 8)}`);
    fillAssistantFilter();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      return signOut(signInMessage(err));
  }
  await load();
}

function showSignIn(message = "") {
  for (const k of Object.keys(charts)) {
    charts[k]?.destroy();
    charts[k] = null;
  }
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  const input = $("#api-key");
  input.value = "";
  input.setAttribute("aria-invalid", message ? "true" : "false");
  input.focus();
}

function signOut(message = "") {
  forgetKey();
  document.body.dataset.ready = "false";
  showSignIn(message);
}

function resetPaging() {
  state.page = 1;
  scanStarts = [{ page: 1, index: 0 }];
  scanNext = null;
}

// ---------------------------------------------------------------- wiring --------------------

bindSignIn((key) => api("/v2/call?limit=0", { key }), start);
$("#signout").addEventListener("click", () => signOut());
document.addEventListener(UNAUTHORIZED_EVENT, () =>
  signOut("Your API key is no longer accepted. Sign in again."),
);

$("#period").addEventListener("change", () => {
  state.period = $("#period").value;
  $("#custom-range").hidden = state.period !== "custom";
  if (state.period === "custom") {
    // Start from the days the previous period covered.
    if (!state.from || !state.to) {
      const today = new Date();
      state.to = dayKey(today);
      state.from = dayKey(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6));
      $("#from").value = state.from;
      $("#to").value = state.to;
    }
  }
  resetPaging();
  writeState();
  load();
});
for (const id of ["#from", "#to"]) {
  $(id).addEventListener("change", () => {
    state.from = $("#from").value;
    state.to = $("#to").value;
    resetPaging();
    writeState();
    load();
  });
}
$("#period-form").addEventListener("submit", (e) => e.preventDefault());
$("#refresh").addEventListener("click", () => load());

$("#filters").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = readFilters();
  $("#filter-error").textContent = f.error ?? "";
  if (f.error) {
    f.input.focus();
    return;
  }
  Object.assign(state, f);
  resetPaging();
  writeState();
  load({ overview: false });
});
$("#filters").addEventListener("reset", () => {
  // After the browser has reset the fields.
  setTimeout(() => {
    Object.assign(state, { assistantId: "", endedReason: "", type: "", costGe: "", costLe: "" });
    $("#filter-error").textContent = "";
    for (const input of $("#filters").querySelectorAll("[aria-invalid]"))
      input.setAttribute("aria-invalid", "false");
    resetPaging();
    writeState();
    load({ overview: false });
  });
});

$("#prev").addEventListener("click", () => {
  if (state.type) {
    if (scanStarts.length > 1) scanStarts.pop();
  } else state.page = Math.max(1, state.page - 1);
  writeState();
  load({ overview: false });
});
$("#next").addEventListener("click", () => {
  if (state.type) {
    if (scanNext) scanStarts.push(scanNext);
  } else state.page += 1;
  writeState();
  load({ overview: false });
});

for (const radio of document.querySelectorAll('input[name="daily-metric"]')) {
  radio.addEventListener("change", () => renderDaily());
}

start();
