// One 30 s window: encoder step (+ prompt), then the token loop with openai/whisper's decoding
// rules (SuppressBlank, SuppressTokens, ApplyTimestampRules), greedy / temperature sampling or
// beam search. Pure TypeScript over the injected onnxruntime module.
import type { OrtSession, OrtTensor, WhisperModel } from "./model";

export const SAMPLE_LEN = 224; // n_text_ctx // 2
export const N_TEXT_CTX = 448;
export const MAX_INITIAL_TIMESTAMP_INDEX = 50; // round(1.0 s / 0.02 s)

export interface EncodedWindow {
  /** Logits after the last prompt token (raw, unfiltered). */
  firstLogits: Float32Array;
  selfKV: OrtTensor[]; // past_{key,value}_self_i after the prompt, in decoder input order
  crossKV: OrtTensor[]; // past_{key,value}_cross_i
  noSpeechProb: number;
  promptLength: number;
}

export interface WindowDecodeOptions {
  temperature: number;
  beamSize?: number;
  /** Collect cross-attention rows of the alignment heads for each sampled token (word timestamps). */
  collectAttention?: boolean;
  /** Called after every sampled token (provisional: a fallback may discard it). */
  onToken?(tokens: readonly number[]): void;
  signal?: AbortSignal;
  rng?: () => number;
  /** Decode after <|notimestamps|>: no timestamp tokens at all. */
  withoutTimestamps?: boolean;
  /** Record this (greedy) decode's steps for fallback attempts. */
  trace?: DecodeTrace;
  /** Skip the decoder while the sampled tokens follow this recorded decode. */
  replay?: DecodeTrace;
}

export interface WindowDecodeResult {
  /** Sampled tokens, eot excluded. */
  tokens: number[];
  /** Log-probability of each sampled token (after the logit filters). */
  tokenLogprobs: number[];
  sumLogprob: number;
  avgLogprob: number;
  temperature: number;
  /** For each entry of tokens plus one for the token after the last (eot): the alignment-head
   * cross-attention logits of the query that produced it, [heads][1500] flattened. */
  attention?: Float32Array[];
}

const NEG_INF = -Infinity;

function lockedRun(model: WhisperModel, s: OrtSession, feeds: Record<string, OrtTensor>, fetches?: string[]) {
  return model.exclusive(() => (fetches ? s.run(feeds, fetches) : s.run(feeds)));
}

export async function encodeWindow(model: WhisperModel, mel: OrtTensor, prompt: number[]): Promise<EncodedWindow> {
  const sotIndex = prompt.lastIndexOf(model.tokenizer.sot);
  const L = model.config.numLayers;
  const selfNames: string[] = [];
  const crossNames: string[] = [];
  for (let i = 0; i < L; i++) {
    selfNames.push(`present_key_self_${i}`, `present_value_self_${i}`);
    crossNames.push(`present_key_cross_${i}`, `present_value_cross_${i}`);
  }
  const ids = new model.ort.Tensor("int32", Int32Array.from(prompt), [1, prompt.length]);
  const t0 = performance.now();
  const out = await lockedRun(model, model.encoder, { encoder_input_ids: mel, decoder_input_ids: ids }, ["logits", ...selfNames, ...crossNames]);
  model.stats.encoderMs += performance.now() - t0;
  const logits = out.logits!.data as Float32Array;
  const V = model.tokenizer.vocabSize;
  // rows: the last positions of the prompt (derive.ts promptLogitsTail; a Hub model's encoder may
  // return every position)
  const rows = logits.length / V;
  const first = rows === 1 ? logits : logits.subarray(logits.length - V);
  // no_speech_prob: softmax of the raw logits at the <|startoftranscript|> position (the last prompt
  // token, or the one before <|notimestamps|>).
  const sotRow = sotIndex - (prompt.length - rows);
  const atSot = sotRow >= 0 && sotRow < rows ? logits.subarray(sotRow * V, (sotRow + 1) * V) : first;
  let max = NEG_INF;
  for (let i = 0; i < V; i++) if (atSot[i]! > max) max = atSot[i]!;
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(atSot[i]! - max);
  const noSpeechProb = Math.exp(atSot[model.tokenizer.noSpeech]! - max) / sum;
  return {
    firstLogits: first,
    selfKV: selfNames.map((n) => out[n]!),
    crossKV: crossNames.map((n) => out[n]!),
    noSpeechProb,
    promptLength: prompt.length,
  };
}

/** The largest filtered logit and its index (the first one among equals). */
export interface FilteredMax {
  max: number;
  argmax: number;
  /** The rules set text logits [0, textFill) to -inf as a block (0: none; eot or timestampBegin). */
  textFill?: number;
}

/** Applies the logit filters in place to `logits` for the next token after `seq` (sampled
 * tokens) and returns their maximum: the scans the timestamp rule needs find it too, so greedy
 * decoding needs no extra pass over the 51,864 logits (~0.2 ms a token saved). */
export function applyRules(model: WhisperModel, logits: Float32Array, seq: readonly number[], withoutTimestamps = false): FilteredMax {
  const tk = model.tokenizer;
  const V = logits.length;
  const tb = tk.timestampBegin;
  const n = seq.length;
  // SuppressBlank
  if (n === 0) {
    logits[220] = NEG_INF; // " "
    logits[tk.eot] = NEG_INF;
  }
  // SuppressTokens
  const sup = model.suppressTokens;
  for (let i = 0; i < sup.length; i++) logits[sup[i]!] = NEG_INF;
  logits[tk.noTimestamps] = NEG_INF;
  if (withoutTimestamps) {
    // <|notimestamps|> mode: text tokens only.
    logits.fill(NEG_INF, tb, V);
    return { ...maxOf(logits, 0, tb), textFill: 0 };
  }
  let textFill = 0;
  // ApplyTimestampRules
  const lastTs = n >= 1 && seq[n - 1]! >= tb;
  const penultTs = n < 2 || seq[n - 2]! >= tb;
  if (lastTs) {
    if (penultTs) logits.fill(NEG_INF, tb, V);
    else { logits.fill(NEG_INF, 0, tk.eot); textFill = tk.eot; }
  }
  let lastTimestamp = -1;
  for (let i = n - 1; i >= 0; i--) if (seq[i]! >= tb) { lastTimestamp = seq[i]!; break; }
  if (lastTimestamp >= 0) {
    const upto = lastTs && !penultTs ? lastTimestamp : lastTimestamp + 1;
    logits.fill(NEG_INF, tb, upto);
  }
  if (n === 0) {
    logits.fill(NEG_INF, 0, tb);
    logits.fill(NEG_INF, tb + MAX_INITIAL_TIMESTAMP_INDEX + 1, V);
    textFill = tb;
  }
  const text = maxOf(logits, 0, tb);
  const ts = maxOf(logits, tb, V);
  if (ts.max === NEG_INF) return { ...text, textFill };
  // If the total probability of timestamps beats every single text token, sample a timestamp.
  let tsSum = 0;
  for (let i = tb; i < V; i++) tsSum += Math.exp(logits[i]! - ts.max);
  if (ts.max + Math.log(tsSum) > text.max) {
    logits.fill(NEG_INF, 0, tb);
    return { ...ts, textFill: tb };
  }
  return { ...text, textFill }; // here ts.max <= log-sum-exp of the timestamps <= text.max
}

function maxOf(x: Float32Array, from: number, to: number): FilteredMax {
  let argmax = from;
  let max = NEG_INF;
  for (let i = from; i < to; i++) if (x[i]! > max) { max = x[i]!; argmax = i; }
  return { max, argmax: max === NEG_INF ? 0 : argmax };
}

/** log(sum(exp(x))) given max(x). */
function logSumExp(x: Float32Array, max: number): number {
  if (max === NEG_INF) return max;
  // terms more than 30 below the maximum add < 1e-13 each: skip their exp()
  const cut = max - 30;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v > cut) s += Math.exp(v - max);
  }
  return max + Math.log(s);
}

/** Raw text logits the decoder's statistics describe: max and sum of exp(logit - max) over
 * [0, timestampBegin) (derive.ts LOGIT_STATS). */
interface TextLogitStats {
  max: number;
  sum: number;
}

const suppressedTextIds = new WeakMap<WhisperModel, Int32Array>();

/** Text-range tokens applyRules suppresses one by one (all steps), without duplicates. */
function suppressedText(model: WhisperModel): Int32Array {
  let ids = suppressedTextIds.get(model);
  if (!ids) {
    const tb = model.tokenizer.timestampBegin;
    const set = new Set<number>([...model.suppressTokens, model.tokenizer.noTimestamps].filter((i) => i < tb));
    ids = Int32Array.from(set);
    suppressedTextIds.set(model, ids);
  }
  return ids;
}

/** sum of exp(raw logit - ref) over the text tokens the rules will suppress one by one; call it
 * before applyRules (`first`: no token sampled yet, so SuppressBlank's two apply too). */
function suppressedMass(model: WhisperModel, raw: Float32Array, first: boolean, ref: number): number {
  const ids = suppressedText(model);
  let s = 0;
  for (let i = 0; i < ids.length; i++) s += Math.exp(raw[ids[i]!]! - ref);
  if (first) {
    const tk = model.tokenizer;
    for (const id of [220, tk.eot]) if (!ids.includes(id)) s += Math.exp(raw[id]! - ref);
  }
  return s;
}

/**
 * log-sum-exp of the filtered logits `x` from the decoder's raw text statistics: the text sum
 * minus what the rules suppressed (`removed`, from suppressedMass), or, after a block fill, the
 * few text logits left; timestamps summed here (1,501 values). Falls back to the full sum when
 * the subtraction would cancel (the suppressed tokens held nearly all the text mass).
 */
function filteredLogSumExp(model: WhisperModel, x: Float32Array, best: FilteredMax, stats: TextLogitStats, removed: number): number {
  const tb = model.tokenizer.timestampBegin;
  const ref = stats.max;
  let sum: number;
  if (!best.textFill) {
    sum = stats.sum - removed;
    if (!(sum > stats.sum * 1e-3)) return logSumExp(x, best.max);
  } else {
    sum = 0;
    for (let i = best.textFill; i < tb; i++) sum += Math.exp(x[i]! - ref);
  }
  for (let i = tb; i < x.length; i++) sum += Math.exp(x[i]! - ref);
  return sum > 0 ? ref + Math.log(sum) : NEG_INF;
}

function argmax(x: Float32Array): number {
  return maxOf(x, 0, x.length).argmax;
}

function sample(x: Float32Array, temperature: number, rng: () => number): number {
  let max = NEG_INF;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  // weights below e^-30 of the largest (< 1e-13 each) are left out: most of the 51,864 tokens,
  // so most exp() calls are skipped (the clips' fallback attempts spent ~37 ms sampling)
  const cut = max - 30 * temperature;
  let s = 0;
  for (let i = 0; i < x.length; i++) if (x[i]! > cut) s += Math.exp((x[i]! - max) / temperature);
  let r = rng() * s;
  for (let i = 0; i < x.length; i++) {
    if (!(x[i]! > cut)) continue;
    const p = Math.exp((x[i]! - max) / temperature);
    if ((r -= p) <= 0) return i;
  }
  return argmax(x);
}

/** Deterministic PRNG (mulberry32) so temperature fallback is reproducible. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface StepState {
  selfKV: OrtTensor[];
}

function decoderFeeds(model: WhisperModel, token: OrtTensor, selfKV: OrtTensor[], crossKV: OrtTensor[]) {
  const feeds: Record<string, OrtTensor> = { input_ids: token };
  const L = model.config.numLayers;
  for (let i = 0; i < L; i++) {
    feeds[`past_key_self_${i}`] = selfKV[2 * i]!;
    feeds[`past_value_self_${i}`] = selfKV[2 * i + 1]!;
    feeds[`past_key_cross_${i}`] = crossKV[2 * i]!;
    feeds[`past_value_cross_${i}`] = crossKV[2 * i + 1]!;
  }
  return feeds;
}

/** The decoder's text-logit statistics (derive.ts LOGIT_STATS), when the graph has them. */
function textStats(out: Record<string, OrtTensor>): TextLogitStats | undefined {
  const m = out.logits_text_max?.data as Float32Array | undefined;
  const s = out.logits_text_sumexp?.data as Float32Array | undefined;
  return m && s && m.length === 1 ? { max: m[0]!, sum: s[0]! } : undefined;
}

function outputSelfKV(model: WhisperModel, out: Record<string, OrtTensor>): OrtTensor[] {
  const kv: OrtTensor[] = [];
  for (let i = 0; i < model.config.numLayers; i++) kv.push(out[`present_key_self_${i}`]!, out[`present_value_self_${i}`]!);
  return kv;
}

/** Alignment heads as (layer, head) of the model's decoder. */
export function alignmentRows(model: WhisperModel, out: Record<string, OrtTensor>, heads: [number, number][]): Float32Array {
  const T = 1500;
  const row = new Float32Array(heads.length * T);
  heads.forEach(([l, h], k) => {
    const qk = out[`cross_qk_${l}`]!.data as Float32Array; // [1, H, 1, T]
    row.set(qk.subarray(h * T, (h + 1) * T), k * T);
  });
  return row;
}

/**
 * What a greedy decode saw, step by step, so that a fallback decode at a higher temperature skips
 * the decoder while its sampled tokens follow the greedy ones: onnxruntime is deterministic, so
 * the same prefix gives the same logits (checked bit for bit). Steps are kept up to a byte budget.
 */
export interface DecodeTrace {
  steps: TraceStep[];
  /** KV tensors the trace holds (not disposed by the decodes that share them). */
  owned: Set<OrtTensor>;
  bytes: number;
}
interface TraceStep {
  /** Filtered logits that chose token i, and their log-sum-exp. */
  x: Float32Array;
  lse: number;
  token: number;
  /** The decoder's answer to `token` (absent for eot, or past the budget). */
  after?: { selfKV: OrtTensor[]; logits: Float32Array; stats?: TextLogitStats; attention?: Float32Array };
}
const TRACE_BUDGET_BYTES = 32 * 1024 * 1024;

export function newTrace(): DecodeTrace {
  return { steps: [], owned: new Set(), bytes: 0 };
}

export function releaseTrace(t: DecodeTrace): void {
  for (const k of t.owned) k.dispose?.();
  t.owned.clear();
  t.steps.length = 0;
}

export async function decodeWindow(model: WhisperModel, enc: EncodedWindow, o: WindowDecodeOptions, heads: [number, number][]): Promise<WindowDecodeResult> {
  if ((o.beamSize ?? 1) > 1 && o.temperature === 0) return beamDecode(model, enc, o, heads);
  const tk = model.tokenizer;
  const V = tk.vocabSize;
  const scratch = new Float32Array(V);
  const maxLen = Math.min(SAMPLE_LEN, N_TEXT_CTX - enc.promptLength);
  const session = o.collectAttention ? await model.decoderAttn() : model.decoder;
  const tokens: number[] = [];
  const tokenLogprobs: number[] = [];
  const attention: Float32Array[] | undefined = o.collectAttention ? [] : undefined;
  const tokenBuf = new Int32Array(1);
  const tokenTensor = new model.ort.Tensor("int32", tokenBuf, [1, 1]);
  const rng = o.rng ?? seededRng(12345);
  const tStart = performance.now();
  model.stats.decodes++;
  let logits: Float32Array = enc.firstLogits;
  let state: StepState = { selfKV: enc.selfKV };
  let sumLogprob = 0;
  let stats: TextLogitStats | undefined; // of `logits` (none for the encoder's)
  const record = o.trace;
  const replay = o.replay?.steps;
  let following = !!replay; // the tokens so far are the trace's
  const disposable = (t: OrtTensor) => !enc.selfKV.includes(t) && !record?.owned.has(t) && !o.replay?.owned.has(t);
  for (;;) {
    if (o.signal?.aborted) break;
    const i = tokens.length;
    const known = following ? replay![i] : undefined;
    let x: Float32Array;
    let lse: number;
    let next: number;
    if (known) {
      x = known.x;
      lse = known.lse;
      next = o.temperature > 0 ? sample(x, o.temperature, rng) : known.token;
    } else {
      // The encoder's logits are shared by fallback attempts: filter a copy; a step's own are ours.
      x = logits.length === V ? logits : logits.subarray(0, V);
      if (x === enc.firstLogits) x = (scratch.set(x), scratch);
      const removed = stats ? suppressedMass(model, x, i === 0, stats.max) : 0;
      const best = applyRules(model, x, tokens, o.withoutTimestamps);
      next = o.temperature > 0 ? sample(x, o.temperature, rng) : best.argmax;
      lse = stats ? filteredLogSumExp(model, x, best, stats, removed) : logSumExp(x, best.max);
      if (record && record.steps.length === i && record.bytes < TRACE_BUDGET_BYTES) {
        record.steps.push({ x, lse, token: next });
        record.bytes += x.byteLength;
      }
    }
    const lp = x[next]! - lse;
    sumLogprob += lp;
    if (next === tk.eot) break;
    tokens.push(next);
    tokenLogprobs.push(lp);
    o.onToken?.(tokens);
    if (tokens.length >= maxLen) break;
    // Still on the greedy path, and the trace knows what comes next: reuse the decoder's answer.
    if (known && next === known.token && known.after && replay![i + 1]) {
      state = { selfKV: known.after.selfKV };
      logits = known.after.logits;
      stats = known.after.stats;
      if (attention) attention.push(known.after.attention!);
      continue;
    }
    following = false;
    tokenBuf[0] = next;
    const ts = performance.now();
    const out = await lockedRun(model, session, decoderFeeds(model, tokenTensor, state.selfKV, enc.crossKV));
    model.stats.decoderMs += performance.now() - ts;
    model.stats.tokens++;
    for (const t of state.selfKV) if (disposable(t)) t.dispose?.();
    state = { selfKV: outputSelfKV(model, out) };
    logits = out.logits!.data as Float32Array;
    stats = textStats(out);
    const row = attention ? alignmentRows(model, out, heads) : undefined;
    if (row) attention!.push(row);
    const rec = record?.steps[i];
    if (rec && rec.token === next && record!.bytes < TRACE_BUDGET_BYTES) {
      rec.after = { selfKV: state.selfKV, logits, stats, attention: row };
      for (const t of state.selfKV) { record!.owned.add(t); record!.bytes += 4 * t.dims.reduce((a, b) => a * b, 1); } // dims: reading .data may copy
    }
  }
  for (const t of state.selfKV) if (disposable(t)) t.dispose?.();
  model.stats.totalDecodeMs += performance.now() - tStart;
  // attention[k] is the query at token k (it predicts token k+1); the query predicting token 0 is
  // the prompt's last position, which the encoder step does not expose: in timestamp mode token 0
  // is always a timestamp, so a placeholder keeps the indexing (attention[k] <-> tokens[k]).
  if (attention) attention.unshift(new Float32Array(heads.length * 1500));
  return { tokens, tokenLogprobs, sumLogprob, avgLogprob: sumLogprob / (tokens.length + 1), temperature: o.temperature, attention };
}

// ---- beam search (optional, temperature 0 only) --------------------------------------------

interface Beam {
  tokens: number[];
  lps: number[];
  logprob: number;
  selfKV: OrtTensor[];
  attention?: Float32Array[];
}

function tileKV(model: WhisperModel, kv: OrtTensor[], n: number): OrtTensor[] {
  return kv.map((t) => {
    const d = t.data as Float32Array;
    const out = new Float32Array(d.length * n);
    for (let b = 0; b < n; b++) out.set(d, b * d.length);
    return new model.ort.Tensor("float32", out, [n, ...t.dims.slice(1)]);
  });
}

function stackKV(model: WhisperModel, parts: { kv: OrtTensor[]; index: number }[]): OrtTensor[] {
  const n = parts.length;
  return parts[0]!.kv.map((t0, j) => {
    const per = (t0.data as Float32Array).length / t0.dims[0]!;
    const out = new Float32Array(per * n);
    parts.forEach((p, b) => {
      const src = p.kv[j]!.data as Float32Array;
      out.set(src.subarray(p.index * per, (p.index + 1) * per), b * per);
    });
    return new model.ort.Tensor("float32", out, [n, ...t0.dims.slice(1)]);
  });
}

/** openai/whisper's BeamSearchDecoder (patience 1, length_penalty None -> sum logprob / length). */
async function beamDecode(model: WhisperModel, enc: EncodedWindow, o: WindowDecodeOptions, heads: [number, number][]): Promise<WindowDecodeResult> {
  const tk = model.tokenizer;
  const V = tk.vocabSize;
  const B = o.beamSize!;
  const maxLen = Math.min(SAMPLE_LEN, N_TEXT_CTX - enc.promptLength);
  const session = o.collectAttention ? await model.decoderAttn() : model.decoder;
  const crossB = tileKV(model, enc.crossKV, B);
  const scratch = new Float32Array(V);
  let beams: Beam[] = [{ tokens: [], lps: [], logprob: 0, selfKV: enc.selfKV, attention: o.collectAttention ? [new Float32Array(heads.length * 1500)] : undefined }];
  let logitsPerBeam: Float32Array[] = [enc.firstLogits];
  const finished: { tokens: number[]; lps: number[]; logprob: number; attention?: Float32Array[] }[] = [];
  for (let step = 0; step < maxLen && finished.length < B; step++) {
    if (o.signal?.aborted) break;
    const cands: { beam: number; token: number; logprob: number; lp: number }[] = [];
    beams.forEach((b, bi) => {
      scratch.set(logitsPerBeam[bi]!.subarray(0, V));
      const lse = logSumExp(scratch, applyRules(model, scratch, b.tokens, o.withoutTimestamps).max);
      // top B+1 tokens of this beam
      const top: [number, number][] = [];
      for (let i = 0; i < V; i++) {
        const v = scratch[i]!;
        if (v === NEG_INF) continue;
        if (top.length < B + 1) { top.push([i, v]); top.sort((a, c) => c[1] - a[1]); }
        else if (v > top[B]![1]) { top[B] = [i, v]; top.sort((a, c) => c[1] - a[1]); }
      }
      for (const [t, v] of top) cands.push({ beam: bi, token: t, logprob: b.logprob + v - lse, lp: v - lse });
    });
    cands.sort((a, c) => c.logprob - a.logprob);
    const next: { beam: number; token: number; logprob: number; lp: number }[] = [];
    for (const c of cands) {
      if (c.token === tk.eot) {
        if (finished.length < B) finished.push({ tokens: beams[c.beam]!.tokens, lps: beams[c.beam]!.lps, logprob: c.logprob, attention: beams[c.beam]!.attention });
      } else next.push(c);
      if (next.length === B) break;
    }
    if (finished.length >= B || next.length === 0) break;
    // run the decoder on all surviving beams as one batch
    const stackedSelf = stackKV(model, next.map((c) => ({ kv: beams[c.beam]!.selfKV, index: beams[c.beam] === beams[0] && step === 0 ? 0 : beamIndex(beams, c.beam) })));
    const n = next.length;
    const ids = new model.ort.Tensor("int32", Int32Array.from(next.map((c) => c.token)), [n, 1]);
    const cross = n === B ? crossB : crossB.map((t) => new model.ort.Tensor("float32", (t.data as Float32Array).subarray(0, ((t.data as Float32Array).length / B) * n), [n, ...t.dims.slice(1)]));
    const out = await lockedRun(model, session, decoderFeeds(model, ids, stackedSelf, cross));
    const newSelf = outputSelfKV(model, out);
    const logits = out.logits!.data as Float32Array;
    const rows = o.collectAttention ? heads.length * 1500 : 0;
    const attnAll = o.collectAttention ? batchedAlignment(out, heads, n) : undefined;
    beams = next.map((c, k) => ({
      tokens: [...beams[c.beam]!.tokens, c.token],
      lps: [...beams[c.beam]!.lps, c.lp],
      logprob: c.logprob,
      selfKV: newSelf,
      attention: attnAll ? [...beams[c.beam]!.attention!, attnAll.subarray(k * rows, (k + 1) * rows)] : undefined,
      _index: k,
    })) as Beam[];
    logitsPerBeam = next.map((_, k) => logits.subarray(k * V, (k + 1) * V));
  }
  if (finished.length === 0) for (const b of beams) finished.push({ tokens: b.tokens, lps: b.lps, logprob: b.logprob, attention: b.attention });
  // length_penalty None: rank by logprob / length
  let best = finished[0]!;
  for (const f of finished) if (f.logprob / Math.max(1, f.tokens.length) > best.logprob / Math.max(1, best.tokens.length)) best = f;
  return { tokens: best.tokens, tokenLogprobs: best.lps, sumLogprob: best.logprob, avgLogprob: best.logprob / (best.tokens.length + 1), temperature: 0, attention: best.attention };
}

function beamIndex(beams: Beam[], i: number): number {
  return (beams[i] as Beam & { _index?: number })._index ?? 0;
}

function batchedAlignment(out: Record<string, OrtTensor>, heads: [number, number][], n: number): Float32Array {
  const T = 1500;
  const rows = new Float32Array(n * heads.length * T);
  for (let b = 0; b < n; b++) {
    heads.forEach(([l, h], k) => {
      const t = out[`cross_qk_${l}`]!;
      const H = t.dims[1]!;
      const d = t.data as Float32Array;
      rows.set(d.subarray((b * H + h) * T, (b * H + h + 1) * T), (b * heads.length + k) * T);
    });
  }
  return rows;
}
