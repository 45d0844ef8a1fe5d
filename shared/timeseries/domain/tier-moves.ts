/**
 * Moving a tenant's history between retention tiers after a plan change.
 *
 * The plan change points the tenant's writes at the new tier at once and opens a move. The
 * move copies the history from the old tier to the new one a day at a time, newest first,
 * and records after each day the time `copiedFrom` from which everything is in the new
 * tier. Reads take [copiedFrom, now] from the new tier (before the first step, [startedAt, now],
 * where writes go from the change on) and older times from the old one, so
 * at every moment each reading is read from exactly one tier: nothing is hidden, nothing
 * counted twice, whatever has been copied. A crash loses at most the day being copied:
 * another driver takes the lease over once it lapses and copies that day again (a copy
 * overwrites the same series and timestamps). A downgrade deletes what the new plan does
 * not keep first, and copies only the rest.
 */

export interface TierMove {
  id: number;
  tenantId: number;
  fromPolicy: string;
  toPolicy: string;
  /** Epoch ms: the oldest time the new tier keeps; null keeps everything. */
  keepFrom: number | null;
  /** Epoch ms from which the history is in the new tier; null before the first step. */
  copiedFrom: number | null;
  /** The tenant's oldest point in the old tier, found by the first step. */
  oldest: number | null;
  pointsCopied: number;
  startedAt: number;
  finishedAt: number | null;
}

export interface TierMoveRef {
  id: number;
  tenantId: number;
}

export interface DueWork extends TierMoveRef {
  kind: 'move' | 'purge';
}

/** Port: where moves are recorded (PostgreSQL). */
export interface TierMoveLog {
  /** Takes (or renews) the move's lease for `owner`; null when another driver holds it or it is done. */
  claim(move: TierMoveRef, owner: string, leaseMs: number): Promise<TierMove | null>;
  progress(
    move: TierMove,
    owner: string,
    step: { copiedFrom: number; oldest: number | null; pointsAdded: number },
  ): Promise<TierMove>;
  finish(move: TierMove, owner: string): Promise<TierMove>;
  /** Moves to drive (including trials that just ended) and finished downgrades to purge. */
  due(): Promise<DueWork[]>;
  /** The tenant's unfinished move, if any. */
  running(tenantId: number): Promise<TierMoveRef | null>;
  /** The move as recorded, lease or not. */
  get(move: TierMoveRef): Promise<TierMove | null>;
  purged(move: TierMoveRef): Promise<void>;
}

export interface TimeRange {
  from: number;
  /** Exclusive; open-ended when absent (readings dated slightly ahead are copied too). */
  to?: number;
}

/** Port: the time-series side (InfluxDB). */
export interface TierData {
  /** The tenant's oldest point in the tier, or null when it has none there. */
  oldest(tenantId: number, policy: string): Promise<number | null>;
  /** Copies the tenant's points in `range` and recomputes their rollups there; returns how many. */
  copy(tenantId: number, fromPolicy: string, toPolicy: string, range: TimeRange): Promise<number>;
  /** Deletes the tenant's points older than `before` from every tier. */
  purgeBefore(tenantId: number, before: number): Promise<void>;
}

export const DAY_MS = 86_400_000;

export const dayStart = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

export interface TierMoveOptions {
  now?: () => number;
  /** How long a driver holds a move without progress before another may take it over. */
  leaseMs?: number;
  /**
   * Writes decided under the old plan can still land in the old tier this long after the
   * change (a batch in flight); the move copies the current day once more after it.
   */
  settleMs?: number;
  owner?: string;
  sleep?: (ms: number) => Promise<void>;
}

/** How far a move has got, 0..1. */
export function moveProgress(move: TierMove): number {
  if (move.finishedAt !== null) return 1;
  if (move.copiedFrom === null) return 0;
  const start = dayStart(move.startedAt);
  const end = Math.max(move.oldest ?? start, move.keepFrom ?? Number.NEGATIVE_INFINITY);
  if (end >= move.copiedFrom) return 0.99;
  return Math.min(0.99, (start - move.copiedFrom) / (start - end));
}

export class TierMoveService {
  readonly #now: () => number;
  readonly #leaseMs: number;
  readonly #settleMs: number;
  readonly #owner: string;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(
    readonly log: TierMoveLog,
    private readonly data: TierData,
    options: TierMoveOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#leaseMs = options.leaseMs ?? 120_000;
    this.#settleMs = options.settleMs ?? 2_000;
    this.#owner = options.owner ?? `driver-${process.pid}-${Math.random().toString(36).slice(2)}`;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /**
   * One step: the first copies the current day (after deleting what a downgrade drops),
   * each next one the day before, the last copies the current day again and finishes.
   * Returns the move after the step, or null when another driver holds it or it is done.
   */
  async step(ref: TierMoveRef): Promise<TierMove | null> {
    const move = await this.log.claim(ref, this.#owner, this.#leaseMs);
    if (!move) return null;
    const { tenantId, fromPolicy, toPolicy } = move;
    if (move.copiedFrom === null) {
      if (move.keepFrom !== null) await this.data.purgeBefore(tenantId, move.keepFrom);
      const oldest = await this.data.oldest(tenantId, fromPolicy);
      const today = dayStart(move.startedAt);
      const from = move.keepFrom === null ? today : Math.max(today, move.keepFrom);
      const copied = await this.data.copy(tenantId, fromPolicy, toPolicy, { from });
      return this.log.progress(move, this.#owner, {
        copiedFrom: from,
        oldest,
        pointsAdded: copied,
      });
    }
    const floor = Math.max(
      move.oldest ?? move.copiedFrom,
      move.keepFrom ?? Number.NEGATIVE_INFINITY,
    );
    if (move.copiedFrom > floor) {
      const from = Math.max(move.copiedFrom - DAY_MS, floor);
      const copied = await this.data.copy(tenantId, fromPolicy, toPolicy, {
        from,
        to: move.copiedFrom,
      });
      return this.log.progress(move, this.#owner, {
        copiedFrom: from,
        oldest: move.oldest,
        pointsAdded: copied,
      });
    }
    const wait = move.startedAt + this.#settleMs - this.#now();
    if (wait > 0) await this.#sleep(wait);
    // Readings that ingestion instances still sent to the old tier as the plan changed.
    await this.data.copy(tenantId, fromPolicy, toPolicy, { from: dayStart(move.startedAt) });
    if (move.keepFrom !== null) await this.data.purgeBefore(tenantId, move.keepFrom);
    return this.log.finish(move, this.#owner);
  }

  /** Drives the move to its end; null when another driver holds it. */
  async run(ref: TierMoveRef, onProgress?: (move: TierMove) => void): Promise<TierMove | null> {
    for (;;) {
      const move = await this.step(ref);
      if (!move) return null;
      onProgress?.(move);
      if (move.finishedAt !== null) return move;
    }
  }

  /**
   * The maintenance function's share: drives due moves (a driver that crashed, a trial that
   * ended) and purges downgraded tenants' leftovers, until `budgetMs` is spent.
   */
  async maintain(budgetMs: number): Promise<{ steps: number; purges: number }> {
    const deadline = this.#now() + budgetMs;
    const done = { steps: 0, purges: 0 };
    for (const work of await this.log.due()) {
      if (this.#now() >= deadline) break;
      if (work.kind === 'purge') {
        const move = await this.log.get(work);
        if (move?.keepFrom != null) {
          const window = move.startedAt - move.keepFrom;
          await this.data.purgeBefore(work.tenantId, this.#now() - window);
          await this.log.purged(work);
          done.purges++;
        }
        continue;
      }
      while (this.#now() < deadline) {
        const move = await this.step(work);
        if (!move) break;
        done.steps++;
        if (move.finishedAt !== null) break;
      }
    }
    return done;
  }
}
