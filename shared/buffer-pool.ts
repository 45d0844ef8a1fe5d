/** The size of a pooled buffer: large request bodies and output slabs fit in one. */
export const POOLED_BUFFER_BYTES = 1024 * 1024;

/**
 * Buffers (1 MB unless told) used again once nothing reads them. A fresh half-megabyte buffer
 * per request counted as external memory to V8, which answered with full collections several
 * times a second (--trace-gc: "external memory pressure"), and the kernel mapped its pages in
 * anew. Only buffers of the pool's size are kept, so taking one is a pop.
 */
export class BufferPool {
  readonly #free: Buffer[] = [];

  /**
   * @param keep how many free buffers to keep at most
   * @param size the size of a pooled buffer
   */
  constructor(
    private readonly keep: number,
    readonly size = POOLED_BUFFER_BYTES,
  ) {}

  /** A buffer of at least `bytes`: a kept one when that is enough. */
  take(bytes: number): Buffer {
    const free = bytes <= this.size ? this.#free.pop() : undefined;
    return free ?? Buffer.allocUnsafe(Math.max(bytes, this.size));
  }

  /** Gives back a buffer nothing reads any more; one-off large ones are left to the GC. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.#free.length < this.keep) {
      this.#free.push(buffer);
    }
  }
}
