import { type Static, Type } from "@sinclair/typebox";
import { ErrorResponse } from "../../../../libs/vapi/index.ts";

/** Path ids are plain strings: a malformed id answers 404 like a missing one, not 400. */
export const IdParam = Type.Object({ id: Type.String({ maxLength: 64 }) });
export type IdParam = Static<typeof IdParam>;

/** Response schemas for the error statuses a route can answer. */
export function errors(...codes: number[]): Record<number, typeof ErrorResponse> {
  const out: Record<number, typeof ErrorResponse> = {};
  for (const c of codes) out[c] = ErrorResponse;
  out[429] = ErrorResponse;
  out[500] = ErrorResponse;
  // The database's connection cut under the request (failover, restart): retry (Retry-After).
  out[503] = ErrorResponse;
  return out;
}
