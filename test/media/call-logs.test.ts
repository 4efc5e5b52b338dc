import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { after, before, describe, it } from "node:test";
import { buildApi } from "../../apps/api/src/app.ts";
import { LOG_URL_TTL_MS } from "../../libs/call-logs/index.ts";
import type { ChatRequest } from "../fakes/index.ts";
import { closeServer, listenLoopback, readBody, sleep } from "../fakes/util.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

// A call's log (artifactPlan.loggingEnabled) end to end: a real call through the media harness
// (Twilio, Deepgram, OpenAI and ElevenLabs fakes), a tool server and the customer's server, then
// the log as a user gets it: `artifact.logUrl` (signed, no key), `GET /call/:id/call-logs` (a key
// of the call's organisation, 302 to a signed URL).

interface Entry {
  time: string;
  secondsFromStart: number;
  level: string;
  category: string;
  message: string;
  data?: Record<string, unknown>;
}

const STORY =
  "Once upon a time there was a small robot who lived in a lighthouse by the sea, and every night it counted the ships that passed, one by one, until the morning came and the fishermen sailed home again with their nets full of silver fish.";

/** Secrets the call's configuration and providers hold: none may appear in its log. */
const SECRETS = {
  toolUrlToken: "url-token-secret-4242",
  toolSecret: "per-tool-secret-5151",
  toolBearer: "tool-bearer-secret-6161",
  serverSecret: "server-secret-7373",
  serverBearer: "server-bearer-secret-8484",
  platformOpenAi: "sk-platform-openai",
  platformDeepgram: "platform-deepgram",
  platformElevenLabs: "platform-elevenlabs",
  orgOpenAiCredential: "sk-org-credential-9595",
};

function respond(name: string) {
  return (req: ChatRequest) => {
    const last = req.messages[req.messages.length - 1];
    if (last?.role === "tool") return { text: "Your order shipped yesterday." };
    const said = String(last?.content ?? "");
    if (said.includes("order")) {
      return { toolCalls: [{ id: "call_order_1", name: "lookup_order", arguments: { orderNumber: "42" } }] };
    }
    if (said.includes("story")) return { text: STORY, interTokenDelayMs: 60 };
    return { text: `Okay (${name}).` };
  };
}

function assistant(name: string, toolUrl: string, env: MediaEnv, more: Record<string, unknown> = {}) {
  return {
    model: {
      provider: "openai",
      model: "gpt-4o",
      messages: [{ role: "system", content: `TEST ${name}.` }],
      tools: [
        {
          type: "function",
          function: {
            name: "lookup_order",
            description: "Look up an order",
            parameters: { type: "object", properties: { orderNumber: { type: "string" } } },
          },
          server: {
            url: `${toolUrl}/tools?token=${SECRETS.toolUrlToken}`,
            secret: SECRETS.toolSecret,
            headers: { Authorization: `Bearer ${SECRETS.toolBearer}` },
          },
          messages: [{ type: "request-start", content: "Let me check." }],
        },
      ],
    },
    server: {
      url: env.customer.url,
      secret: SECRETS.serverSecret,
      headers: { Authorization: `Bearer ${SECRETS.serverBearer}` },
    },
    stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 0 },
    ...more,
  };
}

/** The path and query of an absolute URL (the API is injected, not dialled). */
function pathOf(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

/** `steps` appear in `entries` in this order (other entries may come between). */
function assertInOrder(
  entries: Entry[],
  steps: Array<[string, string | RegExp, ((e: Entry) => boolean)?]>,
): void {
  let i = 0;
  for (const [category, message, ok] of steps) {
    const matches = (e: Entry) =>
      e.category === category &&
      (typeof message === "string" ? e.message === message : message.test(e.message)) &&
      (!ok || ok(e));
    while (i < entries.length && !matches(entries[i] as Entry)) i++;
    assert.ok(
      i < entries.length,
      `expected ${category} "${message}" after the previous step; the log:\n${entries
        .map((e) => `${e.category}: ${e.message} ${JSON.stringify(e.data ?? {})}`)
        .join("\n")}`,
    );
    i++;
  }
}

describe("call logs: a call's log, end to end", { concurrency: true }, () => {
  let env: MediaEnv;
  let tools: ReturnType<typeof createServer>;
  let toolUrl: string;
  const toolRequests: IncomingMessage[] = [];
  /** The logged call (a tool call and a barge-in), its id and the log as `artifact.logUrl` serves it. */
  let callId: string;
  let logUrl: string;
  let entries: Entry[];
  /** The call's row and stored log while it was still running. */
  let midCall: { artifact: { logUrl?: string } | null; stored: string };

  before(async () => {
    env = await startMediaEnv();
    env.openai.respond = (req) => {
      const first = String(req.messages[0]?.content ?? "");
      const name = /^TEST ([\w-]+)\./.exec(first)?.[1] ?? "";
      return respond(name)(req);
    };
    tools = createServer(async (req, res) => {
      await readBody(req);
      toolRequests.push(req);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ results: [{ toolCallId: "call_order_1", result: "Order 42 shipped on Monday" }] }),
      );
    });
    toolUrl = `http://127.0.0.1:${await listenLoopback(tools)}`;

    // The organisation's own OpenAI key (a credential): the calls' model requests use it.
    const credential = await env.t.request({
      method: "POST",
      url: "/credential",
      key: env.org.key,
      payload: { provider: "openai", apiKey: SECRETS.orgOpenAiCredential },
    });
    assert.equal(credential.statusCode, 201, credential.body);

    // One call: a tool call, then a story the caller interrupts, then the caller hangs up.
    const { sim } = await callAssistant(env, assistant("logged", toolUrl, env));
    await waitForSpoken(sim, 1);
    await sim.say("Where is my order?");
    await waitForSpoken(sim, 3);
    // While the call runs, what happened so far is already stored (a killed process keeps it), and
    // the call's row links it.
    midCall = await waitUntil(
      async () => {
        const row = await env.t.db.call.findUnique({ where: { providerCallId: sim.callSid } });
        if (row?.status !== "in-progress") return undefined;
        const chunks = await env.t.db.callLog.findMany({ where: { callId: row.id } });
        const stored = JSON.stringify(chunks.map((c) => c.entries));
        return stored.includes("Where is my order?") && stored.includes("tool calls answered")
          ? { artifact: row.artifact as { logUrl?: string } | null, stored }
          : undefined;
      },
      5000,
      "the first turn's entries stored during the call",
    );
    const story = await sim.say("Tell me a story");
    await sim.waitForAudio({ since: story.lastVoicedAt ?? Date.now(), timeoutMs: 5000 });
    await sleep(400);
    await sim.say("Wait, stop");
    await waitUntil(() => sim.clears > 0, 3000, "the barge-in's clear");
    // The story was cut (no end mark): the answer to "Wait, stop" is the fourth heard to its end.
    await waitForSpoken(sim, 4);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    callId = call.id;
    // The end-of-call report is delivered by the worker after the call: its outcome joins the log.
    await waitUntil(
      async () => {
        const rows = await env.t.db.callLog.findMany({ where: { callId } });
        return rows.some((r) => JSON.stringify(r.entries).includes('"end-of-call-report"'));
      },
      8000,
      "the end-of-call report's delivery in the log",
    );
    const res = await env.t.request({ method: "GET", url: `/call/${callId}`, key: env.org.key });
    assert.equal(res.statusCode, 200);
    logUrl = (res.json() as { artifact: { logUrl: string } }).artifact.logUrl;
    const log = await env.t.app.inject({ method: "GET", url: pathOf(logUrl) });
    assert.equal(log.statusCode, 200, log.body);
    entries = log.json() as Entry[];
  });
  after(async () => {
    await closeServer(tools);
    await env.close();
  });

  it("a call with a tool call and a barge-in logs what happened, in order", () => {
    assertInOrder(entries, [
      ["transport", "media connection opened", (e) => e.data?.transport === "twilio"],
      ["transport", "stream started"],
      ["transport", "stream claimed the call", (e) => e.data?.callerAudio === "mulaw 8000 Hz"],
      [
        "call",
        "assistant loaded",
        (e) =>
          (e.data?.model as { provider?: string; model?: string })?.model === "gpt-4o" &&
          (e.data?.transcriber as { provider?: string })?.provider === "deepgram",
      ],
      ["transcriber", "transcriber connected", (e) => typeof e.data?.connectMs === "number"],
      ["call", "call started"],
      ["voice", "message spoken", (e) => e.data?.source === "first-message"],
      ["turn", "the caller's turn ended", (e) => e.data?.words === "Where is my order?"],
      ["model", "reply to the caller's turn requested", (e) => e.data?.model === "gpt-4o"],
      [
        "tool",
        "tool calls answered",
        (e) => {
          const calls = e.data?.calls as Array<{ name: string; status: string }>;
          return (
            calls?.[0]?.name === "lookup_order" &&
            calls[0].status === "ok" &&
            typeof e.data?.durationMs === "number" &&
            String(e.data?.url).startsWith(`${toolUrl}/tools?token=`)
          );
        },
      ],
      ["turn", "the caller's turn ended", (e) => e.data?.words === "Tell me a story"],
      ["turn", "the reply started playing", (e) => typeof e.data?.modelMs === "number"],
      [
        "interruption",
        "barge-in: the assistant stopped speaking",
        (e) =>
          e.data?.trigger === "voice" &&
          typeof e.data.heardCharacters === "number" &&
          e.data.heardCharacters < STORY.length,
      ],
      ["transport", "the far end hung up"],
      ["call", "call ended", (e) => e.data?.endedReason === "customer-ended-call"],
    ]);
    // The turn's endpointing: how long the platform waited for more words, and why.
    const wait = entries.find(
      (e) => e.category === "turn" && e.message === "endpointing: waiting for more words",
    );
    assert.ok(wait, "an endpointing decision");
    assert.ok(["punctuation", "no-punctuation", "number", "utterance-end"].includes(String(wait.data?.rule)));
    assert.equal(typeof wait.data?.waitMs, "number");
    // Server messages delivered by the worker, with their outcome (after the call, too).
    const deliveries = entries.filter((e) => e.category === "server-message");
    assert.ok(
      deliveries.some((e) => e.data?.type === "end-of-call-report" && e.data.outcome === "delivered"),
      "the end-of-call report's delivery",
    );
    assert.ok(deliveries.every((e) => e.data?.outcome === "delivered" && e.data.status === 200));
    // In time order, timestamped, relative to the call's start.
    for (let i = 1; i < entries.length; i++) {
      assert.ok(
        Date.parse((entries[i] as Entry).time) >= Date.parse((entries[i - 1] as Entry).time),
        "entries in time order",
      );
    }
    const started = entries.find((e) => e.message === "call started") as Entry;
    assert.ok(started.secondsFromStart >= 0 && started.secondsFromStart < 5);
    for (const e of entries) {
      assert.ok(["debug", "info", "warn", "error"].includes(e.level));
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  it("the log is stored as the call runs (each turn), and the running call's row links it", () => {
    assert.match(String(midCall.artifact?.logUrl), new RegExp(`/call/${callId}/call-logs$`));
    assert.ok(!midCall.stored.includes("call ended"), "stored before the end");
  });

  it("no secret of the call appears in its log", () => {
    const text = JSON.stringify(entries);
    for (const [what, secret] of Object.entries(SECRETS)) {
      assert.ok(!text.includes(secret), `${what} is in the log`);
    }
    // The link's own signature neither.
    const signature = new URL(logUrl).searchParams.get("signature") ?? "";
    assert.ok(signature.length > 20 && !text.includes(signature), "the signed URL's signature");
    // The tool's target is logged, with its token scrubbed.
    assert.ok(text.includes(`${toolUrl}/tools?token=[redacted]`), "the tool's URL without its token");
    // The tool server and the model did get their credentials (the log hid real values).
    assert.equal(toolRequests[0]?.headers.authorization, `Bearer ${SECRETS.toolBearer}`);
    const modelRequest = env.openai.requests.find((r) =>
      String(r.body.messages[0]?.content).startsWith("TEST logged."),
    );
    assert.equal(modelRequest?.authorization, `Bearer ${SECRETS.orgOpenAiCredential}`);
    // The log says the model ran on the organisation's key, without the key.
    const loaded = entries.find((e) => e.message === "assistant loaded");
    assert.equal((loaded?.data?.model as { byo?: boolean })?.byo, true);
  });

  it("artifact.logUrl is signed and works without a key; GET /call/:id/call-logs redirects to a signed URL", async () => {
    assert.match(logUrl, new RegExp(`/call/${callId}/call-logs\\.json\\?expires=\\d+&signature=[\\w-]+$`));
    const res = await env.t.request({ method: "GET", url: `/call/${callId}/call-logs`, key: env.org.key });
    assert.equal(res.statusCode, 302);
    const location = String(res.headers.location);
    assert.match(location, /\/call-logs\.json\?expires=\d+&signature=/);
    const followed = await env.t.app.inject({ method: "GET", url: pathOf(location) });
    assert.equal(followed.statusCode, 200);
    assert.deepEqual(followed.json(), entries);
    // A changed signature, or the signature of another call's link, opens nothing.
    const forged = pathOf(logUrl).replace(
      /signature=[\w-]+/,
      "signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    assert.equal((await env.t.app.inject({ method: "GET", url: forged })).statusCode, 403);
    const noKey = await env.t.app.inject({ method: "GET", url: `/call/${callId}/call-logs` });
    assert.equal(noKey.statusCode, 401);
  });

  it("another organisation gets a 404 for the call's log, and its links open nothing else", async () => {
    const other = await env.t.createOrg("Other");
    const res = await env.t.request({ method: "GET", url: `/call/${callId}/call-logs`, key: other.key });
    assert.equal(res.statusCode, 404);
    const view = await env.t.request({ method: "GET", url: `/call/${callId}`, key: other.key });
    assert.equal(view.statusCode, 404);
    // The signed query of this call's log on another call's path.
    const { search } = new URL(logUrl);
    const elsewhere = await env.t.app.inject({
      method: "GET",
      url: `/call/00000000-0000-4000-8000-000000000000/call-logs.json${search}`,
    });
    assert.equal(elsewhere.statusCode, 403);
  });

  it("the signed link expires (the API's clock)", async () => {
    let offsetMs = 0;
    const api = await buildApi(env.t.config, {
      db: env.t.db,
      redis: env.t.redis,
      logger: false,
      now: () => Date.now() + offsetMs,
    });
    try {
      assert.equal((await api.inject({ method: "GET", url: pathOf(logUrl) })).statusCode, 200);
      offsetMs = LOG_URL_TTL_MS + 60_000;
      const late = await api.inject({ method: "GET", url: pathOf(logUrl) });
      assert.equal(late.statusCode, 403);
      assert.match((late.json() as { message: string }).message, /expired/);
    } finally {
      await api.close();
    }
  });

  it("loggingEnabled false: the call keeps no log and its artifact has no logUrl", async () => {
    const { sim } = await callAssistant(
      env,
      assistant("unlogged", toolUrl, env, { artifactPlan: { loggingEnabled: false } }),
    );
    await waitForSpoken(sim, 1);
    await sim.say("Tell me a joke");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    // After the end-of-call report was delivered (a logged call would log it).
    await waitUntil(
      () =>
        env.customer.received.some(
          (r) =>
            r.json.message?.type === "end-of-call-report" &&
            (r.json.message.call as { id?: string } | undefined)?.id === call.id,
        ),
      8000,
      "the end-of-call report",
    );
    const res = await env.t.request({ method: "GET", url: `/call/${call.id}`, key: env.org.key });
    assert.equal((res.json() as { artifact: { logUrl?: string } }).artifact.logUrl, undefined);
    const logs = await env.t.request({ method: "GET", url: `/call/${call.id}/call-logs`, key: env.org.key });
    assert.equal(logs.statusCode, 404);
    assert.equal(await env.t.db.callLog.count({ where: { callId: call.id } }), 0);
  });
});

describe("call logs: the cap (CALL_LOG_MAX_ENTRIES)", () => {
  let env: MediaEnv;
  before(async () => {
    env = await startMediaEnv({ env: { CALL_LOG_MAX_ENTRIES: "10" } });
  });
  after(async () => {
    await env.close();
  });

  it("a log at its cap ends with a note that says it was cut", async () => {
    const { sim } = await callAssistant(env, {
      model: { provider: "openai", model: "gpt-4o", messages: [{ role: "system", content: "Be brief." }] },
    });
    await waitForSpoken(sim, 1);
    await sim.say("What are your opening hours?");
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const call = await finalizedCall(env, sim.callSid);
    await waitUntil(
      () => env.customer.received.some((r) => r.json.message?.type === "end-of-call-report"),
      8000,
      "the end-of-call report",
    );
    const res = await env.t.request({ method: "GET", url: `/call/${call.id}/call-logs`, key: env.org.key });
    assert.equal(res.statusCode, 302);
    const log = await env.t.app.inject({ method: "GET", url: pathOf(String(res.headers.location)) });
    const entries = log.json() as Entry[];
    assert.equal(entries.length, 10);
    const last = entries[9] as Entry;
    assert.equal(last.category, "log");
    assert.equal(last.level, "warn");
    assert.match(last.message, /reached its limit/);
    assert.equal(last.data?.maxEntries, 10);
    // What came before the cut is there, from the start.
    assert.equal(entries[0]?.message, "media connection opened");
    // Storage is bounded too: the call's own entries up to the cap, the worker's deliveries only
    // while the stored log is under it.
    const rows = await env.t.db.callLog.findMany({ where: { callId: call.id } });
    const stored = rows.reduce((n, r) => n + r.count, 0);
    assert.ok(stored >= 10 && stored < 20, `stored ${stored}`);
  });
});
