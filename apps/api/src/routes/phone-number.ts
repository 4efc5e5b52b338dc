import type { FastifyInstance } from "fastify";
import {
  CreateTwilioPhoneNumberDTO,
  TwilioPhoneNumber,
  UpdateTwilioPhoneNumberDTO,
} from "../../../../libs/vapi/index.ts";
import { crudRoutes } from "./crud.ts";

export async function phoneNumberRoutes(app: FastifyInstance): Promise<void> {
  crudRoutes(app, {
    path: "/phone-number",
    controller: "PhoneNumberController",
    tag: "Phone Numbers",
    noun: "a phone number (Twilio import; the auth token is never returned)",
    create: CreateTwilioPhoneNumberDTO,
    update: UpdateTwilioPhoneNumberDTO,
    response: TwilioPhoneNumber,
    service: app.deps.services.phoneNumbers,
  });
}
