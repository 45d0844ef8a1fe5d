/**
 * Long synchronous work cut into slices of at most `sliceMs`, with the event loop given a
 * turn between them, so that other work of the same process (its I/O answers, its timers)
 * is not held up behind it. A loop asks `due()` per item (cheap) and awaits `turn()` only
 * when it is.
 */
/** The longest the platform's long loops compute before other work of the process runs. */
export const SLICE_MS = 20;

export class TimeSlices {
  #from = performance.now();

  constructor(private readonly sliceMs: number = SLICE_MS) {}

  /** True once the current slice has run for `sliceMs`. */
  due(): boolean {
    return performance.now() - this.#from >= this.sliceMs;
  }

  /** One turn of the event loop (its pending I/O callbacks run first); a new slice starts. */
  async turn(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.#from = performance.now();
  }
}
