import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { SpendControls } from "../../../../libs/billing/index.ts";
import { BillingService, GROUP_BYS, MAX_RANGE_DAYS } from "../services/billing-service.ts";
import { errors } from "./shared.ts";

// /billing/*: the organisation's metered usage, current-period summary and spend settings, read
// from the usage ledger. Money is given twice: integer micro-dollars (`…Micros`, 1 USD = 1,000,000)
// and exact USD decimal strings with six decimals (`…Usd`). "billed" = charged by the platform;
// "passthrough" = provider costs paid by the customer's own keys (BYO), shown at cost;
// "total" = billed + passthrough (what the calls cost in all, = Σ Call.cost).

const Micros = Type.Integer({ description: "Integer micro-dollars (1 USD = 1,000,000)" });
const Usd = Type.String({
  pattern: "^-?\\d+\\.\\d{6}$",
  description: "USD as an exact decimal string, six decimals",
});

const moneyFields = {
  billedMicros: Micros,
  billedUsd: Usd,
  passthroughMicros: Micros,
  passthroughUsd: Usd,
  totalMicros: Micros,
  totalUsd: Usd,
};
const MoneySplit = Type.Object(moneyFields, {
  title: "BillingMoneySplit",
  description:
    "billed = charged by the platform; passthrough = provider costs on the customer's own keys (BYO, not charged); total = billed + passthrough",
});

const RowByCategory = Type.Object(
  {
    transport: MoneySplit,
    stt: MoneySplit,
    llm: MoneySplit,
    tts: MoneySplit,
    platform: MoneySplit,
    analysis: MoneySplit,
  },
  { description: "Only with split=category: the row's money per category, all six (zeros included)" },
);

const UsageRow = Type.Object(
  {
    key: Type.String({
      description:
        'day: "YYYY-MM-DD" (UTC); assistant: assistant id or "none"; phoneNumber: phone number id or "none" (web calls); category: transport | stt | llm | tts | platform | analysis (post-call analysis tokens)',
    }),
    label: Type.Optional(
      Type.String({ description: "Assistant name, phone number (E.164) or category name, when known" }),
    ),
    calls: Type.Integer({ description: "Calls in the row (category rows: lines of that category)" }),
    minutes: Type.Number({
      description:
        "Billed call minutes (the platform-fee quantity); category rows: that category's billed minutes (0 for token and character lines)",
    }),
    ...moneyFields,
    byCategory: Type.Optional(RowByCategory),
  },
  { title: "BillingUsageRow" },
);

const UsageTotals = Type.Object(
  { calls: Type.Integer(), minutes: Type.Number(), ...moneyFields },
  { title: "BillingUsageTotals" },
);

const UsageReport = Type.Object(
  {
    start: Type.String({ format: "date-time", description: "Inclusive, UTC" }),
    end: Type.String({ format: "date-time", description: "Exclusive, UTC" }),
    groupBy: Type.Union(GROUP_BYS.map((g) => Type.Literal(g))),
    currency: Type.Literal("usd"),
    rows: Type.Array(UsageRow, {
      description:
        "day: every day of the range, oldest first, zeros included; category: the six categories in order; assistant / phoneNumber: by total, largest first",
    }),
    totals: UsageTotals,
  },
  { title: "BillingUsageReport" },
);

const UsageQuery = Type.Object(
  {
    start: Type.Optional(
      Type.String({
        description: "ISO 8601 date or date-time, inclusive (default: start of the current UTC month)",
      }),
    ),
    end: Type.Optional(
      Type.String({
        description: `ISO 8601 date or date-time, exclusive (default: start of the month after start); at most ${MAX_RANGE_DAYS} days after start`,
      }),
    ),
    groupBy: Type.Optional(
      Type.Union(
        GROUP_BYS.map((g) => Type.Literal(g)),
        { description: "Default day" },
      ),
    ),
    split: Type.Optional(
      Type.Literal("category", {
        description:
          "category: each row also carries byCategory (e.g. a daily chart stacked by category); not with groupBy=category",
      }),
    ),
  },
  { additionalProperties: false, title: "BillingUsageQuery" },
);

const Increment = Type.Union([Type.Literal("second"), Type.Literal("minute")], {
  description: "second: per started second (default); minute: per started minute",
});
const NullableMicros = Type.Union([Micros, Type.Null()]);
const NullableUsd = Type.Union([Usd, Type.Null()]);

const Summary = Type.Object(
  {
    period: Type.Object(
      { start: Type.String({ format: "date-time" }), end: Type.String({ format: "date-time" }) },
      { description: "The current calendar month, UTC; end exclusive" },
    ),
    currency: Type.Literal("usd"),
    ...moneyFields,
    byCategory: Type.Object(
      {
        transport: MoneySplit,
        stt: MoneySplit,
        llm: MoneySplit,
        tts: MoneySplit,
        platform: MoneySplit,
        analysis: MoneySplit,
      },
      {
        description:
          "The same split per category (platform = the per-minute platform fee; analysis = the post-call analysis LLM tokens)",
      },
    ),
    minutes: Type.Number({ description: "Billed call minutes this period" }),
    calls: Type.Integer({ description: "Priced calls this period" }),
    spendLimitMicros: NullableMicros,
    spendLimitUsd: NullableUsd,
    remainingMicros: Type.Union([Micros, Type.Null()], {
      description: "Spend limit minus billed (never negative); null without a limit",
    }),
    remainingUsd: NullableUsd,
    concurrencyLimit: Type.Integer(),
    activeCalls: Type.Integer({ description: "Calls holding a concurrency lease now" }),
    billingState: Type.String({ description: "active | past_due | canceled (calls refused unless active)" }),
    billingIncrement: Increment,
  },
  {
    title: "BillingSummary",
    description:
      "The current period at a glance. billedUsd is what the platform charges; passthroughUsd is what BYO provider keys paid directly (the platform did not charge it).",
  },
);

const Settings = Type.Object(
  {
    monthlySpendLimitUsd: NullableUsd,
    monthlySpendLimitMicros: NullableMicros,
    concurrencyLimit: Type.Integer(),
    billingIncrement: Increment,
    billingState: Type.String({ description: "active | past_due | canceled (read-only: follows Stripe)" }),
  },
  { title: "BillingSettings" },
);

const UpdateSettingsDTO = Type.Object(
  {
    monthlySpendLimitUsd: Type.Optional(
      Type.Union(
        [
          Type.String({ pattern: "^\\d{1,9}(\\.\\d{1,6})?$", description: 'USD, e.g. "250" or "99.50"' }),
          Type.Null(),
        ],
        { description: "Monthly cap on platform-billed spend; null removes the limit" },
      ),
    ),
    concurrencyLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    billingIncrement: Type.Optional(Increment),
  },
  { additionalProperties: false, title: "UpdateBillingSettingsDTO" },
);

export async function billingRoutes(app: FastifyInstance): Promise<void> {
  const billing = new BillingService(app.deps.db, new SpendControls(app.deps.db, app.deps.redis));

  app.get<{ Querystring: Static<typeof UsageQuery> }>(
    "/billing/usage",
    {
      schema: {
        operationId: "BillingController_usage",
        tags: ["Billing"],
        summary: "Metered usage over a period, grouped by day, assistant, category or phone number",
        description:
          "Aggregates the usage ledger (a line per call and category, and per provider the call used in a category, attributed to the moment the call started). Each row splits what the platform billed from passthrough (BYO-key) provider costs, with calls and minutes. 400 when end is not after start, the range exceeds 400 days, or groupBy is unknown.",
        querystring: UsageQuery,
        response: { 200: UsageReport, ...errors(400, 401, 403) },
      },
    },
    async (req) => billing.usage(req.auth, req.query),
  );

  app.get(
    "/billing/summary",
    {
      schema: {
        operationId: "BillingController_summary",
        tags: ["Billing"],
        summary: "The current billing period (calendar month, UTC) at a glance",
        response: { 200: Summary, ...errors(401, 403) },
      },
    },
    async (req) => billing.summary(req.auth),
  );

  app.get(
    "/billing/settings",
    {
      schema: {
        operationId: "BillingController_getSettings",
        tags: ["Billing"],
        summary: "Spend limit, concurrency limit and billing increment",
        response: { 200: Settings, ...errors(401, 403) },
      },
    },
    async (req) => billing.getSettings(req.auth),
  );

  app.patch<{ Body: Static<typeof UpdateSettingsDTO> }>(
    "/billing/settings",
    {
      schema: {
        operationId: "BillingController_updateSettings",
        tags: ["Billing"],
        summary: "Change the spend limit, concurrency limit or billing increment",
        description:
          "Only the fields given change. A new spend limit applies to the next call admission and to calls in progress at their next check.",
        body: UpdateSettingsDTO,
        response: { 200: Settings, ...errors(400, 401, 403) },
      },
    },
    async (req) => billing.updateSettings(req.auth, req.body),
  );
}
