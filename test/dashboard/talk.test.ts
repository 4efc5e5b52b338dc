import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { WebSocket } from "ws";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";
import { createAssistant, type MediaEnv, startMediaEnv } from "../media/harness.ts";

// "Talk to your assistant" in a real browser: Debian's headless Chromium (playwright-core) with a
// fake microphone fed from a WAV file made here, against the API, media and worker apps built in
// process on the loopback provider fakes. The fake STT cannot find its utterance header in a
// browser's audio (processed, resampled, converted), so the file "says" its words with a steady
// tone of a pitch registered with the fake (registerToneUtterance): the words come back only if the
// page sent that audio at the rate it declared. Everything is awaited on page or database state,
// never on sleeps: a loaded machine only makes it slower.

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(process.cwd(), "test-artifacts");
const SAID = "What are your opening hours";
const PITCH_HZ = 440;
/**
 * Generous: on two shared cores a call's set-up, a turn and pricing each take seconds, and an API's
 * first POST /call compiles its body's validator (10-20 s here under load).
 */
const WAIT_MS = 60_000;

let env: MediaEnv;
let base: string;
let assistantId: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let workDir: string;
let callId: string;
const pageErrors: string[] = [];

/**
 * A mono 16-bit WAV at 48 kHz: silence, `SAID` as one second of a steady 440 Hz tone, then silence
 * long enough for the assistant's answer. Chromium loops the file, so the caller says it again
 * every 9.5 s: whenever the call's websocket opens, the next saying is heard whole.
 */
function callerWav(): Buffer {
  const rate = 48_000;
  const parts = [
    { seconds: 2.5, hz: 0 },
    { seconds: 1, hz: PITCH_HZ },
    { seconds: 6, hz: 0 },
  ];
  const samples = parts.reduce((n, p) => n + Math.round(p.seconds * rate), 0);
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write("RIFF", 0, "ascii");
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write("WAVEfmt ", 8, "ascii");
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28); // bytes per second
  wav.writeUInt16LE(2, 32); // block align
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write("data", 36, "ascii");
  wav.writeUInt32LE(samples * 2, 40);
  let at = 44;
  for (const p of parts) {
    const n = Math.round(p.seconds * rate);
    for (let i = 0; i < n; i++, at += 2) {
      // A speaking level (−12 dBFS), with 10 ms fades so the tone starts and stops without a click.
      const fade = Math.min(1, i / (rate / 100), (n - i) / (rate / 100));
      const v = p.hz === 0 ? 0 : 0.25 * fade * Math.sin((2 * Math.PI * p.hz * i) / rate);
      wav.writeInt16LE(Math.round(v * 32767), at);
    }
  }
  return wav;
}

interface CallJson {
  id: string;
  transport?: { websocketCallUrl?: string };
  type: string;
  status: string;
  endedReason?: string;
  cost?: number;
  costs?: Array<{ type: string; cost: number; billedBy: string }>;
}

function microsOf(n: number): string {
  const [whole, frac = ""] = n.toFixed(6).split(".");
  return (BigInt(whole ?? "0") * 1_000_000n + BigInt(frac.padEnd(6, "0"))).toString();
}

async function getCall(t: TestApi, org: TestOrg, id: string): Promise<CallJson> {
  const res = await t.request({ method: "GET", url: `/call/${id}`, key: org.key });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as CallJson;
}

async function newPage(ctx: BrowserContext): Promise<Page> {
  const p = await ctx.newPage();
  p.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  p.on("console", (m) => {
    // A refused POST /call logs its 400 (the missing-keys case); anything else is a fault.
    if (m.type() === "error" && !m.text().includes("status of 400")) pageErrors.push(m.text());
  });
  return p;
}

/** Waits for the page's call phase; on a timeout, says what the page was showing instead. */
async function waitForPhase(p: Page, phase: string): Promise<void> {
  try {
    await p.locator(`body[data-call=${phase}]`).waitFor({ timeout: WAIT_MS });
  } catch (err) {
    const shown = await p.evaluate(() => ({
      phase: document.body.dataset.call,
      status: document.getElementById("call-status")?.textContent,
      error: document.getElementById("call-error")?.textContent,
    }));
    throw new Error(`the call never got ${phase}: ${JSON.stringify(shown)}`, { cause: err });
  }
}

async function signIn(p: Page, url: string, key: string): Promise<void> {
  await p.goto(url);
  await p.locator("#signin").waitFor({ state: "visible" });
  await p.fill("#api-key", key);
  await p.click("#signin-form button[type=submit]");
  await p.locator("body[data-ready=true]").waitFor();
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  workDir = await mkdtemp(join(tmpdir(), "switchboard-talk-"));
  const wav = join(workDir, "caller.wav");
  await writeFile(wav, callerWav());

  env = await startMediaEnv();
  env.deepgram.registerToneUtterance(PITCH_HZ, SAID);
  assistantId = await createAssistant(env, { name: "Front desk" });
  base = env.t.config.publicUrl;

  // The microphone is granted to the main context only; a second context is refused it.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}`,
    ],
  });
  context = await browser.newContext({
    permissions: ["microphone"],
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
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("Talk to your assistant, in a browser", () => {
  test("the page is linked from the dashboard; only it may connect to the media plane's origin", async () => {
    const mediaOrigin = new URL(env.t.config.mediaPublicUrl).origin;
    const talk = await env.t.request({ method: "GET", url: "/dashboard/talk.html" });
    assert.equal(talk.statusCode, 200);
    const csp = String(talk.headers["content-security-policy"]);
    assert.match(csp, new RegExp(`connect-src 'self' ${mediaOrigin.replace(/[.]/g, "\\.")};`));
    assert.match(csp, /script-src 'self';/);
    const dashboard = await env.t.request({ method: "GET", url: "/dashboard/" });
    assert.match(String(dashboard.headers["content-security-policy"]), /connect-src 'self';/);

    await signIn(page, `${base}/dashboard/`, env.org.key);
    await page.getByRole("link", { name: "Talk to your assistant", exact: true }).click();
    await page.waitForURL(`${base}/dashboard/talk.html`);
    // Signed in already: the key is this tab's, for every page of the origin.
    await page.locator("body[data-ready=true]").waitFor();
    assert.equal(await page.locator("#signin").isVisible(), false);
    assert.deepEqual(
      await page
        .locator("#assistant option")
        .evaluateAll((os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent])),
      [[assistantId, "Front desk"]],
    );
    assert.equal(await page.locator("#hangup").isVisible(), false);
  });

  test("a call: the fake STT hears the microphone, both sides show in the transcript, the assistant is heard", async () => {
    const connected = env.deepgram.waitForConnection(WAIT_MS);
    connected.catch(() => {}); // awaited below, once the call is live
    await page.click("#call");
    await waitForPhase(page, "live");
    callId = (await page.locator("body").getAttribute("data-call-id")) ?? "";
    assert.ok(callId, "the page names its call");
    const created = await getCall(env.t, env.org, callId);
    assert.equal(created.type, "vapi.websocketCall");
    assert.equal(await page.locator("#hangup").isVisible(), true);

    // The transcriber gets the page's audio as 16 kHz linear16, as the call declared.
    const stt = await connected;
    assert.equal(stt.params.encoding, "linear16");
    assert.equal(stt.params.sample_rate, "16000");

    // What the caller said, recognised from the tone's pitch: the page resampled it correctly.
    const userLine = page.locator('#transcript li[data-role="user"][data-final="true"]', { hasText: SAID });
    await userLine.first().waitFor({ timeout: WAIT_MS });
    assert.ok(stt.transcripts.includes(SAID), `the fake STT heard: ${JSON.stringify(stt.transcripts)}`);

    // The assistant's answer (the fake model echoes what it was told). Its first message is not
    // waited for: the caller's tone may start while it plays and cut it short (a barge-in).
    const answer = page.locator('#transcript li[data-role="assistant"][data-final="true"]', {
      hasText: `You said: ${SAID}.`,
    });
    await answer.first().waitFor({ timeout: WAIT_MS });

    // The assistant's audio reached the playback worklet and was played out.
    const stats = await page.waitForFunction(
      () => {
        const box = document.getElementById("audio-stats");
        const played = Number(box?.dataset.playedMs ?? 0);
        const sent = Number(box?.dataset.sentMs ?? 0);
        return played >= 300 && sent >= 1000
          ? { played, sent, received: Number(box?.dataset.receivedMs) }
          : null;
      },
      undefined,
      { timeout: WAIT_MS },
    );
    const figures = await stats.jsonValue();
    assert.ok(figures && figures.received >= figures.played, JSON.stringify(figures));
    assert.ok(stt.audioSeconds >= 1, `the transcriber got ${stt.audioSeconds} s of audio`);

    await page.screenshot({ path: join(ARTIFACTS, "talk-live.png"), fullPage: true });
  });

  test("Hang up ends the call; it then shows in the recent calls with its cost and breakdown", async () => {
    assert.ok(callId, "the previous test started a call");
    await page.click("#hangup");
    await waitForPhase(page, "ended");
    assert.match((await page.locator("#call-status").textContent()) ?? "", /you hung up/);
    assert.equal(await page.locator("#call").isVisible(), true);

    // Priced: the page shows it selected in the recent calls, with its cost lines; the post-call
    // analysis then adds its own line, and the page shows the new total.
    await page.locator(`body[data-priced="${callId}"]`).waitFor({ timeout: WAIT_MS });
    await page.locator(`body[data-analysed="${callId}"]`).waitFor({ timeout: WAIT_MS });
    const call = await getCall(env.t, env.org, callId);
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "customer-ended-call");
    assert.ok(call.cost !== undefined && call.costs && call.costs.length > 0, JSON.stringify(call));
    const types = call.costs.map((c) => c.type);
    for (const type of ["transport", "transcriber", "model", "voice", "vapi", "analysis"]) {
      assert.ok(types.includes(type), `a ${type} line in ${JSON.stringify(types)}`);
    }
    assert.match(
      (await page.locator("#last-call").textContent()) ?? "",
      /^Your \d+m \d\ds call cost \$\d+\.\d{4}, its post-call analysis included\.$/,
    );
    const row = page.locator(`#call-table tbody tr[data-call="${callId}"]`);
    assert.equal(await row.getAttribute("aria-selected"), "true");
    assert.equal(await row.locator("td").nth(2).textContent(), "Web");
    assert.equal(
      await row.locator('[data-col="cost"] [data-micros]').getAttribute("data-micros"),
      microsOf(call.cost),
    );
    await page.locator(`#breakdown[data-call="${callId}"] #breakdown-table`).waitFor();
    assert.deepEqual(
      await page.locator("#breakdown-table tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.type)),
      call.costs.map((c) => c.type),
    );
    assert.equal(
      await page.locator('[data-field="call-total"] [data-micros]').getAttribute("data-micros"),
      microsOf(call.cost),
    );
    await page.screenshot({ path: join(ARTIFACTS, "talk-ended.png"), fullPage: true });

    // And on the billing dashboard's recent calls, as a web call with the same cost.
    await page.getByRole("link", { name: "Billing", exact: true }).click();
    await page.locator("body[data-ready=true]").waitFor();
    const billed = page.locator(`#call-table tbody tr[data-call="${callId}"]`);
    assert.equal(await billed.locator("td").nth(2).textContent(), "Web");
    assert.equal(
      await billed.locator('[data-col="cost"] [data-micros]').getAttribute("data-micros"),
      microsOf(call.cost),
    );
    assert.deepEqual(pageErrors, []);
  });

  test("a call's address already used by another client: the page says the media server closed it, and why", async () => {
    await page.goto(`${base}/dashboard/talk.html`);
    await page.locator("body[data-ready=true]").waitFor();
    // The API's real answer reaches the page, but only once another client holds the call: its
    // websocketCallUrl works once.
    let holder: WebSocket | undefined;
    await page.route(`${base}/call`, async (route) => {
      if (route.request().method() !== "POST") return route.continue();
      const response = await route.fetch();
      const url = ((await response.json()) as CallJson).transport?.websocketCallUrl;
      assert.ok(url, "the call has a websocket address");
      const ws = new WebSocket(url);
      holder = ws;
      // The call is this client's once its first audio (the assistant's first message) comes back.
      await new Promise<void>((resolve, reject) => {
        ws.once("message", () => resolve());
        ws.once("error", reject);
        ws.once("close", (code, reason) => reject(new Error(`closed ${code} ${String(reason)}`)));
      });
      await route.fulfill({ response });
    });
    try {
      await page.click("#call");
      await waitForPhase(page, "failed");
      assert.equal(
        await page.locator("#call-error").textContent(),
        "The call's connection closed (code 1008: already used).",
      );
      assert.equal(await page.locator("#call").isVisible(), true);
    } finally {
      await page.unroute(`${base}/call`);
      holder?.send(JSON.stringify({ type: "hangup" }));
      holder?.close();
    }
  });

  test("the caller speaking over the assistant stops its audio at once (barge-in)", async () => {
    // A first message longer than the caller's 9.5 s loop, open to interruptions: the caller's tone
    // starts while it plays, whatever the phase of the file when the call goes live.
    const long = "Thanks for calling the long line, where every answer takes its time. ".repeat(16);
    const fullMs = long.length * 10; // the harness's fake voice: 10 ms of audio per character
    const talker = await createAssistant(env, {
      name: "Long talker",
      firstMessage: long,
      firstMessageInterruptionsEnabled: true,
    });
    await page.goto(`${base}/dashboard/talk.html?assistantId=${talker}`);
    await page.locator("body[data-ready=true]").waitFor();
    assert.equal(await page.locator("#assistant").inputValue(), talker);
    await page.click("#call");
    await waitForPhase(page, "live");

    // The caller's voice: the page drops the assistant's queued audio and stops playing it.
    const cut = await page.waitForFunction(
      () => {
        const box = document.getElementById("audio-stats");
        return Number(box?.dataset.clears ?? 0) >= 1 ? { played: Number(box?.dataset.playedMs) } : null;
      },
      undefined,
      { timeout: WAIT_MS },
    );
    const atCut = (await cut.jsonValue())?.played ?? 0;
    assert.ok(atCut < fullMs, `${atCut} ms of the ${fullMs} ms first message played before the cut`);
    // What the assistant had said is closed as a final line, shorter than what it meant to say.
    const first = page.locator('#transcript li[data-role="assistant"][data-final="true"]').first();
    await first.waitFor({ timeout: WAIT_MS });
    const said = (await first.locator(".text").textContent()) ?? "";
    assert.ok(said.length > 0 && said.length < long.trim().length, `the first message as heard: ${said}`);
    // Then the conversation goes on: the caller is heard and answered.
    await page
      .locator('#transcript li[data-role="assistant"][data-final="true"]', { hasText: `You said: ${SAID}.` })
      .first()
      .waitFor({ timeout: WAIT_MS });
    const played = Number(await page.locator("#audio-stats").getAttribute("data-played-ms"));
    assert.ok(played < fullMs, `${played} ms played in all, less than the first message alone`);
    await page.screenshot({ path: join(ARTIFACTS, "talk-barge-in.png"), fullPage: true });

    await page.click("#hangup");
    await waitForPhase(page, "ended");
  });

  test("a call ended on the assistant's side (its maximum duration) says why; the page is ready again", async () => {
    const short = await createAssistant(env, { name: "Short line", maxDurationSeconds: 10 });
    await page.goto(`${base}/dashboard/talk.html?assistantId=${short}`);
    await page.locator("body[data-ready=true]").waitFor();
    await page.click("#call");
    await waitForPhase(page, "live");
    const id = (await page.locator("body").getAttribute("data-call-id")) ?? "";
    await waitForPhase(page, "ended");
    assert.equal(
      await page.locator("#call-status").textContent(),
      "The call ended: the call reached its maximum duration (exceeded-max-duration).",
    );
    assert.equal(await page.locator("#call-error").textContent(), "");
    assert.equal(await page.locator("#call").isEnabled(), true);
    assert.equal(await page.locator("#hangup").isVisible(), false);
    assert.equal(await page.locator("#mic-level-label").isVisible(), false);
    // The page hears the end as it happens; the record is written right after: read once priced.
    await page.locator(`body[data-priced="${id}"]`).waitFor({ timeout: WAIT_MS });
    assert.equal((await getCall(env.t, env.org, id)).endedReason, "exceeded-max-duration");
  });

  test("a microphone the browser refuses: the page says how to allow it, and no call is made", async () => {
    const refused = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const p = await newPage(refused);
      await signIn(p, `${base}/dashboard/talk.html`, env.org.key);
      const before = (
        await env.t.request({ method: "GET", url: "/call", key: env.org.key })
      ).json() as unknown[];
      await p.click("#call");
      await waitForPhase(p, "failed");
      assert.match(
        (await p.locator("#call-error").textContent()) ?? "",
        /^Microphone access was denied\. Allow/,
      );
      const later = (
        await env.t.request({ method: "GET", url: "/call", key: env.org.key })
      ).json() as unknown[];
      assert.equal(later.length, before.length);
      assert.equal(await p.locator("#call").isEnabled(), true);
    } finally {
      await refused.close();
    }
  });

  test("without provider keys the page shows which keys are missing and how to add them", async () => {
    // A platform with no provider keys of its own, and an organisation with no credentials.
    const bare = await startTestApi();
    const p = await newPage(context);
    try {
      await bare.app.listen({ host: "127.0.0.1", port: 0 });
      const address = bare.app.server.address();
      assert.ok(address && typeof address === "object");
      const org = await bare.createOrg("Keyless");
      const created = await bare.request({
        method: "POST",
        url: "/assistant",
        key: org.key,
        // No server: its URL would be resolved (DNS) on every call start, and nothing answers here.
        payload: assistantBody({ name: "Keyless desk", server: undefined }),
      });
      assert.equal(created.statusCode, 201, created.body);

      // What the API answers to exactly what the page sends.
      const refused = await bare.request({
        method: "POST",
        url: "/call",
        key: org.key,
        payload: {
          assistantId: created.json().id,
          transport: {
            provider: "vapi.websocket",
            audioFormat: { format: "pcm_s16le", container: "raw", sampleRate: 16000 },
          },
        },
      });
      assert.equal(refused.statusCode, 400, refused.body);
      const message = (refused.json() as { message: string }).message;
      for (const needed of ["deepgram", "openai", "11labs", "POST /credential", "DEEPGRAM_API_KEY"]) {
        assert.ok(message.includes(needed), `${needed} in: ${message}`);
      }

      await signIn(p, `http://127.0.0.1:${address.port}/dashboard/talk.html`, org.key);
      await p.click("#call");
      await waitForPhase(p, "failed");
      assert.equal(await p.locator("#call-error").textContent(), `The call could not be started: ${message}`);
      const calls = await bare.request({ method: "GET", url: "/call", key: org.key });
      assert.deepEqual(calls.json(), []);
      await p.screenshot({ path: join(ARTIFACTS, "talk-missing-keys.png"), fullPage: true });
    } finally {
      await p.close();
      await bare.close();
    }
  });
});
