// A job's files on disk: <dataDir>/jobs/<id>/. Removed with the job at the end of retention.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Job } from "../core/engine";

export class JobFiles {
  constructor(private dataDir: string) {}

  dir(id: string) {
    return join(this.dataDir, "jobs", id);
  }

  path(id: string, file: string) {
    return join(this.dir(id), file);
  }

  /** Write a result file and register it on the job. */
  async save(job: Job, name: string, file: string, data: Uint8Array | string, contentType: string) {
    mkdirSync(this.dir(job.id), { recursive: true });
    const bytes = await Bun.write(this.path(job.id, file), data);
    job.addResult({ name, file, content_type: contentType, bytes });
  }

  remove(id: string) {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
