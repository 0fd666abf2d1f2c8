// Length of an MP4/M4A file from its movie header (moov/mvhd), without decoding: the MP4 decoder
// only returns samples once it has the whole file, so a length limit must be checked up front.
// Plain TypeScript (browser-safe).

/** Seconds the movie header gives, or null when there is no readable moov/mvhd. */
export function mp4Seconds(b: Uint8Array): number | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const moov = findBox(b, v, 0, b.length, "moov");
  if (!moov) return null;
  const mvhd = findBox(b, v, moov.body, moov.end, "mvhd");
  if (!mvhd || mvhd.body + 4 > mvhd.end) return null;
  const version = b[mvhd.body]!;
  // version 0: 32-bit creation/modification times and duration; version 1: 64-bit ones
  const at = mvhd.body + 4 + (version === 1 ? 16 : 8);
  if (at + (version === 1 ? 12 : 8) > mvhd.end) return null;
  const timescale = v.getUint32(at);
  const duration = version === 1 ? Number(v.getBigUint64(at + 4)) : v.getUint32(at + 4);
  return timescale > 0 ? duration / timescale : null;
}

function findBox(b: Uint8Array, v: DataView, from: number, to: number, type: string): { body: number; end: number } | null {
  let pos = from;
  while (pos + 8 <= to) {
    let size = v.getUint32(pos);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > to) return null;
      size = Number(v.getBigUint64(pos + 8));
      header = 16;
    } else if (size === 0) size = to - pos; // to the end of the enclosing box
    if (size < header) return null;
    const name = String.fromCharCode(b[pos + 4]!, b[pos + 5]!, b[pos + 6]!, b[pos + 7]!);
    if (name === type) return { body: pos + header, end: Math.min(to, pos + size) };
    pos += size;
  }
  return null;
}
