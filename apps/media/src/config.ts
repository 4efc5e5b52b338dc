import { type CommonConfig, commonConfig, type Env, parseEnv } from "../../../libs/config/index.ts";

export interface MediaConfig extends CommonConfig {
  port: number;
  host: string;
}

export function mediaConfigFromEnv(env: Env): MediaConfig {
  return { ...commonConfig(env), port: env.MEDIA_PORT ?? 3001, host: env.HOST ?? "0.0.0.0" };
}

export function loadMediaConfig(raw: Record<string, string | undefined> = process.env): MediaConfig {
  return mediaConfigFromEnv(parseEnv(raw));
}
