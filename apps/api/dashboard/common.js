// What the dashboard's pages share: the API key in sessionStorage and the API client, exact money
// (micro-dollars as BigInt, parsed from the API's decimal strings), formatting, DOM helpers, the
// sign-in form and a call's cost breakdown. A plain ES module, no build step.

export const KEY_STORAGE = "switchboard.dashboard.apiKey";
export const LOCALE = "en-US";

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

export function group(digits) {
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

const minutesFmt = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2 });
export const intFmt = new Intl.NumberFormat(LOCALE);
export const formatMinutes = (m) => minutesFmt.format(m);

export function formatDuration(startedAt, endedAt) {
  if (!startedAt || !endedAt) return "—";
  const s = Math.max(0, Math.round((Date.parse(endedAt) - Date.parse(startedAt)) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m ${sec}s` : `${m}m ${sec}s`;
}

export const dateTimeFmt = new Intl.DateTimeFormat(LOCALE, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZone: "UTC",
  timeZoneName: "short",
});

// ---------------------------------------------------------------- DOM helpers ---------------

export const $ = (sel) => document.querySelector(sel);

/** Builds an element; children are nodes or text (never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
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

/** A money cell: rounded to `decimals`, the exact amount in the title and data-micros. */
export function money(micros, decimals = 2) {
  return el(
    "span",
    { title: formatMicros(micros, 6), "data-micros": micros.toString() },
    formatMicros(micros, decimals),
  );
}

export function badge(text, tone) {
  return el("span", { class: `badge badge-${tone}` }, text);
}

// ---------------------------------------------------------------- API -----------------------

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** The API with the signed-in key; a JSON `body` makes it a POST unless `method` says otherwise. */
export async function api(path, { key = getKey(), method, body } = {}) {
  const headers = { authorization: `Bearer ${key}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method: method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "The API could not be reached. Check your connection and try again.");
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (!res.ok) {
    const message = json && typeof json.message === "string" ? json.message : `HTTP ${res.status}`;
    throw new ApiError(res.status, message);
  }
  return json;
}

export function signInMessage(err) {
  if (err.status === 401) return "That API key was not accepted: it is invalid or has been revoked.";
  if (err.status === 403) return "That is a public key. Sign in with a private API key.";
  if (err.status === 429) return "Too many requests. Wait a minute and try again.";
  return `Sign-in failed: ${err.message}`;
}

/**
 * The sign-in form (#signin-form, #api-key, #signin-error): `check(key)` calls the API with the key
 * typed; when it answers, the key is kept for this tab and `onSignedIn()` runs.
 */
export function bindSignIn(check, onSignedIn) {
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
      await check(key);
      sessionStorage.setItem(KEY_STORAGE, key);
      input.value = "";
      await onSignedIn();
      $("#main").focus();
    } catch (err) {
      error.textContent = err instanceof ApiError ? signInMessage(err) : `Sign-in failed: ${err.message}`;
      input.setAttribute("aria-invalid", "true");
      input.select();
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- calls ---------------------

export const CALL_TYPES = {
  inboundPhoneCall: "Inbound",
  outboundPhoneCall: "Outbound",
  webCall: "Web",
  "vapi.websocketCall": "Web",
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

function costLabel(item) {
  // A web call's transport is the platform's websocket, not a phone line.
  if (item.type === "transport" && item.provider === "vapi.websocket") return "Web call transport";
  return COST_TYPE_LABELS[item.type] ?? item.type;
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

/** True once the call has ended and been priced (its cost lines are written then). */
export function isPriced(call) {
  return call?.status === "ended" && Array.isArray(call.costs) && call.costs.length > 0;
}

/** A call's cost lines and totals (#breakdown-table), or a note when it has not been priced yet. */
export function breakdownNodes(call) {
  const costs = Array.isArray(call.costs) ? call.costs : [];
  if (costs.length === 0) {
    return [
      el("h3", {}, "Cost breakdown"),
      el("p", { class: "empty" }, "This call has not been priced yet (it is in progress or has just ended)."),
    ];
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
      el("th", { scope: "row" }, costLabel(item)),
      el("td", {}, providerText(item)),
      el("td", {}, quantityText(item)),
      el("td", {}, byo ? badge("Your key (passthrough)", "good") : badge("Billed by platform", "neutral")),
      el("td", { class: "num", "data-col": "cost" }, money(micros, 6)),
    );
  });
  const total = numberToMicros(call.cost);
  return [
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
  ];
}

/**
 * The recent-calls table (#call-table, #call-empty): a row per call with its duration and cost;
 * choosing one shows its breakdown in #breakdown. `nameOf(call)` names the call's assistant.
 */
export function renderCallTable(calls, nameOf) {
  const rows = calls.map((c) => {
    const micros = numberToMicros(c.cost);
    const started = dateTimeFmt.format(new Date(c.startedAt ?? c.createdAt));
    const open = el(
      "button",
      {
        type: "button",
        class: "linkish",
        "aria-controls": "breakdown",
        "aria-label": `Cost breakdown of the call started ${c.startedAt ? started : "—"}`,
      },
      started,
    );
    const tr = el(
      "tr",
      { "data-call": c.id, "aria-selected": "false" },
      el("td", {}, open),
      el("td", {}, nameOf(c)),
      el("td", {}, CALL_TYPES[c.type] ?? c.type),
      el("td", {}, c.status === "ended" ? (c.endedReason ?? "ended") : c.status),
      el("td", { class: "num", "data-col": "duration" }, formatDuration(c.startedAt, c.endedAt)),
      el("td", { class: "num", "data-col": "cost" }, micros === null ? "—" : money(micros, 4)),
    );
    tr.addEventListener("click", () => openBreakdown(c.id));
    return tr;
  });
  $("#call-table tbody").replaceChildren(...rows);
  $("#call-table").hidden = rows.length === 0;
  $("#call-empty").hidden = rows.length > 0;
}

/** Fired on the document when the API no longer accepts the key (the page signs out). */
export const UNAUTHORIZED_EVENT = "switchboard:unauthorized";

/** Shows the breakdown of one call of #call-table in #breakdown (fetched: it may have been priced since). */
export async function openBreakdown(callId, { focus = true } = {}) {
  for (const tr of document.querySelectorAll("#call-table tbody tr"))
    tr.setAttribute("aria-selected", tr.dataset.call === callId ? "true" : "false");
  const box = $("#breakdown");
  box.hidden = false;
  box.dataset.call = callId;
  box.replaceChildren(el("p", { class: "muted" }, "Loading the breakdown…"));
  let call;
  try {
    call = await api(`/call/${encodeURIComponent(callId)}`);
  } catch (err) {
    if (err.status === 401) {
      document.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
      return;
    }
    box.replaceChildren(
      el("p", { class: "error", role: "alert" }, `Could not load the call: ${err.message}`),
    );
    return;
  }
  if (box.dataset.call !== callId) return;
  box.replaceChildren(...breakdownNodes(call));
  if (focus) box.focus();
}
