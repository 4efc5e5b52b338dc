import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody, functionToolBody, phoneNumberBody } from "../helpers/bodies.ts";

// One suite for every resource: organisation B must see organisation A's ids exactly as ids that
// do not exist (404, same message shape), never data and never a different error.

let t: TestApi;
let a: TestOrg;
let b: TestOrg;
const ids: Record<string, string> = {};

before(async () => {
  t = await startTestApi();
  a = await t.createOrg("A");
  b = await t.createOrg("B");
  const post = async (url: string, payload: object) => {
    const res = await t.request({ method: "POST", url, key: a.key, payload });
    assert.equal(res.statusCode, 201, `${url}: ${res.body}`);
    return res.json().id as string;
  };
  ids.tool = await post("/tool", functionToolBody());
  ids.credential = await post("/credential", { provider: "deepgram", apiKey: "dg-secret" });
  ids.assistant = await post(
    "/assistant",
    assistantBody({ model: { provider: "openai", model: "gpt-4o", toolIds: [ids.tool] } }),
  );
  ids.squad = await post("/squad", { members: [{ assistantId: ids.assistant }] });
  ids["phone-number"] = await post("/phone-number", phoneNumberBody({ assistantId: ids.assistant }));
  const call = await t.db.call.create({
    data: { orgId: a.orgId, type: "inboundPhoneCall", status: "ended", assistantId: ids.assistant },
  });
  ids.call = call.id;
});
after(async () => {
  await t.close();
});

const NAMES: Record<string, string> = {
  tool: "Tool",
  credential: "Credential",
  assistant: "Assistant",
  squad: "Squad",
  "phone-number": "Phone number",
  call: "Call",
};

test("another organisation's ids answer 404, exactly like missing ids, on every route", async () => {
  for (const [resource, id] of Object.entries(ids)) {
    const methods = resource === "call" ? (["GET"] as const) : (["GET", "PATCH", "DELETE"] as const);
    for (const method of methods) {
      const foreign = await t.request({
        method,
        url: `/${resource}/${id}`,
        key: b.key,
        payload: method === "PATCH" ? {} : undefined,
      });
      const missingId = "00000000-0000-4000-8000-000000000000";
      const missing = await t.request({
        method,
        url: `/${resource}/${missingId}`,
        key: b.key,
        payload: method === "PATCH" ? {} : undefined,
      });
      assert.equal(foreign.statusCode, 404, `${method} /${resource}/:id`);
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(foreign.json(), {
        statusCode: 404,
        error: "Not Found",
        message: `${NAMES[resource]} ${id} not found`,
      });
      assert.equal(foreign.json().message.replace(id, "ID"), missing.json().message.replace(missingId, "ID"));
    }
  }
  // Nothing was changed or deleted by B's attempts.
  for (const [resource, id] of Object.entries(ids)) {
    assert.equal(
      (await t.request({ method: "GET", url: `/${resource}/${id}`, key: a.key })).statusCode,
      200,
      resource,
    );
  }
});

test("lists only ever contain the caller's own resources", async () => {
  for (const resource of Object.keys(ids)) {
    const mine = (await t.request({ method: "GET", url: `/${resource}`, key: a.key })).json();
    const theirs = (await t.request({ method: "GET", url: `/${resource}`, key: b.key })).json();
    assert.equal(mine.length, 1, resource);
    assert.deepEqual(theirs, [], resource);
  }
  const filtered = await t.request({ method: "GET", url: `/call?assistantId=${ids.assistant}`, key: b.key });
  assert.deepEqual(filtered.json(), []);
});

test("bodies cannot point at another organisation's resources", async () => {
  const cases: [string, object, RegExp][] = [
    [
      "/assistant",
      assistantBody({ model: { provider: "openai", model: "gpt-4o", toolIds: [ids.tool] } }),
      /model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/assistant",
      assistantBody({ credentialIds: [ids.credential] }),
      /credentialIds\[0\] refers to credential/,
    ],
    [
      "/squad",
      { members: [{ assistantId: ids.assistant }] },
      /members\[0\]\.assistantId refers to assistant/,
    ],
    [
      "/phone-number",
      phoneNumberBody({ assistantId: ids.assistant }),
      /body\.assistantId refers to assistant/,
    ],
    ["/phone-number", phoneNumberBody({ squadId: ids.squad }), /body\.squadId refers to squad/],
  ];
  for (const [url, payload, message] of cases) {
    const res = await t.request({ method: "POST", url, key: b.key, payload });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.match(res.json().message, message);
  }
});

test("inline assistants, squads and overrides cannot name another organisation's tools or credentials", async () => {
  const own = await t.request({
    method: "POST",
    url: "/phone-number",
    key: b.key,
    payload: phoneNumberBody(),
  });
  assert.equal(own.statusCode, 201, own.body);
  const ownAssistant = await t.request({
    method: "POST",
    url: "/assistant",
    key: b.key,
    payload: assistantBody(),
  });
  const model = (toolIds: string[]) => ({ provider: "openai", model: "gpt-4o", toolIds });
  const call = { phoneNumberId: own.json().id, customer: { number: "+14155550199" } };
  const cases: [string, object, RegExp][] = [
    [
      "/call",
      { ...call, assistant: assistantBody({ model: model([ids.tool as string]) }) },
      /body\.assistant\.model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/call",
      { ...call, assistant: assistantBody({ credentialIds: [ids.credential] }) },
      /body\.assistant\.credentialIds\[0\] refers to credential/,
    ],
    [
      "/call",
      {
        ...call,
        assistantId: ownAssistant.json().id,
        assistantOverrides: { model: model([ids.tool as string]) },
      },
      /body\.assistantOverrides\.model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/call",
      {
        ...call,
        assistantId: ownAssistant.json().id,
        assistantOverrides: { credentialIds: [ids.credential] },
      },
      /body\.assistantOverrides\.credentialIds\[0\] refers to credential/,
    ],
    [
      "/call",
      { ...call, squad: { members: [{ assistantId: ids.assistant }] } },
      /body\.squad\.members\[0\]\.assistantId refers to assistant/,
    ],
    [
      "/call",
      { ...call, squad: { members: [{ assistant: { model: model([ids.tool as string]) } }] } },
      /body\.squad\.members\[0\]\.assistant\.model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/call",
      {
        ...call,
        squad: {
          members: [
            { assistantId: ownAssistant.json().id, assistantOverrides: { credentialIds: [ids.credential] } },
          ],
        },
      },
      /body\.squad\.members\[0\]\.assistantOverrides\.credentialIds\[0\] refers to credential/,
    ],
    [
      "/call",
      {
        ...call,
        squad: { members: [{ assistant: {} }], membersOverrides: { model: model([ids.tool as string]) } },
      },
      /body\.squad\.membersOverrides\.model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/squad",
      {
        members: [
          { assistantId: ownAssistant.json().id, assistantOverrides: { model: model([ids.tool as string]) } },
        ],
      },
      /body\.members\[0\]\.assistantOverrides\.model\.toolIds\[0\] refers to tool/,
    ],
    [
      "/tool",
      functionToolBody({ server: { url: "https://hooks.example.com/", credentialId: ids.credential } }),
      /body\.server\.credentialId refers to credential/,
    ],
  ];
  for (const [url, payload, message] of cases) {
    const res = await t.request({ method: "POST", url, key: b.key, payload });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.match(res.json().message, message);
    // Reported exactly like an id that does not exist.
    assert.match(res.json().message, /, which does not exist$/);
  }
  assert.equal(await t.db.call.count({ where: { orgId: b.orgId } }), 0, "no call was placed or recorded");
  assert.equal(t.twilio.calls.size, 0, "nothing was dialled");
});
