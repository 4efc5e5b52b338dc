import type { CallLog } from "../../call-logs/index.ts";
import { DEFAULT_CLIENT_MESSAGES } from "../../vapi/server-message.ts";
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
// On a transport with a client (a websocket call), the same messages go to the client too, by the
// assistant's `clientMessages`, in a lean form (see `clientView`).

type MessageBody = { message: { type: string; transcriptType?: string; status?: unknown } };

/** Fields of a server message a client does not get: the call, assistant, customer and artifact. */
const SERVER_ONLY = new Set(["call", "assistant", "customer", "phoneNumber", "artifact"]);

/**
 * A message as the client gets it: its own fields only, without the call's and assistant's
 * (configuration, secrets, other parties' details), and a conversation without its system prompt.
 */
export function clientView(message: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(message)) if (!SERVER_ONLY.has(k)) out[k] = v;
  if (out.type === "conversation-update") {
    const notSystem = (m: unknown) => !(isObj(m) && m.role === "system");
    if (Array.isArray(out.messages)) out.messages = out.messages.filter(notSystem);
    if (Array.isArray(out.messagesOpenAIFormatted))
      out.messagesOpenAIFormatted = out.messagesOpenAIFormatted.filter(notSystem);
  }
  return out;
}

export class ServerMessages {
  readonly #deps: SessionDeps;
  readonly #state: CallState;
  #seq = 0;
  /** Where client messages go (the transport's client); undefined when the call has none. */
  readonly #client: ((message: Record<string, unknown>) => void) | undefined;
  /** A body is being built for the client only (see `context`). */
  #clientOnly = false;
  /** The call's log (a message that could not be queued; the worker logs each delivery). */
  readonly #callLog: CallLog | undefined;

  constructor(
    deps: SessionDeps,
    state: CallState,
    client?: (message: Record<string, unknown>) => void,
    callLog?: CallLog,
  ) {
    this.#deps = deps;
    this.#state = state;
    this.#client = client;
    this.#callLog = callLog;
  }

  /** What every message says about the call. */
  context(): MessageContext {
    const s = this.#state;
    // A body built for the client alone: clientView drops the call, the assistant, the customer and
    // the number, so they are not built (the call's view costs more than the rest of a transcript).
    if (this.#clientOnly) return { call: {} };
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
    if (!assistant) return;
    const toServer = dispatcher !== undefined && shouldSend(kind, assistant.serverMessages);
    const toClient = this.#wantsClient(kind);
    if (!toServer && !toClient) return;
    const body = this.#build(build, !toServer);
    if (toClient) this.#toClient(body);
    if (!dispatcher || !toServer || !shouldSend(body.message, assistant.serverMessages)) return;
    const server = this.server();
    if (!server) return;
    const seq = ++this.#seq;
    const { orgId, callId, log } = this.#state;
    dispatcher
      .enqueue(orgId, callId, server, body, body.message.type === "status-update" ? {} : { seq })
      .catch((err: unknown) => {
        log.warn({ err }, "server message not queued");
        this.#callLog?.error("server-message", "server message not queued (it will not be delivered)", {
          type: body.message.type,
          error: err instanceof Error ? err.message : String(err),
        });
      });
  }

  /** A message for the client only (model output, the tool calls it may show). */
  client(kind: string, build: () => MessageBody): void {
    if (this.#wantsClient(kind)) this.#toClient(this.#build(build, true));
  }

  #build(build: () => MessageBody, clientOnly: boolean): MessageBody {
    this.#clientOnly = clientOnly;
    try {
      return build();
    } finally {
      this.#clientOnly = false;
    }
  }

  #wantsClient(kind: string | { type: string; transcriptType?: string }): boolean {
    if (!this.#client) return false;
    return shouldSend(kind, this.#state.assistant?.config.clientMessages ?? DEFAULT_CLIENT_MESSAGES);
  }

  #toClient(body: MessageBody): void {
    const list = this.#state.assistant?.config.clientMessages ?? DEFAULT_CLIENT_MESSAGES;
    if (this.#client && shouldSend(body.message, list)) this.#client(clientView(body.message));
  }
}
