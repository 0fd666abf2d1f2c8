// Takes the all-in-one Olive Whisper graph (log-mel -> com.microsoft BeamSearch{encoder, decoder}
// -> ai.onnx.contrib BpeDecoder) apart into what our own decoder loop needs:
//   mel.onnx      audio frames [F, 400] -> log10 mel [F, 80] (STFT as MatMuls, graph window/filters)
//   encoder.onnx  encoder_input_ids (log-mel) + decoder_input_ids (prompt) -> logits, caches
//   decoder.onnx  one token + past self KV + cross KV -> logits + present self KV
//   decoder-attn.onnx  the same plus cross-attention logits (QK^T/sqrt(d)) of the layers that
//                 hold alignment heads, for word timestamps (DTW)
//   tokenizer.json the byte-level BPE vocabulary from the BpeDecoder node's attributes
// Works on the protobuf wire format directly: tensor payloads are copied as opaque bytes.
// Pure: bytes in, bytes out (no fs), so the same code could run in a browser.
import * as W from "./onnx-wire";

export interface DerivedWhisperAssets {
  /** frames [F, 400] (raw audio frames, hop 160) -> log10 mel power [F, 80]: the graph's own Hann
   * window and mel filterbank, with the STFT written as two MatMuls (onnxruntime's STFT runs a
   * naive DFT for n_fft=400 and took ~130 ms per 30 s window; this takes a few ms). */
  mel: Uint8Array;
  encoder: Uint8Array;
  decoder: Uint8Array;
  decoderAttn: Uint8Array;
  /** encoder, decoder and decoder-attn in one graph, chosen per run by an If on `mode` (see
   * combinedLayout): one session, so one thread pool and one copy of the shared weights. */
  combined: Uint8Array;
  tokenizer: WhisperVocabFile;
  config: WhisperConfigFile;
}

export interface WhisperVocabFile {
  /** id -> byte-level BPE token string (GPT-2 byte-to-unicode alphabet). */
  vocab: string[];
  /** id -> special/added token text (<|endoftext|>, timestamps, ...). */
  added: Record<string, string>;
  /** unicode code point (of the byte alphabet) -> byte value. */
  byteDecoder: Record<string, number>;
}

export interface WhisperConfigFile {
  nMels: number;
  eos: number;
  sot: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Layers whose cross-attention logits decoder-attn.onnx exposes as cross_qk_<layer>. */
  attnLayers: number[];
}

/** Layers of whisper-tiny.en's decoder that hold alignment heads (openai/whisper _ALIGNMENT_HEADS). */
export const TINY_EN_ALIGNMENT_HEADS: [number, number][] = [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]];

const PRODUCER = "stemscribe-derive";

function modelFrom(original: W.OnnxModel, graphParts: Uint8Array[]): Uint8Array {
  return W.modelRecord(graphParts, original.fields.filter((f) => f.field === 8).map((f) => f.raw), PRODUCER);
}

/** The outer graph's initializer records that the subgraphs read (each once). */
function outerInitializers(original: W.OnnxModel, subs: Uint8Array[]): Uint8Array[] {
  const free = new Set(subs.flatMap((sub) => [...W.freeInputs(W.parseGraph(sub))]));
  return [...free].map((name) => {
    const rec = original.graph.initializers.get(name);
    if (!rec) throw new Error(`subgraph reads ${name}, which the outer graph does not define as an initializer`);
    return rec.raw;
  });
}

/** The subgraph as a standalone model, with the outer initializers it reads copied in. */
function standaloneSubgraph(original: W.OnnxModel, sub: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  return modelFrom(original, [sub, ...outerInitializers(original, [sub]), ...extra]);
}

function parseTable(s: string): [string, string][] {
  return s.split("\n").filter((l) => l.length).map((l) => {
    const t = l.indexOf("\t");
    return [l.slice(0, t), l.slice(t + 1)];
  });
}

export function deriveWhisperAssets(modelBytes: Uint8Array): DerivedWhisperAssets {
  const m = W.parseModel(modelBytes);
  const g = m.graph;
  const beam = g.nodes.find((n) => n.opType === "BeamSearch");
  const bpe = g.nodes.find((n) => n.opType === "BpeDecoder");
  if (!beam || !bpe) throw new Error("not an Olive all-in-one Whisper graph (no BeamSearch/BpeDecoder node)");
  const shippedEncSub = W.attrGraph(beam.attributes.get("encoder"));
  const decSub = W.attrGraph(beam.attributes.get("decoder"));
  if (!shippedEncSub || !decSub) throw new Error("BeamSearch node lacks encoder/decoder subgraphs");
  const encSub = promptLogitsTail(flashEncoderAttention(shippedEncSub, m.graph.initializers));
  const melName = beam.inputs[0]!;

  // --- log-mel: take the Hann window and the mel filterbank from the graph's Constant nodes.
  const constants = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const n of g.nodes) {
    if (n.opType !== "Constant") continue;
    const t = n.attributes.get("value")?.find((x) => x.field === 5);
    if (!t) continue;
    const tf = W.readFields(t.bytes!);
    const raw = tf.find((x) => x.field === 9)?.bytes;
    if (tf.find((x) => x.field === 2)?.varint !== 1n || !raw) continue;
    constants.set(n.outputs[0]!, { dims: tf.filter((x) => x.field === 1).map((x) => Number(x.varint)), data: new Float32Array(raw.slice().buffer) });
  }
  const stft = g.nodes.find((n) => n.opType === "STFT");
  const window = stft ? constants.get(stft.inputs[2]!) : undefined;
  const filters = [...constants.values()].find((c) => c.dims.length === 2 && c.dims[1] === 201);
  if (!window || window.data.length !== 400 || !filters) throw new Error("log-mel part of the graph not recognised (STFT window / mel filters)");
  const mel = buildMelModel(m, window.data, filters.data, filters.dims[0]!);

  const encoder = standaloneSubgraph(m, encSub);
  // --- tokenizer (the timestamp range bounds the logit statistics below)
  const idVocab = W.attrString(bpe.attributes.get("id_vocab")) ?? "";
  const vocab = idVocab.split("\n");
  if (vocab[vocab.length - 1] === "") vocab.pop();
  const added: Record<string, string> = {};
  for (const [id, tok] of parseTable(W.attrString(bpe.attributes.get("added_tokens")) ?? "")) added[id] = tok;
  const byteDecoder: Record<string, number> = {};
  for (const [cp, b] of parseTable(W.attrString(bpe.attributes.get("byte_decoder")) ?? "")) byteDecoder[cp] = Number(b);
  const timestampBegin = Number(Object.keys(added).find((id) => added[id] === "<|0.00|>"));
  if (!(timestampBegin > 0)) throw new Error("the vocabulary has no <|0.00|> token");

  const stats = logitStatistics(timestampBegin);
  const decoder = standaloneSubgraph(m, decSub, stats);

  // --- decoder-attn: expose cross-attention logits of the layers with alignment heads.
  const dg = W.parseGraph(decSub);
  const numHeads = W.attrInt(dg.nodes.find((n) => n.opType === "MultiHeadAttention")?.attributes.get("num_heads")) ?? 6;
  const crossNodes = dg.nodes.filter((n) => n.opType === "MultiHeadAttention" && /^past_key_cross_\d+$/.test(n.inputs[1] ?? ""));
  const numLayers = crossNodes.length;
  const attnLayers = [...new Set(TINY_EN_ALIGNMENT_HEADS.map(([l]) => l))].filter((l) => l < numLayers);
  const extra: Uint8Array[] = [];
  // Query bias: the first third of the packed qkv bias (an initializer of the subgraph or outer graph).
  const dModel = numHeads * 64;
  extra.push(W.int64InitRecord("sx_qshape", [4], [0, -1, numHeads, 64]));
  extra.push(W.int64InitRecord("sx_bias_start", [1], [0]));
  extra.push(W.int64InitRecord("sx_bias_end", [1], [dModel]));
  for (const l of attnLayers) {
    const n = crossNodes.find((x) => x.inputs[1] === `past_key_cross_${l}`)!;
    const [q, k, , bias] = n.inputs;
    const p = `sx_l${l}_`;
    const out = `cross_qk_${l}`;
    if (bias) {
      extra.push(W.nodeRecord("Slice", [bias, "sx_bias_start", "sx_bias_end"], [p + "qb"], p + "slice"));
      extra.push(W.nodeRecord("Add", [q!, p + "qb"], [p + "q"], p + "addb"));
    }
    extra.push(W.nodeRecord("Reshape", [bias ? p + "q" : q!, "sx_qshape"], [p + "q4"], p + "reshape"));
    // K·qᵀ rather than q·Kᵀ: Kᵀ would be a copy of the whole [B,H,1500,64] cache every step
    // (~0.5 ms a step for 3 layers); the [B,H,1500,1] product is transposed for free.
    extra.push(W.nodeRecord("Transpose", [p + "q4"], [p + "qt"], p + "tq", [W.attrIntsRecord("perm", [0, 2, 3, 1])]));
    extra.push(W.nodeRecord("MatMul", [k!, p + "qt"], [p + "kq"], p + "mm"));
    extra.push(W.nodeRecord("Transpose", [p + "kq"], [p + "qk"], p + "tqk", [W.attrIntsRecord("perm", [0, 1, 3, 2])]));
    extra.push(W.nodeRecord("Mul", [p + "qk", "sx_scale"], [out], p + "scale"));
    extra.push(W.floatValueInfoRecord(12, out));
  }
  const scale = new Uint8Array(4);
  new DataView(scale.buffer).setFloat32(0, 1 / Math.sqrt(64), true);
  extra.push(W.lenField(5, [W.varintField(2, 1 /* FLOAT */), W.stringField(8, "sx_scale"), W.lenField(9, [scale])]));
  const decoderAttn = standaloneSubgraph(m, decSub, [...stats, ...extra]);
  const combined = buildCombinedModel(m, encSub, decSub, stats, extra, numLayers, attnLayers);

  return {
    mel,
    encoder,
    decoder,
    decoderAttn,
    combined,
    tokenizer: { vocab, added, byteDecoder },
    config: {
      nMels: filters.dims[0]!,
      eos: W.attrInt(beam.attributes.get("eos_token_id")) ?? 50256,
      sot: W.attrInt(beam.attributes.get("decoder_start_token_id")) ?? 50257,
      numLayers,
      numHeads,
      headDim: 64,
      attnLayers,
    },
  };
}

// ---- encoder self-attention ---------------------------------------------------------------
// The audio encoder's four com.microsoft Attention nodes (packed QKV weights, no mask) become
// MatMul + Split + MultiHeadAttention, whose CPU kernel streams the 1500x1500 scores (flash
// attention) instead of writing them out: 60-63 ms vs 67-84 ms for the four layers (same output
// within 2e-6). The decoder-prompt Attention nodes (mask, present outputs) are left alone.

/** `sub` (a GraphProto) with its mask-free, single-output Attention nodes rewritten; `outer`:
 * initializers of enclosing graphs the nodes may read. */
export function flashEncoderAttention(sub: Uint8Array, outer?: Map<string, W.WireField>): Uint8Array {
  const g = W.parseGraph(sub);
  const parts: Uint8Array[] = [];
  let rewritten = 0;
  for (const f of g.fields) {
    if (f.field !== 1) { parts.push(f.raw); continue; }
    const n = W.parseNode(f);
    const [x, w, b, ...rest] = n.inputs;
    const heads = W.attrInt(n.attributes.get("num_heads"));
    const bias = b ? g.initializers.get(b) ?? outer?.get(b) : undefined;
    const plain = n.opType === "Attention" && n.domain === "com.microsoft" && n.outputs.length === 1 && rest.every((i) => !i) && !W.attrInt(n.attributes.get("unidirectional"));
    if (!plain || !x || !w || !bias || !heads) { parts.push(f.raw); continue; }
    const third = W.readFields(bias.bytes!).filter((d) => d.field === 1).map((d) => Number(d.varint))[0]! / 3;
    const p = `sx_fa${rewritten++}`;
    parts.push(
      W.int64InitRecord(`${p}_splits`, [3], [third, third, third]),
      W.nodeRecord("MatMul", [x, w], [`${p}_qkv`], `${p}_mm`),
      W.nodeRecord("Split", [`${p}_qkv`, `${p}_splits`], [`${p}_q`, `${p}_k`, `${p}_v`], `${p}_split`, [W.attrIntRecord("axis", 2)]),
      W.nodeRecord("MultiHeadAttention", [`${p}_q`, `${p}_k`, `${p}_v`, b!], [n.outputs[0]!], `${p}_mha`, [W.attrIntRecord("num_heads", heads)], "com.microsoft"),
    );
  }
  return rewritten ? W.concat(parts) : sub;
}

// ---- prompt logits ----------------------------------------------------------------------------
// The encoder step also runs the decoder over the prompt (up to 224 tokens of previous text), and
// the shipped graph projects every prompt position onto the 51,864-token vocabulary: 46 MB of
// logits a window at 225 positions, of which decoding reads two rows (the last position's, and
// <|startoftranscript|>'s for the no-speech probability, one of the last two). The projection
// now takes the last two rows of its already quantized input: those rows' logits are unchanged
// bit for bit (the quantization scale is still the whole prompt's). encodeWindow reads either
// layout.

/** Rows of prompt logits the encoder returns (the last ones). */
export const PROMPT_LOGIT_ROWS = 2;

/** `sub` with the vocabulary projection behind its `logits` output limited to the last
 * PROMPT_LOGIT_ROWS positions; unchanged when that projection is not recognised. */
export function promptLogitsTail(sub: Uint8Array): Uint8Array {
  const g = W.parseGraph(sub);
  const byOutput = new Map<string, W.OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) byOutput.set(o, n);
  // logits = Mul(Cast(MatMulInteger(x_quantized, W_quantized, ...)), scales)
  let n = byOutput.get("logits");
  for (let hops = 0; n && n.opType !== "MatMulInteger" && hops < 3; hops++) n = byOutput.get(n.inputs[0]!);
  if (!n || n.opType !== "MatMulInteger") return sub;
  const x = n.inputs[0]!;
  const p = "sx_prompt_tail";
  const parts: Uint8Array[] = [];
  for (const f of g.fields) {
    if (f.field === 1 && f.raw === n.raw) {
      parts.push(
        W.int64InitRecord(`${p}_starts`, [1], [-PROMPT_LOGIT_ROWS]),
        W.int64InitRecord(`${p}_ends`, [1], [Number.MAX_SAFE_INTEGER]),
        W.int64InitRecord(`${p}_axes`, [1], [1]),
        W.nodeRecord("Slice", [x, `${p}_starts`, `${p}_ends`, `${p}_axes`], [`${p}_x`], `${p}_slice`),
        W.lenField(1, W.readFields(f.bytes!).map((a) => (a.field === 1 && W.str(a.bytes) === x ? W.stringField(1, `${p}_x`) : a.raw))),
      );
      continue;
    }
    parts.push(f.raw);
  }
  return W.concat(parts);
}

// ---- logit statistics -----------------------------------------------------------------------
// Whisper's rules need log-softmax of every step's (filtered) logits; exp() over 51,864 values
// cost ~0.2 ms a token in JavaScript against ~25 µs vectorised in the graph. The decoders also
// output the maximum of the text logits [0, timestampBegin) and the sum of exp(logit - that
// maximum); decoding.ts corrects the sum for the few tokens its rules suppress one by one
// (ReduceLogSumExp itself is not vectorised in onnxruntime: ~280 µs).

/** Extra decoder outputs, [B, 1, 1] each: max of the text logits, sum of exp(text logit - max). */
export const LOGIT_STATS = ["logits_text_max", "logits_text_sumexp"] as const;

function logitStatistics(timestampBegin: number): Uint8Array[] {
  const [max, sum] = LOGIT_STATS;
  return [
    W.int64InitRecord("sx_ls_start", [1], [0]),
    W.int64InitRecord("sx_ls_end", [1], [timestampBegin]),
    W.int64InitRecord("sx_ls_axes", [1], [2]),
    W.nodeRecord("Slice", ["logits", "sx_ls_start", "sx_ls_end", "sx_ls_axes"], ["sx_ls_text"], "sx_ls_slice"),
    W.nodeRecord("ReduceMax", ["sx_ls_text"], [max], "sx_ls_max", [W.attrIntsRecord("axes", [2]), W.attrIntRecord("keepdims", 1)]),
    W.nodeRecord("Sub", ["sx_ls_text", max], ["sx_ls_shifted"], "sx_ls_sub"),
    W.nodeRecord("Exp", ["sx_ls_shifted"], ["sx_ls_exp"], "sx_ls_exp"),
    W.nodeRecord("ReduceSum", ["sx_ls_exp", "sx_ls_axes"], [sum], "sx_ls_sum", [W.attrIntRecord("keepdims", 1)]),
    W.floatValueInfoRecord(12, max),
    W.floatValueInfoRecord(12, sum),
  ];
}

// ---- combined model -------------------------------------------------------------------------
// Why: separate encoder and decoder sessions each own a thread pool; on 2 cores the decoder's
// pool (spinning between its many tiny steps) slowed the next encoder step by 20-50 ms. One
// session keeps one pool and one copy of the shared weights. Each mode has its own top-level If
// (its subgraph when `mode` names it, else a few one-element constants), so every subgraph sits
// one level deep: a subgraph under a second If level ran ~2.3 ms a decoder step slower (measured
// on the word-timing decoder, session 4), and the plain decoder does not compute the alignment
// heads' logits it does not need.

export const COMBINED_MODE = { encoder: 0, decoder: 1, decoderAttn: 2 } as const;
/** Output name prefix of each mode's If in the combined model. */
export const COMBINED_PREFIX = { encoder: "enc", decoder: "dec", decoderAttn: "att" } as const;

/** Positional outputs <prefix>_0..<prefix>_{n-1} of the combined model for each mode. */
export function combinedLayout(numLayers: number, attnLayers: number[]) {
  const self: string[] = [];
  const cross: string[] = [];
  for (let i = 0; i < numLayers; i++) {
    self.push(`present_key_self_${i}`, `present_value_self_${i}`);
    cross.push(`present_key_cross_${i}`, `present_value_cross_${i}`);
  }
  const qk = attnLayers.map((l) => `cross_qk_${l}`);
  return {
    encoder: ["logits", ...self, ...cross],
    decoder: ["logits", ...self, ...LOGIT_STATS],
    decoderAttn: ["logits", ...self, ...qk, ...LOGIT_STATS],
  };
}

/** A subgraph as an If branch: no inputs (it reads the outer graph's), outputs renamed by
 * Identity to `${prefix}_<slot>` in slot order; padding slots are one-element zero tensors. */
function branch(name: string, sub: Uint8Array, prefix: string, slots: string[], extra: Uint8Array[] = []): Uint8Array[] {
  const parts: Uint8Array[] = [W.stringField(2, name)];
  for (const f of W.readFields(sub)) if (f.field !== 2 && f.field !== 11 && f.field !== 12) parts.push(f.raw);
  parts.push(...extra.filter((r) => W.readFields(r)[0]!.field !== 12)); // outputs: ours, below
  const zero = [W.varintField(1, 1), W.varintField(2, 1), W.lenField(9, [new Uint8Array(4)])];
  slots.forEach((slot, k) => {
    const out = `${prefix}_${k}`;
    parts.push(slot ? W.nodeRecord("Identity", [slot], [out], `${out}_id`) : W.nodeRecord("Constant", [], [out], `${out}_pad`, [W.attrTensorRecord("value", zero)]));
    parts.push(W.floatValueInfoRecord(12, out));
  });
  return parts;
}

/** `If(mode == value)`: the branch's outputs when `mode` names it, else one-element zeros. */
function ifMode(value: number, prefix: string, name: string, branchParts: Uint8Array[], n: number): Uint8Array[] {
  const v = [W.varintField(2, 7), W.lenField(9, [new Uint8Array(new BigInt64Array([BigInt(value)]).buffer)])];
  const outs = Array.from({ length: n }, (_, k) => `${prefix}_${k}`);
  return [
    W.nodeRecord("Constant", [], [`${name}_value`], `${name}_value`, [W.attrTensorRecord("value", v)]),
    W.nodeRecord("Equal", ["mode", `${name}_value`], [`${name}_cond`], `${name}_cond`),
    W.nodeRecord("If", [`${name}_cond`], outs, name, [
      W.attrGraphRecord("then_branch", branchParts),
      W.attrGraphRecord("else_branch", branch(`${name}_idle`, new Uint8Array(0), `${name}_idle`, new Array(n).fill(""))),
    ]),
    ...outs.map((o) => W.floatValueInfoRecord(12, o)),
  ];
}

function buildCombinedModel(m: W.OnnxModel, encSub: Uint8Array, decSub: Uint8Array, stats: Uint8Array[], attnExtra: Uint8Array[], numLayers: number, attnLayers: number[]): Uint8Array {
  const layout = combinedLayout(numLayers, attnLayers);
  const P = COMBINED_PREFIX;
  const parts: Uint8Array[] = [
    ...ifMode(COMBINED_MODE.encoder, P.encoder, "sx_if_enc", branch("encoder", encSub, "sx_enc", layout.encoder), layout.encoder.length),
    ...ifMode(COMBINED_MODE.decoder, P.decoder, "sx_if_dec", branch("decoder", decSub, "sx_dec", layout.decoder, stats), layout.decoder.length),
    ...ifMode(COMBINED_MODE.decoderAttn, P.decoderAttn, "sx_if_att", branch("decoder_attn", decSub, "sx_att", layout.decoderAttn, [...stats, ...attnExtra]), layout.decoderAttn.length),
    W.stringField(2, "whisper_combined"),
  ];
  parts.push(...outerInitializers(m, [encSub, decSub])); // the shared weights, once
  // inputs: mode (int64 scalar), then the subgraphs' own input declarations (names, types, shapes)
  parts.push(W.lenField(11, [W.stringField(1, "mode"), W.lenField(2, [W.lenField(1, [W.varintField(1, 7), W.lenField(2, [])])])]));
  const seen = new Set<string>();
  for (const sub of [encSub, decSub]) {
    for (const f of W.readFields(sub)) {
      if (f.field !== 11) continue;
      const name = W.str(W.readFields(f.bytes!).find((x) => x.field === 1)?.bytes);
      if (!seen.has(name)) { seen.add(name); parts.push(f.raw); }
    }
  }
  return modelFrom(m, parts);
}

/**
 * The shipped graph without its ai.onnx.contrib BpeDecoder (which onnxruntime-node cannot run):
 * outputs the BeamSearch `sequences` (int32 [1, beams, len]). Used by the bench as the baseline.
 */
export function stripBpeDecoder(modelBytes: Uint8Array): Uint8Array {
  const m = W.parseModel(modelBytes);
  const g = m.graph;
  const beam = g.nodes.find((n) => n.opType === "BeamSearch");
  if (!beam) throw new Error("no BeamSearch node");
  const seqName = beam.outputs[0]!;
  const parts: Uint8Array[] = [];
  for (const f of g.fields) {
    if (f.field === 12) continue; // old outputs
    if (f.field === 1) {
      const n = W.parseNode(f);
      if (n.opType === "BpeDecoder" || (n.opType === "Cast" && n.inputs[0] === seqName)) continue;
    }
    parts.push(f.raw);
  }
  // ValueInfo: int32 tensor
  parts.push(W.valueInfoRecord(12, seqName, 6));
  const opsets = m.fields.filter((f) => f.field === 8 && !W.str(W.readFields(f.bytes!).find((x) => x.field === 1)?.bytes).startsWith("ai.onnx.contrib")).map((f) => f.raw);
  return W.modelRecord(parts, opsets);
}

function buildMelModel(original: W.OnnxModel, window: Float32Array, filters: Float32Array, nMels: number): Uint8Array {
  const N = 400;
  const K = N / 2 + 1;
  const cos = new Float32Array(N * K);
  const sin = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const a = (2 * Math.PI * ((n * k) % N)) / N;
      cos[n * K + k] = window[n]! * Math.cos(a);
      sin[n * K + k] = window[n]! * Math.sin(a);
    }
  }
  const melT = new Float32Array(K * nMels); // [K, nMels]
  for (let m = 0; m < nMels; m++) for (let k = 0; k < K; k++) melT[k * nMels + m] = filters[m * K + k]!;
  const tiny = new Float32Array([1e-10]);
  const invLn10 = new Float32Array([1 / Math.LN10]);
  const parts = [
    W.nodeRecord("MatMul", ["frames", "dft_cos"], ["re"], "re"),
    W.nodeRecord("MatMul", ["frames", "dft_sin"], ["im"], "im"),
    W.nodeRecord("Mul", ["re", "re"], ["re2"], "re2"),
    W.nodeRecord("Mul", ["im", "im"], ["im2"], "im2"),
    W.nodeRecord("Add", ["re2", "im2"], ["power"], "power"),
    W.nodeRecord("MatMul", ["power", "mel_filters"], ["melp"], "melp"),
    W.nodeRecord("Max", ["melp", "tiny"], ["clipped"], "clip"),
    W.nodeRecord("Log", ["clipped"], ["ln"], "ln"),
    W.nodeRecord("Mul", ["ln", "inv_ln10"], ["log10_mel"], "log10"),
    W.stringField(2, "whisper_log_mel"),
    W.floatInitRecord("dft_cos", [N, K], cos),
    W.floatInitRecord("dft_sin", [N, K], sin),
    W.floatInitRecord("mel_filters", [K, nMels], melT),
    W.floatInitRecord("tiny", [], tiny),
    W.floatInitRecord("inv_ln10", [], invLn10),
    W.floatValueInfoRecord(11, "frames", [-1, N]),
    W.floatValueInfoRecord(12, "log10_mel"),
  ];
  const opsets = original.fields.filter((f) => f.field === 8 && W.str(W.readFields(f.bytes!).find((x) => x.field === 1)?.bytes) === "ai.onnx").map((f) => f.raw);
  return W.modelRecord(parts, opsets, PRODUCER);
}
