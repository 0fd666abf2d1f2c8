// The intake job: decode the upload and keep it as 16-bit WAV, the first real pipeline on the engine.
import { durationOf, encodeWav, prepareAudio, type PcmAudio } from "../audio";
import type { Job } from "../core/engine";
import type { JobFiles } from "../server/files";

export async function runIntake(job: Job, bytes: Uint8Array, files: JobFiles, maxSeconds = 0): Promise<PcmAudio> {
  const ctx = job.stage("preprocessing", "decoding audio");
  const pcm = await prepareAudio(bytes, { maxSeconds }, ctx);
  job.setMeta("sample_rate", pcm.sampleRate);
  job.setMeta("channels", pcm.channels.length);
  job.setMeta("duration", Math.round(durationOf(pcm) * 1000) / 1000);
  await files.save(job, "audio.wav", "audio.wav", encodeWav(pcm), "audio/wav");
  return pcm;
}
