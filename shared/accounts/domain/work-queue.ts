import { Busy } from '../../domain-errors.ts';

/**
 * Runs at most `concurrency` jobs at once and queues at most `maxQueued` more; beyond that
 * a job is refused at once with `busy` (503, Retry-After) instead of piling up until the
 * function times out. Used for bcrypt, which is CPU work on the function's only thread.
 */
export class WorkQueue {
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
  ) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting.length >= this.maxQueued) {
        throw new Busy('busy', 'The service is busy; try again shortly', { retryAfterSeconds: 1 });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next job, so `running` never drops and rises again.
      if (next) next();
      else this.#running--;
    }
  }
}
