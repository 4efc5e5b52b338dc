// Resilience mid-call: phone calls through the real API, media app and worker, with the providers'
// loopback fakes made to fail the way the real services do: a model request that breaks off, answers
// 500 or 401, or stops answering; a transcriber or voice socket dropped mid-utterance; handshakes
// refused during an outage. The call retries the provider within the turn, switches to the fallback
// plan's next provider when retries are exhausted, records each retry and switch, prices each
// provider it used, and ends with the last failure's endedReason only when nothing is left.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { LLM_STALL_MS } from "../../libs/media/session/turn-loop.ts";
import { FakeAssemblyAI } from "../fakes/assemblyai.ts";
import { FakeCartesia } from "../fakes/cartesia.ts";
import type { ChatRequest, Script } from "../fakes/openai.ts";
import { ManualTimers } from "../helpers/manual-timers.ts";
import {
  callAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";

const FIRST = "Hi, this is Riley from Acme. How can I help?";
const CARTESIA_VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091";

interface Recovery {
  kind: string;
  provider: string;
  model?: string;
  action: string;
  status?: number;
  cause: string;
  to?: { provider: string; model?: string };
}

interface Metrics {
  turnLatencies: Array<{ providerRetries?: number; providerFallbacks?: number }>;
  numProviderRetries: number;
  numProviderFallbacks: number;
  providerRecoveries: Recovery[];
}

interface CostItem {
  type: string;
  cost: number;
  billedBy: string;
  voice?: { provider: string; model: string };
  transcriber?: { provider: string; model: string };
  model?: { provider: string; model: string };
  characters?: number;
  promptTokens?: number;
}

function metricsOf(call: { artifact: unknown }): Metrics {
  return (call.artifact as { performanceMetrics: Metrics }).performanceMetrics;
}

/** The test's tag in the system prompt picks the fake model's script. */
function prompt(tag: string) {
  return [{ role: "system", content: `TEST ${tag}.` }];
}

function tagOf(req: ChatRequest): string {
  return String(req.messages[0]?.content ?? "");
}

function lastUser(req: ChatRequest): string {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i];
    if (m?.role === "user") return String(m.content);
  }
  return "";
}

describe("resilience mid-call: retries and fallback plans", { concurrency: false }, () => {
  let env: MediaEnv;
  let cartesia: FakeCartesia;
  let assemblyai: FakeAssemblyAI;
  const timers = new ManualTimers();
  // The call's timers run on a clock the test drives: in step with the wall clock, and jumped
  // ahead to let a stalled request's watchdog fire.
  const pump = setInterval(() => timers.advance(20), 20);
  /** Per-test model scripts, by the tag of the request's system prompt. */
  const scripts = new Map<string, (req: ChatRequest, n: number) => Script>();
  const seen = new Map<string, ChatRequest[]>();

  before(async () => {
    [cartesia, assemblyai] = await Promise.all([
      FakeCartesia.start({ msPerChar: 10 }),
      FakeAssemblyAI.start(),
    ]);
    env = await startMediaEnv({
      env: {
        CARTESIA_API_URL: cartesia.url,
        CARTESIA_API_KEY: "sk_car_platform",
        ASSEMBLYAI_API_URL: assemblyai.url,
        ASSEMBLYAI_API_KEY: "platform-assemblyai",
      },
      media: { callSchedule: timers.schedule },
    });
    assemblyai.utterances = env.deepgram;
    env.openai.respond = (req) => {
      const tag = tagOf(req);
      const list = seen.get(tag) ?? [];
      list.push(req);
      seen.set(tag, list);
      const script = scripts.get(tag);
      return script ? script(req, list.length) : { text: `You said: ${lastUser(req)}.` };
    };
  });
  after(async () => {
    clearInterval(pump);
    await env.close();
    await Promise.all([cartesia.close(), assemblyai.close()]);
  });

  describe("the model", () => {
    it("a stream cut off before anything was spoken is asked again with the same context; the caller hears one answer", async () => {
      const tag = "TEST llm-drop.";
      scripts.set(tag, (req, n) =>
        n === 1
          ? // Broken after "You": no clause complete, nothing spoken yet.
            { text: `You said: ${lastUser(req)} and we open at nine.`, dropAfterTokens: 1 }
          : { text: `You said: ${lastUser(req)} and we open at nine.` },
      );
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("llm-drop") },
      });
      await waitForSpoken(sim, 1);
      await sim.say("When do you open");
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      const requests = seen.get(tag) ?? [];
      // The first message is fixed text; the caller's turn: one request cut off, then its retry.
      assert.equal(requests.length, 2);
      assert.deepEqual(requests[1]?.messages, requests[0]?.messages, "the same context both times");
      assert.ok(
        env.openai.requests.some((r) => r.dropped),
        "the fake broke a stream",
      );
      assert.equal(call.endedReason, "customer-ended-call");
      const said = (call.transcript ?? "").match(/AI: You said: /g) ?? [];
      assert.equal(said.length, 1, "one answer");
      assert.match(call.transcript ?? "", /AI: You said: When do you open and we open at nine\./);
      const m = metricsOf(call);
      assert.equal(m.numProviderRetries, 1);
      assert.deepEqual(
        m.providerRecoveries.map((r) => [r.kind, r.provider, r.model, r.action, r.cause]),
        [["llm", "openai", "gpt-4o", "retry", "dropped"]],
      );
      assert.equal(m.turnLatencies[0]?.providerRetries, 1, "counted in the turn's metrics");
      const logged = (await env.t.db.callLog.findMany({ where: { callId: call.id }, orderBy: { id: "asc" } }))
        .flatMap((row) => row.entries as { category: string; level: string; message: string }[])
        .filter((e) => e.category === "model" && e.level === "warn");
      assert.deepEqual(
        logged.map((e) => e.message),
        ["openai failed: retrying"],
        "the retry is in the call's log",
      );
    });

    it("a 500 is retried after a backoff, then the answer is spoken", async () => {
      const tag = "TEST llm-500.";
      scripts.set(tag, (req, n) =>
        n === 1
          ? { error: { status: 500, message: "The server had an error while processing your request." } }
          : { text: `You said: ${lastUser(req)}.` },
      );
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("llm-500") },
      });
      await waitForSpoken(sim, 1);
      await sim.say("Do you deliver");
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(seen.get(tag)?.length, 2);
      assert.match(call.transcript ?? "", /AI: You said: Do you deliver\./);
      const [event] = metricsOf(call).providerRecoveries;
      assert.deepEqual(
        { action: event?.action, status: event?.status, cause: event?.cause },
        { action: "retry", status: 500, cause: "server-error" },
      );
    });

    it("a refused key (401) is not retried: the caller hears the apology and the call ends pipeline-error-openai-401-unauthorized", async () => {
      const tag = "TEST llm-401.";
      scripts.set(tag, () => ({
        error: { status: 401, message: "Incorrect API key provided.", code: "invalid_api_key" },
      }));
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-waits-for-user",
        model: { provider: "openai", model: "gpt-4o", messages: prompt("llm-401") },
      });
      await sim.waitForStreamStart();
      await sim.say("Hello there");
      await sim.waitForEnd(15_000);
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(seen.get(tag)?.length, 1, "asked once");
      assert.equal(call.endedReason, "pipeline-error-openai-401-unauthorized");
      assert.match(call.transcript ?? "", /AI: I'm sorry, I'm having some technical difficulties/);
      assert.equal(metricsOf(call).numProviderRetries, 0);
    });

    it("a request that stops answering is abandoned after the stall timeout and asked again", async () => {
      const tag = "TEST llm-stall.";
      scripts.set(tag, (req, n) => (n === 1 ? { stall: true } : { text: `You said: ${lastUser(req)}.` }));
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("llm-stall") },
      });
      await waitForSpoken(sim, 1);
      void sim.say("Are you open on Sunday");
      await waitUntil(() => (seen.get(tag)?.length ?? 0) >= 1, 8000, "the stalled request");
      const stalled = env.openai.lastRequest;
      timers.advance(LLM_STALL_MS);
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(stalled?.aborted, true, "the stalled request was given up");
      assert.equal(seen.get(tag)?.length, 2);
      assert.match(call.transcript ?? "", /AI: You said: Are you open on Sunday\./);
      assert.equal(metricsOf(call).providerRecoveries[0]?.cause, "timeout");
    });

    it("a reply cut off after its first clause was spoken ends there: nothing is asked again, nothing heard twice", async () => {
      const tag = "TEST llm-cut.";
      const answer = "Sure, we have tables free tonight. Shall I book one for you?";
      scripts.set(tag, (_req, n) => (n === 1 ? { text: answer, dropAfterTokens: 8 } : { text: answer }));
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("llm-cut") },
      });
      await waitForSpoken(sim, 1);
      await sim.say("Any tables tonight");
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(seen.get(tag)?.length, 1, "not asked again");
      assert.match(call.transcript ?? "", /AI: Sure, we have tables free tonight\.$/);
      assert.doesNotMatch(call.transcript ?? "", /Shall I book/);
      assert.equal(metricsOf(call).providerRecoveries[0]?.action, "cut-short");
    });

    it("model.fallbackModels: retries exhausted, the next model answers for the rest of the call; both models are priced", async () => {
      const tag = "TEST llm-fallback.";
      scripts.set(tag, (req, n) =>
        req.model === "gpt-4o" && n > 1
          ? { error: { status: 503, message: "The engine is currently overloaded, please try again later." } }
          : { text: `You said: ${lastUser(req)}.` },
      );
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-speaks-first-with-model-generated-message",
        model: {
          provider: "openai",
          model: "gpt-4o",
          fallbackModels: ["gpt-4o-mini"],
          messages: prompt("llm-fallback"),
        },
      });
      await waitForSpoken(sim, 1);
      await sim.say("First question");
      await waitForSpoken(sim, 2, 10_000);
      await sim.say("Second question");
      await waitForSpoken(sim, 3, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.deepEqual(
        (seen.get(tag) ?? []).map((r) => r.model),
        ["gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini"],
        "gpt-4o answers, then fails three times; gpt-4o-mini for the rest of the call",
      );
      assert.match(
        call.transcript ?? "",
        /AI: You said: First question\.\n.*\nAI: You said: Second question\./s,
      );
      const m = metricsOf(call);
      assert.deepEqual(
        m.providerRecoveries.map((r) => [r.action, r.model, r.to?.model]),
        [
          ["retry", "gpt-4o", undefined],
          ["retry", "gpt-4o", undefined],
          ["fallback", "gpt-4o", "gpt-4o-mini"],
        ],
      );
      assert.equal(m.numProviderFallbacks, 1);
      const models = (call.costs as unknown as CostItem[]).filter((c) => c.type === "model");
      assert.deepEqual(
        models.map((c) => c.model?.model),
        ["gpt-4o", "gpt-4o-mini"],
      );
      assert.ok(models.every((c) => (c.promptTokens ?? 0) > 0 && c.cost > 0));
      const lines = await env.t.db.usageLine.findMany({ where: { callId: call.id, category: "llm" } });
      assert.deepEqual(
        lines.map((l) => [l.model, Number(l.amountMicros) / 1e6]).sort(),
        models.map((c) => [c.model?.model, c.cost]),
        "a ledger line per model, each its cost item",
      );
    });

    it("every model exhausted: the call ends with the last failure's endedReason", async () => {
      const tag = "TEST llm-exhausted.";
      scripts.set(tag, () => ({ error: { status: 503, message: "The engine is currently overloaded." } }));
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-waits-for-user",
        model: {
          provider: "openai",
          model: "gpt-4o",
          fallbackModels: ["gpt-4o-mini"],
          messages: prompt("llm-exhausted"),
        },
      });
      await sim.waitForStreamStart();
      await sim.say("Hello");
      await sim.waitForEnd(20_000);
      const call = await finalizedCall(env, sim.callSid);
      // Three tries of each model (one, then two retries).
      assert.deepEqual(
        (seen.get(tag) ?? []).map((r) => r.model),
        ["gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini"],
      );
      assert.equal(call.endedReason, "pipeline-error-openai-503-server-overloaded-error");
    });
  });

  describe("the transcriber", () => {
    it("a socket dropped mid-utterance: reconnected, the unfinalised audio sent again; every word reaches the model once", async () => {
      const tag = "TEST stt-drop.";
      const said = "I would like to book a table for four people tonight please";
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("stt-drop") },
      });
      await waitForSpoken(sim, 1);
      const before = env.deepgram.connections.length;
      const turn = sim.say(said);
      // Part of the utterance was heard (an interim result), none of it finalised: the socket drops.
      const live = await waitUntil(
        () =>
          env.deepgram.connections.find(
            (c) =>
              c.closedAt === undefined &&
              c.sent.some(
                (m) =>
                  m.type === "Results" &&
                  !m.is_final &&
                  (m.channel.alternatives[0]?.transcript ?? "").split(" ").length >= 2,
              ),
          ),
        8000,
        "an interim result",
      );
      live.drop(1011, "NET-0000: internal server error");
      await turn;
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.ok(env.deepgram.connections.length > before, "a new connection");
      const requests = seen.get(tag) ?? [];
      assert.equal(lastUser(requests[requests.length - 1] as ChatRequest), said, "all words, once");
      assert.match(call.transcript ?? "", new RegExp(`User: ${said}\\nAI: You said: ${said}\\.`));
      const m = metricsOf(call);
      assert.deepEqual(
        m.providerRecoveries.map((r) => [r.kind, r.provider, r.action, r.status]),
        [["transcriber", "deepgram", "retry", 1011]],
      );
      assert.equal(m.turnLatencies[0]?.providerRetries, 1);
    });

    it("transcriber.fallbackPlan: Deepgram down, AssemblyAI transcribes for the rest of the call; both are priced", async () => {
      const said = "Can I change my booking to Friday";
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("stt-fallback") },
        transcriber: {
          provider: "deepgram",
          model: "nova-3",
          fallbackPlan: {
            transcribers: [{ provider: "assembly-ai", speechModel: "universal-streaming-english" }],
          },
        },
      });
      await waitForSpoken(sim, 1);
      const conn = await waitUntil(
        () => env.deepgram.connections.find((c) => c.closedAt === undefined && c.audioBytes > 0),
        5000,
        "the call's Deepgram connection",
      );
      const sessionsBefore = assemblyai.sessions.length;
      // An outage: the socket drops and the reconnects are refused.
      env.deepgram.refuseUpgrades(10, 503);
      conn.terminate();
      await waitUntil(() => assemblyai.sessions.length > sessionsBefore, 8000, "the fallback transcriber");
      env.deepgram.refuseUpgrades(0);
      await sim.say(said);
      await waitForSpoken(sim, 2, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      assert.match(call.transcript ?? "", new RegExp(`User: ${said}\\nAI: You said: ${said}\\.`));
      const m = metricsOf(call);
      assert.deepEqual(
        m.providerRecoveries.map((r) => [r.action, r.provider, r.to?.provider]),
        [
          ["retry", "deepgram", undefined],
          ["retry", "deepgram", undefined],
          ["fallback", "deepgram", "assembly-ai"],
        ],
      );
      const stt = (call.costs as unknown as CostItem[]).filter((c) => c.type === "transcriber");
      assert.deepEqual(
        stt.map((c) => c.transcriber),
        [
          { provider: "deepgram", model: "nova-3" },
          { provider: "assembly-ai", model: "universal-streaming-english" },
        ],
      );
      const usage = call.usage as {
        stt: { provider: string };
        earlier?: { stt?: Array<{ provider: string }> };
      };
      assert.equal(usage.stt.provider, "assembly-ai");
      assert.equal(usage.earlier?.stt?.[0]?.provider, "deepgram");
    });
  });

  describe("the voice", () => {
    it("a socket dropped mid-utterance: the rest is sent again and the caller hears no part twice", async () => {
      const tag = "TEST tts-drop.";
      const answer = "We open at nine in the morning and we close at five in the evening on weekdays";
      scripts.set(tag, (_req, n) => (n === 1 ? { text: FIRST } : { text: answer }));
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-speaks-first-with-model-generated-message",
        model: { provider: "openai", model: "gpt-4o", messages: prompt("tts-drop") },
      });
      await waitForSpoken(sim, 1);
      const afterFirst = sim.heardBytes;
      const connsBefore = env.elevenlabs.connections.length;
      // μ-law 8 kHz at 10 ms per character: 80 bytes a character. The socket breaks once a context
      // has sent 4000 bytes (50 characters' audio, at the end of the chunk that passes it).
      env.elevenlabs.dropAfterAudioBytes(4000);
      await sim.say("When are you open");
      await waitForSpoken(sim, 2, 10_000);
      const heard = sim.heardBytes - afterFirst;
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      const dropped = env.elevenlabs.connections.find((c) => c.dropped);
      assert.ok(dropped, "a socket was broken mid-utterance");
      const voiced = Math.max(...dropped.contexts.map((ctx) => ctx.audioBytesSent)) / 80;
      const fresh = env.elevenlabs.connections.slice(connsBefore).filter((c) => c !== dropped);
      const resent = fresh
        .flatMap((c) => c.contexts)
        .map((ctx) =>
          ctx.generations
            .map((g) => g.text)
            .join("")
            .trim(),
        );
      const rest = resent.find((t) => t.length > 0) ?? "";
      // The rest is a tail of the answer from the word after what had been voiced.
      assert.ok(answer.endsWith(rest) && rest.length > 0, `resent: ${rest}`);
      const skipped = answer.length - rest.length;
      assert.ok(
        skipped >= voiced - 2 && skipped <= voiced + 12,
        `resumed at character ${skipped} of ${voiced} voiced`,
      );
      // What the caller heard: the audio before the break, then the rest's: never more than the whole
      // (a space the voice is sent after each clause, a frame of padding per stream aside).
      const whole = (answer.length + 1) * 80;
      assert.ok(heard <= whole + 480, `heard ${heard} bytes of at most ${whole}`);
      assert.ok(heard >= whole - 14 * 80, `heard ${heard} bytes, at most a word short of ${whole}`);
      assert.equal(call.endedReason, "customer-ended-call");
      assert.equal(metricsOf(call).providerRecoveries[0]?.kind, "voice");
    });

    it("voice.fallbackPlan: ElevenLabs down mid-utterance, Cartesia speaks the rest and the rest of the call; two voice cost lines in costs and the ledger", async () => {
      const tag = "TEST tts-fallback.";
      const answer = "Your table for two is booked for eight tonight and we look forward to seeing you";
      scripts.set(tag, (req, n) =>
        n === 1 ? { text: FIRST } : n === 2 ? { text: answer } : { text: `You said: ${lastUser(req)}.` },
      );
      const cartesiaBefore = cartesia.connections.length;
      const { sim } = await callAssistant(env, {
        firstMessageMode: "assistant-speaks-first-with-model-generated-message",
        model: { provider: "openai", model: "gpt-4o", messages: prompt("tts-fallback") },
        voice: {
          provider: "11labs",
          voiceId: "21m00Tcm4TlvDq8ikWAM",
          fallbackPlan: { voices: [{ provider: "cartesia", voiceId: CARTESIA_VOICE }] },
        },
      });
      await waitForSpoken(sim, 1);
      env.elevenlabs.dropAfterAudioBytes(2400);
      env.elevenlabs.refuseUpgrades(10, 503);
      await sim.say("Book a table");
      await waitForSpoken(sim, 2, 15_000);
      env.elevenlabs.refuseUpgrades(0);
      await sim.say("Thank you");
      await waitForSpoken(sim, 3, 10_000);
      await sim.hangup();
      const call = await finalizedCall(env, sim.callSid);
      const conn = cartesia.connections[cartesiaBefore];
      assert.ok(conn, "Cartesia took over");
      const spoken = [...conn.contexts.values()].map((c) => c.transcript);
      assert.ok(answer.endsWith(spoken[0] ?? "-"), `the rest of the answer: ${spoken[0]}`);
      assert.equal(spoken[1], "You said: Thank you.", "and the next reply");
      const m = metricsOf(call);
      assert.deepEqual(
        m.providerRecoveries.map((r) => [r.kind, r.action, r.provider, r.to?.provider]),
        [
          ["voice", "retry", "11labs", undefined],
          ["voice", "retry", "11labs", undefined],
          ["voice", "fallback", "11labs", "cartesia"],
        ],
      );
      const voices = (call.costs as unknown as CostItem[]).filter((c) => c.type === "voice");
      assert.deepEqual(
        voices.map((c) => c.voice?.provider),
        ["11labs", "cartesia"],
      );
      assert.ok(voices.every((c) => (c.characters ?? 0) > 0 && c.cost > 0));
      const lines = await env.t.db.usageLine.findMany({ where: { callId: call.id, category: "tts" } });
      assert.deepEqual(
        lines.map((l) => [l.provider, Number(l.quantity), Number(l.amountMicros) / 1e6]).sort(),
        voices.map((c) => [c.voice?.provider, c.characters, c.cost]),
        "a ledger line per voice, each its cost item",
      );
      const breakdown = call.costBreakdown as { tts: number };
      assert.equal(breakdown.tts, Number(lines.reduce((a, l) => a + l.amountMicros, 0n)) / 1e6);
    });

    it("no voice left: the call ends pipeline-error-eleven-labs-voice-failed (no apology: there is no voice)", async () => {
      const tag = "TEST tts-exhausted.";
      scripts.set(tag, () => ({
        text: "We are open every day of the week from nine in the morning until late",
      }));
      const { sim } = await callAssistant(env, {
        model: { provider: "openai", model: "gpt-4o", messages: prompt("tts-exhausted") },
      });
      await waitForSpoken(sim, 1);
      env.elevenlabs.dropAfterAudioBytes(1600);
      env.elevenlabs.refuseUpgrades(10, 503);
      await sim.say("Hello again");
      await sim.waitForEnd(15_000);
      env.elevenlabs.refuseUpgrades(0);
      const call = await finalizedCall(env, sim.callSid);
      assert.equal(call.endedReason, "pipeline-error-eleven-labs-voice-failed");
      assert.doesNotMatch(call.transcript ?? "", /technical difficulties/);
    });
  });

  describe("fallback plans at save time", () => {
    async function save(body: Record<string, unknown>) {
      return env.t.request({ method: "POST", url: "/assistant", key: env.org.key, payload: body });
    }

    it("the plans are saved as sent", async () => {
      const body = {
        model: { provider: "openai", model: "gpt-4o", fallbackModels: ["gpt-4o-mini", "gpt-4.1"] },
        voice: {
          provider: "11labs",
          voiceId: "21m00Tcm4TlvDq8ikWAM",
          fallbackPlan: { voices: [{ provider: "cartesia", voiceId: CARTESIA_VOICE }] },
        },
        transcriber: {
          provider: "deepgram",
          fallbackPlan: { transcribers: [{ provider: "assembly-ai", language: "en" }] },
        },
      };
      const res = await save(body);
      assert.equal(res.statusCode, 201, res.body);
      const got = res.json();
      assert.deepEqual(got.model.fallbackModels, body.model.fallbackModels);
      assert.deepEqual(got.voice.fallbackPlan, body.voice.fallbackPlan);
      assert.deepEqual(got.transcriber.fallbackPlan, body.transcriber.fallbackPlan);
    });

    it("each fallback entry is held to its provider's rules: a 400 naming the entry", async () => {
      const voice = await save({
        voice: {
          provider: "cartesia",
          voiceId: CARTESIA_VOICE,
          fallbackPlan: {
            voices: [{ provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM", model: "eleven_v3" }],
          },
        },
      });
      assert.equal(voice.statusCode, 400);
      assert.match(voice.json().message, /voice\.fallbackPlan\.voices\[0\]\.model/);
      const model = await save({
        model: { provider: "openai", model: "gpt-4o", temperature: 0.3, fallbackModels: ["o3"] },
      });
      assert.equal(model.statusCode, 400);
      assert.match(model.json().message, /model\.fallbackModels\[0\].*temperature/);
      const transcriber = await save({
        transcriber: {
          provider: "assembly-ai",
          fallbackPlan: { transcribers: [{ provider: "deepgram", model: "nova-3", keywords: ["Acme:2"] }] },
        },
      });
      assert.equal(transcriber.statusCode, 400);
      assert.match(transcriber.json().message, /transcriber\.fallbackPlan\.transcribers\[0\]\.keywords/);
    });

    it("shapes Vapi's spec does not have are refused: a fallback voice with a plan of its own, autoFallback", async () => {
      const nested = await save({
        voice: {
          provider: "11labs",
          voiceId: "21m00Tcm4TlvDq8ikWAM",
          fallbackPlan: {
            voices: [{ provider: "cartesia", voiceId: CARTESIA_VOICE, fallbackPlan: { voices: [] } }],
          },
        },
      });
      assert.equal(nested.statusCode, 400);
      const auto = await save({
        transcriber: { provider: "deepgram", fallbackPlan: { autoFallback: { enabled: true } } },
      });
      assert.equal(auto.statusCode, 400);
      assert.match(auto.json().message, /fallbackPlan/);
    });
  });
});
