import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { TRACK_ROUTES, TRACKS, type Track } from "../../../../libs/recordings/index.ts";
import { errors, IdParam } from "./shared.ts";

// A call's recordings (artifactPlan.recordingEnabled): Vapi's four download routes, each a 302 to a
// signed URL valid for five minutes, and the signed URLs themselves (no API key; Range requests).

const WHAT: Record<Track, string> = {
  mono: "the two parties mixed (mono)",
  stereo: "customer on the left channel, assistant on the right",
  customer: "the customer alone (mono)",
  assistant: "the assistant alone, as the caller heard it (mono)",
};

const SignedQuery = Type.Object({
  expires: Type.Optional(Type.String({ maxLength: 16 })),
  signature: Type.Optional(Type.String({ maxLength: 64 })),
});
const SignedParams = Type.Object({
  id: Type.String({ maxLength: 64 }),
  track: Type.Union(TRACKS.map((t) => Type.Literal(`${t}.wav`))),
});
const Wav = Type.String({ format: "binary", description: "audio/wav: 16-bit PCM" });

export async function callRecordingRoutes(app: FastifyInstance): Promise<void> {
  const { recordings } = app.deps.services;

  for (const track of TRACKS) {
    const route = TRACK_ROUTES[track];
    app.get<{ Params: IdParam }>(
      `/call/:id/${route}`,
      {
        schema: {
          operationId: `CallController_${route.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase())}`,
          tags: ["Calls"],
          summary: `Download the call's recording: ${WHAT[track]}`,
          description:
            "302 to a signed URL of the WAV, valid for 5 minutes (follow it; do not cache it). 404 when the call has no such recording.",
          params: IdParam,
          response: {
            302: Type.Null({ description: "Location: the signed URL" }),
            ...errors(401, 403, 404, 502),
          },
        },
      },
      async (req, reply) => {
        const url = await recordings.redirect(req.auth, req.params.id, track);
        return reply.code(302).header("location", url).header("cache-control", "no-store").send();
      },
    );
  }

  app.get<{
    Params: { id: string; track: `${Track}.wav` };
    Querystring: { expires?: string; signature?: string };
  }>(
    "/call/:id/recording/:track",
    {
      config: { auth: "none" },
      schema: {
        operationId: "CallController_signedRecording",
        tags: ["Calls"],
        summary:
          "A recording through its signed URL (artifact.presigned*Url): no API key, Range requests served",
        description:
          "The URL as given in the call's `artifact.presignedMonoUrl`/`presignedStereoUrl`/`presignedCustomerUrl`/`presignedAssistantUrl` (valid for an hour from the answer that carried it, until `presignedUrlsExpiresAt`) or the Location of a download route. 403 when the signature is wrong or has expired.",
        security: [],
        params: SignedParams,
        querystring: SignedQuery,
        response: { 200: Wav, 206: Wav, ...errors(403, 404, 416, 502) },
      },
    },
    async (req, reply) => {
      const track = req.params.track.slice(0, -".wav".length) as Track;
      const out = await recordings.download(req.params.id, track, req.query, req.headers.range);
      return reply.code(out.status).headers(out.headers).send(out.body);
    },
  );
}
