import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { uniqueNumber } from "../helpers/bodies.ts";
import { ACCOUNT_SID, AUTH_TOKEN, startTelephony, type TelephonyEnv } from "./setup.ts";

let env: TelephonyEnv;

before(async () => {
  env = await startTelephony();
});
after(async () => {
  await env.close();
});

function importBody(number: string, overrides: Record<string, unknown> = {}) {
  return {
    provider: "twilio",
    number,
    twilioAccountSid: ACCOUNT_SID,
    twilioAuthToken: AUTH_TOKEN,
    ...overrides,
  };
}

async function listNumbers(): Promise<string[]> {
  const res = await env.t.request({ method: "GET", url: "/phone-number", key: env.org.key });
  return res.json().map((n: { number: string }) => n.number);
}

test("importing a number points its voice URL and status callback at the platform", async () => {
  const number = uniqueNumber();
  env.twilio.addNumber(ACCOUNT_SID, number);
  const res = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: importBody(number),
  });
  assert.equal(res.statusCode, 201, res.body);
  const at = env.twilio.findNumber(number);
  assert.equal(at?.voiceUrl, `${env.publicUrl}/twilio/inbound`);
  assert.equal(at?.voiceMethod, "POST");
  assert.equal(at?.statusCallback, `${env.publicUrl}/twilio/status`);
  assert.equal(at?.statusCallbackMethod, "POST");
  const update = env.twilio.requests.find(
    (r) => r.method === "POST" && r.path.includes("/IncomingPhoneNumbers/"),
  );
  assert.equal(update?.authUser, ACCOUNT_SID);
});

test("bad Twilio credentials or a number the account does not own: 400 with Twilio's reason, nothing stored", async () => {
  const number = uniqueNumber();
  env.twilio.addNumber(ACCOUNT_SID, number);
  const badToken = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: importBody(number, { twilioAuthToken: "wrong-token" }),
  });
  assert.equal(badToken.statusCode, 400, badToken.body);
  assert.match(badToken.json().message, /Authenticate \(Twilio error 20003\)/);
  assert.equal(env.twilio.findNumber(number)?.voiceUrl, "");

  const notOwned = uniqueNumber();
  const res = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: importBody(notOwned),
  });
  assert.equal(res.statusCode, 400, res.body);
  assert.match(
    res.json().message,
    new RegExp(`${notOwned.replace("+", "\\+")} is not a phone number of Twilio account`),
  );

  const stored = await listNumbers();
  assert.ok(!stored.includes(number) && !stored.includes(notOwned));
});

test("changing the number or credentials reconfigures Twilio; a rejected change keeps the old ones", async () => {
  const number = uniqueNumber();
  const next = uniqueNumber();
  env.twilio.addNumber(ACCOUNT_SID, number);
  env.twilio.addNumber(ACCOUNT_SID, next);
  const created = await env.t.request({
    method: "POST",
    url: "/phone-number",
    key: env.org.key,
    payload: importBody(number),
  });
  const id = created.json().id as string;

  const bad = await env.t.request({
    method: "PATCH",
    url: `/phone-number/${id}`,
    key: env.org.key,
    payload: { twilioAuthToken: "wrong-token" },
  });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /20003/);

  const moved = await env.t.request({
    method: "PATCH",
    url: `/phone-number/${id}`,
    key: env.org.key,
    payload: { number: next },
  });
  assert.equal(moved.statusCode, 200, moved.body);
  assert.equal(env.twilio.findNumber(next)?.voiceUrl, `${env.publicUrl}/twilio/inbound`);
  // The stored token is still the good one: the number took a signed call.
  const sim = await env.twilio.placeInboundCall({ to: next, from: "+14155550150" });
  await sim.waitForEnd();
  assert.equal(sim.webhooks[0]?.responseStatus, 200);
});
