import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { importNumber, startTelephony, type TelephonyEnv } from "./setup.ts";

// When no assistant can be found for an inbound call (none on the number and the assistant-request
// fails), the caller is not dropped: the number's `fallbackDestination` is spoken and dialled, as in Vapi.

let env: TelephonyEnv;
before(async () => {
  env = await startTelephony();
});
after(async () => {
  await env.close();
});

test("a failing assistant-request forwards the caller to the number's fallbackDestination", async () => {
  const server = createServer((_req, res) => {
    res.writeHead(500, { "content-type": "application/json" });
    res.end('{"error":"boom"}');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vapi`;
  try {
    const { number } = await importNumber(env, {
      server: { url },
      fallbackDestination: {
        type: "number",
        number: "+14155550199",
        message: "Connecting you to our front desk.",
      },
    });
    const sim = await env.twilio.placeInboundCall({ to: number, from: "+14155550150" });
    await sim.waitForEnd();
    assert.equal(sim.dialed?.target, "+14155550199");
    assert.match(
      sim.webhooks[0]?.twiml ?? "",
      /<Say>Connecting you to our front desk\.<\/Say><Dial><Number>\+14155550199<\/Number><\/Dial>/,
    );
    const call = await env.t.db.call.findUniqueOrThrow({ where: { providerCallId: sim.callSid } });
    assert.equal(call.status, "ended");
    assert.equal(call.endedReason, "assistant-request-failed");

    // Without a fallback the caller hears a short notice and the call ends.
    const { number: bare } = await importNumber(env, { server: { url } });
    const sim2 = await env.twilio.placeInboundCall({ to: bare, from: "+14155550151" });
    await sim2.waitForEnd();
    assert.equal(sim2.dialed, undefined);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
