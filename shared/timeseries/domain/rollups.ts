/**
 * The 5-minute and 1-hour rollups, kept by the platform's own scheduled function: each run
 * recomputes the recent windows of tenants whose devices sent something lately, then the
 * hours that received readings too late for those windows (ingestion marks them). Every
 * window is recomputed whole from its source, so running again changes nothing: runs may
 * overlap, repeat or be missed without harm.
 */

export interface RollupTarget {
  tenantId: number;
  policy: string;
}

export interface BacklogHour extends RollupTarget {
  hourMs: number;
  /** Opaque: when the hour was last marked, so a mark made meanwhile is not lost. */
  markedAt: unknown;
}

/** Port: which tenants are active, and the late hours (PostgreSQL). */
export interface RollupBacklog {
  active(since: number): Promise<RollupTarget[]>;
  take(max: number): Promise<BacklogHour[]>;
  /** The hours recomputed (each is kept if it was marked again meanwhile). */
  done(hours: BacklogHour[]): Promise<void>;
}

/** Port: recomputes a tenant's rollup windows touching [from, to) (InfluxDB). */
export interface RollupComputer {
  recompute(tenantId: number, policy: string, from: number, to: number): Promise<number>;
}

export interface RollupRunOptions {
  /** How far back the recent windows go. */
  recentMs: number;
  /** A tenant counts as active when a device was seen this recently. */
  activeMs: number;
  /** Most backlog hours one run takes. */
  maxBacklogHours?: number;
  now?: () => number;
}

export interface RollupFailure extends RollupTarget {
  error: unknown;
}

export interface RollupRun {
  tenants: number;
  backlogHours: number;
  points: number;
  /** Windows that could not be recomputed; their late hours stay marked for the next run. */
  failures: RollupFailure[];
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export class RollupService {
  constructor(
    private readonly backlog: RollupBacklog,
    private readonly computer: RollupComputer,
    private readonly options: RollupRunOptions,
  ) {}

  async run(): Promise<RollupRun> {
    const now = (this.options.now ?? Date.now)();
    const outcome: RollupRun = { tenants: 0, backlogHours: 0, points: 0, failures: [] };
    // One tenant's windows failing (InfluxDB refusing its answer, say) must not stop the rest.
    const recompute = async (target: RollupTarget, from: number, to: number) => {
      try {
        outcome.points += await this.computer.recompute(target.tenantId, target.policy, from, to);
        return true;
      } catch (error) {
        outcome.failures.push({ tenantId: target.tenantId, policy: target.policy, error });
        return false;
      }
    };
    for (const target of await this.backlog.active(now - this.options.activeMs)) {
      if (await recompute(target, now - this.options.recentMs, now)) outcome.tenants++;
    }
    // Late hours of one tenant and day are recomputed together: a device flushing a long
    // offline buffer marks many hours, and one read per day costs far less than one per hour.
    const groups = new Map<string, BacklogHour[]>();
    for (const hour of await this.backlog.take(this.options.maxBacklogHours ?? 5000)) {
      const key = `${hour.tenantId}\u0000${hour.policy}\u0000${Math.floor(hour.hourMs / DAY_MS)}`;
      const group = groups.get(key);
      if (group) group.push(hour);
      else groups.set(key, [hour]);
    }
    for (const hours of groups.values()) {
      const first = hours[0] as BacklogHour;
      const starts = hours.map((hour) => hour.hourMs);
      if (!(await recompute(first, Math.min(...starts), Math.max(...starts) + HOUR_MS))) continue;
      await this.backlog.done(hours);
      outcome.backlogHours += hours.length;
    }
    return outcome;
  }
}
