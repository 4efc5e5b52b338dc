import { type Static, Type } from "@sinclair/typebox";
import {
  E164Number,
  resourceFields,
  Server,
  STRICT,
  StringEnum,
  TEXT_LIMITS,
  TWILIO_ACCOUNT_SID_PATTERN,
  Uuid,
} from "./common.ts";
import { TransferDestinationNumber } from "./tool.ts";

export const PHONE_NUMBER_STATUSES = ["active", "activating", "blocked"] as const;
export type PhoneNumberStatus = (typeof PHONE_NUMBER_STATUSES)[number];

const TwilioAccountSid = Type.String({ pattern: TWILIO_ACCOUNT_SID_PATTERN });

/** Fields a client may set on a Twilio number, except the write-only auth token. */
const twilioPhoneNumberProperties = {
  provider: Type.Literal("twilio"),
  number: E164Number,
  twilioAccountSid: TwilioAccountSid,
  name: Type.Optional(Type.String({ maxLength: 40 })),
  assistantId: Type.Optional(Uuid),
  squadId: Type.Optional(Uuid),
  server: Type.Optional(Server),
  // Where the call goes when no assistant can be resolved (e.g. a failed assistant-request).
  fallbackDestination: Type.Optional(TransferDestinationNumber),
  // Vapi overwrites the Twilio messaging URL too unless this is false.
  smsEnabled: Type.Optional(Type.Boolean()),
};

/** POST /phone-number with `provider: "twilio"`: import an existing Twilio number. */
export const CreateTwilioPhoneNumberDTO = Type.Object(
  {
    ...twilioPhoneNumberProperties,
    twilioAuthToken: Type.String({ minLength: 1, maxLength: TEXT_LIMITS.secret }),
  },
  { ...STRICT, title: "CreateTwilioPhoneNumberDTO" },
);
export type CreateTwilioPhoneNumberDTO = Static<typeof CreateTwilioPhoneNumberDTO>;

/** PATCH /phone-number/{id}: as Vapi's UpdateTwilioPhoneNumberDTO, everything (even `number`) is changeable. */
export const UpdateTwilioPhoneNumberDTO = Type.Partial(CreateTwilioPhoneNumberDTO, {
  title: "UpdateTwilioPhoneNumberDTO",
});
export type UpdateTwilioPhoneNumberDTO = Static<typeof UpdateTwilioPhoneNumberDTO>;

/** Response shape. No `twilioAuthToken`: it is write-only, and the serializer drops undeclared fields. */
export const TwilioPhoneNumber = Type.Object(
  {
    ...resourceFields,
    ...twilioPhoneNumberProperties,
    status: StringEnum(PHONE_NUMBER_STATUSES),
  },
  { title: "TwilioPhoneNumber" },
);
export type TwilioPhoneNumber = Static<typeof TwilioPhoneNumber>;
