/**
 * FakeTwilio — loopback Twilio REST API (2010-04-01) plus a registry of simulated calls.
 *
 * REST (form-encoded bodies, JSON answers, HTTP Basic `AccountSid:AuthToken`):
 *   GET  /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json[?PhoneNumber=…]   list (substring match)
 *   GET  /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json                fetch
 *   POST /2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json                update (VoiceUrl, VoiceMethod,
 *        StatusCallback, StatusCallbackMethod, VoiceFallbackUrl, FriendlyName, …)
 *   POST /2010-04-01/Accounts/{AC}/Calls.json                                    create (To, From, Twiml|Url, …)
 *   GET  /2010-04-01/Accounts/{AC}/Calls.json, /Calls/{CA}.json                  list / fetch
 *   POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json                               update (Status, Twiml, Url)
 * Bad credentials → 401 {code:20003}; unknown resources → 404 {code:20404}; validation → 400.
 *
 * The official SDK is redirected with a `twilio.RequestClient` subclass that rewrites
 * `https://api.twilio.com` to `fake.baseUrl` (see `loopbackHttpClient()` below / PROTOCOLS.md §1e).
 *
 * Calls: `placeInboundCall({to, from})` rings the app using the number's stored VoiceUrl (as set
 * through the REST API) and the account's auth token. `Calls.json` create dials out: the outcome
 * comes from `outboundOutcome(params)` (default "answer"); answered calls get a TwilioCallSimulator
 * (await `nextCall()` or read `calls`), busy/no-answer/failed only produce signed status callbacks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import twilio from "twilio";
import type TwilioRequestClient from "twilio/lib/base/RequestClient.js";
import {
  type CallSimulatorOptions,
  newSid,
  type TwilioCallSimulator as Sim,
  TwilioCallSimulator,
} from "./twilio-call.ts";
import { closeServer, headerValue, listenLoopback, readBody, sendJson } from "./util.ts";

export * from "./twilio-call.ts";
export { parseTwiml, type TwimlNode } from "./twiml.ts";

export interface PhoneNumberInit {
  phoneNumber: string;
  sid?: string;
  friendlyName?: string;
  voiceUrl?: string;
  voiceMethod?: string;
  statusCallback?: string;
  statusCallbackMethod?: string;
}

export interface PhoneNumberRecord {
  sid: string;
  accountSid: string;
  phoneNumber: string;
  friendlyName: string;
  voiceUrl: string;
  voiceMethod: string;
  voiceFallbackUrl: string;
  voiceFallbackMethod: string;
  statusCallback: string;
  statusCallbackMethod: string;
  smsUrl: string;
  smsMethod: string;
  voiceApplicationSid: string;
  dateCreated: number;
  dateUpdated: number;
}

export interface FakeAccount {
  accountSid: string;
  authToken: string;
  numbers?: Array<string | PhoneNumberInit>;
}

export type OutboundOutcome = "answer" | "busy" | "no-answer" | "failed";

export interface FakeTwilioOptions {
  accounts?: FakeAccount[];
  /** Decides what happens to a REST-created call. Default: "answer". */
  outboundOutcome?: (params: Record<string, string>) => OutboundOutcome;
  /** Ringing time before an outbound call is answered / fails. Default 20 ms. */
  ringMs?: number;
  /** Reject `From` numbers the account does not own (Twilio error 21210). Default true. */
  verifyCallerId?: boolean;
  /** Options for every simulator this fake creates (utterance registry, recordAudio, …). */
  simulator?: CallSimulatorOptions;
  /**
   * Open mode, for tests that do not care about Twilio: any well-formed `AC…` account SID with any
   * token authenticates (the account is created on first use; a new token replaces the old one, so
   * signed webhooks use the latest), and looking up a number by `PhoneNumber` creates it in that
   * account. Default false: only configured accounts and numbers exist.
   */
  openAccounts?: boolean;
}

export interface RecordedTwilioRequest {
  method: string;
  path: string;
  params: Record<string, string | string[]>;
  authUser: string | undefined;
  status: number;
  at: number;
}

const API = "/2010-04-01/Accounts/";

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

function twilioError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

export class FakeTwilio {
  readonly accounts = new Map<string, FakeAccount>();
  readonly numbers = new Map<string, PhoneNumberRecord>();
  readonly calls = new Map<string, Sim>();
  readonly requests: RecordedTwilioRequest[] = [];
  outboundOutcome: (params: Record<string, string>) => OutboundOutcome;
  /**
   * When set, a REST-created call is placed and answered, and only once its media stream has
   * started (plus this many ms) does the create request get its answer: a 500, as if Twilio's answer
   * had been lost on the way after the call connected.
   */
  loseCreateCallAnswerAfterMs: number | undefined;
  ringMs: number;
  verifyCallerId: boolean;
  simulatorOptions: CallSimulatorOptions;
  openAccounts: boolean;

  readonly #server: Server;
  readonly #port: number;
  readonly #callWaiters: Array<(sim: Sim) => void> = [];

  private constructor(server: Server, port: number, opts: FakeTwilioOptions) {
    this.#server = server;
    this.#port = port;
    this.outboundOutcome = opts.outboundOutcome ?? (() => "answer");
    this.ringMs = opts.ringMs ?? 20;
    this.verifyCallerId = opts.verifyCallerId ?? true;
    this.simulatorOptions = opts.simulator ?? {};
    this.openAccounts = opts.openAccounts ?? false;
    for (const a of opts.accounts ?? []) this.addAccount(a);
  }

  static async start(opts: FakeTwilioOptions = {}): Promise<FakeTwilio> {
    let fake: FakeTwilio | undefined;
    const server = createServer((req, res) => {
      fake?.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) twilioError(res, 500, 20500, `Internal Server Error: ${String(err)}`);
        else res.end();
      });
    });
    const port = await listenLoopback(server);
    fake = new FakeTwilio(server, port, opts);
    return fake;
  }

  /** `http://127.0.0.1:PORT` — stands in for `https://api.twilio.com`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get url(): string {
    return this.baseUrl;
  }

  /**
   * A `httpClient` for `twilio(accountSid, authToken, { httpClient })` that sends every request here.
   * (The app's production equivalent belongs in its own library; this one is for tests.)
   */
  loopbackHttpClient(): InstanceType<typeof twilio.RequestClient> {
    const base = this.baseUrl;
    class LoopbackRequestClient extends twilio.RequestClient {
      override request<TData>(opts: TwilioRequestClient.RequestOptions<TData>) {
        return super.request<TData>({
          ...opts,
          uri: opts.uri.replace(/^https:\/\/[^/]+\.twilio\.com/, base),
        });
      }
    }
    return new LoopbackRequestClient();
  }

  addAccount(account: FakeAccount): void {
    this.accounts.set(account.accountSid, account);
    for (const n of account.numbers ?? []) this.addNumber(account.accountSid, n);
  }

  addNumber(accountSid: string, init: string | PhoneNumberInit): PhoneNumberRecord {
    const i: PhoneNumberInit = typeof init === "string" ? { phoneNumber: init } : init;
    const now = Date.now();
    const rec: PhoneNumberRecord = {
      sid: i.sid ?? newSid("PN"),
      accountSid,
      phoneNumber: i.phoneNumber,
      friendlyName: i.friendlyName ?? i.phoneNumber,
      voiceUrl: i.voiceUrl ?? "",
      voiceMethod: i.voiceMethod ?? "POST",
      voiceFallbackUrl: "",
      voiceFallbackMethod: "POST",
      statusCallback: i.statusCallback ?? "",
      statusCallbackMethod: i.statusCallbackMethod ?? "POST",
      smsUrl: "",
      smsMethod: "POST",
      voiceApplicationSid: "",
      dateCreated: now,
      dateUpdated: now,
    };
    this.numbers.set(rec.sid, rec);
    return rec;
  }

  findNumber(phoneNumber: string): PhoneNumberRecord | undefined {
    for (const n of this.numbers.values()) if (n.phoneNumber === phoneNumber) return n;
    return undefined;
  }

  /** A bare simulator registered with this fake (REST updates reach it). */
  simulator(opts: CallSimulatorOptions = {}): Sim {
    const sim = new TwilioCallSimulator({ ...this.simulatorOptions, ...opts });
    this.#register(sim);
    return sim;
  }

  /**
   * A caller dials `to` (a number seeded on some account): Twilio POSTs the number's VoiceUrl,
   * signed with the owning account's token; the number's StatusCallback gets `completed`.
   */
  async placeInboundCall(params: {
    to: string;
    from: string;
    extraParams?: Record<string, string>;
    simulator?: CallSimulatorOptions;
  }): Promise<Sim> {
    const number = this.findNumber(params.to);
    if (!number) throw new Error(`FakeTwilio: no number ${params.to}`);
    if (!number.voiceUrl) throw new Error(`FakeTwilio: number ${params.to} has no VoiceUrl`);
    const account = this.accounts.get(number.accountSid);
    if (!account) throw new Error(`FakeTwilio: no account ${number.accountSid}`);
    const sim = this.simulator(params.simulator);
    return sim.placeInboundCall({
      voiceUrl: number.voiceUrl,
      voiceMethod: number.voiceMethod,
      accountSid: account.accountSid,
      authToken: account.authToken,
      from: params.from,
      to: params.to,
      statusCallback: number.statusCallback || undefined,
      statusCallbackMethod: number.statusCallbackMethod,
      extraParams: params.extraParams,
    });
  }

  /** Resolves with the next call (inbound or outbound) registered after this call. */
  nextCall(timeoutMs = 5000): Promise<Sim> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("FakeTwilio: no call")), timeoutMs);
      this.#callWaiters.push((sim) => {
        clearTimeout(t);
        resolve(sim);
      });
    });
  }

  /** Hangs up every live simulated call and stops the server. */
  async close(): Promise<void> {
    for (const sim of this.calls.values()) await sim.hangup();
    await closeServer(this.#server);
  }

  #register(sim: Sim): void {
    this.calls.set(sim.callSid, sim);
    for (const w of this.#callWaiters.splice(0)) w(sim);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const method = req.method ?? "GET";
    const raw = method === "POST" ? (await readBody(req)).toString("utf8") : url.search.slice(1);
    const form = new URLSearchParams(raw);
    const params: Record<string, string | string[]> = {};
    for (const k of new Set(form.keys())) {
      const all = form.getAll(k);
      params[k] = all.length > 1 ? all : (all[0] ?? "");
    }
    const record: RecordedTwilioRequest = {
      method,
      path: url.pathname,
      params,
      authUser: undefined,
      status: 200,
      at: Date.now(),
    };
    this.requests.push(record);
    const reply = (status: number, body: unknown): void => {
      record.status = status;
      sendJson(res, status, body);
    };
    const error = (status: number, code: number, message: string): void => {
      record.status = status;
      twilioError(res, status, code, message);
    };

    // Auth first, like the real API.
    const auth = headerValue(req, "authorization");
    let user: string | undefined;
    let pass: string | undefined;
    if (auth?.startsWith("Basic ")) {
      const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      user = decoded.slice(0, colon);
      pass = decoded.slice(colon + 1);
    }
    record.authUser = user;
    if (this.openAccounts && user && /^AC[0-9a-fA-F]{32}$/.test(user) && pass) {
      const known = this.accounts.get(user);
      if (!known) this.addAccount({ accountSid: user, authToken: pass });
      else known.authToken = pass;
    }
    const account = user ? this.accounts.get(user) : undefined;
    if (!account || account.authToken !== pass) {
      error(401, 20003, "Authenticate");
      return;
    }
    if (!url.pathname.startsWith(API)) {
      error(404, 20404, `The requested resource ${url.pathname} was not found`);
      return;
    }
    const parts = url.pathname.slice(API.length).split("/");
    const [accountSid, collection, item] = parts;
    const notFound = (): void => error(404, 20404, `The requested resource ${url.pathname} was not found`);
    if (accountSid !== account.accountSid || parts.length > 3) {
      notFound();
      return;
    }
    const one = (s: string | string[] | undefined): string | undefined => (Array.isArray(s) ? s[0] : s);

    if (collection === "IncomingPhoneNumbers.json" && item === undefined && method === "GET") {
      const filter = one(params.PhoneNumber);
      if (this.openAccounts && filter && /^\+[1-9]\d{1,14}$/.test(filter)) {
        const existing = this.findNumber(filter);
        if (!existing) this.addNumber(accountSid, filter);
      }
      const list = [...this.numbers.values()].filter(
        (n) => n.accountSid === accountSid && (!filter || n.phoneNumber.includes(filter)),
      );
      reply(
        200,
        this.#page(
          "incoming_phone_numbers",
          url,
          list.map((n) => this.#numberJson(n)),
        ),
      );
      return;
    }
    if (collection === "IncomingPhoneNumbers" && item?.endsWith(".json")) {
      const n = this.numbers.get(item.slice(0, -5));
      if (!n || n.accountSid !== accountSid) {
        notFound();
        return;
      }
      if (method === "POST") {
        const map: Array<[string, keyof PhoneNumberRecord]> = [
          ["VoiceUrl", "voiceUrl"],
          ["VoiceMethod", "voiceMethod"],
          ["VoiceFallbackUrl", "voiceFallbackUrl"],
          ["VoiceFallbackMethod", "voiceFallbackMethod"],
          ["StatusCallback", "statusCallback"],
          ["StatusCallbackMethod", "statusCallbackMethod"],
          ["FriendlyName", "friendlyName"],
          ["SmsUrl", "smsUrl"],
          ["SmsMethod", "smsMethod"],
          ["VoiceApplicationSid", "voiceApplicationSid"],
        ];
        for (const [param, field] of map) {
          const v = one(params[param]);
          if (v !== undefined) (n as unknown as Record<string, string>)[field] = v;
        }
        n.dateUpdated = Date.now();
      } else if (method !== "GET") {
        error(405, 20004, "Method not allowed");
        return;
      }
      reply(200, this.#numberJson(n));
      return;
    }
    if (collection === "Calls.json" && item === undefined) {
      if (method === "GET") {
        const list = [...this.calls.values()].filter((c) => c.accountSid === accountSid);
        reply(
          200,
          this.#page(
            "calls",
            url,
            list.map((c) => c.toResource()),
          ),
        );
        return;
      }
      if (method === "POST") {
        this.#createCall(account, params, reply, error);
        return;
      }
    }
    if (collection === "Calls" && item?.endsWith(".json")) {
      const sim = this.calls.get(item.slice(0, -5));
      if (!sim || sim.accountSid !== accountSid) {
        notFound();
        return;
      }
      if (method === "POST") {
        const status = one(params.Status);
        if (status !== undefined && status !== "completed" && status !== "canceled") {
          error(400, 21218, `Invalid Status: ${status}`);
          return;
        }
        sim.applyUpdate({
          status,
          twiml: one(params.Twiml),
          url: one(params.Url),
          method: one(params.Method),
        });
      }
      reply(200, sim.toResource());
      return;
    }
    notFound();
  }

  #createCall(
    account: FakeAccount,
    params: Record<string, string | string[]>,
    reply: (status: number, body: unknown) => void,
    error: (status: number, code: number, message: string) => void,
  ): void {
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) flat[k] = Array.isArray(v) ? (v[0] ?? "") : v;
    const to = flat.To;
    const from = flat.From;
    if (!to) {
      error(400, 21201, "No 'To' number is specified");
      return;
    }
    if (!from) {
      error(400, 21603, "A 'From' phone number is required.");
      return;
    }
    if (flat.Twiml === undefined && flat.Url === undefined && flat.ApplicationSid === undefined) {
      error(400, 21205, "Url parameter is required.");
      return;
    }
    if (
      this.verifyCallerId &&
      ![...this.numbers.values()].some((n) => n.accountSid === account.accountSid && n.phoneNumber === from)
    ) {
      error(400, 21210, `The source phone number provided, ${from}, is not yet verified for your account.`);
      return;
    }
    const eventsRaw = params.StatusCallbackEvent;
    const events = Array.isArray(eventsRaw) ? eventsRaw : eventsRaw ? eventsRaw.split(/[\s,]+/) : [];
    const sim = new TwilioCallSimulator(this.simulatorOptions);
    sim.configure({
      accountSid: account.accountSid,
      authToken: account.authToken,
      from,
      to,
      direction: "outbound-api",
      statusCallback: flat.StatusCallback,
      statusCallbackMethod: flat.StatusCallbackMethod,
      // Terminal statuses are always reported to a StatusCallback, whatever the event list says.
      statusCallbackEvents: events.length > 0 ? [...events, "completed"] : ["completed"],
    });
    this.#register(sim);
    const outcome = this.outboundOutcome(flat);
    const loseAfterMs = this.loseCreateCallAnswerAfterMs;
    if (loseAfterMs !== undefined) {
      void sim
        .runOutbound({ twiml: flat.Twiml, url: flat.Url, method: flat.Method }, outcome, this.ringMs)
        .then(() => sleep(loseAfterMs))
        .then(() => error(500, 20500, "Internal Server Error"));
      return;
    }
    reply(201, sim.toResource());
    setImmediate(() => {
      void sim.runOutbound({ twiml: flat.Twiml, url: flat.Url, method: flat.Method }, outcome, this.ringMs);
    });
  }

  #page(key: string, url: URL, items: unknown[]): Record<string, unknown> {
    const uri = url.pathname + url.search;
    return {
      [key]: items,
      end: Math.max(0, items.length - 1),
      first_page_uri: uri,
      next_page_uri: null,
      page: 0,
      page_size: Number(url.searchParams.get("PageSize") ?? 50),
      previous_page_uri: null,
      start: 0,
      uri,
    };
  }

  #numberJson(n: PhoneNumberRecord): Record<string, unknown> {
    return {
      sid: n.sid,
      account_sid: n.accountSid,
      address_requirements: "none",
      address_sid: null,
      api_version: "2010-04-01",
      beta: false,
      bundle_sid: null,
      capabilities: { voice: true, sms: true, mms: true, fax: false },
      date_created: rfc2822(n.dateCreated),
      date_updated: rfc2822(n.dateUpdated),
      emergency_status: "Inactive",
      friendly_name: n.friendlyName,
      identity_sid: null,
      origin: "twilio",
      phone_number: n.phoneNumber,
      sms_application_sid: "",
      sms_fallback_method: "POST",
      sms_fallback_url: "",
      sms_method: n.smsMethod,
      sms_url: n.smsUrl,
      status: "in-use",
      status_callback: n.statusCallback,
      status_callback_method: n.statusCallbackMethod,
      trunk_sid: null,
      uri: `${API}${n.accountSid}/IncomingPhoneNumbers/${n.sid}.json`,
      voice_application_sid: n.voiceApplicationSid,
      voice_caller_id_lookup: false,
      voice_fallback_method: n.voiceFallbackMethod,
      voice_fallback_url: n.voiceFallbackUrl,
      voice_method: n.voiceMethod,
      voice_receive_mode: "voice",
      voice_url: n.voiceUrl,
      subresource_uris: {
        assigned_add_ons: `${API}${n.accountSid}/IncomingPhoneNumbers/${n.sid}/AssignedAddOns.json`,
      },
    };
  }
}
