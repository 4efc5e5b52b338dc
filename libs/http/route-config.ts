import type { FastifyCorsOptions } from "@fastify/cors";

/**
 * Which credential a route takes: `private` (default) an org's private key, `public` a public or
 * private key, `admin` the operator's ADMIN_TOKEN, `none` nothing (health, docs, signed webhooks).
 */
export type AuthMode = "private" | "public" | "admin" | "none";

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: AuthMode;
    /**
     * Which per-address budget an unauthenticated route draws on: `webhook` for the signed
     * Twilio and Stripe webhooks (a larger one: carriers send many), else the ordinary one.
     */
    addressLimit?: "webhook";
    /** CORS for this route (@fastify/cors): off everywhere unless a route turns it on. */
    cors?: false | FastifyCorsOptions;
  }
}
