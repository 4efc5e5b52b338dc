import { test } from "node:test";
import { startTestApi } from "../helpers/api.ts";
test("probe", async () => {
  const t = await startTestApi();
  const org = await t.createOrg("x");
  const a = (await t.request({ method: "POST", url: "/assistant", key: org.key, payload: { name: "Billing" } })).json() as { id: string };
  const variants: Record<string, unknown>[] = [
    { members: [{ assistantId: a.id, assistantDestinations: [{ type: "assistant", assistantName: "Billing", message: "hi" }] }] },
    { members: [{ assistantId: a.id, assistantDestinations: [{ type: "assistant", assistantName: "Billing", description: "hi" }] }] },
    { members: [{ assistant: { name: "x", firstMessage: "hello" } }] },
    { members: [{ assistant: { name: "x", model: { provider: "openai", model: "gpt-4o", messages: [{ role: "system", content: "x" }] } } }] },
  ];
  for (const v of variants) {
    for (let i = 0; i < 3; i++) {
      let s = Date.now();
      const r = await t.request({ method: "POST", url: "/squad", key: org.key, payload: v });
      const c = Date.now() - s;
      s = Date.now();
      const g = await t.request({ method: "GET", url: `/squad/${(r.json() as { id: string }).id}`, key: org.key });
      console.log(JSON.stringify(v).slice(40, 190), r.statusCode, c, g.statusCode, Date.now() - s);
    }
  }
  for (let i = 0; i < 3; i++) {
      let s = Date.now();
      const r = await t.request({ method: "POST", url: "/assistant", key: org.key, payload: { model: { provider: "openai", model: "gpt-4o", messages: [{ role: "system", content: "x" }] } } });
      const c = Date.now() - s;
      s = Date.now();
      const g = await t.request({ method: "GET", url: `/assistant/${(r.json() as { id: string }).id}`, key: org.key });
      console.log("assistant w/ messages", r.statusCode, c, g.statusCode, Date.now() - s);
  }
  await t.close();
});
