// A call's recording: where it is kept (stores), how it is finished from its spool and served, and
// its signed download links. The recorder itself taps the call session (libs/media/recorder.ts).

export {
  checkSignedRecording,
  isTrack,
  PRESIGNED_TTL_MS,
  presignedRecordingFields,
  REDIRECT_TTL_MS,
  type RecordingLinks,
  type SignedCheck,
  signedPath,
  signedRecordingUrl,
} from "./links.ts";
export {
  CallRecordings,
  type OpenedTrack,
  type RecordingArtifact,
  type RecordingDestination,
  type RecordingSettings,
  recordingSettingsOf,
  spoolCallId,
} from "./service.ts";
export { RecordingStores, type RecordingsConfig } from "./stores.ts";
export {
  type RecordingLocation,
  recordingLocationOf,
  TRACK_ROUTES,
  TRACKS,
  type Track,
} from "./tracks.ts";
export { WAV_HEADER_BYTES, wavHeader } from "./wav.ts";
