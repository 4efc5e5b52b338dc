// One call, for finding out what went wrong: the recording with the transcript beside it (a line
// plays the recording from there; interruptions marked), the latency of each turn by stage, tool
// calls and their results, server messages and their deliveries, the cost breakdown (your own keys'
// passthrough shown), the analysis, the call log, and the end reason in words. A plain ES module,
// no build step; everything comes from GET /call/:id and the call's artifact routes.

import {
  $,
  ApiError,
  api,
  badge,
  bindSignIn,
  breakdownNodes,
  CALL_TYPES,
  dateTimeFmt,
  el,
  forgetKey,
  formatDuration,
  getKey,
  intFmt,
  LOCALE,
  money,
  numberToMicros,
  signInMessage,
  UNAUTHORIZED_EVENT,
} from "./common.js";
import { explainEndedReason } from "./ended-reasons.js";

const LIST_QUERY_STORAGE = "switchboard.dashboard.callsQuery";
/** On older calls, a cut-off bot line is followed by the caller's words within this (see interruptedBots). */
const CUT_GAP_MS = 1000;
const MAX_LOG_ROWS = 2000;
/** Vapi's default serverMessages, shown when the assistant does not list its own. */
const DEFAULT_SERVER_MESSAGES = [
  "conversation-update",
  "end-of-call-report",
  "function-call",
  "hang",
  "speech-update",
  "status-update",
  "tool-calls",
  "transfer-destination-request",
  "user-interrupted",
];
const STAGES = [
  { key: "transcriberLatency", label: "Transcriber", color: "#15aabf" },
  { key: "endpointingLatency", label: "Endpointing", color: "#868e96" },
  { key: "modelLatency", label: "Model", color: "#ae3ec9" },
  { key: "voiceLatency", label: "Voice", color: "#f59f00" },
  { key: "platformLatency", label: "Platform", color: "#2f9e44" },
];

const callId = new URLSearchParams(location.search).get("id") ?? "";
let latencyChart = null;
let audioObjectUrl = null;

const ms = (n) => `${intFmt.format(Math.round(n))} ms`;

/** Seconds → "1:05" (or "1:02:05"). */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function emptyState(text, ...more) {
  return el("p", { class: "empty" }, text, ...more);
}

function parseJson(value) {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function pretty(value) {
  const v = parseJson(value);
  return typeof v === "string" ? v : JSON.stringify(v, null, 2);
}

// ---------------------------------------------------------------- summary -------------------

function fact(label, ...value) {
  return el(
    "div",
    { class: "fact" },
    el("dt", { class: "fact-label" }, label),
    el("dd", { class: "fact-value" }, ...value),
  );
}

function renderSummary(call) {
  const started = call.startedAt ?? call.createdAt;
  const name =
    call.assistant?.name ??
    (call.assistantId ? `Assistant ${call.assistantId.slice(0, 8)}` : "Transient assistant");
  $("#call-title").textContent = `${CALL_TYPES[call.type] ?? call.type} call with ${name}`;
  document.title = `Call ${dateTimeFmt.format(new Date(started))} · Switchboard`;
  const micros = numberToMicros(call.cost);
  $("#facts").replaceChildren(
    fact("Started", dateTimeFmt.format(new Date(started))),
    fact("Duration", formatDuration(call.startedAt, call.endedAt)),
    fact("Cost", micros === null ? "not priced yet" : money(micros, 4)),
    fact("Status", call.status),
    ...(call.customer?.number ? [fact("Caller", call.customer.number)] : []),
    fact("Call ID", el("code", {}, call.id)),
  );
  const ended = $("#ended");
  if (call.status !== "ended") {
    ended.replaceChildren(
      el("p", { class: "muted" }, `This call is ${call.status}. Refresh once it has ended to see all of it.`),
    );
    return;
  }
  const why = explainEndedReason(call.endedReason);
  ended.dataset.tone = why.tone;
  ended.replaceChildren(
    el("h2", { class: "ended-title" }, badge("Ended", why.tone), " ", why.title),
    el("p", { "data-field": "ended-detail" }, why.detail),
    ...(why.next ? [el("p", { class: "muted", "data-field": "ended-next" }, why.next)] : []),
    el("p", { class: "small muted" }, "endedReason: ", el("code", {}, call.endedReason ?? "—")),
  );
}

// ---------------------------------------------------------------- transcript & recording ----

function messagesOf(call) {
  const m = call.artifact?.messages ?? call.messages;
  return Array.isArray(m) ? m : [];
}

/**
 * The bot lines the caller cut off (barge-in). Each bot message says so (`interrupted`, on every bot
 * message the media plane records). Calls recorded before it existed only count interruptions
 * (performanceMetrics.numAssistantInterrupted): their cut lines are guessed as the lines the
 * caller's next words followed most closely (a cut line ends as the caller starts; a finished one
 * is followed by a pause), at most that many, and only within CUT_GAP_MS.
 */
function interruptedBots(messages, count) {
  const bots = messages.filter((m) => m.role === "bot");
  if (bots.some((m) => typeof m.interrupted === "boolean")) {
    return new Set(bots.filter((m) => m.interrupted === true));
  }
  const out = new Set();
  if (!count) return out;
  const spoken = messages
    .filter((m) => (m.role === "bot" || m.role === "user") && typeof m.time === "number")
    .sort((a, b) => a.time - b.time);
  const candidates = [];
  for (let i = 0; i < spoken.length - 1; i++) {
    const m = spoken[i];
    const next = spoken[i + 1];
    if (m.role !== "bot" || next.role !== "user" || typeof m.endTime !== "number") continue;
    const gap = next.time - m.endTime;
    if (gap <= CUT_GAP_MS) candidates.push({ m, gap });
  }
  candidates.sort((a, b) => a.gap - b.gap);
  for (const c of candidates.slice(0, count)) out.add(c.m);
  return out;
}

function renderTranscript(call) {
  const messages = messagesOf(call);
  const interrupted = interruptedBots(messages, call.artifact?.performanceMetrics?.numAssistantInterrupted);
  const lines = [];
  for (const m of messages) {
    if (typeof m.secondsFromStart !== "number") continue;
    let who;
    let text;
    if (m.role === "bot" && m.message) [who, text] = ["Assistant", m.message];
    else if (m.role === "user" && m.message) [who, text] = ["Caller", m.message];
    else if (m.role === "tool_calls" && Array.isArray(m.toolCalls))
      [who, text] = ["Tool call", m.toolCalls.map((t) => t.function?.name ?? "tool").join(", ")];
    else continue;
    const cut = interrupted.has(m);
    const button = el(
      "button",
      {
        type: "button",
        class: "line-button",
        "data-seconds": m.secondsFromStart,
        "aria-label": `${who} at ${clock(m.secondsFromStart)}${cut ? ", interrupted" : ""}: ${text}. Play from here`,
      },
      el("span", { class: "at" }, clock(m.secondsFromStart)),
      el("span", { class: "who" }, who, cut ? badge("Interrupted", "warn") : null),
      el("span", { class: "line-text" }, text),
    );
    button.addEventListener("click", () => seek(m.secondsFromStart, button));
    lines.push(
      el(
        "li",
        {
          class: `line line-${m.role === "bot" ? "assistant" : m.role === "user" ? "user" : "tool"}`,
          "data-role": m.role,
          "data-seconds": m.secondsFromStart,
          "data-interrupted": cut ? "true" : undefined,
        },
        button,
      ),
    );
  }
  const list = $("#call-transcript");
  if (lines.length === 0) {
    list.replaceChildren(
      el("li", { class: "empty" }, "Nobody spoke in this call, so there is no transcript."),
    );
    return;
  }
  list.replaceChildren(...lines);
}

function seek(seconds, button) {
  for (const b of document.querySelectorAll("#call-transcript .line-button[aria-current]"))
    b.removeAttribute("aria-current");
  button.setAttribute("aria-current", "true");
  const audio = $("#audio");
  if (!audio) return;
  audio.currentTime = seconds;
  audio.play().catch(() => {
    // Autoplay refused or no audio yet: the position is set, the user presses play.
  });
}

/** Marks the line being heard while the recording plays. */
function followPlayback(audio) {
  audio.addEventListener("timeupdate", () => {
    const t = audio.currentTime;
    let current = null;
    for (const li of document.querySelectorAll("#call-transcript li[data-seconds]")) {
      if (Number(li.dataset.seconds) <= t + 0.05) current = li;
    }
    for (const li of document.querySelectorAll("#call-transcript li.playing")) li.classList.remove("playing");
    current?.classList.add("playing");
  });
}

/** Whether the call has a recording: its artifact names one (Vapi's fields). */
function hasRecording(call) {
  const a = call.artifact ?? {};
  const r = a.recording ?? {};
  return [a.presignedMonoUrl, r.mono?.combinedUrl, a.recordingUrl, r.stereoUrl, a.stereoRecordingUrl].some(
    (u) => typeof u === "string" && u.length > 0,
  );
}

/**
 * The presigned mono URL (it works without a key, so <audio> can stream and seek it with Range
 * requests), as a path of this origin: the dashboard is served by the API that signed it, and the
 * page's CSP lets media come from here only (PUBLIC_URL may name this server differently).
 */
function presignedPath(call) {
  const url = call.artifact?.presignedMonoUrl;
  if (typeof url !== "string") return null;
  try {
    const u = new URL(url, location.href);
    return `${u.pathname}${u.search}`;
  } catch {
    return null;
  }
}

/**
 * The recording through the API with the key (GET /call/:id/mono-recording redirects to a signed
 * URL of this origin; fetch follows it), as a blob: when no presigned URL is at hand or it expired.
 */
async function recordingBlobUrl(id) {
  const res = await fetch(`/call/${encodeURIComponent(id)}/mono-recording`, {
    headers: { authorization: `Bearer ${getKey()}` },
    cache: "no-store",
    credentials: "omit",
  });
  if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`);
  if (audioObjectUrl) URL.revokeObjectURL(audioObjectUrl);
  audioObjectUrl = URL.createObjectURL(await res.blob());
  return audioObjectUrl;
}

function renderPlayer(call) {
  const box = $("#player");
  delete box.dataset.state;
  if (!hasRecording(call)) {
    box.replaceChildren(
      emptyState(
        call.status === "ended"
          ? "No recording for this call. Recording is on unless the assistant's artifactPlan.recordingEnabled is false; calls made before recordings were kept have none, and the call log says when a recording could not be written. The transcript works without it."
          : "The recording is available once the call has ended.",
      ),
    );
    return;
  }
  const audio = el("audio", { id: "audio", controls: true, preload: "metadata" });
  const note = el("p", { class: "small muted", id: "player-note" });
  box.replaceChildren(audio, note);
  followPlayback(audio);
  let triedApi = false;
  const viaApi = async () => {
    triedApi = true;
    try {
      audio.src = await recordingBlobUrl(call.id);
    } catch (err) {
      if (err.status === 401) document.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
      note.textContent =
        err.status === 404
          ? "The recording is not available (it may not have been written, or was deleted)."
          : `The recording could not be loaded (${err.message}). Refresh to try again.`;
      box.dataset.state = "error";
    }
  };
  audio.addEventListener("loadedmetadata", () => {
    box.dataset.state = "ready";
    note.textContent = `${clock(audio.duration)} · choose a line of the transcript to play from there.`;
  });
  audio.addEventListener("error", () => {
    if (!triedApi) viaApi();
  });
  const direct = presignedPath(call);
  if (direct) audio.src = direct;
  else viaApi();
}

// ---------------------------------------------------------------- latency -------------------

function renderLatency(call) {
  const box = $("#latency");
  const pm = call.artifact?.performanceMetrics;
  const turns = Array.isArray(pm?.turnLatencies) ? pm.turnLatencies : [];
  if (turns.length === 0) {
    box.replaceChildren(
      emptyState(
        "No turns were measured: the assistant never answered something the caller said (the caller was silent, or the call ended first).",
      ),
    );
    return;
  }
  const stages = STAGES.filter((s) => turns.some((t) => typeof t[s.key] === "number"));
  const averages = el(
    "dl",
    { class: "facts facts-small" },
    fact("Turns", intFmt.format(turns.length)),
    ...(typeof pm.turnLatencyAverage === "number" ? [fact("Average turn", ms(pm.turnLatencyAverage))] : []),
    ...(typeof pm.numAssistantInterrupted === "number"
      ? [fact("Caller interrupted", intFmt.format(pm.numAssistantInterrupted))]
      : []),
  );
  const canvas = el("canvas", {
    id: "latency-chart",
    role: "img",
    "aria-label": `Latency of each of the ${turns.length} turns by stage; the figures are also in the table below`,
  });
  const table = el(
    "table",
    { id: "latency-table" },
    el("caption", { class: "visually-hidden" }, "Latency of each turn by stage, in milliseconds"),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, "Turn"),
        ...stages.map((s) => el("th", { scope: "col", class: "num" }, s.label)),
        el("th", { scope: "col", class: "num" }, "Total"),
      ),
    ),
    el(
      "tbody",
      {},
      ...turns.map((t, i) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, String(i + 1)),
          ...stages.map((s) =>
            el("td", { class: "num" }, typeof t[s.key] === "number" ? intFmt.format(t[s.key]) : "—"),
          ),
          el("td", { class: "num" }, typeof t.turnLatency === "number" ? intFmt.format(t.turnLatency) : "—"),
        ),
      ),
    ),
  );
  box.replaceChildren(
    averages,
    el("div", { class: "chart-box" }, canvas),
    el(
      "details",
      {},
      el("summary", {}, "Show the figures as a table"),
      el("div", { class: "table-wrap" }, table),
    ),
  );
  const ChartJs = globalThis.Chart;
  if (!ChartJs) {
    box.prepend(el("p", { class: "muted" }, "The chart library did not load; the figures are in the table."));
    return;
  }
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  ChartJs.defaults.color = dark ? "#a0a9b4" : "#5b6470";
  ChartJs.defaults.borderColor = dark ? "#2c333c" : "#e2e5ea";
  latencyChart?.destroy();
  latencyChart = new ChartJs(canvas, {
    data: {
      labels: turns.map((_t, i) => `Turn ${i + 1}`),
      datasets: [
        ...stages.map((s) => ({
          type: "bar",
          label: s.label,
          stage: s.key,
          data: turns.map((t) => t[s.key] ?? 0),
          backgroundColor: s.color,
          borderWidth: 0,
          stack: "stages",
        })),
        {
          type: "line",
          label: "Total (last word → first audio)",
          stage: "turnLatency",
          data: turns.map((t) => t.turnLatency ?? null),
          borderColor: dark ? "#e7eaee" : "#1b1f24",
          backgroundColor: dark ? "#e7eaee" : "#1b1f24",
          borderWidth: 2,
          pointRadius: 3,
        },
      ],
    },
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
          ticks: { callback: (v) => `${Number(v).toLocaleString(LOCALE)} ms` },
        },
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${ms(ctx.parsed.y ?? 0)}` } },
      },
    },
  });
}

// ---------------------------------------------------------------- tools ---------------------

function renderTools(call) {
  const messages = messagesOf(call);
  const results = new Map();
  for (const m of messages) if (m.role === "tool_call_result" && m.toolCallId) results.set(m.toolCallId, m);
  const items = [];
  for (const m of messages) {
    if (m.role !== "tool_calls" || !Array.isArray(m.toolCalls)) continue;
    for (const tc of m.toolCalls) {
      const result = results.get(tc.id);
      const took =
        result && typeof result.time === "number" && typeof m.time === "number" ? result.time - m.time : null;
      items.push(
        el(
          "li",
          { class: "tool", "data-tool": tc.function?.name ?? "", "data-tool-call-id": tc.id },
          el(
            "div",
            { class: "tool-head" },
            el("strong", {}, tc.function?.name ?? "tool"),
            el("span", { class: "muted small" }, ` at ${clock(m.secondsFromStart ?? 0)}`),
            result
              ? badge(took === null ? "Answered" : `Answered in ${ms(took)}`, "good")
              : badge("No result", "warn"),
          ),
          el("div", { class: "small muted" }, "Arguments"),
          el("pre", { class: "code", "data-field": "arguments" }, pretty(tc.function?.arguments ?? "{}")),
          el("div", { class: "small muted" }, "Result"),
          el(
            "pre",
            { class: "code", "data-field": "result" },
            result
              ? pretty(result.result ?? "")
              : "The call went on (or ended) without a result for this call.",
          ),
        ),
      );
    }
  }
  $("#tools").replaceChildren(
    items.length > 0
      ? el("ol", { class: "tools" }, ...items)
      : emptyState("No tools were called. Tools are set in the assistant's model.tools (or toolIds)."),
  );
}

// ---------------------------------------------------------------- call log & server messages

/** The call's log entries, or null when it has none. Accepts JSON (an array, or {entries|logs|data}) and JSON lines, gzipped or not. */
async function fetchCallLog(id) {
  const res = await fetch(`/call/${encodeURIComponent(id)}/call-logs`, {
    headers: { authorization: `Bearer ${getKey()}` },
    cache: "no-store",
    credentials: "omit",
  });
  if (res.status === 404) return null;
  if (res.status === 401) {
    document.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
    return null;
  }
  if (!res.ok) throw new ApiError(res.status, `HTTP ${res.status}`);
  const type = res.headers.get("content-type") ?? "";
  let text;
  if (/gzip/.test(type) && typeof DecompressionStream === "function") {
    text = await new Response(res.body.pipeThrough(new DecompressionStream("gzip"))).text();
  } else text = await res.text();
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    try {
      const json = JSON.parse(trimmed);
      if (Array.isArray(json)) return json;
      for (const k of ["entries", "logs", "data", "results"]) if (Array.isArray(json[k])) return json[k];
      return [json];
    } catch {
      // JSON lines: parsed one by one below.
    }
  }
  return trimmed.split("\n").map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      return { message: line };
    }
  });
}

function entryTime(entry, call) {
  const raw = entry.time ?? entry.timestamp ?? entry.ts ?? entry.at;
  const t = typeof raw === "number" ? raw : typeof raw === "string" ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(t)) return "";
  const start = Date.parse(call.startedAt ?? call.createdAt);
  return Number.isFinite(start) ? `+${((t - start) / 1000).toFixed(2)} s` : new Date(t).toISOString();
}

const SHOWN_KEYS = new Set([
  "time",
  "timestamp",
  "ts",
  "at",
  "level",
  "message",
  "msg",
  "event",
  "category",
  "type",
]);

function entryDetails(entry) {
  const rest = {};
  for (const [k, v] of Object.entries(entry)) if (!SHOWN_KEYS.has(k)) rest[k] = v;
  return Object.keys(rest).length ? JSON.stringify(rest) : "";
}

/** A log entry about a server message delivery (its category, event or type says so). */
function isDelivery(entry) {
  const words = [entry.category, entry.event, entry.type, entry.kind]
    .filter((v) => typeof v === "string")
    .join(" ");
  return /server[-_. ]?message|webhook|delivery/i.test(words);
}

function deliveryOutcome(entry) {
  const o = entry.data?.outcome ?? entry.outcome ?? entry.status ?? entry.result ?? entry.level;
  const text = o === undefined ? "recorded" : String(o);
  const tone = /deliver|ok|success|2\d\d/i.test(text)
    ? "good"
    : /retry|pending|queued|info/i.test(text)
      ? "warn"
      : /fail|error|reject|[45]\d\d/i.test(text)
        ? "bad"
        : "neutral";
  return badge(text, tone);
}

function renderServerMessages(call, log) {
  const assistant = call.assistant ?? {};
  const url = assistant.server?.url ?? assistant.serverUrl;
  const types = Array.isArray(assistant.serverMessages) ? assistant.serverMessages : DEFAULT_SERVER_MESSAGES;
  const config = url
    ? el(
        "p",
        { class: "small" },
        "Sent to ",
        el("code", {}, url),
        ": ",
        types.length ? types.join(", ") : "none (serverMessages is empty)",
        ".",
      )
    : emptyState(
        "The assistant has no server URL, so no server messages were sent. Set assistant.server.url to receive them.",
      );
  const deliveries = (log ?? []).filter(isDelivery);
  let body;
  if (log === null) {
    body = emptyState("Delivery outcomes are kept in the call log, and this call has none.");
  } else if (deliveries.length === 0) {
    body = emptyState("The call log records no server message deliveries for this call.");
  } else {
    body = el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { id: "deliveries" },
        el(
          "caption",
          { class: "visually-hidden" },
          "Server messages sent during the call and what became of them",
        ),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { scope: "col" }, "When"),
            el("th", { scope: "col" }, "Message"),
            el("th", { scope: "col" }, "Outcome"),
          ),
        ),
        el(
          "tbody",
          {},
          ...deliveries.map((d) =>
            el(
              "tr",
              {},
              el("td", {}, entryTime(d, call)),
              el("td", {}, String(d.messageType ?? d.data?.type ?? d.message ?? d.msg ?? d.event ?? "")),
              el("td", {}, deliveryOutcome(d)),
            ),
          ),
        ),
      ),
    );
  }
  $("#server-messages").replaceChildren(config, body);
}

function renderCallLog(call, log, error) {
  const box = $("#call-log");
  if (error) {
    box.replaceChildren(el("p", { class: "error" }, `The call log could not be loaded: ${error.message}`));
    return;
  }
  if (log === null) {
    box.replaceChildren(
      emptyState(
        call.status === "ended"
          ? "No call log for this call. Calls keep a log of what happened inside them unless the assistant's artifactPlan.loggingEnabled is false; calls made before logs were kept have none."
          : "The call log is available once the call has ended.",
      ),
    );
    return;
  }
  if (log.length === 0) {
    box.replaceChildren(emptyState("The call log is empty."));
    return;
  }
  const shown = log.slice(0, MAX_LOG_ROWS);
  box.replaceChildren(
    el(
      "div",
      { class: "table-wrap log-wrap" },
      el(
        "table",
        { id: "log-table", class: "log" },
        el("caption", { class: "visually-hidden" }, "What happened inside the call, in order"),
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { scope: "col" }, "When"),
            el("th", { scope: "col" }, "Level"),
            el("th", { scope: "col" }, "What happened"),
            el("th", { scope: "col" }, "Details"),
          ),
        ),
        el(
          "tbody",
          {},
          ...shown.map((e) =>
            el(
              "tr",
              { "data-level": e.level ?? "" },
              el("td", {}, entryTime(e, call)),
              el("td", {}, e.level === undefined ? "" : String(e.level)),
              el("td", { class: "wrap" }, String(e.message ?? e.msg ?? e.event ?? e.type ?? "")),
              el("td", { class: "wrap details" }, entryDetails(e)),
            ),
          ),
        ),
      ),
    ),
    ...(log.length > shown.length
      ? [
          el(
            "p",
            { class: "small muted" },
            `Showing the first ${intFmt.format(shown.length)} of ${intFmt.format(log.length)} entries.`,
          ),
        ]
      : []),
  );
}

// ---------------------------------------------------------------- analysis ------------------

function renderAnalysis(call) {
  const a = call.analysis ?? {};
  const parts = [];
  if (a.summary) parts.push(fact("Summary", a.summary));
  if (a.successEvaluation !== undefined && a.successEvaluation !== null)
    parts.push(fact("Success evaluation", String(a.successEvaluation)));
  if (a.structuredData !== undefined && a.structuredData !== null)
    parts.push(fact("Structured data", el("pre", { class: "code" }, pretty(a.structuredData))));
  $("#analysis").replaceChildren(...parts);
  $("#analysis-card").hidden = parts.length === 0;
}

// ---------------------------------------------------------------- loading -------------------

async function load() {
  document.body.dataset.ready = "false";
  $("#status").textContent = "Loading…";
  let call;
  try {
    if (!/^[0-9a-f-]{36}$/i.test(callId)) throw new ApiError(404, "Not found");
    call = await api(`/call/${encodeURIComponent(callId)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      return signOut(signInMessage(err));
    $("#call").hidden = true;
    $("#status").replaceChildren(
      err instanceof ApiError && err.status === 404
        ? el(
            "span",
            {},
            "There is no such call in your organisation (it may have been deleted). ",
            el("a", { href: $("#back").getAttribute("href") }, "Back to all calls"),
            ".",
          )
        : `Could not load the call: ${err.message}`,
    );
    document.body.dataset.ready = "true";
    return;
  }
  $("#call").hidden = false;
  renderSummary(call);
  renderTranscript(call);
  renderPlayer(call);
  renderLatency(call);
  renderTools(call);
  $("#breakdown").replaceChildren(...breakdownNodes(call));
  renderAnalysis(call);
  let log = null;
  let logError = null;
  // Only a call that has a log links it (artifact.logUrl): asking for a missing one would be a 404.
  if (call.artifact?.logUrl) {
    try {
      log = await fetchCallLog(call.id);
    } catch (err) {
      logError = err;
    }
  }
  renderCallLog(call, log, logError);
  renderServerMessages(call, logError ? null : log);
  $("#status").textContent = "";
  document.body.dataset.ready = "true";
}

function showSignIn(message = "") {
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

async function start() {
  if (!getKey()) return showSignIn();
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  await load();
}

const back = `/dashboard/calls.html${sessionStorage.getItem(LIST_QUERY_STORAGE) ?? ""}`;
$("#back").setAttribute("href", back);
$("#nav-calls").setAttribute("href", back);

bindSignIn(
  (key) =>
    api(`/call/${encodeURIComponent(callId)}`, { key }).catch((err) => {
      // A call that is not there still means the key works: the page then says so.
      if (err.status === 404) return null;
      throw err;
    }),
  start,
);
$("#signout").addEventListener("click", () => signOut());
$("#refresh").addEventListener("click", () => load());
document.addEventListener(UNAUTHORIZED_EVENT, () =>
  signOut("Your API key is no longer accepted. Sign in again."),
);

start();
