import {
  type ConversationMessage,
  callPayload,
  conversationUpdateMessage,
  type MessageContext,
  resolveServer,
  type ServerTarget,
  shouldSend,
} from "../../webhooks/index.ts";
import { isObj, type SessionDeps } from "./context.ts";
import type { CallState } from "./state.ts";

// The call's server messages (transcripts, speech and status updates, conversation updates…):
// fire-and-forget through the queue, numbered in order, only the types the assistant asked for.

type MessageBody = { message: { type: string; transcriptType?: string; status?: unknown } };

export class ServerMessages {
  readonly #deps: SessionDeps;
  readonly #state: CallState;
  #seq = 0;

  constructor(deps: SessionDeps, state: CallState) {
    this.#deps = deps;
    this.#state = state;
  }

  /** What every message says about the call. */
  context(): MessageContext {
    const s = this.#state;
    const row = s.row;
    return {
      call: row ? callPayload(row) : { id: s.callId, orgId: s.orgId },
      assistant: s.assistant?.json ?? {},
      customer: row && isObj(row.customer) ? row.customer : undefined,
      phoneNumber: s.phoneNumber
        ? { id: s.phoneNumber.id, number: s.phoneNumber.number, name: s.phoneNumber.name ?? undefined }
        : undefined,
    };
  }

  /** The phone number's own server, when it has one. */
  phoneServer(): ServerTarget | undefined {
    const cfg = this.#state.phoneNumber?.config;
    return isObj(cfg) && isObj(cfg.server) ? (cfg.server as ServerTarget) : undefined;
  }

  /** The server the call's messages go to: the assistant's, the number's or the organisation's. */
  server(): ServerTarget | undefined {
    return resolveServer({
      assistant: this.#state.assistant?.config as { server?: ServerTarget },
      phoneNumber: { server: this.phoneServer() },
      org: { server: this.#state.orgServer as ServerTarget | undefined },
    });
  }

  conversationUpdate(): void {
    const conversation = this.#state.conversation;
    if (!conversation) return;
    const messages = conversation.messages as unknown as ConversationMessage[];
    if (!shouldSend("conversation-update", this.#state.assistant?.config.serverMessages)) return;
    this.emit("conversation-update", () =>
      conversationUpdateMessage(this.context(), { messages: [...messages] }),
    );
  }

  /**
   * The body is built only when it will be sent: transcripts and speech updates come several times
   * a second per call, and most assistants subscribe to few message types.
   */
  emit(kind: string | { type: string; transcriptType?: string }, build: () => MessageBody): void {
    const dispatcher = this.#deps.dispatcher;
    const assistant = this.#state.assistant?.config;
    if (!dispatcher || !assistant) return;
    if (!shouldSend(kind, assistant.serverMessages)) return;
    const body = build();
    if (!shouldSend(body.message, assistant.serverMessages)) return;
    const server = this.server();
    if (!server) return;
    const seq = ++this.#seq;
    const { orgId, callId, log } = this.#state;
    dispatcher
      .enqueue(orgId, callId, server, body, body.message.type === "status-update" ? {} : { seq })
      .catch((err: unknown) => log.warn({ err }, "server message not queued"));
  }
}
