import { memberDestinations, renderTemplate, squadMemberByName } from "../../assistants/index.ts";
import { transferTwiml, updateCall } from "../../telephony/twilio-client.ts";
import { statusUpdateMessage } from "../../webhooks/index.ts";
import { ENDED } from "../ended-reasons.ts";
import { type DestinationDef, destinationMessage } from "../tools.ts";
import type { CallContext } from "./context.ts";

// Transfers: to a phone number (Twilio is asked to `<Dial>` it; the media stream then stops, which
// is the transfer, not a hang-up) or to another member of the call's squad (a hand-off: the member
// takes the call with the conversation carried over).

export class CallTransfer {
  readonly #c: CallContext;
  /** Twilio is being asked to `<Dial>` elsewhere: its `stop` / close is the transfer, not a hang-up. */
  forwarding = false;

  constructor(c: CallContext) {
    this.#c = c;
  }

  async to(dest: DestinationDef): Promise<void> {
    const c = this.#c;
    const { state } = c;
    const message = destinationMessage(dest);
    if (dest.type === "assistant") {
      await this.#handOff(dest, message);
      return;
    }
    if (message) await c.voice.speakFinal(renderTemplate(message, state.variables));
    const account = this.#twilioAccount();
    if (!account || !state.providerCallId || !dest.number) {
      state.log.warn({}, "transfer impossible: no Twilio account for the call");
      c.callLog.error("transfer", "transfer impossible: no Twilio account or number for the call", {
        number: dest.number,
      });
      await c.end(ENDED.transferFailed);
      return;
    }
    // Twilio stops the media stream while it runs the new TwiML, often before the REST call returns.
    this.forwarding = true;
    const asked = c.now();
    c.callLog.add("transfer", "asking the carrier to transfer the call", { number: dest.number });
    try {
      await updateCall({ ...account, apiUrl: c.deps.twilioApiUrl }, state.providerCallId, {
        twiml: transferTwiml(dest.number, { callerId: dest.callerId }),
      });
    } catch (err) {
      this.forwarding = false;
      state.log.warn({ err }, "transfer failed");
      c.callLog.error("transfer", "transfer failed", {
        number: dest.number,
        error: err instanceof Error ? err.message : String(err),
      });
      await c.end(ENDED.transferFailed);
      return;
    }
    c.callLog.add("transfer", "the carrier took the call", {
      number: dest.number,
      durationMs: Math.round(c.now() - asked),
    });
    c.messages.emit("status-update", () =>
      statusUpdateMessage(c.messages.context(), {
        status: "forwarding",
        destination: { type: "number", number: dest.number },
      }),
    );
    await c.end(ENDED.forwarded, { keepTransport: true });
  }

  /** Squad hand-off: another member takes the call with the conversation carried over. */
  async #handOff(dest: DestinationDef, message: string | undefined): Promise<void> {
    const c = this.#c;
    const { state } = c;
    const chosen = await squadMemberByName(c.deps.db, state.orgId, state.squad, dest.assistantName);
    if (!chosen) {
      state.log.warn({}, "hand-off destination not found");
      c.callLog.warn("transfer", "hand-off: no such squad member", { assistantName: dest.assistantName });
      c.turns.armSilence();
      return;
    }
    if (message)
      await c.voice.speak(renderTemplate(message, state.variables), {
        interruptible: true,
        source: "transfer",
      });
    c.callLog.add("transfer", "hand-off to another squad member", { assistantName: dest.assistantName });
    try {
      await c.useAssistant(chosen.assistant, memberDestinations<DestinationDef>(chosen.member));
    } catch (err) {
      await c.fail(err, { provider: state.assistant.llm.provider.provider, kind: "llm" });
      return;
    }
    c.messages.emit("status-update", () =>
      statusUpdateMessage(c.messages.context(), { status: "in-progress" }),
    );
    const a = state.assistant.config;
    const first = a.firstMessage ? renderTemplate(a.firstMessage, state.variables) : "";
    if (first && a.firstMessageMode === "assistant-speaks-first") {
      await c.voice.speak(first, { interruptible: true, source: "first-message" });
    } else {
      void c.turns.respond(undefined);
    }
  }

  #twilioAccount(): { accountSid: string; authToken: string } | undefined {
    const pn = this.#c.state.phoneNumber;
    if (!pn?.twilioAccountSid || !pn.twilioAuthToken) return undefined;
    try {
      const authToken = this.#c.deps.secrets.open({
        ciphertext: pn.twilioAuthToken,
        keyId: pn.twilioAuthTokenKeyId ?? "",
      });
      return { accountSid: pn.twilioAccountSid, authToken };
    } catch {
      return undefined;
    }
  }
}
