import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestApi, type TestApi, type TestOrg } from "../helpers/api.ts";
import { assistantBody } from "../helpers/bodies.ts";

// GET /v2/call: Vapi's paginated call list, its filters and its page metadata, over calls written
// straight into the database (their cost, end reason and analysis as the media plane leaves them).

let t: TestApi;
let org: TestOrg;
let other: TestOrg;
let assistantId: string;
const ids: Record<string, string> = {};

interface Page {
  results: Array<{ id: string; endedReason?: string; cost?: number; assistantId?: string }>;
  metadata: {
    itemsPerPage: number;
    totalItems: number;
    currentPage: number;
    totalPages: number;
    hasNextPage: boolean;
    sortOrder: string;
  };
}

const BASE = Date.UTC(2026, 10, 2, 9);

async function seed(
  o: TestOrg,
  name: string,
  minute: number,
  fields: { endedReason: string; cost: string; assistantId?: string; success?: string },
): Promise<void> {
  const createdAt = new Date(BASE + minute * 60_000);
  const row = await t.db.call.create({
    data: {
      orgId: o.orgId,
      type: "inboundPhoneCall",
      status: "ended",
      endedReason: fields.endedReason,
      assistantId: fields.assistantId ?? null,
      startedAt: createdAt,
      endedAt: new Date(createdAt.getTime() + 30_000),
      cost: fields.cost,
      analysis: fields.success === undefined ? undefined : { successEvaluation: fields.success },
      createdAt,
    },
  });
  ids[name] = row.id;
}

async function page(query: string, key = org.key): Promise<Page> {
  const res = await t.request({ method: "GET", url: `/v2/call${query}`, key });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Page;
}

const names = (p: Page) => p.results.map((c) => Object.keys(ids).find((k) => ids[k] === c.id));

before(async () => {
  t = await startTestApi();
  org = await t.createOrg("Acme");
  other = await t.createOrg("Globex");
  const created = await t.request({
    method: "POST",
    url: "/assistant",
    key: org.key,
    payload: assistantBody({ name: "Front desk" }),
  });
  assert.equal(created.statusCode, 201, created.body);
  assistantId = created.json().id;
  await seed(org, "a", 0, {
    endedReason: "customer-ended-call",
    cost: "0.100000",
    assistantId,
    success: "true",
  });
  await seed(org, "b", 1, { endedReason: "silence-timed-out", cost: "0.250000" });
  await seed(org, "c", 2, {
    endedReason: "customer-ended-call",
    cost: "0.300001",
    assistantId,
    success: "false",
  });
  await seed(org, "d", 3, { endedReason: "assistant-ended-call", cost: "1.000000" });
  await seed(org, "e", 4, { endedReason: "customer-ended-call", cost: "0.000000" });
  await seed(other, "theirs", 2, { endedReason: "customer-ended-call", cost: "0.300000" });
});

after(async () => {
  await t?.close();
});

describe("GET /v2/call", () => {
  test("pages newest first with the number of calls matching; ASC reverses; only the organisation's calls", async () => {
    const first = await page("?limit=2");
    assert.deepEqual(names(first), ["e", "d"]);
    assert.deepEqual(first.metadata, {
      itemsPerPage: 2,
      totalItems: 5,
      currentPage: 1,
      totalPages: 3,
      hasNextPage: true,
      sortOrder: "DESC",
    });
    const last = await page("?limit=2&page=3");
    assert.deepEqual(names(last), ["a"]);
    assert.equal(last.metadata.hasNextPage, false);
    assert.deepEqual(names(await page("?limit=2&page=4")), []);
    assert.deepEqual(names(await page("?limit=3&sortOrder=ASC")), ["a", "b", "c"]);
    const theirs = await page("", other.key);
    assert.deepEqual(names(theirs), ["theirs"]);
    assert.equal(theirs.metadata.totalItems, 1);
  });

  test("filters by endedReason, cost range, assistant, success evaluation and creation time", async () => {
    const ended = await page("?endedReason=customer-ended-call");
    assert.deepEqual(names(ended), ["e", "c", "a"]);
    assert.equal(ended.metadata.totalItems, 3);
    // The range is inclusive and exact to the micro-dollar: 0.300001 is above 0.3.
    assert.deepEqual(names(await page("?costGe=0.1&costLe=0.3")), ["b", "a"]);
    assert.deepEqual(names(await page("?costGe=0.3")), ["d", "c"]);
    assert.deepEqual(names(await page("?cost=0")), ["e"]);
    assert.deepEqual(names(await page(`?assistantId=${assistantId}`)), ["c", "a"]);
    assert.deepEqual(names(await page("?successEvaluation=true")), ["a"]);
    const from = new Date(BASE + 60_000).toISOString();
    const to = new Date(BASE + 3 * 60_000).toISOString();
    assert.deepEqual(names(await page(`?createdAtGe=${from}&createdAtLt=${to}`)), ["c", "b"]);
    const combined = await page(`?endedReason=customer-ended-call&costGe=0.2&assistantId=${assistantId}`);
    assert.deepEqual(names(combined), ["c"]);
    // Another organisation's assistant matches nothing here (and reveals nothing).
    assert.equal((await page(`?assistantId=${assistantId}`, other.key)).metadata.totalItems, 0);
  });

  test("a malformed filter is a 400 naming it; without a key, a 401", async () => {
    for (const [query, field] of [
      ["?costGe=-1", "costGe"],
      ["?costLe=cheap", "costLe"],
      ["?page=0", "page"],
      ["?sortOrder=newest", "sortOrder"],
      ["?endedReason=customer%20ended", "endedReason"],
      ["?limit=1001", "limit"],
      ["?assistantId=nope", "assistantId"],
      ["?type=webCall", "type"],
    ] as const) {
      const res = await t.request({ method: "GET", url: `/v2/call${query}`, key: org.key });
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
      assert.match(res.json().message, new RegExp(field), query);
    }
    const anonymous = await t.request({ method: "GET", url: "/v2/call" });
    assert.equal(anonymous.statusCode, 401);
  });
});
