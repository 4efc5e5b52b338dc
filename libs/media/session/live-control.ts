import type { CallControlMessage } from "../../telephony/control-bus.ts";
import { ENDED } from "../ended-reasons.ts";
import type { CallContext } from "./context.ts";

// Live control of a call (Vapi's control messages, through the control bus): say something, add a
// message to the conversation, end the call, transfer it.

export function onControl(c: CallContext, msg: CallControlMessage): void {
  const { state, turns, voice } = c;
  if (state.phase !== "live") return;
  switch (msg.type) {
    case "say":
      void (async () => {
        await voice.speak(msg.content, { interruptible: true, source: "force-say" });
        if (msg.endCallAfterSpoken) await c.end(ENDED.assistantEndedAfterMessage);
      })();
      return;
    case "add-message": {
      const { role, content } = msg.message;
      const now = c.now();
      if (role === "user") state.conversation.addUser(content, now, now);
      else if (role === "system") state.conversation.addSystemNote(content, now);
      else if (role === "assistant") {
        const e = state.conversation.beginBot(now);
        state.conversation.finishBot(e, content, now);
      }
      c.messages.conversationUpdate();
      if (msg.triggerResponseEnabled && !turns.replying) void turns.respond(undefined);
      return;
    }
    case "end-call":
      void c.end(ENDED.manuallyCanceled);
      return;
    case "transfer":
      void (async () => {
        if (turns.replying) turns.cancelReply(true);
        if (msg.content) await voice.speakFinal(msg.content);
        await c.transfer.to({ ...msg.destination, message: undefined });
      })();
      return;
  }
}
