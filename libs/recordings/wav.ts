// The WAV container of a recording: RIFF, one `fmt ` chunk of 16-bit PCM, one `data` chunk. A
// recording is spooled with a header whose sizes are not known yet; the header is written again
// with the final sizes when the call ends (or when a dead process's recording is recovered). The
// download routes also serve the header computed from the stored size, so a recording whose
// header was never fixed up still plays to its last byte.

export const WAV_HEADER_BYTES = 44;

export interface PcmShape {
  channels: 1 | 2;
  sampleRate: number;
}

/** The 44-byte header of a 16-bit PCM WAV holding `dataBytes` of samples. */
export function wavHeader(dataBytes: number, shape: PcmShape): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  const blockAlign = shape.channels * 2;
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(Math.min(0xffffffff, 36 + dataBytes), 4);
  h.write("WAVE", 8, "ascii");
  h.write("fmt ", 12, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(shape.channels, 22);
  h.writeUInt32LE(shape.sampleRate, 24);
  h.writeUInt32LE(shape.sampleRate * blockAlign, 28);
  h.writeUInt16LE(blockAlign, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(Math.min(0xffffffff, dataBytes), 40);
  return h;
}

/** The shape a header says (channels, rate), or undefined when it is not one of ours. */
export function readWavShape(header: Buffer): PcmShape | undefined {
  if (header.length < WAV_HEADER_BYTES) return undefined;
  if (header.toString("ascii", 0, 4) !== "RIFF" || header.toString("ascii", 8, 12) !== "WAVE")
    return undefined;
  const channels = header.readUInt16LE(22);
  if (channels !== 1 && channels !== 2) return undefined;
  return { channels, sampleRate: header.readUInt32LE(24) };
}
