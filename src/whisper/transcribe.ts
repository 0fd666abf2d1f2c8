// openai/whisper's transcribe() loop: 30 s windows seeked by the last timestamp token, temperature
// fallback on compression ratio / avg logprob, no-speech skipping, conditioning on previous text.
// Pure TypeScript: audio in (any rate/channels), onnxruntime injected through the model.
import type { PcmAudio } from "../audio/pcm";
import { toMono } from "../audio/pcm";
import { CancelledError, throwIfAborted, type WorkContext } from "../core/work";
import { compressionRatio } from "./compression";
import { decodeWindow, encodeWindow, newTrace, releaseTrace, seededRng, N_TEXT_CTX, type EncodedWindow, type WindowDecodeResult } from "./decoding";
import type { WhisperModel } from "./model";
import { addWordTimestamps } from "./words";
import { logMelSpectrogram, melWindow } from "./mel";
import { trimSeamRepeat } from "./seams";
import { TINY_EN_ALIGNMENT_HEADS } from "./derive";

export const SAMPLE_RATE = 16000;
export const HOP_LENGTH = 160;
export const N_FRAMES = 3000;
export const MIN_SPEECH_S = 0.1;
const INPUT_STRIDE = 2; // mel frames per audio-encoder output position
const TIME_PRECISION = 0.02;
const FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH;
// Pad short windows with digital silence (as the shipped graph and transformers.js do) rather than
// openai/whisper's zeros-in-normalised-space: on the speech clips zeros gave more fallbacks and
// hallucinated words (bench: 50.0% WER in 6.2 s vs 52.5% in 2.6 s, same load).
const PAD_SILENCE = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.WHISPER_PAD !== "zero";

export interface TranscribeOptions {
  /** English-only model: "en"/"english" or undefined. */
  language?: string;
  /** Initial prompt text (previous context, fed after <|startofprev|>). */
  prompt?: string;
  /** Start temperature; the fallback goes up in steps of 0.2 to 1.0. Default 0. */
  temperature?: number;
  /** Beam size for temperature-0 decoding (default 1 = greedy). */
  beamSize?: number;
  wordTimestamps?: boolean;
  /** Condition each window on the previous text (default true, as openai/whisper). */
  conditionOnPreviousText?: boolean;
  compressionRatioThreshold?: number; // 2.4
  logprobThreshold?: number; // -1
  noSpeechThreshold?: number; // 0.6
  /** Streaming: committed text (after each window), as deltas of the full text. */
  onTextDelta?(delta: string): void;
  /** Streaming: each committed segment. */
  onSegment?(segment: Segment): void;
  /** Streaming: provisional tokens of the window being decoded (may be discarded by a fallback). */
  onToken?(info: { window: number; text: string; tokens: readonly number[] }): void;
}

export interface Word {
  word: string;
  start: number;
  end: number;
  probability: number;
}

export interface Segment {
  id: number;
  seek: number;
  start: number;
  end: number;
  text: string;
  tokens: number[];
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
  temperature: number;
  words?: Word[];
}

export interface TranscriptionResult {
  text: string;
  language: string;
  duration: number;
  segments: Segment[];
}

export class WhisperOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WhisperOptionError";
  }
}

async function to16kMono(audio: PcmAudio, signal: AbortSignal): Promise<Float32Array> {
  if (!audio.channels.length) return new Float32Array(0);
  const mono = audio.channels.length === 1 ? audio.channels[0]! : toMono(audio);
  if (audio.sampleRate === SAMPLE_RATE) return mono;
  if (!(audio.sampleRate > 0)) throw new WhisperOptionError(`invalid sample rate ${audio.sampleRate}`);
  const { resample } = await import("../audio/resample");
  const ctx: WorkContext = { signal, progress() {} };
  const r = await resample({ sampleRate: audio.sampleRate, channels: [mono] }, SAMPLE_RATE, ctx);
  return r.channels[0]!;
}

interface DecodeOutcome extends WindowDecodeResult {
  noSpeechProb: number;
  compressionRatio: number;
  text: string;
}

export async function transcribe(model: WhisperModel, audio: PcmAudio, opts: TranscribeOptions, ctx: WorkContext): Promise<TranscriptionResult> {
  const tk = model.tokenizer;
  if (opts.language && !/^(en|english)$/i.test(opts.language)) {
    throw new WhisperOptionError(`${model.name} is English-only; language "${opts.language}" is not supported`);
  }
  const beamSize = Math.max(1, Math.floor(opts.beamSize ?? 1));
  if (beamSize > 16) throw new WhisperOptionError("beamSize must be at most 16");
  const t0 = opts.temperature ?? 0;
  if (!(t0 >= 0 && t0 <= 1)) throw new WhisperOptionError("temperature must be in [0, 1]");
  const temperatures: number[] = [];
  for (let t = t0; t <= 1.0 + 1e-9; t += 0.2) temperatures.push(Math.round(t * 10) / 10);
  if (!temperatures.length) temperatures.push(t0);
  const crThreshold = opts.compressionRatioThreshold ?? 2.4;
  const lpThreshold = opts.logprobThreshold ?? -1.0;
  const nsThreshold = opts.noSpeechThreshold ?? 0.6;
  // off by default: with tiny.en, conditioning looped and dropped windows on long-harvard (models/README.md)
  const conditionOnPrevious = opts.conditionOnPreviousText ?? false;
  const heads = TINY_EN_ALIGNMENT_HEADS.filter(([l]) => model.config.attnLayers.includes(l));

  throwIfAborted(ctx.signal);
  const samples = await to16kMono(audio, ctx.signal);
  const duration = samples.length / SAMPLE_RATE;
  const logMel = await logMelSpectrogram(model, samples, ctx.signal);
  const contentFrames = logMel.frames;

  const initialPromptTokens = opts.prompt?.trim() ? tk.encode(" " + opts.prompt.trim()) : [];
  const allTokens: number[] = [...initialPromptTokens];
  let promptResetSince = 0;
  const segments: Segment[] = [];
  let fullText = "";
  let seek = 0;
  let windowIndex = 0;
  const lastSpeech = { t: 0 };
  let lastFraction = 0;
  const report = (fraction: number, message: string) => {
    fraction = Math.min(1, Math.max(lastFraction, fraction));
    lastFraction = fraction;
    ctx.progress(fraction, message);
  };
  const fmt = (s: number) => s.toFixed(1);

  // Audio that fits one window is decoded after <|notimestamps|>, as the shipped graph does
  // (clips: 47.5% WER vs 52.5% with timestamp tokens); its one segment spans the window. Word
  // timing (karaoke lines) and longer audio keep timestamp tokens, which segment and seek.
  const withoutTimestamps = contentFrames <= N_FRAMES && !opts.wordTimestamps;
  // Under 0.1 s no word fits: answer empty rather than let the model invent one ("you").
  if (duration < MIN_SPEECH_S) seek = contentFrames;
  while (seek < contentFrames) {
    throwIfAborted(ctx.signal);
    windowIndex++;
    model.stats.windows++;
    const timeOffset = (seek * HOP_LENGTH) / SAMPLE_RATE;
    const segmentSize = Math.min(N_FRAMES, contentFrames - seek);
    const segmentDuration = (segmentSize * HOP_LENGTH) / SAMPLE_RATE;
    const windowsTotal = windowIndex - 1 + Math.ceil((contentFrames - seek) / N_FRAMES);
    const label = `window ${windowIndex}/${windowsTotal}`;
    report(seek / contentFrames, `${label}, ${fmt(timeOffset)} s of ${fmt(duration)} s`);

    const mel = new model.ort.Tensor("float32", melWindow(logMel, seek, segmentSize, PAD_SILENCE ? logMel.silence : 0), [1, logMel.nMels, N_FRAMES]);
    const prev = allTokens.slice(promptResetSince);
    const prompt = prev.length ? [tk.sotPrev, ...prev.slice(-(N_TEXT_CTX / 2 - 1)), tk.sot] : [tk.sot];
    if (withoutTimestamps) prompt.push(tk.noTimestamps);
    throwIfAborted(ctx.signal);
    const enc = await encodeWindow(model, mel, prompt);

    const onToken = (tokens: readonly number[]) => {
      let lastTs = 0;
      for (let i = tokens.length - 1; i >= 0; i--) if (tokens[i]! >= tk.timestampBegin) { lastTs = (tokens[i]! - tk.timestampBegin) * TIME_PRECISION; break; }
      const within = Math.min(lastTs, segmentDuration);
      report((seek + within * FRAMES_PER_SECOND) / contentFrames, `${label}, ${fmt(timeOffset + within)} s of ${fmt(duration)} s`);
      if (opts.onToken) opts.onToken({ window: windowIndex, text: tk.decode(tokens), tokens });
    };

    let result: Awaited<ReturnType<typeof decodeWithFallback>>;
    try {
      result = await decodeWithFallback(model, enc, {
        temperatures, beamSize, crThreshold, lpThreshold, nsThreshold,
        collectAttention: !!opts.wordTimestamps, heads, signal: ctx.signal, onToken, seed: windowIndex, withoutTimestamps,
      });
    } finally {
      // The window's caches (~20 MB) may live in onnxruntime's memory (ort-ffi.ts), which the
      // garbage collector does not see: give them back now.
      for (const t of [...enc.selfKV, ...enc.crossKV]) t.dispose?.();
    }
    if (ctx.signal.aborted) throw new CancelledError();

    // no-speech skip
    let skip = result.noSpeechProb > nsThreshold;
    if (result.avgLogprob > lpThreshold) skip = false;
    if (skip) {
      seek += segmentSize;
      continue;
    }

    const tokens = result.tokens;
    const isTs = tokens.map((t) => t >= tk.timestampBegin);
    const singleTimestampEnding = tokens.length >= 2 ? !isTs[tokens.length - 2] && isTs[tokens.length - 1]! : tokens.length === 1 && isTs[0]!;
    const consecutive: number[] = [];
    for (let i = 1; i < tokens.length; i++) if (isTs[i - 1] && isTs[i]) consecutive.push(i);
    const current: { start: number; end: number; tokens: number[]; offset: number }[] = [];
    if (consecutive.length > 0) {
      const slices = [...consecutive];
      if (singleTimestampEnding) slices.push(tokens.length);
      let last = 0;
      for (const cur of slices) {
        const sliced = tokens.slice(last, cur);
        const startPos = sliced[0]! - tk.timestampBegin;
        const endPos = sliced[sliced.length - 1]! - tk.timestampBegin;
        current.push({ start: timeOffset + startPos * TIME_PRECISION, end: timeOffset + endPos * TIME_PRECISION, tokens: sliced, offset: last });
        last = cur;
      }
      if (singleTimestampEnding) seek += segmentSize;
      else seek += (tokens[last - 1]! - tk.timestampBegin) * INPUT_STRIDE;
    } else {
      let dur = segmentDuration;
      const ts = tokens.filter((t) => t >= tk.timestampBegin);
      if (ts.length > 0 && ts[ts.length - 1] !== tk.timestampBegin) dur = (ts[ts.length - 1]! - tk.timestampBegin) * TIME_PRECISION;
      current.push({ start: timeOffset, end: timeOffset + dur, tokens, offset: 0 });
      seek += segmentSize;
    }

    const built: Segment[] = current.map((c) => ({
      id: 0,
      seek: Math.round(timeOffset * FRAMES_PER_SECOND),
      start: round3(c.start),
      end: round3(c.end),
      text: tk.decode(c.tokens),
      tokens: c.tokens,
      avg_logprob: result.avgLogprob,
      compression_ratio: result.compressionRatio,
      no_speech_prob: result.noSpeechProb,
      temperature: result.temperature,
    }));

    if (opts.wordTimestamps && result.attention) {
      addWordTimestamps(model, built, current.map((c) => c.offset), result, {
        timeOffset, numFrames: segmentSize, heads, lastSpeech, mel: logMel,
      });
      if (!singleTimestampEnding) {
        let lastWordEnd: number | undefined;
        for (const s of built) for (const w of s.words ?? []) lastWordEnd = w.end;
        if (lastWordEnd !== undefined && lastWordEnd > timeOffset) seek = Math.round(lastWordEnd * FRAMES_PER_SECOND);
      }
    }

    // the previous window's last words heard again at this window's start (see seams.ts); with
    // word timing the window seeks to the last word's aligned end instead, and sung lyrics repeat
    // for real more often, so the cut is left to plain transcription
    const last = segments[segments.length - 1];
    if (last && built.length && !opts.wordTimestamps) trimSeamRepeat(tk, last, built[0]!);
    for (const s of built) {
      if (s.start === s.end || s.text.trim() === "") {
        s.text = "";
        s.tokens = [];
        if (s.words) s.words = [];
      }
    }
    for (const s of built) {
      if (!s.text && !s.tokens.length) continue;
      s.id = segments.length;
      segments.push(s);
      allTokens.push(...s.tokens);
      opts.onSegment?.(s);
      if (s.text) {
        fullText += s.text;
        opts.onTextDelta?.(s.text);
      }
    }
    if (!conditionOnPrevious || result.temperature > 0.5) promptResetSince = allTokens.length;
    // never go backwards (a window without progress would loop)
    if (seek <= Math.round(timeOffset * FRAMES_PER_SECOND)) seek = Math.round(timeOffset * FRAMES_PER_SECOND) + segmentSize;
  }
  report(1, `done, ${fmt(duration)} s of ${fmt(duration)} s`);
  return { text: fullText.trim(), language: "en", duration, segments };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

interface FallbackOptions {
  temperatures: number[];
  beamSize: number;
  crThreshold: number;
  lpThreshold: number;
  nsThreshold: number;
  collectAttention: boolean;
  heads: [number, number][];
  signal: AbortSignal;
  onToken(tokens: readonly number[]): void;
  seed: number;
  withoutTimestamps: boolean;
}

async function decodeWithFallback(model: WhisperModel, enc: EncodedWindow, o: FallbackOptions): Promise<DecodeOutcome> {
  // the first attempt's steps, replayed by the sampling attempts while their tokens follow it
  const trace = o.temperatures.length > 1 && o.beamSize === 1 ? newTrace() : undefined;
  try {
    let outcome: DecodeOutcome | undefined;
    for (const t of o.temperatures) {
      const first = t === o.temperatures[0];
      const r = await decodeWindow(model, enc, {
        trace: first ? trace : undefined,
        replay: first ? undefined : trace,
        temperature: t,
        beamSize: t === 0 ? o.beamSize : 1,
        collectAttention: o.collectAttention,
        onToken: o.onToken,
        signal: o.signal,
        rng: seededRng(o.seed * 1000 + Math.round(t * 10)),
        withoutTimestamps: o.withoutTimestamps,
      }, o.heads);
      if (o.signal.aborted) throw new CancelledError();
      const text = model.tokenizer.decode(r.tokens);
      outcome = { ...r, noSpeechProb: enc.noSpeechProb, compressionRatio: await compressionRatio(text), text };
      let needsFallback = false;
      if (outcome.compressionRatio > o.crThreshold) needsFallback = true;
      if (outcome.avgLogprob < o.lpThreshold) needsFallback = true;
      if (outcome.noSpeechProb > o.nsThreshold && outcome.avgLogprob < o.lpThreshold) needsFallback = false; // silence
      if (!needsFallback) break;
    }
    return outcome!;
  } finally {
    if (trace) releaseTrace(trace);
  }
}
