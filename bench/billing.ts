// npm run bench:billing — meters 100,000 synthetic calls through pricing and the usage ledger on a
// fresh database (the batched ledger insert keeps the UsageDaily rollup too), then times
// GET /billing/usage over that month for each groupBy (target: under 200 ms) and a dashboard's
// POST /analytics queries over the same calls (target: p50 under 100 ms).
//   BENCH_CALLS=100000 BENCH_RUNS=25 npm run bench:billing
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { buildApi } from "../apps/api/src/app.ts";
import { apiConfigFromEnv } from "../apps/api/src/config.ts";
import {
  type CallLedgerPricing,
  type CallUsage,
  insertUsageLines,
  priceCallLedger,
  recordCallCost,
} from "../libs/billing/index.ts";
import { createDb, type Prisma } from "../libs/db/index.ts";
import { testEnv } from "../test/helpers/api.ts";
import { createTestDatabase } from "../test/helpers/db.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 25);
const TARGET_MS = 200;
const ANALYTICS_TARGET_MS = 100;
const BATCH = 500; // calls per insert batch (5 lines each)
const FINALIZE_SAMPLE = 2_000;

const MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5-mini"];
const STT = ["nova-3", "nova-2"];
const TTS = ["eleven_flash_v2_5", "eleven_multilingual_v2", "eleven_turbo_v2_5"];
const TYPES = ["inboundPhoneCall", "inboundPhoneCall", "outboundPhoneCall", "webCall"];
const ENDED_REASONS = [
  "customer-ended-call",
  "customer-ended-call",
  "customer-ended-call",
  "assistant-ended-call",
  "silence-timed-out",
  "exceeded-max-duration",
  "customer-did-not-answer",
];
const EVALUATIONS = ["true", "true", "true", "false", null];

let seed = 42;
function rnd(): number {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
}
function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)] as T;
}

function syntheticUsage(): CallUsage {
  const seconds = Math.round((10 + rnd() * 600) * 1000) / 1000;
  const turns = Math.max(1, Math.round(seconds / 15));
  const prompt = turns * (800 + Math.floor(rnd() * 1200));
  const byo = rnd() < 0.25;
  return {
    durationSeconds: seconds,
    transport: { provider: "twilio", direction: rnd() < 0.7 ? "inbound" : "outbound", seconds, byo: false },
    stt: { provider: "deepgram", model: pick(STT), audioSeconds: seconds * 0.95, byo },
    llm: {
      provider: "openai",
      model: pick(MODELS),
      promptTokens: prompt,
      cachedPromptTokens: Math.floor(prompt * 0.5),
      completionTokens: turns * (30 + Math.floor(rnd() * 60)),
      byo,
    },
    tts: { provider: "11labs", model: pick(TTS), characters: turns * (60 + Math.floor(rnd() * 140)), byo },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
}

function fmt(n: number, digits = 1): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const database = await createTestDatabase();
  const config = apiConfigFromEnv(
    testEnv({ DATABASE_URL: database.url, REDIS_URL: "", RATE_LIMIT_PER_MINUTE: "100000" }),
  );
  const db = createDb(database.url);
  const app = await buildApi(config, { db, logger: false });
  try {
    const created = await app.inject({
      method: "POST",
      url: "/org",
      headers: { authorization: `Bearer ${config.adminToken}` },
      payload: { name: "Bench" },
    });
    const { org, apiKey } = created.json() as { org: { id: string }; apiKey: { value: string } };
    const orgId = org.id;
    const assistants = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.assistant.create({ data: { orgId, name: `Assistant ${i + 1}`, config: {} } }).then((a) => a.id),
      ),
    );

    const now = new Date();
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const monthEnd = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const span = monthEnd.getTime() - monthStart.getTime();

    console.log(`Seeding ${CALLS.toLocaleString()} ended calls in ${monthStart.toISOString().slice(0, 7)} …`);
    let seedMs = 0;
    let priceMs = 0;
    let ledgerMs = 0;
    let lineCount = 0;
    // Written in the order they started, as calls are: each call's concurrency is counted (by the
    // CallMetric trigger) against the calls written before it.
    const starts = Array.from({ length: CALLS }, () => Math.floor(rnd() * (span - 3_600_000))).sort(
      (a, b) => a - b,
    );
    for (let done = 0; done < CALLS; done += BATCH) {
      const n = Math.min(BATCH, CALLS - done);
      const calls = Array.from({ length: n }, (_, k) => {
        const startedAt = new Date(monthStart.getTime() + (starts[done + k] as number));
        const usage = syntheticUsage();
        const evaluation = pick(EVALUATIONS);
        return {
          id: randomUUID(),
          orgId,
          type: pick(TYPES),
          status: "ended",
          endedReason: pick(ENDED_REASONS),
          assistantId: pick(assistants),
          createdAt: startedAt,
          startedAt,
          endedAt: new Date(startedAt.getTime() + usage.durationSeconds * 1000),
          usage,
          ...(evaluation ? { analysis: { successEvaluation: evaluation } } : {}),
        };
      });
      // The one pricing path every writer of a call's cost uses.
      let t0 = performance.now();
      const priced: CallLedgerPricing[] = calls.map((c) =>
        priceCallLedger({
          callId: c.id,
          orgId,
          assistantId: c.assistantId,
          phoneNumberId: null,
          occurredAt: c.startedAt,
          org: {},
          usage: c.usage,
        }),
      );
      priceMs += performance.now() - t0;

      t0 = performance.now();
      await db.call.createMany({
        data: calls.map((c, i) => {
          const { columns } = priced[i] as CallLedgerPricing;
          return {
            ...c,
            cost: columns.cost,
            costBreakdown: columns.costBreakdown,
            costs: columns.costs as unknown as Prisma.InputJsonArray,
            finalizedAt: c.endedAt,
          };
        }),
      });
      seedMs += performance.now() - t0;

      t0 = performance.now();
      const lines = priced.flatMap((p) => p.newLines);
      await insertUsageLines(db, lines);
      ledgerMs += performance.now() - t0;
      lineCount += lines.length;
      // What autovacuum does as a table grows: the trigger's concurrency count plans on these
      // statistics, and a plan made for an empty table would walk every call of the org.
      if ((done / BATCH) % 10 === 0) await db.$executeRawUnsafe(`ANALYZE "CallMetric"`);
      if ((done / BATCH) % 40 === 0) process.stdout.write(`  ${(done + n).toLocaleString()} calls\r`);
    }
    console.log(`  ${CALLS.toLocaleString()} calls, ${lineCount.toLocaleString()} usage lines`);

    // The exactly-once path the media plane uses, one call at a time (8 concurrent), on fresh calls.
    const sampleIds: string[] = [];
    const sample = Array.from({ length: FINALIZE_SAMPLE }, () => {
      const id = randomUUID();
      sampleIds.push(id);
      const startedAt = new Date(monthStart.getTime() + Math.floor(rnd() * (span - 3_600_000)));
      return {
        id,
        orgId,
        type: "webCall",
        status: "ended",
        endedReason: "customer-ended-call",
        createdAt: startedAt,
        startedAt,
        endedAt: startedAt,
        usage: syntheticUsage(),
      };
    });
    await db.call.createMany({ data: sample });
    let t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < sampleIds.length) {
          const id = sampleIds[next++] as string;
          await recordCallCost(db, id);
        }
      }),
    );
    const finalizeMs = performance.now() - t0;

    // What autovacuum would have done by the time anyone looks at a month's usage.
    await db.$executeRawUnsafe(`VACUUM ANALYZE "UsageLine"`);
    await db.$executeRawUnsafe(`VACUUM ANALYZE "UsageDaily"`);
    await db.$executeRawUnsafe(`VACUUM ANALYZE "CallMetric"`);
    const rollupRows = await db.usageDaily.count({ where: { orgId } });

    const totalCalls = CALLS + FINALIZE_SAMPLE;
    const results: { query: string; p50: number; p95: number; min: number; rows: number }[] = [];
    // Whole UTC days come from the daily rollup; an unaligned range adds its two partial edge days
    // from the ledger.
    const halfDay = 43_200_000;
    const queries = [
      ...["day", "assistant", "category", "phoneNumber"].map((g) => ({
        groupBy: g,
        start: monthStart,
        end: monthEnd,
        unaligned: false,
      })),
      ...["day", "assistant"].map((g) => ({
        groupBy: g,
        start: new Date(monthStart.getTime() + halfDay),
        end: new Date(monthEnd.getTime() - halfDay),
        unaligned: true,
      })),
    ];
    for (const { groupBy, start, end, unaligned } of queries) {
      const url = `/billing/usage?groupBy=${groupBy}&start=${start.toISOString()}&end=${end.toISOString()}`;
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS + 3; i++) {
        t0 = performance.now();
        const res = await app.inject({
          method: "GET",
          url,
          headers: { authorization: `Bearer ${apiKey.value}` },
        });
        const ms = performance.now() - t0;
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
        const body = res.json() as { rows: unknown[]; totals: { calls: number } };
        if (!unaligned && body.totals.calls !== totalCalls)
          throw new Error(`expected ${totalCalls} calls, got ${body.totals.calls}`);
        rows = body.rows.length;
        if (i >= 3) times.push(ms); // 3 warm-up runs
      }
      results.push({
        query: `groupBy=${groupBy}${unaligned ? " (±12 h)" : ""}`,
        p50: pct(times, 50),
        p95: pct(times, 95),
        min: Math.min(...times),
        rows,
      });
    }

    // POST /analytics: what a dashboard's overview asks of a month.
    const month = { start: monthStart.toISOString(), end: monthEnd.toISOString() };
    const analyticsQueries: { label: string; query: Record<string, unknown> }[] = [
      {
        label: "calls, minutes, cost by day",
        query: {
          timeRange: { ...month, step: "day" },
          operations: [
            { operation: "count", column: "id" },
            { operation: "sum", column: "duration" },
            { operation: "sum", column: "cost" },
          ],
        },
      },
      {
        label: "the same, America/New_York days",
        query: {
          timeRange: { ...month, step: "day", timezone: "America/New_York" },
          operations: [
            { operation: "count", column: "id" },
            { operation: "sum", column: "duration" },
            { operation: "sum", column: "cost" },
          ],
        },
      },
      {
        label: "cost breakdown by assistant",
        query: {
          timeRange: month,
          groupBy: ["assistantId"],
          operations: [
            { operation: "sum", column: "cost" },
            { operation: "sum", column: "costBreakdown.llm" },
            { operation: "sum", column: "costBreakdown.stt" },
            { operation: "sum", column: "costBreakdown.tts" },
            { operation: "sum", column: "costBreakdown.vapi" },
            { operation: "avg", column: "duration" },
          ],
        },
      },
      {
        label: "ended reasons by day",
        query: {
          timeRange: { ...month, step: "day" },
          groupBy: ["endedReason"],
          operations: [{ operation: "count", column: "id" }],
        },
      },
      {
        label: "success evaluation by type",
        query: {
          timeRange: month,
          groupBy: ["type", "analysis.successEvaluation"],
          operations: [
            { operation: "count", column: "id" },
            { operation: "sum", column: "minutesUsed" },
          ],
        },
      },
      {
        label: "peak concurrency by day",
        query: {
          timeRange: { ...month, step: "day" },
          operations: [{ operation: "max", column: "concurrency" }],
        },
      },
    ];
    const analyticsResults: { label: string; p50: number; p95: number; min: number; rows: number }[] = [];
    for (const { label, query } of analyticsQueries) {
      const payload = { queries: [{ name: label.slice(0, 40), table: "call", ...query }] };
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS + 3; i++) {
        t0 = performance.now();
        const res = await app.inject({
          method: "POST",
          url: "/analytics",
          headers: { authorization: `Bearer ${apiKey.value}` },
          payload,
        });
        const ms = performance.now() - t0;
        if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body}`);
        const [answer] = res.json() as { result: Record<string, unknown>[] }[];
        rows = answer?.result.length ?? 0;
        if (i === 0 && label.startsWith("calls, minutes")) {
          const calls = (answer?.result ?? []).reduce((a, r) => a + Number(r.countId), 0);
          if (calls !== totalCalls)
            throw new Error(`analytics counted ${calls} calls, expected ${totalCalls}`);
        }
        if (i >= 3) times.push(ms);
      }
      analyticsResults.push({
        label,
        p50: pct(times, 50),
        p95: pct(times, 95),
        min: Math.min(...times),
        rows,
      });
    }

    const pricePerSec = (CALLS / priceMs) * 1000;
    const meterPerSec = (CALLS / (priceMs + ledgerMs)) * 1000;
    console.log("");
    console.log("Metering (100,000 synthetic call-usage records)");
    console.log("  step                                   time        records/s");
    console.log(
      `  seed ended calls (not metered)         ${fmt(seedMs / 1000, 2).padStart(7)} s   ${fmt((CALLS / seedMs) * 1000, 0).padStart(10)}`,
    );
    console.log(
      `  pricing only                           ${fmt(priceMs / 1000, 2).padStart(7)} s   ${fmt(pricePerSec, 0).padStart(10)}`,
    );
    console.log(
      `  pricing + ledger (batched, 5 lines)    ${fmt((priceMs + ledgerMs) / 1000, 2).padStart(7)} s   ${fmt(meterPerSec, 0).padStart(10)}`,
    );
    console.log(
      `  recordCallCost per call (8 conc., ${FINALIZE_SAMPLE.toLocaleString()}) ${fmt(finalizeMs / 1000, 2).padStart(6)} s   ${fmt((FINALIZE_SAMPLE / finalizeMs) * 1000, 0).padStart(10)}`,
    );
    console.log("");
    console.log(
      `GET /billing/usage over the month (${totalCalls.toLocaleString()} calls, ${(lineCount + FINALIZE_SAMPLE * 5).toLocaleString()} lines, ${rollupRows.toLocaleString()} rollup rows), ${RUNS} runs via app.inject`,
    );
    console.log("  query                       rows     min ms    p50 ms    p95 ms   target");
    let pass = true;
    for (const r of results) {
      const ok = r.p50 < TARGET_MS;
      pass &&= ok;
      console.log(
        `  ${r.query.padEnd(26)} ${String(r.rows).padStart(5)} ${fmt(r.min).padStart(10)} ${fmt(r.p50).padStart(9)} ${fmt(r.p95).padStart(9)}   ${ok ? "OK" : "OVER"} (< ${TARGET_MS} ms p50)`,
      );
    }
    console.log("");
    console.log(
      `POST /analytics over the month (${totalCalls.toLocaleString()} calls, one query per request), ${RUNS} runs via app.inject`,
    );
    console.log("  query                              rows     min ms    p50 ms    p95 ms   target");
    for (const r of analyticsResults) {
      const ok = r.p50 < ANALYTICS_TARGET_MS;
      pass &&= ok;
      console.log(
        `  ${r.label.padEnd(33)} ${String(r.rows).padStart(5)} ${fmt(r.min).padStart(10)} ${fmt(r.p50).padStart(9)} ${fmt(r.p95).padStart(9)}   ${ok ? "OK" : "OVER"} (< ${ANALYTICS_TARGET_MS} ms p50)`,
      );
    }
    console.log("");
    console.log(pass ? "All under target." : "Some queries are over the target.");
    process.exitCode = pass ? 0 : 1;
  } finally {
    await app.close();
    await db.$disconnect();
    await database.drop();
  }
}

await main();
