// "Talk to your assistant": a call from the browser over Vapi's websocket transport. A plain ES
// module, no build step. Press Call: the microphone (getUserMedia) runs through an AudioWorklet
// that resamples it to 16 kHz PCM s16le, sent as binary websocket messages; the assistant's PCM
// comes back the same way and plays through a second worklet; the websocket's text messages are
// Vapi's client messages (transcripts, speech updates, status updates). Hang up sends
// {"type":"hangup"}. Once the call is priced it shows with its cost in the recent calls.

import {
  $,
  ApiError,
  api,
  bindSignIn,
  el,
  forgetKey,
  formatDuration,
  formatMicros,
  getKey,
  isPriced,
  numberToMicros,
  openBreakdown,
  renderCallTable,
  signInMessage,
  UNAUTHORIZED_EVENT,
} from "./common.js";

/** The call's audio: what the page sends and what it asks the assistant's voice in. */
const CALL_RATE = 16000;
const AUDIO_FORMAT = { format: "pcm_s16le", container: "raw", sampleRate: CALL_RATE };
const FRAME_MS = 20;
/** How long to wait for an ended call to be priced before leaving it to the recent-calls list. */
const PRICING_WAIT_MS = 30_000;
/** …and for its post-call analysis (summary, success evaluation), which adds a cost line. */
const ANALYSIS_WAIT_MS = 60_000;

const ENDED_REASONS = {
  "customer-ended-call": "you hung up",
  "assistant-ended-call": "the assistant ended the call",
  "assistant-said-end-call-phrase": "the assistant ended the call",
  "exceeded-max-duration": "the call reached its maximum duration",
  "silence-timed-out": "nobody spoke for too long",
  "assistant-forwarded-call": "the call was transferred",
};

const assistantNames = new Map();
/** The call in progress (one at a time), or null. */
let current = null;

// ---------------------------------------------------------------- page state ----------------

/** idle → starting (microphone) → connecting (POST /call, websocket) → live → ended | failed */
function setPhase(phase) {
  document.body.dataset.call = phase;
  const busy = phase === "starting" || phase === "connecting" || phase === "live";
  $("#call").hidden = busy;
  $("#call").disabled = busy || $("#assistant").options.length === 0;
  $("#assistant").disabled = busy;
  $("#hangup").hidden = !busy;
  $("#mic-level-label").hidden = phase !== "live";
}

function status(text) {
  $("#call-status").textContent = text;
}

function showError(text) {
  $("#call-error").textContent = text;
}

function endedText(reason) {
  if (!reason) return "The call ended.";
  const words = ENDED_REASONS[reason];
  return words ? `The call ended: ${words} (${reason}).` : `The call ended (${reason}).`;
}

// ---------------------------------------------------------------- transcript ----------------

/** The line still being spoken, per role: partial transcripts replace its text, a final closes it. */
const openLines = { user: null, assistant: null };

function resetTranscript() {
  openLines.user = null;
  openLines.assistant = null;
  $("#transcript").replaceChildren();
  $("#transcript-empty").hidden = false;
}

function onTranscript(msg) {
  const role = msg.role === "user" ? "user" : "assistant";
  const text = typeof msg.transcript === "string" ? msg.transcript.trim() : "";
  const final = msg.transcriptType === "final";
  let line = openLines[role];
  if (!line) {
    if (!text) return;
    line = el(
      "li",
      { class: `line line-${role}`, "data-role": role, "data-final": "false" },
      el("span", { class: "who" }, role === "user" ? "You" : "Assistant"),
      el("span", { class: "text" }),
    );
    $("#transcript").append(line);
    $("#transcript-empty").hidden = true;
    openLines[role] = line;
  }
  line.querySelector(".text").textContent = text;
  if (final) {
    openLines[role] = null;
    if (text) line.dataset.final = "true";
    else line.remove();
  }
  line.scrollIntoView?.({ block: "nearest" });
}

// ---------------------------------------------------------------- audio ---------------------

function micMessage(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow this page to use your microphone (the icon in the address bar), then press Call again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one, then press Call again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone could not be opened: another application may be using it.";
    default:
      return `The microphone could not be opened: ${err?.message ?? err}`;
  }
}

/** The microphone → capture worklet, and the playback worklet → the speakers. */
async function startAudio(session) {
  const { ctx } = session;
  await ctx.audioWorklet.addModule("/dashboard/talk-audio.js");
  session.source = ctx.createMediaStreamSource(session.stream);
  session.capture = new AudioWorkletNode(ctx, "pcm-capture", {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    channelCount: 1,
    channelCountMode: "explicit",
    channelInterpretation: "speakers",
    processorOptions: { rate: CALL_RATE },
  });
  session.playback = new AudioWorkletNode(ctx, "pcm-playback", {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: { rate: CALL_RATE },
  });
  session.capture.port.onmessage = (e) => onCaptured(session, e.data);
  session.playback.port.onmessage = (e) => onPlaybackStats(session, e.data);
  session.source.connect(session.capture);
  session.playback.connect(ctx.destination);
  if (ctx.state !== "running") await ctx.resume();
}

function onCaptured(session, msg) {
  if (msg?.type !== "frame") return;
  const ws = session.ws;
  // Until the socket is open there is no one to send to; after hang-up nothing more is sent.
  if (!ws || ws.readyState !== WebSocket.OPEN || session.hungUp) return;
  ws.send(msg.pcm);
  session.sentFrames++;
  const now = performance.now();
  if (now - session.lastMeterAt > 100) {
    session.lastMeterAt = now;
    $("#mic-level").value = Math.min(1, msg.rms * 4);
    renderAudioStats(session);
  }
}

function onPlaybackStats(session, msg) {
  if (msg?.type !== "stats") return;
  session.playbackStats = msg;
  renderAudioStats(session);
}

function renderAudioStats(session) {
  const p = session.playbackStats;
  const sentMs = session.sentFrames * FRAME_MS;
  const box = $("#audio-stats");
  box.hidden = false;
  box.dataset.sentMs = String(sentMs);
  box.dataset.receivedMs = String(p.receivedMs);
  box.dataset.playedMs = String(p.playedMs);
  box.dataset.clearedMs = String(p.clearedMs);
  box.dataset.clears = String(p.clears);
  box.dataset.playing = String(p.playing);
  box.textContent = `Sent ${(sentMs / 1000).toFixed(1)} s of your voice · played ${(p.playedMs / 1000).toFixed(1)} s of the assistant's`;
}

/** Drops the assistant's queued audio at once (the caller spoke over it, or the call ended). */
function stopPlayback(session) {
  session.playback?.port.postMessage({ type: "clear" });
}

/** Releases the microphone and the audio graph; the page keeps the figures. */
function stopAudio(session) {
  if (session.audioStopped) return;
  session.audioStopped = true;
  for (const track of session.stream?.getTracks() ?? []) track.stop();
  session.capture?.port.postMessage({ type: "stop" });
  stopPlayback(session);
  session.playback?.port.postMessage({ type: "stop" });
  session.source?.disconnect();
  session.playback?.disconnect();
  session.ctx.close().catch(() => {});
}

// ---------------------------------------------------------------- the call ------------------

function callStartMessage(err) {
  if (!(err instanceof ApiError)) return `The call could not be started: ${err.message}`;
  if (err.status === 0) return err.message;
  // The API's message says what is wrong (a missing provider key names the key and how to add it).
  return `The call could not be started: ${err.message}`;
}

async function startCall() {
  const assistantId = $("#assistant").value;
  if (!assistantId || current) return;
  showError("");
  $("#last-call").textContent = "";
  resetTranscript();
  // Browsers start audio only in answer to a gesture: the context is made in the click's own task.
  const session = {
    ctx: new AudioContext({ latencyHint: "interactive" }),
    stream: null,
    source: null,
    capture: null,
    playback: null,
    ws: null,
    callId: null,
    hungUp: false,
    endedReason: null,
    done: false,
    audioStopped: false,
    sentFrames: 0,
    lastMeterAt: 0,
    playbackStats: { receivedMs: 0, playedMs: 0, clearedMs: 0, clears: 0, playing: false },
  };
  current = session;
  setPhase("starting");
  status("Asking for your microphone…");

  try {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw Object.assign(
        new Error("this page has no access to a microphone here: open it over https:// (or on localhost)"),
        { name: "NoMediaDevices" },
      );
    }
    session.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    return fail(session, micMessage(err));
  }
  if (session.hungUp) return finish(session);
  try {
    await startAudio(session);
  } catch (err) {
    return fail(session, `The audio could not be started in this browser: ${err.message}`);
  }
  if (session.hungUp) return finish(session);

  setPhase("connecting");
  status("Starting the call…");
  let call;
  try {
    call = await api("/call", {
      body: { assistantId, transport: { provider: "vapi.websocket", audioFormat: AUDIO_FORMAT } },
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      return signOut("Your API key is no longer accepted. Sign in again.");
    return fail(session, callStartMessage(err));
  }
  session.callId = call.id;
  document.body.dataset.callId = call.id;
  const url = call.transport?.websocketCallUrl;
  if (typeof url !== "string" || !/^wss?:\/\//.test(url)) {
    return fail(session, "The call was created without a websocket address to connect to.");
  }
  connect(session, url);
}

function connect(session, url) {
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (err) {
    // A malformed address throws here (a refused one fails later, with the close event).
    return fail(
      session,
      `The browser refused to connect to the media server (${new URL(url).origin}): ${err.message}`,
    );
  }
  session.ws = ws;
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    if (session.hungUp) {
      hangUpSocket(session);
      return;
    }
    setPhase("live");
    status("Connected. Speak when you're ready.");
  };
  ws.onmessage = (e) => {
    if (e.data instanceof ArrayBuffer) {
      if (!session.hungUp) session.playback.port.postMessage({ type: "audio", pcm: e.data }, [e.data]);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    onMessage(session, msg);
  };
  ws.onclose = (e) => onClosed(session, e);
}

function onMessage(session, msg) {
  const type = typeof msg?.type === "string" ? msg.type : "";
  if (type === "transcript" || type.startsWith("transcript[")) {
    onTranscript(msg);
  } else if (type === "speech-update") {
    if (msg.role === "user" && msg.status === "started") stopPlayback(session);
    if (session.hungUp || session.endedReason) return;
    if (msg.status === "started")
      status(msg.role === "user" ? "You're speaking…" : "The assistant is speaking…");
    else status("Listening…");
  } else if (type === "user-interrupted") {
    stopPlayback(session);
  } else if (type === "status-update") {
    if (msg.status === "ended") {
      session.endedReason = typeof msg.endedReason === "string" ? msg.endedReason : "ended";
      stopPlayback(session);
      // The call is over: the server closes the socket too; closing here does not wait for it.
      session.ws?.close(1000, "call ended");
    }
  } else if (type === "hang") {
    if (!session.hungUp) status("The assistant is taking longer than usual to answer…");
  }
}

function hangUpSocket(session) {
  const ws = session.ws;
  if (ws?.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "hangup" }));
    ws.close(1000, "hangup");
  }
}

function hangUp() {
  const session = current;
  if (!session || session.hungUp) return;
  session.hungUp = true;
  status("Hanging up…");
  // The microphone goes off at once; the socket's close then finishes the call on the page.
  stopAudio(session);
  if (session.ws) hangUpSocket(session);
}

function onClosed(session, e) {
  if (session.done) return;
  stopAudio(session);
  // Finals only: a line left open when the call ended keeps its last words.
  openLines.user = null;
  openLines.assistant = null;
  if (session.hungUp) {
    status(endedText(session.endedReason ?? "customer-ended-call"));
  } else if (session.endedReason) {
    status(endedText(session.endedReason));
  } else if (e.code === 1000) {
    status(e.reason ? `The call ended: ${e.reason}.` : "The call ended.");
  } else {
    return fail(
      session,
      `The call's connection closed (code ${e.code}${e.reason ? `: ${e.reason}` : ", no reason given"}).`,
    );
  }
  finish(session);
}

/** A call that could not start or was cut: the message stays on the page. */
function fail(session, message) {
  if (session.done) return;
  stopAudio(session);
  showError(message);
  status("");
  finish(session, "failed");
  if (session.ws && session.ws.readyState <= WebSocket.OPEN) session.ws.close(1000, "client error");
}

function finish(session, phase = "ended") {
  session.done = true;
  stopAudio(session);
  if (current === session) current = null;
  setPhase(phase);
  if (phase === "ended" && !session.callId) status("");
  if (session.callId) awaitPriced(session.callId);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The call as the API has it now; null when it cannot be read (tried again by the caller). */
async function fetchCall(callId) {
  try {
    return await api(`/call/${encodeURIComponent(callId)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut("Your API key is no longer accepted. Sign in again.");
      throw err;
    }
    return null;
  }
}

const hasAnalysis = (call) =>
  call?.analysis !== null && typeof call?.analysis === "object" && Object.keys(call.analysis).length > 0;

/** The ended call's cost, and the call selected in the recent calls with its breakdown. */
async function showPriced(call, { focus }) {
  const box = $("#last-call");
  const micros = numberToMicros(call.cost);
  const cost = micros === null ? "—" : formatMicros(micros, 4);
  box.textContent = `Your ${formatDuration(call.startedAt, call.endedAt)} call cost ${cost}${hasAnalysis(call) ? ", its post-call analysis included" : ""}.`;
  box.dataset.call = call.id;
  await loadCalls();
  const shown = $("#breakdown").dataset.call;
  if (
    (!shown || shown === call.id) &&
    document.querySelector(`#call-table tr[data-call="${CSS.escape(call.id)}"]`)
  )
    await openBreakdown(call.id, { focus });
}

/** Which ended call the page follows (a newer call stops the following of an older one). */
let following = null;

/**
 * Polls the ended call until it is priced, then shows it (selected) in the recent calls. The
 * post-call analysis runs after that and adds its own cost line: the page follows the call a little
 * longer and shows the new total when it lands.
 */
async function awaitPriced(callId) {
  following = callId;
  const box = $("#last-call");
  box.textContent = "Waiting for the call to be priced…";
  let call = null;
  try {
    const priceBy = Date.now() + PRICING_WAIT_MS;
    for (let delay = 250; Date.now() < priceBy; delay = Math.min(delay * 2, 2000)) {
      call = await fetchCall(callId);
      if (following !== callId) return;
      if (isPriced(call)) break;
      await sleep(delay);
    }
    if (!isPriced(call)) {
      await loadCalls();
      box.textContent = "The call has ended; its cost shows in the recent calls once it has been priced.";
      return;
    }
    await showPriced(call, { focus: true });
    document.body.dataset.priced = callId;

    const analysedBy = Date.now() + ANALYSIS_WAIT_MS;
    while (!hasAnalysis(call) && Date.now() < analysedBy) {
      await sleep(2000);
      const next = await fetchCall(callId);
      if (following !== callId) return;
      if (!next) continue;
      const changed = next.cost !== call.cost || hasAnalysis(next);
      call = next;
      if (changed) await showPriced(call, { focus: false });
    }
    if (hasAnalysis(call)) document.body.dataset.analysed = callId;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
  }
}

// ---------------------------------------------------------------- loading -------------------

function assistantName(id) {
  return assistantNames.get(id) ?? `Assistant ${id.slice(0, 8)}`;
}

async function loadCalls() {
  const calls = await api("/call?limit=10");
  renderCallTable(calls, (c) =>
    c.assistantId ? assistantName(c.assistantId) : (c.assistant?.name ?? "Transient assistant"),
  );
}

async function loadPage() {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  const assistants = await api("/assistant?limit=1000");
  assistantNames.clear();
  const select = $("#assistant");
  select.replaceChildren(
    ...assistants
      .filter((a) => a?.id)
      .map((a) => {
        const name = a.name ?? `Assistant ${a.id.slice(0, 8)}`;
        assistantNames.set(a.id, name);
        return el("option", { value: a.id }, name);
      }),
  );
  const wanted = new URLSearchParams(location.search).get("assistantId");
  if (wanted && assistantNames.has(wanted)) select.value = wanted;
  $("#no-assistants").hidden = select.options.length > 0;
  if (!current) setPhase("idle");
  await loadCalls();
  document.body.dataset.ready = "true";
}

async function start() {
  document.body.dataset.ready = "false";
  if (!getKey()) return showSignIn();
  try {
    await loadPage();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      return signOut(signInMessage(err));
    status("");
    showError(`Could not load your assistants: ${err.message}`);
  }
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
  if (current) hangUp();
  forgetKey();
  document.body.dataset.ready = "false";
  showSignIn(message);
}

$("#call-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startCall();
});
$("#hangup").addEventListener("click", () => hangUp());
$("#signout").addEventListener("click", () => signOut());
document.addEventListener(UNAUTHORIZED_EVENT, () =>
  signOut("Your API key is no longer accepted. Sign in again."),
);
// Leaving the page hangs up, so the call is not left running until its silence timeout.
window.addEventListener("pagehide", () => {
  if (current) hangUp();
});
bindSignIn((key) => api("/assistant?limit=1", { key }), start);

start();
