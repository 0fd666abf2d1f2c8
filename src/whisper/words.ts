import type { WhisperModel } from "./model";
import type { Segment } from "./transcribe";
import type { WindowDecodeResult } from "./decoding";
export function addWordTimestamps(_m: WhisperModel, _s: Segment[], _o: number[], _r: WindowDecodeResult, _x: { timeOffset: number; numFrames: number; heads: [number, number][] }): void {}
