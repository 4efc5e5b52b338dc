import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";

export interface WorkerConfig extends CommonConfig {
  port: number;
  host: string;
}

export function workerConfigFromEnv(env: Env): WorkerConfig {
  return { ...commonConfig(env), port: env.WORKER_PORT ?? 3002, host: env.HOST ?? "0.0.0.0" };
}

export function loadWorkerConfig(raw: Record<string, string | undefined> = process.env): WorkerConfig {
  return workerConfigFromEnv(parseEnv(raw));
}
