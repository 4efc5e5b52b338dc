import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

// The billing dashboard: static files (apps/api/dashboard, plain ES modules, no build step) and
// Chart.js from node_modules, all served same-origin under /dashboard. The page holds no data: it
// signs in with an API key kept in sessionStorage and calls the ordinary authenticated API, so its
// assets need no credential (`auth: "none"`).

const DASHBOARD_DIR = fileURLToPath(new URL("../../dashboard/", import.meta.url));
const CHART_JS = fileURLToPath(
  new URL("../../../../node_modules/chart.js/dist/chart.umd.js", import.meta.url),
);

// Everything the page loads is same-origin; nothing may frame it (it shows billing data).
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

function secure(reply: FastifyReply): FastifyReply {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
  return reply;
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  // Routes of this (encapsulated) plugin only: the static assets carry no data.
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config ?? {}), auth: "none" };
  });

  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: "/dashboard/",
    decorateReply: false,
    index: "index.html",
    dotfiles: "deny",
    setHeaders: (res) => {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    },
  });

  const hidden = { schema: { hide: true } };
  app.get("/dashboard", hidden, async (_req, reply) => reply.redirect("/dashboard/", 302));

  let chartJs: Buffer | undefined;
  app.get("/dashboard/vendor/chart.js", hidden, async (_req, reply) => {
    chartJs ??= await readFile(CHART_JS);
    return secure(reply).type("text/javascript; charset=utf-8").send(chartJs);
  });
}
