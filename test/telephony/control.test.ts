import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { type CallControlMessage, RedisControlBus } from "../../libs/telephony/control-bus.ts";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";

let t: TestApi;
let org: TestOrg;
let bus: RedisControlBus;

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Control");
  // What a media process holding a call does: subscribe to its control channel.
  bus = new RedisControlBus(t.redis);
});
after(async () => {
  await bus.close();
  await t.close();
});

function control(id: string, payload: object, key = org.key) {
  return t.request({ method: "POST", url: `/call/${id}/control`, key, payload });
}

test("control is delivered to the media process holding the call, 409 when none does", async () => {
  const call = await t.db.call.create({
    data: { orgId: org.orgId, type: "inboundPhoneCall", status: "in-progress" },
  });
  const nobody = await control(call.id, { type: "say", content: "Hello?" });
  assert.equal(nobody.statusCode, 409, nobody.body);
  assert.match(nobody.json().message, /not active on any media process/);

  const got: CallControlMessage[] = [];
  const unsubscribe = await bus.subscribe(call.id, (m) => got.push(m));
  const messages: CallControlMessage[] = [
    { type: "say", content: "One moment please", endCallAfterSpoken: false },
    {
      type: "add-message",
      message: { role: "system", content: "The customer is a VIP." },
      triggerResponseEnabled: true,
    },
    {
      type: "transfer",
      destination: { type: "number", number: "+14155550199" },
      content: "Transferring you now",
    },
    { type: "end-call" },
  ];
  for (const m of messages) {
    const res = await control(call.id, m);
    assert.equal(res.statusCode, 202, res.body);
    assert.deepEqual(res.json(), { ok: true });
  }
  const deadline = Date.now() + 2000;
  while (got.length < messages.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, messages);
  await unsubscribe();
  assert.equal((await control(call.id, { type: "end-call" })).statusCode, 409);
});

test("bad shapes 400; another organisation's or an ended call is refused", async () => {
  const call = await t.db.call.create({
    data: { orgId: org.orgId, type: "inboundPhoneCall", status: "in-progress" },
  });
  for (const body of [
    { type: "say" },
    { type: "shout", content: "x" },
    { type: "transfer", destination: { type: "number", number: "555" } },
    { type: "end-call", extra: 1 },
  ]) {
    const res = await control(call.id, body);
    assert.equal(res.statusCode, 400, JSON.stringify(body));
  }
  const other = await t.createOrg("Other");
  assert.equal((await control(call.id, { type: "end-call" }, other.key)).statusCode, 404);
  assert.equal((await control("00000000-0000-4000-8000-000000000000", { type: "end-call" })).statusCode, 404);
  const ended = await t.db.call.create({
    data: { orgId: org.orgId, type: "inboundPhoneCall", status: "ended" },
  });
  const res = await control(ended.id, { type: "end-call" });
  assert.equal(res.statusCode, 409);
  assert.match(res.json().message, /has ended/);
});
