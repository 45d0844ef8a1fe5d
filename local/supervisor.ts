import { waitUntil } from './services/process.ts';

/** What the supervisor needs from a running part of the stack. */
export interface SupervisedService {
  /** Resolves with a reason if the service stops on its own. */
  unexpectedExit(): Promise<string>;
  /** True when the service answers a real request. */
  healthy(): Promise<boolean>;
  stop(): Promise<void>;
}

export type ServiceLog = (service: string, message: string) => void;

interface Entry {
  name: string;
  service: SupervisedService;
}

/**
 * Keeps the parts of the local stack together: each is registered once started, all are
 * stopped in reverse order on shutdown, and the first one to die takes the others down
 * (a half-running platform is worse than a stopped one).
 */
export class Supervisor {
  private readonly running: Entry[] = [];
  private readonly starting = new Set<Promise<unknown>>();
  private shutdownPromise: Promise<void> | undefined;
  // Cancels the waits of services still starting when shutdown begins (Ctrl-C during startup).
  private readonly startupCancellation = new AbortController();
  private resolveFailure: (reason: string) => void = () => {};
  /** Resolves with a message when a service dies unexpectedly. */
  readonly failure = new Promise<string>((resolve) => {
    this.resolveFailure = resolve;
  });

  constructor(private readonly log: ServiceLog) {}

  get shuttingDown(): boolean {
    return this.shutdownPromise !== undefined;
  }

  /** Starts a service and supervises it from then on. */
  async start<T extends SupervisedService>(
    name: string,
    start: (cancelled: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (this.shuttingDown) throw new Error(`not starting ${name}: the stack is shutting down`);
    const started = start(this.startupCancellation.signal);
    this.starting.add(started);
    try {
      const service = await started;
      if (this.shuttingDown) {
        await service.stop();
        throw new Error(`stopped ${name} again: the stack is shutting down`);
      }
      this.running.push({ name, service });
      service.unexpectedExit().then((reason) => {
        if (!this.shuttingDown) this.resolveFailure(`${name} stopped unexpectedly: ${reason}`);
      });
      return service;
    } finally {
      this.starting.delete(started);
    }
  }

  /** Waits until every supervised service answers. */
  async waitUntilHealthy(timeoutMs: number): Promise<void> {
    await Promise.all(
      this.running.map(({ name, service }) =>
        waitUntil(`${name} to answer`, () => service.healthy(), { timeoutMs, intervalMs: 200 }),
      ),
    );
  }

  /** Stops everything, newest first; safe to call more than once. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.startupCancellation.abort();
      // Services still starting register (and are stopped by `start`) before we go on.
      await Promise.allSettled([...this.starting]);
      for (const { name, service } of [...this.running].reverse()) {
        try {
          await service.stop();
        } catch (error) {
          this.log(name, `did not stop cleanly: ${(error as Error).message}`);
        }
      }
      this.running.length = 0;
    })();
    return this.shutdownPromise;
  }
}
