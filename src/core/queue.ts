// FIFO admission with a fixed number of concurrent slots.
export class WorkQueue {
  private waiting: { id: string; start: () => void }[] = [];
  private running = 0;

  constructor(
    private concurrency: number,
    private onPositions: (positions: Map<string, number>) => void = () => {},
  ) {}

  /** Resolves when the job may start; call the returned release() when it ends. */
  enqueue(id: string, start: () => void) {
    this.waiting.push({ id, start });
    this.pump();
  }

  release() {
    this.running--;
    this.pump();
  }

  /** Drop a job that has not started yet; true if it was waiting. */
  remove(id: string): boolean {
    const i = this.waiting.findIndex((w) => w.id === id);
    if (i < 0) return false;
    this.waiting.splice(i, 1);
    this.report();
    return true;
  }

  position(id: string): number | null {
    const i = this.waiting.findIndex((w) => w.id === id);
    return i < 0 ? null : i + 1;
  }

  private pump() {
    while (this.running < this.concurrency && this.waiting.length) {
      const next = this.waiting.shift()!;
      this.running++;
      next.start();
    }
    this.report();
  }

  private report() {
    this.onPositions(new Map(this.waiting.map((w, i) => [w.id, i + 1])));
  }
}
