import { ValidationError } from "../../../../libs/errors/index.ts";
import type { SsrfOptions } from "../../../../libs/webhooks/index.ts";
import { checkOutboundUrl, checkServerConfig, checkServerHeaders } from "../../../../libs/webhooks/index.ts";
import { asObject, type ServiceContext } from "./common.ts";
import { type ReferenceChecker, refsOf } from "./references.ts";

type Json = Record<string, unknown>;

// Background sounds Vapi plays itself; anything else is the URL of an audio file.
const BUILT_IN_SOUNDS = new Set(["off", "office"]);

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * What a configuration must satisfy beyond its schema, wherever it enters: the ids it names belong
 * to the caller's organisation, and every server (URL, headers, secret) and fetched URL passes the
 * platform's outbound rules. One walker of Vapi's shapes for saved resources, inline assistants,
 * squads and overrides on `POST /call`, and assistant-request answers, so none of them skips a check.
 * `prefix` is the path of the object in the request (`body.`, `body.members[0].assistant.`…) so the
 * 400 names the field.
 */
export class ConfigChecker {
  constructor(
    private readonly refs: ReferenceChecker,
    private readonly urls: SsrfOptions,
  ) {}

  async server(ctx: ServiceContext, server: unknown, field: string): Promise<void> {
    await checkServerConfig(server, field, this.urls);
    const credentialId = asObject(server).credentialId;
    if (typeof credentialId === "string") {
      await this.refs.check(ctx, "credential", [{ field: `${field}.credentialId`, id: credentialId }]);
    }
  }

  /** A transfer destination: its transfer plan's audio URLs are fetched for the call. */
  async destination(destination: unknown, prefix: string): Promise<void> {
    const plan = asObject(asObject(destination).transferPlan);
    for (const key of ["holdAudioUrl", "transferCompleteAudioUrl"]) {
      const url = plan[key];
      if (typeof url === "string") await checkOutboundUrl(url, `${prefix}transferPlan.${key}`, this.urls);
    }
  }

  /** A saved or inline tool. */
  async tool(ctx: ServiceContext, tool: unknown, prefix: string): Promise<void> {
    const t = asObject(tool);
    await this.server(ctx, t.server, `${prefix}server`);
    for (const [i, d] of list(t.destinations).entries())
      await this.destination(d, `${prefix}destinations[${i}].`);
  }

  /** An assistant, or assistant overrides (the same fields plus `tools:append` and `variableValues`). */
  async assistant(ctx: ServiceContext, body: unknown, prefix: string): Promise<void> {
    const a = asObject(body);
    const model = asObject(a.model);
    await this.refs.check(ctx, "tool", refsOf(`${prefix}model.toolIds`, model.toolIds));
    await this.refs.check(ctx, "credential", refsOf(`${prefix}credentialIds`, a.credentialIds));
    await this.server(ctx, a.server, `${prefix}server`);
    for (const [i, t] of list(model.tools).entries()) await this.tool(ctx, t, `${prefix}model.tools[${i}].`);
    for (const [i, t] of list(a["tools:append"]).entries()) {
      await this.tool(ctx, t, `${prefix}tools:append[${i}].`);
    }
    if (model.provider === "custom-llm") await this.customLlm(model, `${prefix}model.`);
    if (asObject(a.artifactPlan).recordingFormat === "mp3") {
      throw new ValidationError(
        `${prefix}artifactPlan.recordingFormat "mp3" is not offered: recordings are "wav;l16" (16-bit PCM). No pure-JavaScript MP3 encoder fits a call's budget here (@breezystack/lamejs: about 13 ms of CPU per second of audio per track, 5% of a core per call for Vapi's four tracks, and 0.2-0.8 MB per encoder)`,
      );
    }
    if (typeof a.backgroundSound === "string" && !BUILT_IN_SOUNDS.has(a.backgroundSound)) {
      await checkOutboundUrl(a.backgroundSound, `${prefix}backgroundSound`, this.urls);
    }
  }

  /**
   * A custom LLM (`model.provider: "custom-llm"`): its URL passes the same outbound rule as a server
   * URL (the media plane checks it again at every request), its headers could be sent, and none
   * sets Authorization: Vapi takes the key from a custom-llm credential (sent as a Bearer token).
   */
  async customLlm(model: Json, prefix: string): Promise<void> {
    if (typeof model.url === "string") await checkOutboundUrl(model.url, `${prefix}url`, this.urls);
    const headers = asObject(model.headers);
    checkServerHeaders(headers, `${prefix}headers`);
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === "authorization") {
        throw new ValidationError(
          `${prefix}headers[${JSON.stringify(name)}] cannot be set: the custom LLM's key comes from a custom-llm credential (POST /credential with provider "custom-llm"), sent as "Authorization: Bearer <apiKey>"`,
        );
      }
    }
  }

  /** A saved or inline squad: its members (saved or inline), their overrides and the squad's. */
  async squad(ctx: ServiceContext, body: unknown, prefix: string): Promise<void> {
    const s = asObject(body);
    const assistantRefs: { field: string; id: string }[] = [];
    for (const [i, m] of list(s.members).entries()) {
      const member = asObject(m);
      const at = `${prefix}members[${i}].`;
      if (typeof member.assistantId === "string") {
        assistantRefs.push({ field: `${at}assistantId`, id: member.assistantId });
      }
      if (member.assistant !== undefined) await this.assistant(ctx, member.assistant, `${at}assistant.`);
      if (member.assistantOverrides !== undefined) {
        await this.assistant(ctx, member.assistantOverrides, `${at}assistantOverrides.`);
      }
    }
    await this.refs.check(ctx, "assistant", assistantRefs);
    if (s.membersOverrides !== undefined)
      await this.assistant(ctx, s.membersOverrides, `${prefix}membersOverrides.`);
  }

  /** The parts of a phone number's body that are configuration (its assistant and squad ids are columns). */
  async phoneNumber(ctx: ServiceContext, body: Json, prefix: string): Promise<void> {
    await this.server(ctx, body.server, `${prefix}server`);
    if (body.fallbackDestination !== undefined) {
      await this.destination(body.fallbackDestination, `${prefix}fallbackDestination.`);
    }
  }
}
