import { type Static, Type } from "@sinclair/typebox";
import { TWILIO_ACCOUNT_SID_PATTERN } from "../vapi/common.ts";

// The form parameters of Twilio's voice webhook and status callback, checked before anything reads
// the database: the webhooks are unauthenticated until the signature is checked, and the signature can
// only be checked once the number is found. Shapes are Twilio's documented ones
// (https://www.twilio.com/docs/voice/twiml#request-parameters).

/** Twilio call SIDs: "CA" and 32 lowercase hex digits. */
export const TWILIO_CALL_SID_PATTERN = "^CA[0-9a-f]{32}$";

/**
 * `From` and `To`: an E.164 number (which is also how Twilio spells withheld caller ids:
 * +266696687 "anonymous", +7378742833 "restricted", …), a Voice SDK client (`client:alice`), a SIP
 * URI (`sip:alice@example.com`), or a bare word some carriers send for a withheld number
 * ("Anonymous"). Printable ASCII only: nothing Twilio sends here has control characters or spaces.
 */
export const TWILIO_PARTY_PATTERN =
  "^(?:\\+?[0-9*#]{1,32}|client:[!-~]{1,256}|sips?:[!-~]{1,1024}|[A-Za-z][A-Za-z0-9._-]{0,63})$";

const Party = Type.String({
  maxLength: 1030,
  pattern: TWILIO_PARTY_PATTERN,
  description: "E.164 number, client:identity, SIP URI, or a withheld-number word",
});

/**
 * The parameters we read; Twilio sends many more (CallerName, FromCountry, StirVerstat…), which are
 * kept for the signature check (it covers every parameter) and bounded in number and size.
 */
export const TwilioVoiceParams = Type.Object(
  {
    CallSid: Type.String({ pattern: TWILIO_CALL_SID_PATTERN }),
    AccountSid: Type.String({ pattern: TWILIO_ACCOUNT_SID_PATTERN }),
    From: Party,
    To: Party,
    CallStatus: Type.Optional(Type.String({ pattern: "^[a-z-]{1,32}$" })),
  },
  {
    additionalProperties: Type.String({ maxLength: 8192 }),
    maxProperties: 200,
    title: "TwilioVoiceParams",
    description: "Twilio's voice webhook parameters (form-encoded)",
  },
);
export type TwilioVoiceParams = Static<typeof TwilioVoiceParams> & Record<string, string>;
