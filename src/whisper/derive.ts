// Takes the all-in-one Olive Whisper graph (log-mel -> com.microsoft BeamSearch{encoder, decoder}
// -> ai.onnx.contrib BpeDecoder) apart into what our own decoder loop needs:
//   logmel.onnx   audio_pcm [1, n<=480000] -> log_mel [1, 80, 3000]
//   encoder.onnx  encoder_input_ids (log-mel) + decoder_input_ids (prompt) -> logits, caches
//   decoder.onnx  one token + past self KV + cross KV -> logits + present self KV
//   decoder-attn.onnx  the same plus cross-attention logits (QK^T/sqrt(d)) of the layers that
//                 hold alignment heads, for word timestamps (DTW)
//   tokenizer.json the byte-level BPE vocabulary from the BpeDecoder node's attributes
// Works on the protobuf wire format directly: tensor payloads are copied as opaque bytes.
// Pure: bytes in, bytes out (no fs), so the same code could run in a browser.
import * as W from "./onnx-wire";

export interface DerivedWhisperAssets {
  logmel: Uint8Array;
  encoder: Uint8Array;
  decoder: Uint8Array;
  decoderAttn: Uint8Array;
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

function modelFrom(original: W.OnnxModel, graphParts: Uint8Array[]): Uint8Array {
  const opsets = original.fields.filter((f) => f.field === 8).map((f) => f.raw);
  return W.concat([
    W.varintField(1, 8), // ir_version
    W.stringField(2, "stemscribe-derive"),
    ...opsets,
    W.lenField(7, graphParts),
  ]);
}

/** The subgraph as a standalone model, with the outer initializers it reads copied in. */
function standaloneSubgraph(original: W.OnnxModel, sub: Uint8Array, extra: Uint8Array[] = []): Uint8Array {
  const sg = W.parseGraph(sub);
  const inits: Uint8Array[] = [];
  for (const name of W.freeInputs(sg)) {
    const rec = original.graph.initializers.get(name);
    if (!rec) throw new Error(`subgraph reads ${name}, which the outer graph does not define as an initializer`);
    inits.push(rec.raw);
  }
  return modelFrom(original, [sub, ...inits, ...extra]);
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
  const encSub = W.attrGraph(beam.attributes.get("encoder"));
  const decSub = W.attrGraph(beam.attributes.get("decoder"));
  if (!encSub || !decSub) throw new Error("BeamSearch node lacks encoder/decoder subgraphs");
  const melName = beam.inputs[0]!;

  // --- log-mel: every outer node that leads to BeamSearch's first input.
  const producer = new Map<string, W.OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const needed = new Set<W.OnnxNode>();
  const stack = [melName];
  while (stack.length) {
    const v = stack.pop()!;
    const n = producer.get(v);
    if (!n || needed.has(n)) continue;
    needed.add(n);
    stack.push(...n.inputs.filter((x) => x));
  }
  const melNodes = g.nodes.filter((n) => needed.has(n));
  const melInputs = new Set<string>();
  for (const n of melNodes) for (const i of n.inputs) if (i && !producer.has(i)) melInputs.add(i);
  const graphInputRecs = g.fields.filter((f) => f.field === 11);
  const melParts: Uint8Array[] = melNodes.map((n) => n.raw);
  melParts.push(W.stringField(2, "logmel"));
  for (const name of melInputs) {
    const init = g.initializers.get(name);
    if (init) melParts.push(init.raw);
  }
  for (const f of graphInputRecs) {
    const name = W.str(W.readFields(f.bytes!).find((x) => x.field === 1)?.bytes);
    if (melInputs.has(name) && !g.initializers.has(name)) melParts.push(f.raw);
  }
  melParts.push(W.floatValueInfoRecord(12, melName));
  const logmel = modelFrom(m, melParts);

  const encoder = standaloneSubgraph(m, encSub);
  const decoder = standaloneSubgraph(m, decSub);

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
    extra.push(W.nodeRecord("Transpose", [p + "q4"], [p + "qt"], p + "tq", [W.attrIntsRecord("perm", [0, 2, 1, 3])]));
    extra.push(W.nodeRecord("Transpose", [k!], [p + "kt"], p + "tk", [W.attrIntsRecord("perm", [0, 1, 3, 2])]));
    extra.push(W.nodeRecord("MatMul", [p + "qt", p + "kt"], [p + "qk"], p + "mm"));
    extra.push(W.nodeRecord("Mul", [p + "qk", "sx_scale"], [out], p + "scale"));
    extra.push(W.floatValueInfoRecord(12, out));
  }
  const scale = new Uint8Array(4);
  new DataView(scale.buffer).setFloat32(0, 1 / Math.sqrt(64), true);
  extra.push(W.lenField(5, [W.varintField(2, 1 /* FLOAT */), W.stringField(8, "sx_scale"), W.lenField(9, [scale])]));
  const decoderAttn = standaloneSubgraph(m, decSub, extra);

  // --- tokenizer
  const idVocab = W.attrString(bpe.attributes.get("id_vocab")) ?? "";
  const vocab = idVocab.split("\n");
  if (vocab[vocab.length - 1] === "") vocab.pop();
  const added: Record<string, string> = {};
  for (const [id, tok] of parseTable(W.attrString(bpe.attributes.get("added_tokens")) ?? "")) added[id] = tok;
  const byteDecoder: Record<string, number> = {};
  for (const [cp, b] of parseTable(W.attrString(bpe.attributes.get("byte_decoder")) ?? "")) byteDecoder[cp] = Number(b);

  return {
    logmel,
    encoder,
    decoder,
    decoderAttn,
    tokenizer: { vocab, added, byteDecoder },
    config: {
      eos: W.attrInt(beam.attributes.get("eos_token_id")) ?? 50256,
      sot: W.attrInt(beam.attributes.get("decoder_start_token_id")) ?? 50257,
      numLayers,
      numHeads,
      headDim: 64,
      attnLayers,
    },
  };
}
