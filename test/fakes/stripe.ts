/**
 * FakeStripe — a stateful loopback fake of the Stripe API (usage-based billing subset).
 *
 * Wire: form-encoded bodies with bracket nesting (`payload[value]=3`, `items[0][price]=price_1`),
 * `Authorization: Bearer <secretKey>` (anything else → 401 Stripe error), JSON answers, Stripe error
 * JSON `{"error":{"type","code","message","param"}}`. POSTs honour `Idempotency-Key`: the same key and
 * the same body replay the first answer (`Idempotent-Replayed: true`); the same key with a different
 * body → 400 `idempotency_error`.
 *
 *   POST /v1/customers, GET|POST /v1/customers/{id}
 *   POST /v1/products, GET /v1/products/{id}
 *   POST /v1/prices (metered: recurring[usage_type]=metered, recurring[meter], unit_amount(_decimal),
 *        lookup_key — unique), GET /v1/prices[?lookup_keys[0]=…], GET /v1/prices/{id}
 *   POST /v1/billing/meters (event_name unique among active meters), GET /v1/billing/meters, GET /v1/billing/meters/{id}
 *   POST /v1/billing/meter_events — synchronous validation: active meter for event_name, payload has the
 *        meter's customer and value keys, value numeric, customer exists, timestamp within the past 35 days
 *        or 5 minutes ahead; a repeated `identifier` → 400 "An event already exists with identifier …"
 *        (as real Stripe answers), nothing aggregated twice.
 *   GET  /v1/billing/meters/{id}/event_summaries?customer&start_time&end_time (aggregated synchronously)
 *   POST /v1/subscriptions (customer, items[n][price], backdate_start_date), GET /v1/subscriptions/{id}, DELETE /v1/subscriptions/{id}
 *   GET  /v1/invoices?customer=…, GET /v1/invoices/{id} (seed finalized invoices with `addInvoice`)
 *   POST /v1/invoices/create_preview (customer[, subscription]): meter usage in the current period × price
 *
 * Test helpers: `failNext(n, status, skip)` makes the next n meter-event POSTs (after `skip`) fail before doing anything
 * (not cached under their idempotency key); `failInvoiceReads(n, status)` does the same to the next n
 * GET /v1/invoices/{id}; `meterEvents` (accepted), `meterEventAttempts` (every POST),
 * `eventsFor(identifier)`; `injectMeterEvent` / `removeMeterEvent` skew Stripe's totals (reconciliation tests);
 * `signWebhook(body)` / `sendWebhook(url, event)` sign like Stripe (`Stripe-Signature: t=…,v1=…`, HMAC-SHA256
 * over `${t}.${body}` with `webhookSecret`), accepted by `stripe.webhooks.constructEvent`.
 *
 * Point the official SDK at it: `new Stripe(fake.secretKey, { host: "127.0.0.1", port: fake.port,
 * protocol: "http", maxNetworkRetries: 0, telemetry: false })` (or STRIPE_API_URL = fake.baseUrl).
 */
import { createHmac, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, headerValue, listenLoopback, readBody } from "./util.ts";

export interface FakeStripeOptions {
  secretKey?: string;
  webhookSecret?: string;
  /** Unix seconds; injectable for timestamp-window tests. */
  now?: () => number;
}

type Obj = Record<string, unknown>;
/** A parsed bracket form: nested records; `a[0]` indices become record keys "0", "1" … */
export type FormValue = string | FormRecord;
export interface FormRecord {
  [key: string]: FormValue;
}

export interface MeterEventRecord {
  event_name: string;
  identifier: string;
  payload: Record<string, string>;
  timestamp: number;
  created: number;
  meterId: string;
  customer: string;
  value: number;
}

export interface MeterEventAttempt {
  identifier?: string;
  event_name?: string;
  status: number;
}

export interface RecordedStripeRequest {
  method: string;
  path: string;
  idempotencyKey?: string;
  status: number;
}

class StripeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

const DAY = 86_400;

/** Parses `a[b][0][c]=v` pairs into nested records (the format stripe-node and qs produce). */
export function parseBracketForm(text: string): FormRecord {
  const root: FormRecord = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    const head = m?.[1] ?? rawKey;
    const path = [head, ...[...(m?.[2] ?? "").matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1] ?? "")];
    let node: FormRecord = root;
    for (let i = 0; i < path.length; i++) {
      let key = path[i] as string;
      if (key === "") key = String(Object.keys(node).length);
      if (i === path.length - 1) {
        node[key] = value;
      } else {
        const next = node[key];
        if (typeof next === "object") node = next;
        else {
          const created: FormRecord = {};
          node[key] = created;
          node = created;
        }
      }
    }
  }
  return root;
}

function str(v: FormValue | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function rec(v: FormValue | undefined): FormRecord | undefined {
  return typeof v === "object" ? v : undefined;
}

function required(body: FormRecord, key: string): string {
  const v = str(body[key]);
  if (v === undefined || v === "") {
    throw new StripeHttpError(
      400,
      "invalid_request_error",
      `Missing required param: ${key}.`,
      "parameter_missing",
      key,
    );
  }
  return v;
}

function metadata(v: FormValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const r = rec(v);
  if (r) for (const [k, val] of Object.entries(r)) if (typeof val === "string") out[k] = val;
  return out;
}

function list(url: string, data: unknown[]): Obj {
  return { object: "list", url, has_more: false, data };
}

export class FakeStripe {
  readonly secretKey: string;
  readonly webhookSecret: string;
  readonly customers = new Map<string, Obj>();
  readonly products = new Map<string, Obj>();
  readonly prices = new Map<string, Obj>();
  readonly meters = new Map<string, Obj>();
  readonly subscriptions = new Map<string, Obj>();
  readonly invoices = new Map<string, Obj>();
  /** Accepted meter events, in order. */
  readonly meterEvents: MeterEventRecord[] = [];
  /** Every POST /v1/billing/meter_events, accepted or not. */
  readonly meterEventAttempts: MeterEventAttempt[] = [];
  readonly requests: RecordedStripeRequest[] = [];
  readonly #idempotency = new Map<string, { fingerprint: string; status: number; body: unknown }>();
  readonly #server: Server;
  readonly #port: number;
  readonly #now: () => number;
  #failures: { remaining: number; status: number; skip: number } = { remaining: 0, status: 500, skip: 0 };
  #invoiceReadFailures: { remaining: number; status: number } = { remaining: 0, status: 500 };
  #slowMeterAnswers: { remaining: number; ms: number } = { remaining: 0, ms: 0 };
  #seq = 0;

  private constructor(server: Server, port: number, opts: FakeStripeOptions) {
    this.#server = server;
    this.#port = port;
    this.secretKey = opts.secretKey ?? `sk_test_${randomBytes(12).toString("hex")}`;
    this.webhookSecret = opts.webhookSecret ?? `whsec_${randomBytes(16).toString("hex")}`;
    this.#now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  static async start(opts: FakeStripeOptions = {}): Promise<FakeStripe> {
    let self: FakeStripe | undefined;
    const server = createServer((req, res) => {
      if (self) void self.#handle(req, res);
    });
    const port = await listenLoopback(server);
    self = new FakeStripe(server, port, opts);
    return self;
  }

  get port(): number {
    return this.#port;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  /**
   * After letting `skip` meter-event POSTs through, the next `n` answer `status` (Stripe api_error)
   * without recording anything.
   */
  failNext(n: number, status = 500, skip = 0): void {
    this.#failures = { remaining: n, status, skip };
  }

  /**
   * The next `n` meter-event POSTs are applied at once (recorded, aggregated) but answered `ms`
   * later: a client that dies meanwhile never learns that Stripe has the event.
   */
  answerMeterEventsLate(n: number, ms: number): void {
    this.#slowMeterAnswers = { remaining: n, ms };
  }

  /** The next `n` GET /v1/invoices/{id} answer `status` (Stripe api_error). */
  failInvoiceReads(n: number, status = 500): void {
    this.#invoiceReadFailures = { remaining: n, status };
  }

  eventsFor(identifier: string): MeterEventRecord[] {
    return this.meterEvents.filter((e) => e.identifier === identifier);
  }

  attemptsFor(identifier: string): MeterEventAttempt[] {
    return this.meterEventAttempts.filter((e) => e.identifier === identifier);
  }

  /** Adds usage Stripe "has" that we never sent (skews summaries for reconciliation tests). */
  injectMeterEvent(e: { eventName: string; customer: string; value: number; timestamp?: number }): void {
    const meter = this.#meterByEventName(e.eventName);
    if (!meter) throw new Error(`no meter for ${e.eventName}`);
    const now = this.#now();
    this.meterEvents.push({
      event_name: e.eventName,
      identifier: `injected_${this.#nextId()}`,
      payload: { value: String(e.value), stripe_customer_id: e.customer },
      timestamp: e.timestamp ?? now,
      created: now,
      meterId: meter.id as string,
      customer: e.customer,
      value: e.value,
    });
  }

  /** Forgets an accepted event (as if Stripe lost it). */
  removeMeterEvent(identifier: string): void {
    const i = this.meterEvents.findIndex((e) => e.identifier === identifier);
    if (i >= 0) this.meterEvents.splice(i, 1);
  }

  /** Seeds a finalized invoice for a customer; returns it. */
  addInvoice(customer: string, fields: Obj = {}): Obj {
    const now = this.#now();
    const id = `in_${this.#nextId()}`;
    const invoice: Obj = {
      id,
      object: "invoice",
      customer,
      number: `SB-${String(this.invoices.size + 1).padStart(4, "0")}`,
      status: "paid",
      amount_due: 0,
      amount_paid: 0,
      amount_remaining: 0,
      currency: "usd",
      period_start: now - 30 * DAY,
      period_end: now,
      hosted_invoice_url: `https://invoice.stripe.test/${id}`,
      created: now - this.invoices.size,
      livemode: false,
      lines: list(`/v1/invoices/${id}/lines`, []),
      ...fields,
    };
    this.invoices.set(id, invoice);
    return invoice;
  }

  /** `Stripe-Signature` for a raw body, as Stripe computes it. */
  signWebhook(body: string, opts: { secret?: string; timestamp?: number } = {}): string {
    const t = opts.timestamp ?? Math.floor(Date.now() / 1000);
    const v1 = createHmac("sha256", opts.secret ?? this.webhookSecret)
      .update(`${t}.${body}`, "utf8")
      .digest("hex");
    return `t=${t},v1=${v1}`;
  }

  /** A Stripe `event` envelope around an object. */
  event(type: string, object: Obj): Obj {
    return {
      id: `evt_${this.#nextId()}`,
      object: "event",
      api_version: "2026-10-28.endive",
      created: this.#now(),
      data: { object },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
  }

  /** POSTs a signed event to `url` like Stripe's webhook sender. */
  async sendWebhook(
    url: string,
    event: Obj,
    opts: { secret?: string; timestamp?: number; signature?: string | null } = {},
  ): Promise<{ status: number; body: string }> {
    const body = JSON.stringify(event, null, 2);
    const headers: Record<string, string> = {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    };
    const signature = opts.signature === undefined ? this.signWebhook(body, opts) : opts.signature;
    if (signature !== null) headers["stripe-signature"] = signature;
    const res = await fetch(url, { method: "POST", headers, body });
    return { status: res.status, body: await res.text() };
  }

  /** Sum of accepted values per meter for a customer in [start, end). */
  total(meterId: string, customer: string, start: number, end: number): number {
    let sum = 0;
    for (const e of this.meterEvents) {
      if (e.meterId === meterId && e.customer === customer && e.timestamp >= start && e.timestamp < end) {
        sum += e.value;
      }
    }
    return sum;
  }

  #nextId(): string {
    this.#seq += 1;
    return `${randomBytes(6).toString("hex")}${this.#seq.toString(36)}`;
  }

  #meterByEventName(eventName: string): Obj | undefined {
    for (const m of this.meters.values()) if (m.event_name === eventName && m.status === "active") return m;
    return undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const raw = (await readBody(req)).toString("utf8");
    const idempotencyKey = method === "POST" ? headerValue(req, "idempotency-key") : undefined;
    const late =
      method === "POST" && url.pathname === "/v1/billing/meter_events" && this.#slowMeterAnswers.remaining > 0
        ? this.#slowMeterAnswers.ms
        : 0;
    if (late > 0) this.#slowMeterAnswers.remaining -= 1;
    const send = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      this.requests.push({ method, path: url.pathname, idempotencyKey, status });
      if (late > 0) {
        setTimeout(() => answer(status, body, extra), late);
        return;
      }
      answer(status, body, extra);
    };
    const answer = (status: number, body: unknown, extra: Record<string, string>) => {
      if (res.destroyed) return;
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        "request-id": `req_${this.#nextId()}`,
        ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
        ...extra,
      });
      res.end(text);
    };
    const sendError = (e: StripeHttpError) => {
      const error: Obj = { type: e.type, message: e.message };
      if (e.code) error.code = e.code;
      if (e.param) error.param = e.param;
      send(e.status, { error }, e.status === 400 ? { "stripe-should-retry": "false" } : {});
    };

    const auth = headerValue(req, "authorization");
    if (auth !== `Bearer ${this.secretKey}`) {
      const shown = auth?.replace(/^Bearer\s+/i, "") ?? "";
      sendError(
        new StripeHttpError(
          401,
          "invalid_request_error",
          shown
            ? `Invalid API Key provided: ${shown.slice(0, 8)}${"*".repeat(Math.max(0, shown.length - 12))}${shown.slice(-4)}`
            : "You did not provide an API key.",
        ),
      );
      return;
    }

    const failing =
      method === "POST" && url.pathname === "/v1/billing/meter_events" && this.#failures.remaining > 0;
    if (failing && this.#failures.skip > 0) {
      this.#failures.skip -= 1;
    } else if (failing) {
      this.#failures.remaining -= 1;
      const body = parseBracketForm(raw);
      this.meterEventAttempts.push({
        identifier: str(body.identifier),
        event_name: str(body.event_name),
        status: this.#failures.status,
      });
      sendError(
        new StripeHttpError(
          this.#failures.status,
          "api_error",
          "An unknown error occurred (injected by FakeStripe).",
        ),
      );
      return;
    }

    if (
      method === "GET" &&
      /^\/v1\/invoices\/in_[^/]+$/.test(url.pathname) &&
      this.#invoiceReadFailures.remaining > 0
    ) {
      this.#invoiceReadFailures.remaining -= 1;
      sendError(
        new StripeHttpError(
          this.#invoiceReadFailures.status,
          "api_error",
          "An unknown error occurred (injected by FakeStripe).",
        ),
      );
      return;
    }

    const fingerprint = `${method} ${url.pathname} ${raw}`;
    if (idempotencyKey) {
      const hit = this.#idempotency.get(idempotencyKey);
      if (hit) {
        if (hit.fingerprint !== fingerprint) {
          sendError(
            new StripeHttpError(
              400,
              "idempotency_error",
              `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            ),
          );
          return;
        }
        if (url.pathname === "/v1/billing/meter_events") {
          const b = parseBracketForm(raw);
          this.meterEventAttempts.push({
            identifier: str(b.identifier),
            event_name: str(b.event_name),
            status: hit.status,
          });
        }
        send(hit.status, hit.body, { "idempotent-replayed": "true" });
        return;
      }
    }

    let status = 200;
    let body: unknown;
    try {
      body = this.#route(method, url, parseBracketForm(raw));
    } catch (err) {
      const e =
        err instanceof StripeHttpError
          ? err
          : new StripeHttpError(500, "api_error", `FakeStripe failed: ${(err as Error).message}`);
      status = e.status;
      const error: Obj = { type: e.type, message: e.message };
      if (e.code) error.code = e.code;
      if (e.param) error.param = e.param;
      body = { error };
    }
    // Stripe saves the result of any request that started executing (incl. 400s), not auth failures.
    if (idempotencyKey) this.#idempotency.set(idempotencyKey, { fingerprint, status, body });
    send(status, body, status === 400 ? { "stripe-should-retry": "false" } : {});
  }

  #route(method: string, url: URL, body: FormRecord): unknown {
    const p = url.pathname.replace(/\/$/, "");
    const seg = p.split("/").slice(2); // after "/v1"
    const [a, b, c, d] = seg;
    if (!p.startsWith("/v1/")) this.#missing("path", p);

    if (a === "customers" && seg.length === 1 && method === "POST") return this.#createCustomer(body);
    if (a === "customers" && b && seg.length === 2) {
      const cus = this.customers.get(b) ?? this.#missing("customer", b);
      if (method === "POST") {
        for (const k of ["name", "email", "description"])
          if (str(body[k]) !== undefined) cus[k] = str(body[k]);
        if (body.metadata) cus.metadata = { ...(cus.metadata as Obj), ...metadata(body.metadata) };
      }
      return cus;
    }
    if (a === "products" && seg.length === 1 && method === "POST") return this.#createProduct(body);
    if (a === "products" && b && seg.length === 2) return this.products.get(b) ?? this.#missing("product", b);
    if (a === "prices" && seg.length === 1 && method === "POST") return this.#createPrice(body);
    if (a === "prices" && seg.length === 1 && method === "GET") {
      const keys = [...url.searchParams.entries()]
        .filter(([k]) => k.startsWith("lookup_keys"))
        .map(([, v]) => v);
      const data = [...this.prices.values()].filter(
        (pr) => pr.active === true && (keys.length === 0 || keys.includes(pr.lookup_key as string)),
      );
      return list("/v1/prices", data);
    }
    if (a === "prices" && b && seg.length === 2) return this.prices.get(b) ?? this.#missing("price", b);
    if (a === "billing" && b === "meters") {
      if (!c && method === "POST") return this.#createMeter(body);
      if (!c && method === "GET") {
        const status = url.searchParams.get("status");
        return list(
          "/v1/billing/meters",
          [...this.meters.values()].filter((m) => !status || m.status === status),
        );
      }
      if (c && !d) return this.meters.get(c) ?? this.#missing("billing.meter", c);
      if (c && d === "event_summaries" && method === "GET") return this.#summaries(c, url);
    }
    if (a === "billing" && b === "meter_events" && !c && method === "POST")
      return this.#createMeterEvent(body);
    if (a === "subscriptions" && seg.length === 1 && method === "POST") return this.#createSubscription(body);
    if (a === "subscriptions" && b && seg.length === 2) {
      const sub = this.subscriptions.get(b) ?? this.#missing("subscription", b);
      if (method === "DELETE") {
        sub.status = "canceled";
        sub.canceled_at = this.#now();
        sub.ended_at = this.#now();
      }
      return sub;
    }
    if (a === "invoices" && seg.length === 1 && method === "GET") {
      const customer = url.searchParams.get("customer");
      const limit = Number(url.searchParams.get("limit") ?? "10");
      const data = [...this.invoices.values()]
        .filter((i) => !customer || i.customer === customer)
        .sort((x, y) => (y.created as number) - (x.created as number))
        .slice(0, limit);
      return list("/v1/invoices", data);
    }
    if (a === "invoices" && b === "create_preview" && method === "POST") return this.#preview(body);
    if (a === "invoices" && b && seg.length === 2 && method === "GET")
      return this.invoices.get(b) ?? this.#missing("invoice", b);
    return this.#missing("path", p);
  }

  #missing(kind: string, id: string): never {
    if (kind === "path") {
      throw new StripeHttpError(404, "invalid_request_error", `Unrecognized request URL (${id}).`);
    }
    throw new StripeHttpError(
      404,
      "invalid_request_error",
      `No such ${kind}: '${id}'`,
      "resource_missing",
      "id",
    );
  }

  #createCustomer(body: FormRecord): Obj {
    const id = `cus_${this.#nextId()}`;
    const cus: Obj = {
      id,
      object: "customer",
      name: str(body.name) ?? null,
      email: str(body.email) ?? null,
      description: str(body.description) ?? null,
      metadata: metadata(body.metadata),
      created: this.#now(),
      livemode: false,
    };
    this.customers.set(id, cus);
    return cus;
  }

  #createProduct(body: FormRecord): Obj {
    const id = `prod_${this.#nextId()}`;
    const prod: Obj = {
      id,
      object: "product",
      name: required(body, "name"),
      active: true,
      metadata: metadata(body.metadata),
      created: this.#now(),
      livemode: false,
    };
    this.products.set(id, prod);
    return prod;
  }

  #createPrice(body: FormRecord): Obj {
    const currency = required(body, "currency");
    let product = str(body.product);
    const productData = rec(body.product_data);
    if (!product && productData) product = this.#createProduct(productData).id as string;
    if (!product) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Missing required param: product.",
        "parameter_missing",
        "product",
      );
    }
    if (!this.products.has(product)) this.#missing("product", product);
    const unitAmount = str(body.unit_amount);
    const unitAmountDecimal = str(body.unit_amount_decimal) ?? unitAmount;
    if (unitAmountDecimal === undefined || !/^\d+(\.\d{1,12})?$/.test(unitAmountDecimal)) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Invalid unit_amount_decimal: a non-negative decimal with at most 12 decimal places is required.",
        "parameter_invalid_string",
        "unit_amount_decimal",
      );
    }
    const recurring = rec(body.recurring);
    const meter = str(recurring?.meter);
    if (meter && !this.meters.has(meter)) this.#missing("billing.meter", meter);
    if (recurring && str(recurring.usage_type) === "metered" && !meter) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Metered prices must be backed by a meter: pass recurring[meter].",
        "parameter_missing",
        "recurring[meter]",
      );
    }
    const lookupKey = str(body.lookup_key);
    if (lookupKey) {
      for (const pr of this.prices.values()) {
        if (pr.lookup_key === lookupKey && pr.active === true) {
          throw new StripeHttpError(
            400,
            "invalid_request_error",
            `A price (\`${pr.id as string}\`) already uses that lookup key.`,
            "lookup_key_exists",
            "lookup_key",
          );
        }
      }
    }
    const id = `price_${this.#nextId()}`;
    const price: Obj = {
      id,
      object: "price",
      active: true,
      billing_scheme: "per_unit",
      created: this.#now(),
      currency,
      livemode: false,
      lookup_key: lookupKey ?? null,
      metadata: metadata(body.metadata),
      nickname: str(body.nickname) ?? null,
      product,
      recurring: recurring
        ? {
            interval: str(recurring.interval) ?? "month",
            interval_count: Number(str(recurring.interval_count) ?? "1"),
            meter: meter ?? null,
            usage_type: str(recurring.usage_type) ?? "licensed",
            trial_period_days: null,
          }
        : null,
      type: recurring ? "recurring" : "one_time",
      unit_amount: /^\d+$/.test(unitAmountDecimal) ? Number(unitAmountDecimal) : null,
      unit_amount_decimal: unitAmountDecimal,
    };
    this.prices.set(id, price);
    return price;
  }

  #createMeter(body: FormRecord): Obj {
    const eventName = required(body, "event_name");
    const displayName = required(body, "display_name");
    const aggregation = rec(body.default_aggregation);
    const formula = str(aggregation?.formula);
    if (!formula || !["sum", "count", "last"].includes(formula)) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Missing required param: default_aggregation[formula].",
        "parameter_missing",
        "default_aggregation[formula]",
      );
    }
    if (this.#meterByEventName(eventName)) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        `An active meter with event_name \`${eventName}\` already exists.`,
        "resource_already_exists",
        "event_name",
      );
    }
    const now = this.#now();
    const id = `mtr_${this.#nextId()}`;
    const meter: Obj = {
      id,
      object: "billing.meter",
      display_name: displayName,
      event_name: eventName,
      status: "active",
      default_aggregation: { formula },
      customer_mapping: {
        type: "by_id",
        event_payload_key: str(rec(body.customer_mapping)?.event_payload_key) ?? "stripe_customer_id",
      },
      value_settings: { event_payload_key: str(rec(body.value_settings)?.event_payload_key) ?? "value" },
      event_time_window: str(body.event_time_window) ?? null,
      livemode: false,
      created: now,
      updated: now,
      status_transitions: { deactivated_at: null },
    };
    this.meters.set(id, meter);
    return meter;
  }

  #createMeterEvent(body: FormRecord): Obj {
    const attempt: MeterEventAttempt = {
      identifier: str(body.identifier),
      event_name: str(body.event_name),
      status: 400,
    };
    this.meterEventAttempts.push(attempt);
    const eventName = required(body, "event_name");
    const payloadRec = rec(body.payload);
    if (!payloadRec) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Missing required param: payload.",
        "parameter_missing",
        "payload",
      );
    }
    const payload = metadata(payloadRec);
    const meter = this.#meterByEventName(eventName);
    if (!meter) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        `No active meter was found for event_name \`${eventName}\`.`,
        "resource_missing",
        "event_name",
      );
    }
    const customerKey = (meter.customer_mapping as { event_payload_key: string }).event_payload_key;
    const valueKey = (meter.value_settings as { event_payload_key: string }).event_payload_key;
    const customer = payload[customerKey];
    if (!customer) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        `Missing required payload key: ${customerKey}.`,
        "parameter_missing",
        `payload[${customerKey}]`,
      );
    }
    if (!this.customers.has(customer)) this.#missing("customer", customer);
    const rawValue = payload[valueKey];
    if (rawValue === undefined || !/^-?\d+(\.\d+)?$/.test(rawValue)) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        `Payload key ${valueKey} must be a number, got ${JSON.stringify(rawValue ?? null)}.`,
        "parameter_invalid_string",
        `payload[${valueKey}]`,
      );
    }
    const now = this.#now();
    const tsRaw = str(body.timestamp);
    const timestamp = tsRaw === undefined ? now : Number(tsRaw);
    if (!Number.isInteger(timestamp) || timestamp < now - 35 * DAY || timestamp > now + 300) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
        "timestamp_out_of_range",
        "timestamp",
      );
    }
    const identifier = str(body.identifier) ?? `ident_${this.#nextId()}`;
    if (identifier.length > 100) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "identifier is too long (max 100).",
        "parameter_invalid_string",
        "identifier",
      );
    }
    if (this.meterEvents.some((e) => e.identifier === identifier)) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        `An event already exists with identifier ${identifier}.`,
        "duplicate_meter_event",
        "identifier",
      );
    }
    const event: MeterEventRecord = {
      event_name: eventName,
      identifier,
      payload,
      timestamp,
      created: now,
      meterId: meter.id as string,
      customer,
      value: Number(rawValue),
    };
    this.meterEvents.push(event);
    attempt.status = 200;
    return {
      object: "billing.meter_event",
      created: now,
      event_name: eventName,
      identifier,
      livemode: false,
      payload,
      timestamp,
    };
  }

  #summaries(meterId: string, url: URL): Obj {
    const meter = this.meters.get(meterId) ?? this.#missing("billing.meter", meterId);
    const customer = url.searchParams.get("customer");
    const start = Number(url.searchParams.get("start_time"));
    const end = Number(url.searchParams.get("end_time"));
    if (!customer) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Missing required param: customer.",
        "parameter_missing",
        "customer",
      );
    }
    for (const [name, v] of [
      ["start_time", start],
      ["end_time", end],
    ] as const) {
      if (!Number.isInteger(v) || v % 60 !== 0) {
        throw new StripeHttpError(
          400,
          "invalid_request_error",
          `${name} must be a unix timestamp aligned to a minute boundary.`,
          "parameter_invalid_integer",
          name,
        );
      }
    }
    const value = this.total(meterId, customer, start, end);
    return list(`/v1/billing/meters/${meterId}/event_summaries`, [
      {
        id: `mtrusg_${this.#nextId()}`,
        object: "billing.meter_event_summary",
        aggregated_value: value,
        end_time: end,
        livemode: false,
        meter: meter.id,
        start_time: start,
      },
    ]);
  }

  #createSubscription(body: FormRecord): Obj {
    const customer = required(body, "customer");
    if (!this.customers.has(customer)) this.#missing("customer", customer);
    const items = rec(body.items);
    if (!items || Object.keys(items).length === 0) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "Missing required param: items.",
        "parameter_missing",
        "items",
      );
    }
    const now = this.#now();
    const backdate = str(body.backdate_start_date);
    const start = backdate === undefined ? now : Number(backdate);
    if (!Number.isInteger(start) || start > now) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "backdate_start_date must be a unix timestamp in the past.",
        "parameter_invalid_integer",
        "backdate_start_date",
      );
    }
    const id = `sub_${this.#nextId()}`;
    const data = Object.values(items).map((item) => {
      const priceId = str(rec(item)?.price);
      if (!priceId) {
        throw new StripeHttpError(
          400,
          "invalid_request_error",
          "Missing required param: items[0][price].",
          "parameter_missing",
          "items[0][price]",
        );
      }
      const price = this.prices.get(priceId) ?? this.#missing("price", priceId);
      return {
        id: `si_${this.#nextId()}`,
        object: "subscription_item",
        price,
        quantity: undefined,
        subscription: id,
        current_period_start: start,
        current_period_end: start + 30 * DAY,
        created: now,
      };
    });
    const sub: Obj = {
      id,
      object: "subscription",
      customer,
      status: "active",
      collection_method: str(body.collection_method) ?? "charge_automatically",
      items: list(`/v1/subscription_items?subscription=${id}`, data),
      metadata: metadata(body.metadata),
      created: now,
      start_date: start,
      billing_cycle_anchor: start,
      canceled_at: null,
      ended_at: null,
      livemode: false,
    };
    this.subscriptions.set(id, sub);
    return sub;
  }

  #preview(body: FormRecord): Obj {
    const customer = required(body, "customer");
    if (!this.customers.has(customer)) this.#missing("customer", customer);
    const subId = str(body.subscription);
    const sub = subId
      ? (this.subscriptions.get(subId) ?? this.#missing("subscription", subId))
      : [...this.subscriptions.values()].find((s) => s.customer === customer && s.status === "active");
    if (!sub) {
      throw new StripeHttpError(
        400,
        "invalid_request_error",
        "No upcoming invoices for customer: no active subscription.",
        "invoice_upcoming_none",
      );
    }
    const items = (
      sub.items as { data: Array<{ price: Obj; current_period_start: number; current_period_end: number }> }
    ).data;
    const now = this.#now();
    let total = 0;
    const lines = items.map((item, i) => {
      const meterId = (item.price.recurring as { meter: string | null } | null)?.meter;
      const quantity = meterId ? this.total(meterId, customer, item.current_period_start, now + 1) : 0;
      // unit_amount_decimal is in cents; invoices round each line to whole cents.
      const amount = Math.round(quantity * Number(item.price.unit_amount_decimal));
      total += amount;
      return {
        id: `il_tmp_${i}`,
        object: "line_item",
        amount,
        currency: "usd",
        description: `${quantity} × ${item.price.nickname ?? item.price.id}`,
        quantity,
        period: { start: item.current_period_start, end: item.current_period_end },
        pricing: { price_details: { price: item.price.id } },
      };
    });
    const first = items[0];
    return {
      id: `upcoming_${sub.id as string}`,
      object: "invoice",
      customer,
      subscription: sub.id,
      status: "draft",
      number: null,
      amount_due: total,
      amount_paid: 0,
      amount_remaining: total,
      subtotal: total,
      total,
      currency: "usd",
      period_start: first?.current_period_start ?? now,
      period_end: first?.current_period_end ?? now,
      hosted_invoice_url: null,
      created: now,
      livemode: false,
      lines: list("/v1/invoices/upcoming/lines", lines),
    };
  }
}
