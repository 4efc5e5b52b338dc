import { joinKey } from "../storage/index.ts";

// What a call's recording is: four WAV files (Vapi's four downloads), where they are kept, and how
// the call's artifact names them. Only the stereo one is stored; the other three are derived from
// it as they are read (derive.ts). Calls recorded before that have all four stored.
//   mono      the two parties mixed, as the caller's line carried them (`artifact.recordingUrl`)
//   stereo    customer on the left channel, assistant on the right (`stereoRecordingUrl`)
//   customer  the customer's channel alone
//   assistant the assistant's channel alone, as the caller heard it (cut where a barge-in cut it)

export const TRACKS = ["mono", "stereo", "customer", "assistant"] as const;
export type Track = (typeof TRACKS)[number];

/** Each track's download route under `/call/:id/` (Vapi's names). */
export const TRACK_ROUTES: Record<Track, string> = {
  mono: "mono-recording",
  stereo: "stereo-recording",
  customer: "customer-recording",
  assistant: "assistant-recording",
};

/**
 * Where a call's recording is, kept in its artifact as `recordingStorage` (the call's own record:
 * the organisation's credential may change after the call). Not shown in the API (libs/calls/view.ts).
 */
export interface RecordingLocation {
  /** The organisation's `s3` credential holding it; absent: the platform's storage. */
  credentialId?: string;
  /** Its bucket (the credential's when the call was recorded). */
  bucket?: string;
  /**
   * The stored tracks' keys: the stereo one alone (the others are derived from it as they are
   * read), or all four (calls recorded before).
   */
  keys: StoredKeys;
  /** Hz, of every track. */
  sampleRate: number;
  /** Seconds of audio. */
  durationSeconds: number;
  /** The media process died: the audio up to its last flushed chunk. */
  partial?: true;
}

export type StoredKeys = { stereo: string } & Partial<Record<Track, string>>;

/** The key of a call's stereo track: `<org>/<call>/stereo.wav` on the platform, `<prefix>/<path>/<call>-stereo.wav` in an org's bucket. */
export function stereoKey(
  call: { id: string; orgId: string },
  custom?: { pathPrefix: string; recordingPath: string },
): string {
  return custom
    ? joinKey(custom.pathPrefix, custom.recordingPath, `${call.id}-stereo.wav`)
    : joinKey(call.orgId, call.id, "stereo.wav");
}

/** The artifact's recording fields: stable URLs (the download routes, which need an API key) and the location. */
export function recordingArtifact(publicUrl: string, callId: string, location: RecordingLocation) {
  const base = `${publicUrl.replace(/\/$/, "")}/call/${callId}`;
  const url = (t: Track) => `${base}/${TRACK_ROUTES[t]}`;
  return {
    recordingUrl: url("mono"),
    stereoRecordingUrl: url("stereo"),
    recording: {
      stereoUrl: url("stereo"),
      mono: { combinedUrl: url("mono"), customerUrl: url("customer"), assistantUrl: url("assistant") },
    },
    recordingStorage: location,
  };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The recording's location in a stored artifact, if it has one. */
export function recordingLocationOf(artifact: unknown): RecordingLocation | undefined {
  const loc = isObj(artifact) ? artifact.recordingStorage : undefined;
  if (!isObj(loc) || !isObj(loc.keys) || typeof loc.sampleRate !== "number") return undefined;
  if (typeof loc.keys.stereo !== "string") return undefined;
  for (const t of TRACKS) if (loc.keys[t] !== undefined && typeof loc.keys[t] !== "string") return undefined;
  return loc as unknown as RecordingLocation;
}
