// Window seams: a window seeks to its last timestamp token, and when that timestamp is a little
// early the next window hears the tail of the previous segment again ("…corn and garbage." /
// "and garbage. For hours…" on long-harvard at 59 s). openai/whisper relies on conditioning on
// the previous text to avoid this; with tiny.en that conditioning loops (models/README.md), so
// the repeated words are cut from the start of the new window's first segment instead.
import type { WhisperTokenizer } from "./tokenizer";

/** The parts of a segment the seam check reads and rewrites. */
export interface SeamSegment {
  start: number;
  end: number;
  text: string;
  tokens: number[];
  words?: { word: string }[];
}

/** Seconds between the previous segment's end and the new one's start within which a repeat
 * counts as the same audio heard twice. */
export const SEAM_GAP_S = 1.0;
const MAX_WORDS = 5;

const norm = (w: string) => w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, "");
const wordsOf = (text: string) => text.split(/\s+/).map(norm).filter(Boolean);

/** How many leading words of `text` repeat the end of `prev`: at least two, or one word of four
 * letters or more that ends a sentence in `text` (a fragment like "garbage."); 0 if none. */
export function repeatedWords(prev: string, text: string): number {
  const a = wordsOf(prev);
  const b = wordsOf(text);
  for (let k = Math.min(MAX_WORDS, a.length, b.length); k >= 1; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = a[a.length - k + i] === b[i];
    if (!same) continue;
    if (k >= 2) return k;
    const first = text.trim().split(/\s+/)[0] ?? "";
    return b[0]!.length >= 4 && /[.!?]["')\]]*$/.test(first) ? 1 : 0;
  }
  return 0;
}

/**
 * Cuts from `cur` (the first segment of a new window) the leading words that repeat the end of
 * `prev` (the last segment of the previous window), when `cur` starts within SEAM_GAP_S of
 * `prev`'s end. Rewrites text, tokens (timestamp tokens kept) and words; returns the number of
 * words cut.
 */
export function trimSeamRepeat(tk: WhisperTokenizer, prev: SeamSegment, cur: SeamSegment): number {
  if (cur.start - prev.end > SEAM_GAP_S) return 0;
  const k = repeatedWords(prev.text, cur.text);
  if (!k) return 0;
  const text = cur.tokens.filter((t) => t < tk.eot);
  const target = wordsOf(cur.text).slice(0, k).join(" ");
  // the shortest token prefix that spells those k words (a word may span several tokens)
  let cut = -1;
  for (let i = 1; i <= text.length; i++) {
    const w = wordsOf(tk.decode(text.slice(0, i)));
    if (w.length === k && w.join(" ") === target) {
      // extend over tokens that only add punctuation to the last word ("garbage" + ".")
      cut = i;
      while (cut < text.length && wordsOf(tk.decode(text.slice(0, cut + 1))).join(" ") === target) cut++;
      break;
    }
    if (w.length > k) break;
  }
  if (cut < 0) return 0;
  const rest = text.slice(cut);
  let seen = 0;
  cur.tokens = cur.tokens.filter((t) => t >= tk.eot || seen++ >= cut);
  cur.text = tk.decode(rest);
  if (cur.words && cur.words.length >= k && cur.words.slice(0, k).map((w) => norm(w.word)).join(" ") === target) cur.words = cur.words.slice(k);
  return k;
}
