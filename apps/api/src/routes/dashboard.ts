import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

// The dashboard (billing, calls and a call's page, and "Talk to your assistant"): static files
// (apps/api/dashboard, plain ES modules, no build step) and Chart.js from node_modules, all served
// same-origin under /dashboard.
// The pages hold no data: they sign in with an API key kept in sessionStorage and call the ordinary
// authenticated API, so their assets need no credential (`auth: "none"`).

const DASHBOARD_DIR = fileURLToPath(new URL("../../dashboard/", import.meta.url));
const CHART_JS = fileURLToPath(
  new URL("../../../../node_modules/chart.js/dist/chart.umd.js", import.meta.url),
);

export interface DashboardOptions {
  /** MEDIA_PUBLIC_URL: the talk page opens its calls' websockets there. */
  mediaPublicUrl: string;
}

function policy(connectSrc: string, mediaSrc?: string): string {
  const media = mediaSrc ? ` media-src ${mediaSrc};` : "";
  return `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;${media} connect-src ${connectSrc}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

/** The origin of the media plane (`wss://media.example.com`), as a CSP source. */
export function mediaOrigin(mediaPublicUrl: string): string {
  const url = new URL(mediaPublicUrl);
  const scheme = url.protocol === "https:" ? "wss:" : url.protocol === "http:" ? "ws:" : url.protocol;
  return `${scheme}//${url.host}`;
}

// Everything the pages load is same-origin; nothing may frame them (they show billing data). The
// talk page alone may also connect to the media plane's origin (its calls' websockets), and to
// nothing else.
const COMMON_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};
const PAGE_CSP = policy("'self'");
const TALK_PAGE = "talk.html";
// The call page plays the call's recording: from this origin (a signed URL) or, fetched with the
// key, as a blob.
const CALL_PAGE = "call.html";
const CALL_CSP = policy("'self'", "'self' blob:");

function secure(reply: FastifyReply): FastifyReply {
  for (const [k, v] of Object.entries(COMMON_HEADERS)) reply.header(k, v);
  return reply.header("content-security-policy", PAGE_CSP);
}

export async function dashboardRoutes(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const talkCsp = policy(`'self' ${mediaOrigin(options.mediaPublicUrl)}`);
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
    setHeaders: (res, path) => {
      for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
      const page = basename(path);
      res.setHeader(
        "content-security-policy",
        page === TALK_PAGE ? talkCsp : page === CALL_PAGE ? CALL_CSP : PAGE_CSP,
      );
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
