import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import { platformKeysOf } from "../../../libs/assistants/index.ts";
import { recordCallCost } from "../../../libs/billing/finalize.ts";
import { SpendControls } from "../../../libs/billing/spend-controls.ts";
import { StripeBilling, stripeBillingConfig } from "../../../libs/billing/stripe.ts";
import { CacheBus } from "../../../libs/cache/read-cache.ts";
import { SecretBox } from "../../../libs/crypto/index.ts";
import { createDb, type Db } from "../../../libs/db/index.ts";
import {
  addressKey,
  installErrorHandler,
  installInputGuard,
  installRequestId,
  installValidation,
  loggingOptions,
} from "../../../libs/http/index.ts";
import { hoistTitledSchemas } from "../../../libs/http/openapi-refs.ts";
import { installSerializer } from "../../../libs/http/serialization.ts";
import { leaseTimings } from "../../../libs/media/lease.ts";
import { applyProviderEnd } from "../../../libs/media/orphans.ts";
import { installMetrics } from "../../../libs/metrics/index.ts";
import { BullMqQueue, type JobQueue } from "../../../libs/queue/index.ts";
import { CallRecordings, RecordingStores } from "../../../libs/recordings/index.ts";
import { connectRedis, watchDuplicate } from "../../../libs/redis/index.ts";
import { controlBusFor, inProcessControlBus } from "../../../libs/telephony/control-bus.ts";
import { SHARED_SCHEMAS } from "../../../libs/vapi/index.ts";
import type { ApiConfig } from "./config.ts";
import { ApiKeyAuthenticator, type Limiter, registerAuth } from "./plugins/auth.ts";
import { analyticsRoutes } from "./routes/analytics.ts";
import { assistantRoutes } from "./routes/assistant.ts";
import { billingRoutes } from "./routes/billing.ts";
import { callRoutes } from "./routes/call.ts";
import { callLogRoutes } from "./routes/call-log.ts";
import { callMonitorRoutes } from "./routes/call-monitor.ts";
import { callRecordingRoutes } from "./routes/call-recording.ts";
import { credentialRoutes } from "./routes/credential.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { healthRoutes } from "./routes/health.ts";
import { orgRoutes } from "./routes/org.ts";
import { phoneNumberRoutes } from "./routes/phone-number.ts";
import { squadRoutes } from "./routes/squad.ts";
import { stripeRoutes } from "./routes/stripe.ts";
import { toolRoutes } from "./routes/tool.ts";
import { twilioRoutes } from "./routes/twilio.ts";
import { AssistantService } from "./services/assistant-service.ts";
import { CallLogService } from "./services/call-log-service.ts";
import { CallService } from "./services/call-service.ts";
import { ConfigChecker } from "./services/config-checks.ts";
import { CredentialService } from "./services/credential-service.ts";
import { OrgService } from "./services/org-service.ts";
import { PhoneNumberService } from "./services/phone-number-service.ts";
import { RecordingService } from "./services/recording-service.ts";
import { ReferenceChecker } from "./services/references.ts";
import { SquadService } from "./services/squad-service.ts";
import { TelephonyService } from "./services/telephony-service.ts";
import { ToolService } from "./services/tool-service.ts";
import { WebCallService } from "./services/web-call-service.ts";

export interface ApiServices {
  orgs: OrgService;
  assistants: AssistantService;
  tools: ToolService;
  squads: SquadService;
  phoneNumbers: PhoneNumberService;
  credentials: CredentialService;
  calls: CallService;
  telephony: TelephonyService;
  recordings: RecordingService;
  callLogs: CallLogService;
  webCalls: WebCallService;
}

export interface ApiDeps {
  db: Db;
  /** Absent in the zero-configuration single-process mode. */
  redis?: Redis;
  services: ApiServices;
  secrets: SecretBox;
}

export interface BuildApiOptions {
  /** Share a database client (tests, the all-in-one process); otherwise one is created and closed with the app. */
  db?: Db;
  redis?: Redis;
  logger?: boolean | object;
  /** Where post-call jobs go (a call ended here); default BullMQ on Redis when configured, else none. */
  queue?: JobQueue;
  /** The clock signed URLs expire by (call logs); default Date.now. */
  now?: () => number;
}

export type Api = FastifyInstance & { deps: ApiDeps };

/** Composition root of the control plane: builds a ready instance without listening. */
export async function buildApi(config: ApiConfig, options: BuildApiOptions = {}): Promise<Api> {
  const app = Fastify({
    ...loggingOptions("api", config.logLevel, options.logger),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installRequestId(app);
  installMetrics(app, { app: "api", token: config.metricsToken });
  installValidation(app);
  // The schemas that bodies embed by `$ref` (an assistant, its model, voice, transcriber, tools):
  // validators and serializers resolve them here, and OpenAPI publishes them as components.
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  installInputGuard(app);
  installSerializer(app);
  installErrorHandler(app);

  const db = options.db ?? createDb(config.databaseUrl, { applicationName: "switchboard-api" });
  const ownsDb = !options.db;
  let redis = options.redis;
  let ownsRedis = false;
  if (!redis && config.redisUrl) {
    // Its failures (and those of the connections made from it) are logged once per outage.
    redis = connectRedis(config.redisUrl, "api", app.log, { maxRetriesPerRequest: 2, lazyConnect: false });
    ownsRedis = true;
  }
  // A subscribed connection may only run subscriber commands, so it skips the INFO ready check.
  const subscriber = redis ? redis.duplicate({ enableReadyCheck: false }) : undefined;
  if (redis && subscriber) watchDuplicate(redis, subscriber, "cache-bus");

  const secrets = new SecretBox(config.secretsKey, config.previousSecretsKeys);
  const cacheBus = new CacheBus(redis, subscriber);
  const refs = new ReferenceChecker(db);
  const checks = new ConfigChecker(refs, { allowPrivate: config.allowPrivateWebhookUrls });
  const controlBus = controlBusFor(redis);
  const spend = new SpendControls(db, redis);
  const queue = options.queue ?? (redis ? new BullMqQueue(redis) : undefined);
  const staleAfterMs = leaseTimings(config.callLeaseMs).staleAfterMs;
  const callRecordings = new CallRecordings(
    new RecordingStores(config.recordings, db, secrets),
    config.publicUrl,
  );
  const recordings = new RecordingService(db, callRecordings, config);
  const services: ApiServices = {
    orgs: new OrgService(db, checks),
    assistants: new AssistantService(db, checks, cacheBus, config.authCacheTtlMs),
    tools: new ToolService(db, checks),
    squads: new SquadService(db, checks),
    phoneNumbers: new PhoneNumberService(db, refs, checks, secrets, {
      publicUrl: config.publicUrl,
      twilioApiUrl: config.providers.twilioApiUrl,
    }),
    credentials: new CredentialService(db, secrets),
    calls: new CallService(db, config),
    telephony: new TelephonyService({
      db,
      secrets,
      refs,
      checks,
      admission: spend,
      controlBus,
      recordCallCost: (callId) => recordCallCost(db, callId, { catalog: config.priceCatalog }),
      providerEnded: (callId, end, log) =>
        applyProviderEnd(
          { db, queue, spend, catalog: config.priceCatalog, recordings: callRecordings, logger: log },
          callId,
          end,
          { staleAfterMs, holderAlive: (processId) => controlBus.isAlive(processId) },
        ),
      eraseRecording: (call) => recordings.erase(call),
      publicUrl: config.publicUrl,
      mediaPublicUrl: config.mediaPublicUrl,
      secretsKey: config.secretsKey,
      twilioApiUrl: config.providers.twilioApiUrl,
      allowPrivateWebhookUrls: config.allowPrivateWebhookUrls,
    }),
    recordings,
    callLogs: new CallLogService(db, config, config.callLogs, options.now),
    webCalls: new WebCallService({
      db,
      refs,
      checks,
      admission: spend,
      publicUrl: config.publicUrl,
      mediaPublicUrl: config.mediaPublicUrl,
      secretsKey: config.secretsKey,
      platformKeys: platformKeysOf(config.providers),
    }),
  };
  const deps: ApiDeps = { db, redis, services, secrets };
  app.decorate("deps", deps);

  app.addHook("onClose", async () => {
    subscriber?.disconnect();
    if (controlBus !== inProcessControlBus) await controlBus.close();
    if (!options.queue) await queue?.close();
    if (ownsRedis) redis?.disconnect();
    if (ownsDb) await db.$disconnect();
    callRecordings.stores.close();
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Switchboard API",
        version: "1.0.0",
        description:
          "Self-hostable voice-agent platform. Wire-compatible with Vapi's public API for assistants, tools, squads, phone numbers, credentials and calls.",
      },
      servers: [{ url: config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "An organisation's API key" },
        },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas are components named by their `$id` (as titled inline ones are by title).
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === "string" ? json.$id : `def-${i}`,
    },
    transformObject: (documentObject) =>
      "openapiObject" in documentObject
        ? hoistTitledSchemas(documentObject.openapiObject as Record<string, unknown>)
        : documentObject.swaggerObject,
  });
  // Registered before swagger-ui so its routes are seen: the reference is public.
  app.addHook("onRoute", (route) => {
    // @fastify/cors's catch-all preflight route: a path without CORS answers 404 as before, keyless.
    const corsPreflight = route.method === "OPTIONS" && route.url === "*";
    if (route.url.startsWith("/docs") || corsPreflight) {
      route.config = { ...(route.config ?? {}), auth: "none" };
    }
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { deepLinking: true } });
  // Off for every route but those that set `config.cors` (POST /call and its preflight), so the
  // API is not readable cross-origin. Its hook runs before the key check: a preflight has no key.
  await app.register(cors, { origin: false });

  // The plugin provides the counters (Redis, shared by every API process; in memory without Redis);
  // when each budget is drawn is decided by the auth hook. Redis being unreachable must not take
  // the API down with it, so the limits fail open.
  await app.register(rateLimit, {
    global: false,
    timeWindow: 60_000,
    skipOnError: true,
    ...(redis ? { redis, nameSpace: "switchboard:rl:" } : {}),
  });
  const budget = (max: number, keyOf: (req: FastifyRequest) => string): Limiter =>
    app.createRateLimit({ max, timeWindow: 60_000, keyGenerator: keyOf });
  await registerAuth(app, {
    authenticator: new ApiKeyAuthenticator(db, config.authCacheTtlMs, cacheBus),
    adminToken: config.adminToken,
    limiters: {
      perKey: budget(config.rateLimitPerMinute, (req) => `key:${req.auth.keyId}`),
      // One budget per client, not per spelling of its address (an IPv6 /64 is one client).
      perAddress: budget(config.rateLimitPerAddressPerMinute, (req) => `addr:${addressKey(req.ip)}`),
      webhook: budget(config.webhookRateLimitPerMinute, (req) => `webhook:${addressKey(req.ip)}`),
    },
  });

  await app.register(healthRoutes);
  await app.register(orgRoutes);
  await app.register(assistantRoutes);
  await app.register(toolRoutes);
  await app.register(squadRoutes);
  await app.register(phoneNumberRoutes);
  await app.register(credentialRoutes);
  await app.register(callRoutes);
  await app.register(callMonitorRoutes);
  await app.register(callRecordingRoutes);
  await app.register(callLogRoutes);
  await app.register(billingRoutes);
  await app.register(analyticsRoutes);
  await app.register(dashboardRoutes, { mediaPublicUrl: config.mediaPublicUrl });
  await app.register(twilioRoutes);
  await app.register(stripeRoutes, {
    billing: new StripeBilling(db, stripeBillingConfig(config.providers), { logger: app.log, redis }),
  });

  await app.ready();
  await cacheBus.ready();
  return app as unknown as Api;
}

declare module "fastify" {
  interface FastifyInstance {
    deps: ApiDeps;
  }
}
