// Identify a container/codec from its first bytes; file names and client MIME types are not trusted.
export type AudioFormat = "wav" | "mp3" | "flac" | "ogg-vorbis" | "ogg-opus" | "ogg-flac" | "mp4" | "aac";

const ascii = (b: Uint8Array, at: number, len: number) => String.fromCharCode(...b.subarray(at, at + len));

export function sniffFormat(b: Uint8Array): AudioFormat | null {
  if (b.length < 4) return null;
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WAVE") return "wav";
  if (ascii(b, 0, 4) === "fLaC") return "flac";
  if (ascii(b, 0, 4) === "OggS") {
    // The first page's packet names the codec.
    const head = ascii(b, 28, 8);
    if (head.startsWith("OpusHead")) return "ogg-opus";
    if (head.slice(1, 7) === "vorbis") return "ogg-vorbis";
    if (head.slice(1, 5) === "FLAC") return "ogg-flac";
    return null;
  }
  if (ascii(b, 4, 4) === "ftyp") return "mp4";
  if (ascii(b, 0, 3) === "ID3") return "mp3";
  if (b[0] === 0xff && (b[1]! & 0xe0) === 0xe0) {
    // 0xFFF with layer bits 00 is ADTS AAC; otherwise an MPEG audio frame.
    return (b[1]! & 0x06) === 0 ? "aac" : "mp3";
  }
  return null;
}
