import type { DeviceContext } from './model.ts';

/** Caches registry answers in the function instance: one look-up per device per TTL. */
export class DeviceContextCache {
  readonly #entries = new Map<string, { context: DeviceContext | null; expiresAt: number }>();

  constructor(
    private readonly resolve: (deviceId: string) => Promise<DeviceContext | null>,
    private readonly ttl: { knownMs: number; unknownMs: number },
  ) {}

  /** The cached answer, or undefined when the registry must be asked (see `get`). */
  peek(deviceId: string, now: number): DeviceContext | null | undefined {
    const cached = this.#entries.get(deviceId);
    return cached && cached.expiresAt > now ? cached.context : undefined;
  }

  async get(deviceId: string, now: number): Promise<DeviceContext | null> {
    const cached = this.peek(deviceId, now);
    if (cached !== undefined) return cached;
    const context = await this.resolve(deviceId);
    if (this.#entries.size > 50_000) this.#entries.clear();
    this.#entries.set(deviceId, {
      context,
      expiresAt: now + (context ? this.ttl.knownMs : this.ttl.unknownMs),
    });
    return context;
  }

  /**
   * Looks up in one call the devices of `deviceIds` not cached (all of them when `fresh`),
   * so that a batch of thousands of new devices is not thousands of round trips.
   */
  async prefetch(
    deviceIds: readonly string[],
    now: number,
    resolveMany: (deviceIds: readonly string[]) => Promise<Map<string, DeviceContext>>,
    fresh = false,
  ): Promise<void> {
    const wanted = fresh ? deviceIds : deviceIds.filter((id) => this.peek(id, now) === undefined);
    if (wanted.length === 0) return;
    const found = await resolveMany(wanted);
    if (this.#entries.size + wanted.length > 50_000) this.#entries.clear();
    for (const deviceId of wanted) {
      const context = found.get(deviceId) ?? null;
      this.#entries.set(deviceId, {
        context,
        expiresAt: now + (context ? this.ttl.knownMs : this.ttl.unknownMs),
      });
    }
  }

  forget(deviceId: string): void {
    this.#entries.delete(deviceId);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** True when the cached answer is older than `ms`: worth asking the registry again. */
  olderThan(deviceId: string, now: number, ms: number): boolean {
    const cached = this.#entries.get(deviceId);
    return !cached || cached.expiresAt - this.ttl.knownMs <= now - ms;
  }
}
