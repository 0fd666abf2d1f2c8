// gzip/zlib compression ratio of a text, as openai/whisper's get_compression_ratio (zlib.compress).
// Uses CompressionStream("deflate") (zlib format), present in Bun, Node >= 18 and browsers.
const enc = new TextEncoder();

export async function compressionRatio(text: string): Promise<number> {
  const bytes = enc.encode(text);
  if (bytes.length === 0) return 0;
  const cs = new CompressionStream("deflate");
  const writer = cs.writable.getWriter();
  void writer.write(bytes);
  void writer.close();
  let n = 0;
  const reader = cs.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
  }
  return bytes.length / n;
}
