// Word-level timestamps by cross-attention DTW, after openai/whisper timing.py: the decoder's
// alignment heads' cross-attention (exposed by decoder-attn.onnx) is softmaxed over the window's
// real frames, standardised per frame, median-filtered (width 7), averaged over heads, and
// aligned to the text tokens by dynamic time warping; word starts/ends are the DTW jumps.
// Difference from openai: the attention rows are collected while decoding (the queries see the
// timestamp tokens too) instead of a second forward pass over the text tokens alone.
import type { WindowDecodeResult } from "./decoding";
import type { WhisperModel } from "./model";
import type { Segment, Word } from "./transcribe";
import type { LogMel } from "./mel";

const TOKENS_PER_SECOND = 50; // audio-encoder positions per second
const PREPEND_PUNCTUATIONS = "\"'“¿([{-";
const APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、";
const SENTENCE_END = ".。!！?？";
const ASCII_PUNCT = new Set([..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]);

interface Timing { word: string; tokens: number[]; start: number; end: number; probability: number }

export function dtw(x: Float32Array, N: number, M: number): { textIndices: number[]; timeIndices: number[] } {
  const W = M + 1;
  const cost = new Float64Array((N + 1) * W).fill(Infinity);
  const trace = new Int8Array((N + 1) * W).fill(-1);
  cost[0] = 0;
  for (let j = 1; j <= M; j++) {
    for (let i = 1; i <= N; i++) {
      const c0 = cost[(i - 1) * W + j - 1]!;
      const c1 = cost[(i - 1) * W + j]!;
      const c2 = cost[i * W + j - 1]!;
      let c: number, t: number;
      if (c0 < c1 && c0 < c2) { c = c0; t = 0; } else if (c1 < c0 && c1 < c2) { c = c1; t = 1; } else { c = c2; t = 2; }
      cost[i * W + j] = x[(i - 1) * M + j - 1]! + c;
      trace[i * W + j] = t;
    }
  }
  for (let j = 0; j <= M; j++) trace[j] = 2;
  for (let i = 0; i <= N; i++) trace[i * W] = 1;
  let i = N, j = M;
  const ti: number[] = [], tj: number[] = [];
  while (i > 0 || j > 0) {
    ti.push(i - 1);
    tj.push(j - 1);
    const t = trace[i * W + j];
    if (t === 0) { i--; j--; } else if (t === 1) i--; else if (t === 2) j--; else throw new Error("dtw: bad trace");
  }
  return { textIndices: ti.reverse(), timeIndices: tj.reverse() };
}

/** Width-7 median filter along the last axis (openai's MEDFILT_WIDTH), reflect padding (as its
 * median_filter), as a 13-comparison selection network: sorting a 7-array per element took
 * ~0.3 s a 30 s window (8 heads x ~100 tokens x 1500 frames). */
export function medianFilter7(row: Float32Array): Float32Array {
  const n = row.length;
  if (n <= 3) return row;
  const out = new Float32Array(n);
  const at = (j: number) => row[j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j]!;
  for (let i = 0; i < n; i++) {
    const edge = i < 3 || i > n - 4;
    let p0 = edge ? at(i - 3) : row[i - 3]!, p1 = edge ? at(i - 2) : row[i - 2]!, p2 = edge ? at(i - 1) : row[i - 1]!;
    let p3 = row[i]!, p4 = edge ? at(i + 1) : row[i + 1]!, p5 = edge ? at(i + 2) : row[i + 2]!, p6 = edge ? at(i + 3) : row[i + 3]!;
    let t: number;
    // N. Devillard's opt_med7 network: each line orders one pair (a <= b)
    if (p0 > p5) { t = p0; p0 = p5; p5 = t; }
    if (p0 > p3) { t = p0; p0 = p3; p3 = t; }
    if (p1 > p6) { t = p1; p1 = p6; p6 = t; }
    if (p2 > p4) { t = p2; p2 = p4; p4 = t; }
    if (p0 > p1) { t = p0; p0 = p1; p1 = t; }
    if (p3 > p5) { t = p3; p3 = p5; p5 = t; }
    if (p2 > p6) { t = p2; p2 = p6; p6 = t; }
    if (p2 > p3) { t = p2; p2 = p3; p3 = t; }
    if (p3 > p6) { t = p3; p3 = p6; p6 = t; }
    if (p4 > p5) { t = p4; p4 = p5; p5 = t; }
    if (p1 > p4) { t = p1; p1 = p4; p4 = t; }
    if (p1 > p3) { t = p1; p1 = p3; p3 = t; }
    if (p3 > p4) { t = p3; p3 = p4; p4 = t; }
    out[i] = p3;
  }
  return out;
}

/** openai split_tokens_on_spaces for English. */
function splitToWordTokens(model: WhisperModel, tokens: number[]): { words: string[]; wordTokens: number[][] } {
  const tk = model.tokenizer;
  // split on unicode: accumulate until the decoded text is whole UTF-8
  const subwords: string[] = [];
  const subTokens: number[][] = [];
  let cur: number[] = [];
  for (const t of tokens) {
    cur.push(t);
    const decoded = t >= tk.eot ? (tk.idToSpecial.get(t) ?? "") : tk.decode(cur);
    if (t >= tk.eot || !decoded.includes("\ufffd")) {
      subwords.push(t >= tk.eot ? decoded : tk.decode(cur));
      subTokens.push(cur);
      cur = [];
    }
  }
  const words: string[] = [];
  const wordTokens: number[][] = [];
  subwords.forEach((sw, i) => {
    const special = subTokens[i]![0]! >= tk.eot;
    const withSpace = sw.startsWith(" ");
    const punct = ASCII_PUNCT.has(sw.trim()) && sw.trim().length === 1;
    if (special || withSpace || punct || words.length === 0) {
      words.push(sw);
      wordTokens.push([...subTokens[i]!]);
    } else {
      words[words.length - 1] += sw;
      wordTokens[wordTokens.length - 1]!.push(...subTokens[i]!);
    }
  });
  return { words, wordTokens };
}

function mergePunctuations(a: Timing[]): void {
  // prepend punctuations to the following word
  let i = a.length - 2, j = a.length - 1;
  while (i >= 0) {
    const prev = a[i]!, next = a[j]!;
    if (prev.word.startsWith(" ") && PREPEND_PUNCTUATIONS.includes(prev.word.trim()) && prev.word.trim()) {
      next.word = prev.word + next.word;
      next.tokens = [...prev.tokens, ...next.tokens];
      prev.word = "";
      prev.tokens = [];
    } else j = i;
    i--;
  }
  // append punctuations to the previous word
  i = 0; j = 1;
  while (j < a.length) {
    const prev = a[i]!, next = a[j]!;
    if (!prev.word.endsWith(" ") && next.word && APPEND_PUNCTUATIONS.includes(next.word) ) {
      prev.word = prev.word + next.word;
      prev.tokens = [...prev.tokens, ...next.tokens];
      next.word = "";
      next.tokens = [];
    } else i = j;
    j++;
  }
}

export interface WordTimingContext {
  timeOffset: number;
  /** Real (unpadded) mel frames in the window. */
  numFrames: number;
  heads: [number, number][];
  /** End of the last speech so far (seconds, absolute), carried across windows; updated here. */
  lastSpeech: { t: number };
  /** The whole audio's log-mel, for snapping word edges that DTW placed over silence. */
  mel?: LogMel;
}

/** Mean log-mel per 10 ms frame above which a frame counts as sound (normalised units above the
 * spectrogram's silence floor; 0.35 is about 14 dB). */
const VOICED_MARGIN = 0.35;

function frameVoiced(mel: LogMel, f: number): boolean {
  let s = 0;
  for (let k = 0; k < mel.nMels; k++) s += mel.data[k * mel.frames + f]!;
  return s / mel.nMels > mel.silence + VOICED_MARGIN;
}

/** Moves a segment's first word start forward over leading silence and its last word end back
 * over trailing silence (DTW tends to let the first word of a window absorb a pause). */
function snapToSound(words: Word[], mel: LogMel): void {
  if (!words.length) return;
  const first = words[0]!;
  const f0 = Math.max(0, Math.round(first.start * 100));
  const fEnd = Math.min(mel.frames, Math.round(first.end * 100) - 5);
  let f = f0;
  while (f < fEnd && !frameVoiced(mel, f)) f++;
  if (f > f0 && f < fEnd) first.start = round2(f / 100);
  const last = words[words.length - 1]!;
  const l0 = Math.min(mel.frames - 1, Math.round(last.end * 100) - 1);
  const lStart = Math.round(last.start * 100) + 5;
  let l = l0;
  while (l > lStart && !frameVoiced(mel, l)) l--;
  if (l < l0 && l > lStart) last.end = round2((l + 1) / 100);
}

/** Adds `words` to the window's segments; `offsets[i]` is segment i's first index in result.tokens. */
export function addWordTimestamps(model: WhisperModel, segments: Segment[], offsets: number[], result: WindowDecodeResult, c: WordTimingContext): void {
  const tk = model.tokenizer;
  const att = result.attention;
  if (!att || segments.length === 0) return;
  // text tokens of the window (in order) with their index in result.tokens
  const idx: number[] = [];
  result.tokens.forEach((t, k) => { if (t < tk.eot) idx.push(k); });
  if (idx.length === 0) return;
  const textTokens = idx.map((k) => result.tokens[k]!);
  const rows = idx.map((k) => att[k]!);
  rows.push(att[idx[idx.length - 1]! + 1] ?? att[att.length - 1]!); // the row predicting what follows (eot)
  const R = rows.length;
  const H = c.heads.length;
  const T = Math.max(1, Math.min(1500, Math.floor(c.numFrames / 2)));
  // per head: softmax over the first T frames, then standardise each frame over the rows
  const matrix = new Float32Array(R * T);
  const w = new Float32Array(R * T);
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < R; r++) {
      const src = rows[r]!.subarray(h * 1500, h * 1500 + T);
      let max = -Infinity;
      for (let t = 0; t < T; t++) if (src[t]! > max) max = src[t]!;
      let sum = 0;
      for (let t = 0; t < T; t++) { const e = Math.exp(src[t]! - max); w[r * T + t] = e; sum += e; }
      for (let t = 0; t < T; t++) w[r * T + t]! /= sum;
    }
    for (let t = 0; t < T; t++) {
      let mean = 0;
      for (let r = 0; r < R; r++) mean += w[r * T + t]!;
      mean /= R;
      let v = 0;
      for (let r = 0; r < R; r++) { const d = w[r * T + t]! - mean; v += d * d; }
      const std = Math.sqrt(v / R) || 1;
      for (let r = 0; r < R; r++) w[r * T + t] = (w[r * T + t]! - mean) / std;
    }
    for (let r = 0; r < R; r++) {
      const f = medianFilter7(w.subarray(r * T, (r + 1) * T));
      for (let t = 0; t < T; t++) matrix[r * T + t]! += f[t]! / H;
    }
  }
  for (let i = 0; i < matrix.length; i++) matrix[i] = -matrix[i]!;
  const { textIndices, timeIndices } = dtw(matrix, R, T);

  const { words, wordTokens } = splitToWordTokens(model, [...textTokens, tk.eot]);
  if (wordTokens.length <= 1) return;
  const boundaries = [0];
  for (let i = 0; i < wordTokens.length - 1; i++) boundaries.push(boundaries[i]! + wordTokens[i]!.length);
  const jumpTimes: number[] = [];
  for (let i = 0; i < textIndices.length; i++) if (i === 0 || textIndices[i] !== textIndices[i - 1]) jumpTimes.push(timeIndices[i]! / TOKENS_PER_SECOND);
  const probs = idx.map((k) => Math.exp(result.tokenLogprobs[k] ?? 0));
  const timings: Timing[] = [];
  for (let i = 0; i < boundaries.length - 1; i++) {
    const a = boundaries[i]!, b = boundaries[i + 1]!;
    let p = 0;
    for (let k = a; k < b; k++) p += probs[k]!;
    timings.push({ word: words[i]!, tokens: wordTokens[i]!, start: jumpTimes[a] ?? 0, end: jumpTimes[b] ?? jumpTimes[jumpTimes.length - 1] ?? 0, probability: p / Math.max(1, b - a) });
  }

  // truncate long words at sentence boundaries (openai: max 2x the median duration, <= 1.4 s)
  const durs = timings.map((t) => t.end - t.start).filter((d) => d > 0).sort((x, y) => x - y);
  let median = durs.length ? durs[durs.length >> 1]! : 0;
  median = Math.min(0.7, median);
  const maxDur = median * 2;
  if (durs.length) {
    for (let i = 1; i < timings.length; i++) {
      const t = timings[i]!;
      if (t.end - t.start > maxDur) {
        if (SENTENCE_END.includes(t.word)) t.end = t.start + maxDur;
        else if (SENTENCE_END.includes(timings[i - 1]!.word)) t.start = t.end - maxDur;
      }
    }
  }
  mergePunctuations(timings);

  // hand the words to their segments (by text-token count)
  let wi = 0;
  let lastSpeech = c.lastSpeech.t;
  segments.forEach((seg, si) => {
    const segTextTokens = seg.tokens.filter((t) => t < tk.eot).length;
    const out: Word[] = [];
    let saved = 0;
    while (wi < timings.length && saved < segTextTokens) {
      const t = timings[wi++]!;
      if (t.word) {
        out.push({
          word: t.word,
          start: round2(c.timeOffset + t.start),
          end: round2(c.timeOffset + t.end),
          probability: Math.round(t.probability * 1000) / 1000,
        });
      }
      saved += t.tokens.length;
    }
    void offsets[si];
    if (out.length) {
      const first = out[0]!, second = out[1];
      if (first.end - lastSpeech > median * 4 && (first.end - first.start > maxDur || (second && second.end - first.start > maxDur * 2))) {
        if (second && second.end - second.start > maxDur) {
          const boundary = Math.max(second.end / 2, second.end - maxDur);
          first.end = second.start = round2(boundary);
        }
        first.start = round2(Math.max(0, first.end - maxDur));
      }
      if (seg.start < first.end && seg.start - 0.5 > first.start) first.start = round2(Math.max(0, Math.min(first.end - median, seg.start)));
      else seg.start = first.start;
      const last = out[out.length - 1]!;
      if (seg.end > last.start && seg.end + 0.5 < last.end) last.end = round2(Math.max(last.start + median, seg.end));
      else seg.end = last.end;
      if (c.mel) {
        snapToSound(out, c.mel);
        seg.start = Math.max(seg.start, out[0]!.start);
        seg.end = Math.min(seg.end, out[out.length - 1]!.end);
      }
      lastSpeech = seg.end;
    }
    seg.words = out;
  });
  c.lastSpeech.t = lastSpeech;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
