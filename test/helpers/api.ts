import { randomBytes } from "node:crypto";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { Redis } from "ioredis";
import { type Api, buildApi } from "../../apps/api/src/app.ts";
import { type ApiConfig, apiConfigFromEnv } from "../../apps/api/src/config.ts";
import { type Env, parseEnv } from "../../libs/config/index.ts";
import { createDb, type Db } from "../../libs/db/index.ts";
import { FakeTwilio } from "../fakes/twilio.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export function testEnv(overrides: Record<string, string> = {}): Env {
  return parseEnv({
    DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres",
    REDIS_URL,
    SECRETS_KEY: randomBytes(32).toString("base64"),
    ADMIN_TOKEN: `admin-${randomBytes(16).toString("hex")}`,
    ALLOW_PRIVATE_WEBHOOK_URLS: "true",
    // Every test process reaches the API from 127.0.0.1 through one shared Redis: per-address
    // budgets are tested on their own addresses (test/api/auth.test.ts), not spent by the suite.
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "100000000",
    WEBHOOK_RATE_LIMIT_PER_MINUTE: "100000000",
    LOG_LEVEL: "silent",
    ...overrides,
  });
}

export interface TestOrg {
  orgId: string;
  key: string;
  auth: { authorization: string };
}

export interface TestApi {
  app: Api;
  db: Db;
  redis: Redis;
  config: ApiConfig;
  database: TestDatabase;
  /** The Twilio the API talks to (TWILIO_API_URL): the one passed in, else an open FakeTwilio. */
  twilio: FakeTwilio;
  createOrg(name?: string): Promise<TestOrg>;
  request(opts: InjectOptions & { key?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface StartTestApiOptions {
  /**
   * The FakeTwilio to point TWILIO_API_URL at (the test owns and closes it). Without one, an open
   * FakeTwilio (any account, any number: importing a number just works) is started and closed here.
   */
  twilio?: FakeTwilio;
  /** Another Redis than the shared one (a test's private redis-server). */
  redisUrl?: string;
  /** The API's logger option (e.g. `{level, stream}` to read its lines); none by default. */
  logger?: object;
}

/** A real API on its own fresh Postgres database and the real Redis, driven through inject. */
export async function startTestApi(
  envOverrides: Record<string, string> = {},
  options: StartTestApiOptions = {},
): Promise<TestApi> {
  const database = await createTestDatabase();
  const ownsTwilio = !options.twilio;
  const twilio = options.twilio ?? (await FakeTwilio.start({ openAccounts: true }));
  const config = apiConfigFromEnv(
    testEnv({ DATABASE_URL: database.url, TWILIO_API_URL: twilio.baseUrl, ...envOverrides }),
  );
  const db = createDb(database.url);
  const redis = new Redis(options.redisUrl ?? REDIS_URL, { maxRetriesPerRequest: 2 });
  const app = await buildApi(config, { db, redis, logger: options.logger ?? false });
  // A /64 of its own per test API: the addresses of one /64 share a per-address budget.
  const operatorAddress = `2001:db8:0:${randomBytes(2).toString("hex")}::1`;
  return {
    app,
    db,
    redis,
    config,
    database,
    twilio,
    async createOrg(name = "Acme") {
      const res = await app.inject({
        method: "POST",
        url: "/org",
        // The operator's own address: tests of per-address budgets spend other addresses'.
        headers: { authorization: `Bearer ${config.adminToken}`, "x-forwarded-for": operatorAddress },
        payload: { name },
      });
      if (res.statusCode !== 201) throw new Error(`createOrg failed: ${res.statusCode} ${res.body}`);
      const body = res.json() as { org: { id: string }; apiKey: { value: string } };
      return {
        orgId: body.org.id,
        key: body.apiKey.value,
        auth: { authorization: `Bearer ${body.apiKey.value}` },
      };
    },
    request({ key, headers, ...opts }) {
      return app.inject({
        ...opts,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(headers ?? {}) },
      });
    },
    async close() {
      await app.close();
      await db.$disconnect();
      redis.disconnect();
      if (ownsTwilio) await twilio.close();
      await database.drop();
    },
  };
}
