import { randomUUID } from "node:crypto";
import websocket from "@fastify/websocket";
import Fastify, { type FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { WebSocket } from "ws";
import { platformKeysOf } from "../../../libs/assistants/index.ts";
import { SpendControls } from "../../../libs/billing/spend-controls.ts";
import { SecretBox } from "../../../libs/crypto/index.ts";
import { createDb, type Db } from "../../../libs/db/index.ts";
import {
  installErrorHandler,
  installRequestId,
  loggingOptions,
  registerHealthRoute,
} from "../../../libs/http/index.ts";
import { CallRegistry } from "../../../libs/media/call-registry.ts";
import { leaseTimings } from "../../../libs/media/lease.ts";
import { checkListenAccess } from "../../../libs/media/monitor/listen-access.ts";
import { listenBusFor, RedisListenBus } from "../../../libs/media/monitor/listen-bus.ts";
import { ListenHub } from "../../../libs/media/monitor/listen-hub.ts";
import { SharedPacer } from "../../../libs/media/pacer.ts";
import {
  CallSession,
  type CallTransport,
  type MediaSocket,
  RawWebsocketTransport,
  type SessionDeps,
  TwilioMediaStream,
} from "../../../libs/media/session/index.ts";
import { CachedSpendLimit } from "../../../libs/media/spend-cache.ts";
import { realTimer, type ScheduleTimer, StreamGuard } from "../../../libs/media/stream-guard.ts";
import { startSweeper } from "../../../libs/media/sweeper.ts";
import { installMetrics, trackActiveCalls, trackWebsocketConnections } from "../../../libs/metrics/index.ts";
import { createProviders, type Providers } from "../../../libs/providers/index.ts";
import { BullMqQueue, InProcessQueue, type JobQueue } from "../../../libs/queue/index.ts";
import { CallRecordings, RecordingStores } from "../../../libs/recordings/index.ts";
import { connectRedis } from "../../../libs/redis/index.ts";
import { controlBusFor } from "../../../libs/telephony/control-bus.ts";
import { WebhookDispatcher } from "../../../libs/webhooks/index.ts";
import type { MediaConfig } from "./config.ts";

export interface BuildMediaOptions {
  db?: Db;
  redis?: Redis;
  logger?: boolean | object;
  /** Queue for webhook deliveries and post-call jobs; `npm start` shares one with the worker. */
  queue?: JobQueue;
  /** Provider adapters (default: the real ones at the configured base URLs). */
  providers?: Providers;
  now?: () => number;
  /** How often the stale-call sweeper runs (default: a fifth of CALL_LEASE_MS; 0 turns it off). */
  sweepIntervalMs?: number;
  /** How often live calls are heart-beaten (default: a fifth of CALL_LEASE_MS). */
  heartbeatMs?: number;
  /** The timer of each stream's start deadline (default setTimeout; tests advance their own). */
  schedule?: ScheduleTimer;
  /**
   * The timers of each call (silence, max duration, keypad entry, hang reports, the bound on a final
   * message): default setTimeout; tests advance their own. Apart from `schedule`, so a test that
   * expires start deadlines by hand does not also age its live calls.
   */
  callSchedule?: ScheduleTimer;
  /** false: calls are not recorded whatever their artifactPlan says (default: RECORDINGS_* config). */
  recordings?: false;
}

/**
 * How long a socket we close may wait for the peer's close frame before it is destroyed (ws waits
 * 30 s by default): a client that never answers must not keep holding a file descriptor.
 */
const CLOSE_TIMEOUT_MS = 2000;

export type MediaApp = FastifyInstance & {
  calls: CallRegistry;
  pacer: SharedPacer;
  streams: StreamGuard;
  listening: ListenHub;
};

/**
 * The media plane: one call session per Twilio Media Streams websocket (`/twilio/stream`) or Vapi
 * websocket transport connection (`/<callId>/transport`). On close
 * it stops accepting streams (new ones are closed with 1013) and lets active calls run for up to
 * `drainMs` before ending them with `worker-shutdown`.
 */
export async function buildMedia(config: MediaConfig, options: BuildMediaOptions = {}): Promise<MediaApp> {
  // While draining, a stream that still arrives gets a websocket close 1013 (try again later) from
  // the route, rather than Fastify's plain HTTP 503, so Twilio's error names the reason.
  const app = Fastify({
    ...loggingOptions("media", config.logLevel, options.logger),
    // Behind a proxy (an ingress), the per-address cap keys on the client it names.
    trustProxy: config.trustProxy,
    return503OnClosing: false,
  });
  installRequestId(app);
  installMetrics(app, { app: "media", token: config.metricsToken });
  installErrorHandler(app);
  // The hard ceiling on the port's TCP connections, upgraded or not (Node drops the rest on accept):
  // room for every stream plus refused ones still closing and health checks, so idle connections
  // that never upgrade cannot exhaust the file descriptors either.
  app.server.maxConnections = 2 * config.streams.maxConnections;
  const streams = new StreamGuard(config.streams, options.schedule);
  // Until it upgrades, a connection has the start deadline and counts against its peer's cap.
  const connecting = new WeakMap<object, () => void>();
  app.server.on("connection", (socket) => {
    const release = streams.connect(socket.remoteAddress ?? "", () => socket.destroy());
    if (!release) {
      socket.destroy();
      return;
    }
    connecting.set(socket, release);
    socket.once("close", release);
  });
  app.server.on("upgrade", (_request, socket) => connecting.get(socket)?.());
  const db =
    options.db ??
    createDb(config.databaseUrl, { max: config.dbPoolSize, applicationName: "switchboard-media" });
  // Its failures (and those of the connections made from it) are logged once per outage.
  const redis =
    options.redis ?? (config.redisUrl ? connectRedis(config.redisUrl, "media", app.log) : undefined);
  const queue =
    options.queue ??
    (redis
      ? new BullMqQueue(redis)
      : new InProcessQueue((err, job) => app.log.warn({ err, job }, "job attempt failed")));
  const controlBus = controlBusFor(redis);
  const spend = new SpendControls(db, redis);
  const pacer = new SharedPacer(options.now);
  const secrets = new SecretBox(config.secretsKey, config.previousSecretsKeys);
  const recordings =
    options.recordings === false
      ? undefined
      : new CallRecordings(new RecordingStores(config.recordings, db, secrets), config.publicUrl);
  const deps: SessionDeps = {
    db,
    schedule: options.callSchedule,
    secrets,
    secretsKey: config.secretsKey,
    providers:
      options.providers ??
      createProviders(config.providers, { allowPrivateUrls: config.allowPrivateWebhookUrls }),
    // The same list the API checks web calls against (libs/assistants provider-keys.ts).
    platformKeys: platformKeysOf(config.providers),
    twilioApiUrl: config.providers.twilioApiUrl,
    allowPrivateWebhookUrls: config.allowPrivateWebhookUrls,
    pacer,
    queue,
    dispatcher: new WebhookDispatcher(queue, { logger: app.log, secrets }),
    controlBus,
    // Per-reply spend-limit checks are shared by an organisation's calls for a second.
    spend: new CachedSpendLimit(spend),
    catalog: config.priceCatalog,
    recordings,
    callLogs: { limits: config.callLogs, publicUrl: config.publicUrl },
    processId: `media-${randomUUID()}`,
    logger: app.log,
    now: options.now,
  };
  const lease = leaseTimings(config.callLeaseMs);
  const calls = new CallRegistry({
    db,
    spend,
    logger: app.log,
    now: options.now,
    heartbeatMs: options.heartbeatMs ?? lease.heartbeatMs,
  });
  // Live listeners (`monitor.listenUrl`) of this process's calls and, through the bus, of others'.
  const listenBus = listenBusFor(redis);
  const listening = new ListenHub({
    bus: listenBus,
    processId: deps.processId,
    findCall: (callId) => calls.find(callId),
    log: app.log,
    now: options.now,
  });
  const listenServed = listening.start().catch((err: unknown) => {
    app.log.warn(
      { err },
      "listen demands not served: listeners on other media processes cannot hear this one's calls",
    );
  });
  // Other processes tell this one is gone (killed mid-call) by this subscription vanishing.
  const announced = controlBus.announce(deps.processId).catch((err: unknown) => {
    app.log.warn({ err }, "media process not announced on the control bus");
    return undefined;
  });
  // Read at scrape time only: nothing on a call's path counts them.
  const untrack = [trackActiveCalls(() => calls.active), trackWebsocketConnections(() => streams.counts())];
  const sweepMs = options.sweepIntervalMs ?? lease.sweepIntervalMs;
  const stopSweeper =
    sweepMs > 0
      ? startSweeper(
          { db, queue, spend, catalog: config.priceCatalog, recordings, logger: app.log },
          {
            intervalMs: sweepMs,
            staleMs: lease.staleAfterMs,
            now: options.now,
            spools: { live: (callId) => calls.find(callId) !== undefined, logger: app.log },
          },
        )
      : undefined;

  app.addHook("onClose", async () => {
    for (const stop of untrack) stop();
    stopSweeper?.();
    pacer.stop();
    await (await announced)?.().catch(() => {});
    await listenServed;
    await listening.close();
    if (listenBus instanceof RedisListenBus) await listenBus.close();
    if (controlBus !== undefined && redis) await controlBus.close();
    if (!options.queue) await queue.close();
    if (!options.redis) redis?.disconnect();
    if (!options.db) await db.$disconnect();
    recordings?.stores.close();
  });
  // No UTF-8 validation pass over every inbound message: Twilio's are JSON that the session reads
  // byte-wise (media) or parses itself (the rest), and a bad byte cannot reach anything but that
  // parser, which refuses it like any malformed message. `closeTimeout` is ws's own option (not in
  // @types/ws yet), hence the object outside the literal.
  const wsOptions = {
    perMessageDeflate: false,
    maxPayload: 64 * 1024,
    skipUTF8Validation: true,
    closeTimeout: CLOSE_TIMEOUT_MS,
  };
  await app.register(websocket, {
    options: wsOptions,
    // A protocol error (oversized or malformed frame) has already closed the socket with its code
    // (1009, 1002…): the plugin's default would log a client's mistake as an error and cut the close
    // short. Only a throw from the handler leaves the socket open.
    errorHandler(err, socket) {
      app.log.debug({ err }, "media socket error");
      if (socket.readyState === socket.OPEN) socket.close(1011, "internal error");
    },
    // Drain instead of dropping live calls: the plugin's default closes every socket at once.
    preClose(done) {
      calls
        .drain(config.drainMs)
        .catch((err: unknown) => app.log.error({ err }, "drain failed"))
        .finally(() => {
          for (const client of app.websocketServer.clients) client.terminate();
          app.websocketServer.close(() => done());
        });
    },
  });
  registerHealthRoute(
    app,
    () => ({ db, redis }),
    () => streams.counts(),
  );

  /** Refuses a stream before any session exists; 1013 (try again later) names the reason. */
  const refusedStream = (socket: WebSocket, ip: string): boolean => {
    const refusal = calls.draining ? "media process is shutting down" : streams.refusal(ip);
    if (refusal === undefined) return false;
    socket.close(1013, refusal);
    return true;
  };
  const mediaSocket = (socket: WebSocket): MediaSocket => ({
    send: (data) => {
      if (socket.readyState === socket.OPEN) socket.send(data);
    },
    close: (code, reason) => socket.close(code, reason),
    get open() {
      return socket.readyState === socket.OPEN;
    },
  });
  /** One call over `transport`: a session, the start deadline and per-address caps, the socket's events. */
  const runCall = (socket: WebSocket, ip: string, transport: CallTransport): void => {
    const session = new CallSession(deps, transport);
    calls.add(session);
    const release = streams.admit(
      ip,
      () => session.callId !== "",
      (code, reason) => {
        socket.close(code, reason);
        session.onClose(code);
      },
    );
    socket.on("message", (data: Buffer, isBinary: boolean) => {
      try {
        session.onFrame(data, isBinary);
      } catch (err) {
        // A bug must cost one call, not the process with every other call on it.
        app.log.error({ err, callId: session.callId }, "media frame handling failed");
        socket.close(1011, "internal error");
      }
      // Outbound frames due during a burst of inbound messages go now, not after the burst.
      pacer.poke();
    });
    socket.on("close", (code: number) => {
      release();
      session.onClose(code);
    });
  };

  app.get("/twilio/stream", { websocket: true, config: { auth: "none" } }, (socket, request) => {
    if (refusedStream(socket, request.ip)) return;
    runCall(socket, request.ip, new TwilioMediaStream(mediaSocket(socket)));
  });

  // Vapi's `vapi.websocket` transport (`transport.websocketCallUrl`): the URL names the call and
  // carries its single-use token; the call starts as the client connects. Binary frames are audio in
  // the call's format both ways, text frames JSON control and client messages (README "Web calls").
  app.get<{ Params: { callId: string }; Querystring: { token?: unknown } }>(
    "/:callId/transport",
    { websocket: true, config: { auth: "none" } },
    (socket, request) => {
      if (refusedStream(socket, request.ip)) return;
      const transport = new RawWebsocketTransport({
        socket: mediaSocket(socket),
        callId: request.params.callId,
        token: typeof request.query.token === "string" ? request.query.token : "",
        origin: request.headers.origin,
        schedule: options.callSchedule ?? realTimer,
        now: options.now ?? Date.now,
        log: app.log,
      });
      runCall(socket, request.ip, transport);
      transport.start();
    },
  );

  // A call's `monitor.listenUrl`: the call's live mix (PCM 16 kHz, stereo: customer, assistant),
  // read-only; whatever the listener sends is ignored. Refusals close the socket with a code and
  // reason (browsers see nothing of an HTTP refusal).
  app.get<{ Params: { id: string }; Querystring: { token?: unknown } }>(
    "/call/:id/monitor/listen",
    { websocket: true, config: { auth: "none" } },
    (socket, request) => {
      const refusal = calls.draining ? "media process is shutting down" : streams.refusal(request.ip);
      if (refusal !== undefined) {
        socket.close(1013, refusal);
        return;
      }
      let admitted = false;
      let detach = () => {};
      const release = streams.admit(
        request.ip,
        () => admitted,
        (code, reason) => socket.close(code, reason),
      );
      socket.on("close", () => {
        release();
        detach();
      });
      const callId = request.params.id;
      const token = typeof request.query.token === "string" ? request.query.token : undefined;
      checkListenAccess(db, config.secretsKey, callId, token, request.headers.authorization).then(
        (access) => {
          if (socket.readyState !== socket.OPEN) return;
          if (!access.ok) {
            socket.close(access.code, access.reason);
            return;
          }
          admitted = true;
          detach = listening.listen(callId, access.holder, {
            send: (data) => socket.send(data, { binary: true }),
            close: (code, reason) => socket.close(code, reason),
            get bufferedAmount() {
              return socket.bufferedAmount;
            },
          });
        },
        (err: unknown) => {
          app.log.error({ err, callId }, "listen access check failed");
          if (socket.readyState === socket.OPEN) socket.close(1011, "internal error");
        },
      );
    },
  );

  await app.ready();
  const media: MediaApp = Object.assign(app, { calls, pacer, streams, listening });
  return media;
}
