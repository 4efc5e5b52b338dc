// The call session: one live call over a media transport (Twilio Media Streams, Vapi's websocket).

export { CallSession } from "./call-session.ts";
export { EARLY_AUDIO_MAX_BYTES } from "./caller-input.ts";
export type { LeaseControls, MediaLogger, SessionDeps } from "./context.ts";
export type {
  CallTransport,
  MediaSocket,
  StartRefusal,
  TransportAudio,
  TransportEvents,
  TransportStart,
} from "./transport.ts";
export { TwilioMediaStream } from "./twilio-transport.ts";
export { NO_CUSTOMER_AUDIO_MS, RawWebsocketTransport, websocketAudioFormat } from "./websocket-transport.ts";
