// Whisper's byte-level BPE tokenizer, built from the vocabulary derived from the shipped graph
// (the BpeDecoder node carries the id->token table but no merge list). Encoding uses the
// tiktoken rule: repeatedly merge the adjacent pair whose concatenation has the lowest token id
// (GPT-2 ids above 255 are in merge order), which is how openai/whisper's tiktoken encoder works.
// Pure TypeScript: no fs.
import type { WhisperVocabFile } from "./derive";

// GPT-2 pre-tokenizer pattern.
const PAT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export class WhisperTokenizer {
  readonly vocab: string[];
  readonly tokenToId = new Map<string, number>();
  readonly specialToId = new Map<string, number>();
  readonly idToSpecial = new Map<number, string>();
  private readonly byteDecoder = new Map<string, number>();
  private readonly byteEncoder: string[] = new Array(256);
  private readonly utf8 = new TextDecoder("utf-8", { fatal: false });
  private readonly enc = new TextEncoder();
  private readonly cache = new Map<string, number[]>();

  readonly eot: number;
  readonly sot: number;
  readonly sotPrev: number;
  readonly sotLm: number;
  readonly transcribe: number;
  readonly translate: number;
  readonly noSpeech: number;
  readonly noTimestamps: number;
  readonly timestampBegin: number;
  readonly vocabSize: number;

  constructor(file: WhisperVocabFile) {
    this.vocab = file.vocab;
    file.vocab.forEach((t, i) => this.tokenToId.set(t, i));
    for (const [id, tok] of Object.entries(file.added)) {
      this.specialToId.set(tok, Number(id));
      this.idToSpecial.set(Number(id), tok);
    }
    for (const [cp, b] of Object.entries(file.byteDecoder)) {
      const ch = String.fromCodePoint(Number(cp));
      this.byteDecoder.set(ch, b);
      this.byteEncoder[b] = ch;
    }
    const sp = (t: string) => {
      const id = this.specialToId.get(t);
      if (id === undefined) throw new Error(`tokenizer lacks ${t}`);
      return id;
    };
    this.eot = sp("<|endoftext|>");
    this.sot = sp("<|startoftranscript|>");
    this.sotPrev = sp("<|startofprev|>");
    this.sotLm = sp("<|startoflm|>");
    this.transcribe = sp("<|transcribe|>");
    this.translate = sp("<|translate|>");
    this.noSpeech = this.specialToId.get("<|nospeech|>") ?? sp("<|nocaptions|>");
    this.noTimestamps = sp("<|notimestamps|>");
    this.timestampBegin = sp("<|0.00|>");
    let max = this.vocab.length - 1;
    for (const id of this.idToSpecial.keys()) max = Math.max(max, id);
    this.vocabSize = max + 1;
  }

  isTimestamp(id: number): boolean {
    return id >= this.timestampBegin;
  }

  /** Decodes text tokens (special and timestamp tokens are dropped). */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id >= this.eot) continue;
      const tok = this.vocab[id];
      if (tok === undefined) continue;
      for (const ch of tok) {
        const b = this.byteDecoder.get(ch);
        if (b !== undefined) bytes.push(b);
      }
    }
    return this.utf8.decode(new Uint8Array(bytes));
  }

  /** Raw bytes of a text token (for word splitting on UTF-8 boundaries). */
  tokenBytes(id: number): number[] {
    const tok = this.vocab[id];
    if (tok === undefined || id >= this.eot) return [];
    const out: number[] = [];
    for (const ch of tok) {
      const b = this.byteDecoder.get(ch);
      if (b !== undefined) out.push(b);
    }
    return out;
  }

  /** Encodes plain text (no special tokens) to BPE token ids. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const m of text.matchAll(PAT)) {
      const piece = m[0];
      const cached = this.cache.get(piece);
      if (cached) {
        out.push(...cached);
        continue;
      }
      const ids = this.bpe(piece);
      if (this.cache.size < 10000) this.cache.set(piece, ids);
      out.push(...ids);
    }
    return out;
  }

  private bpe(piece: string): number[] {
    let parts = Array.from(this.enc.encode(piece), (b) => this.byteEncoder[b]!);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.tokenToId.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    return parts.map((p) => {
      const id = this.tokenToId.get(p);
      if (id === undefined) throw new Error(`BPE produced an unknown token ${JSON.stringify(p)}`);
      return id;
    });
  }

  /** openai/whisper's non_speech_tokens(): symbols and music notes to suppress. */
  nonSpeechTokens(): number[] {
    const symbols = [...'"#()*+/:;<=>@[\\]^_`{|}~「」『』'];
    symbols.push(..."<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split(" "));
    const misc = new Set([..."♩♪♫♬♭♮♯"]);
    const result = new Set<number>([this.encode(" -")[0]!, this.encode(" '")[0]!]);
    for (const s of [...symbols, ...misc]) {
      for (const toks of [this.encode(s), this.encode(" " + s)]) {
        if (toks.length === 1 || misc.has(s)) result.add(toks[0]!);
      }
    }
    return [...result].sort((a, b) => a - b);
  }

  /** The default suppress_tokens="-1" set of openai/whisper's DecodingTask. */
  defaultSuppressTokens(): number[] {
    const s = new Set(this.nonSpeechTokens());
    for (const t of [this.transcribe, this.translate, this.sot, this.sotPrev, this.sotLm, this.noSpeech]) s.add(t);
    return [...s].sort((a, b) => a - b);
  }
}
