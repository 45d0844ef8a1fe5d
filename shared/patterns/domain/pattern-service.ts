import type { AuditTrail } from '../../audit/domain/audit.ts';
import { InvalidInput, NotFound, NotPermitted, Unprocessable } from '../../domain-errors.ts';
import type { Logger } from '../../logger.ts';
import {
  carryLabels,
  closestPattern,
  DEFAULT_DISCOVERY_SETTINGS,
  discoverPatterns,
  gridWindows,
  recognise,
  runs,
  windowFeatures,
} from './discovery.ts';
import { DEFAULT_JOB_LIMITS, type JobLimits, lostJob, mayTakeJob } from './job-lifecycle.ts';
import {
  type CurrentPattern,
  type DiscoveryResult,
  MAX_PATTERN_ENTITIES,
  PATTERN_ENTITY_TYPES,
  type PatternJob,
  type PatternView,
  type TimelineSegment,
} from './model.ts';
import type {
  DiscoveryDispatcher,
  PatternDevice,
  PatternHistory,
  PatternStore,
  ReadingCounts,
  StoredRecogniser,
} from './ports.ts';

export interface PatternCaller {
  tenantId: number;
  userId: number;
}

const SECOND_MS = 1000;
const DAY_MS = 86_400_000;

/** Step widths a discovery may choose: whole rollup intervals where it can use them. */
const STEP_CHOICES_MS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
].map((s) => s * SECOND_MS);

export interface PatternSettings {
  /** A discovery reads at most this many steps (its windows are a tenth to an eighth of it). */
  maxDiscoverySteps: number;
  /** The default and the longest history a discovery reads. */
  defaultHistoryMs: number;
  maxHistoryMs: number;
  /** A timeline covers at most this many windows. */
  maxTimelineWindows: number;
  /** A range may end at most this far ahead of the server's clock (clock skew). */
  futureToleranceMs: number;
  /** When a discovery's worker counts as lost, and how often it is retried. */
  jobLimits: JobLimits;
}

export const DEFAULT_PATTERN_SETTINGS: PatternSettings = {
  maxDiscoverySteps: 8000,
  defaultHistoryMs: 7 * DAY_MS,
  maxHistoryMs: 366 * DAY_MS,
  maxTimelineWindows: 5000,
  futureToleranceMs: 60_000,
  jobLimits: DEFAULT_JOB_LIMITS,
};

export const planRequired = () =>
  new NotPermitted(
    'plan_required',
    'Pattern recognition needs the Industrial plan; upgrade to use it',
  );

/** The smallest step choice at or above `ms`. */
export function stepAtLeast(ms: number): number {
  return STEP_CHOICES_MS.find((choice) => choice >= ms) ?? (STEP_CHOICES_MS.at(-1) as number);
}

/** The largest step choice at or below `ms` (the smallest choice below it). */
export function stepAtMost(ms: number): number {
  return STEP_CHOICES_MS.findLast((choice) => choice <= ms) ?? (STEP_CHOICES_MS[0] as number);
}

export interface PatternServiceOptions {
  store: PatternStore;
  history: PatternHistory;
  dispatcher: DiscoveryDispatcher;
  audit: AuditTrail;
  logger: Logger;
  now?: () => number;
  settings?: Partial<PatternSettings>;
}

/**
 * Pattern recognition for the API and the discovery job: discovers a device's operating
 * modes from its history, lets users name them, and recognises the mode of any window since
 * (the current one, or each over a chart's range), flagging a window like none of them.
 * Gated to plans with pattern recognition.
 */
export class PatternService {
  readonly #store: PatternStore;
  readonly #history: PatternHistory;
  readonly #dispatcher: DiscoveryDispatcher;
  readonly #audit: AuditTrail;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly settings: PatternSettings;

  constructor(options: PatternServiceOptions) {
    this.#store = options.store;
    this.#history = options.history;
    this.#dispatcher = options.dispatcher;
    this.#audit = options.audit;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.settings = { ...DEFAULT_PATTERN_SETTINGS, ...options.settings };
  }

  /** The device, once the tenant's plan is known to allow pattern recognition. */
  async #device(tenantId: number, devicePk: number): Promise<PatternDevice> {
    if (!(await this.#store.planAllows(tenantId))) throw planRequired();
    const device = await this.#store.device(tenantId, devicePk);
    if (!device) throw new NotFound('device_not_found', 'No such device');
    return device;
  }

  /** The entities a discovery of the device uses: those asked for, checked, or all numeric ones. */
  #entities(device: PatternDevice, asked: string[] | undefined): string[] {
    const numeric = device.entities.filter((e) => PATTERN_ENTITY_TYPES.includes(e.entityType));
    if (!asked) {
      // By default the measurements: a number entity is usually a setpoint, reported when it
      // changes, whose few readings would leave too few windows.
      const sensors = numeric.filter((e) => e.entityType === 'sensor');
      if (sensors.length > 0) return sensors.slice(0, MAX_PATTERN_ENTITIES).map((e) => e.entityId);
      if (numeric.length === 0) {
        throw new Unprocessable(
          'no_numeric_entities',
          'The device has no sensor or number entity to find patterns in',
        );
      }
      return numeric.slice(0, MAX_PATTERN_ENTITIES).map((e) => e.entityId);
    }
    for (const entityId of asked) {
      const entity = device.entities.find((e) => e.entityId === entityId);
      if (!entity) throw new NotFound('entity_not_found', `The device has no entity ${entityId}`);
      if (!PATTERN_ENTITY_TYPES.includes(entity.entityType)) {
        throw new InvalidInput(
          'entity_not_numeric',
          `Patterns need numeric entities (sensor or number); ${entityId} is a ${entity.entityType}`,
        );
      }
    }
    return [...asked].sort();
  }

  #range(from: Date | undefined, to: Date | undefined, defaultMs: number, maxMs: number) {
    const now = this.#now();
    const toMs = to?.getTime() ?? now;
    const fromMs = from?.getTime() ?? toMs - defaultMs;
    if (toMs > now + this.settings.futureToleranceMs) {
      throw new InvalidInput('invalid_range', '`to` cannot be ahead of now');
    }
    if (fromMs >= toMs) throw new InvalidInput('invalid_range', '`from` must be before `to`');
    if (toMs - fromMs > maxMs) {
      throw new InvalidInput(
        'range_too_long',
        `The range may span at most ${Math.floor(maxMs / DAY_MS)} days`,
      );
    }
    return { fromMs, toMs };
  }

  /** Queues a discovery over the device's history; the job runs away from the request. */
  async startDiscovery(
    caller: PatternCaller,
    devicePk: number,
    request: { entityIds?: string[] | undefined; from?: Date | undefined; to?: Date | undefined },
  ): Promise<PatternJob> {
    const device = await this.#device(caller.tenantId, devicePk);
    const entityIds = request.entityIds ? this.#entities(device, request.entityIds) : null;
    if (!entityIds) this.#entities(device, undefined);
    const range = this.#range(
      request.from,
      request.to,
      this.settings.defaultHistoryMs,
      this.settings.maxHistoryMs,
    );
    const job = await this.#store.createJob(
      caller.tenantId,
      device.id,
      {
        entity_ids: entityIds,
        from: new Date(range.fromMs).toISOString(),
        to: new Date(range.toMs).toISOString(),
      },
      caller.userId,
      this.#now(),
    );
    await this.#audit.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'patterns.discover',
      target: `device:${device.id}`,
      details: { job_id: job.job_id, ...job.request },
    });
    await this.#dispatcher.dispatch(caller.tenantId, job.job_id);
    return (await this.#store.job(caller.tenantId, device.id, job.job_id)) ?? job;
  }

  /** The job; one whose worker was lost, with no retry to come, is failed as lost here. */
  async job(caller: PatternCaller, devicePk: number, jobId: number): Promise<PatternJob> {
    const device = await this.#device(caller.tenantId, devicePk);
    const job = await this.#store.job(caller.tenantId, device.id, jobId);
    if (!job) throw new NotFound('job_not_found', 'No such discovery job');
    const nowMs = this.#now();
    const lost = lostJob(job, nowMs, this.settings.jobLimits);
    if (!lost) return job;
    if (await this.#store.finishJob(caller.tenantId, job, { error: lost }, nowMs)) {
      this.#logger.warn('pattern discovery lost', { tenantId: caller.tenantId, jobId, ...lost });
    }
    return (await this.#store.job(caller.tenantId, device.id, jobId)) ?? job;
  }

  /**
   * Runs a queued discovery (reads the history, clusters it, replaces the device's patterns),
   * or takes over one whose worker was lost. `remainingMs` is the invocation's time left.
   */
  async runJob(tenantId: number, jobId: number, remainingMs?: number): Promise<void> {
    const nowMs = this.#now();
    const seen = await this.#store.job(tenantId, null, jobId);
    if (!seen || !mayTakeJob(seen, nowMs, this.settings.jobLimits)) return;
    const deadlineMs = nowMs + (remainingMs ?? this.settings.jobLimits.workerTimeLimitMs);
    const job = await this.#store.startJob(tenantId, seen, { nowMs, deadlineMs });
    if (!job) return;
    if (seen.status === 'running') {
      this.#logger.warn('pattern discovery taken over from a lost worker', {
        tenantId,
        jobId,
        attempt: job.attempts,
      });
    }
    let outcome: { result: DiscoveryResult } | { error: { code: string; message: string } };
    try {
      outcome = { result: await this.#discover(tenantId, job) };
    } catch (error) {
      if (error instanceof JobTakenOver) return;
      const known = error instanceof Unprocessable || error instanceof NotFound;
      if (!known) this.#logger.error('pattern discovery failed', { tenantId, jobId, error });
      outcome = {
        error: known
          ? { code: error.code, message: error.message }
          : { code: 'discovery_failed', message: 'The discovery failed; try again' },
      };
    }
    await this.#store.finishJob(tenantId, job, outcome, this.#now());
  }

  async #discover(tenantId: number, job: PatternJob) {
    const device = await this.#store.device(tenantId, job.device_id);
    if (!device) throw new NotFound('device_not_found', 'The device was deleted');
    const asked = job.request.entity_ids ?? undefined;
    const candidates = this.#entities(device, asked);
    const askedFrom = Date.parse(job.request.from as string);
    const askedTo = Date.parse(job.request.to as string);
    const windowSteps = DEFAULT_DISCOVERY_SETTINGS.windowSteps;
    const needed = 4 * windowSteps;
    const countsFrom = (entityIds: readonly string[], fromMs: number, bucketMs: number) =>
      this.#history.counts({
        tenantId,
        device,
        entityIds,
        fromMs: Math.floor(fromMs / bucketMs) * bucketMs,
        toMs: askedTo,
        bucketMs,
      });
    // Where the readings start, and how dense they are, choose the step: the start is found
    // in buckets of a 200th of the range, then again within the first one (a device that
    // began reporting an hour ago has no week of history to learn from).
    let bucketMs = stepAtLeast((askedTo - askedFrom) / 200);
    const everyCount = await countsFrom(candidates, askedFrom, bucketMs);
    // By default a sensor far sparser than the others is left out (and named in the result).
    const { kept: entityIds, leftOut } = asked
      ? { kept: candidates, leftOut: [] }
      : leaveOutSparse(
          candidates,
          everyCount.map((buckets) => totalReadings(buckets)),
          needed,
        );
    let counts = everyCount.filter((_, i) => entityIds.includes(candidates[i] as string));
    let fromMs = askedFrom;
    for (let pass = 0; pass < 2; pass++) {
      const first = commonStart(counts);
      if (first === null || first <= fromMs || bucketMs === SECOND_MS) break;
      fromMs = first;
      bucketMs = stepAtLeast((askedTo - fromMs) / 200);
      counts = await countsFrom(entityIds, fromMs, bucketMs);
    }
    const firstMs = commonStart(counts);
    const readings = entityIds.map((_, i) =>
      firstMs === null ? 0 : totalReadings(counts[i] ?? [], firstMs),
    );
    const fewest = Math.min(...readings);
    if (firstMs === null || fewest < needed) throw notEnoughHistory(entityIds, readings, needed);
    const activeFrom = Math.max(askedFrom, firstMs);
    const span = askedTo - activeFrom;
    // About one reading per step, or coarser when the span would need too many steps.
    const stepMs = Math.max(
      stepAtMost(span / fewest),
      stepAtLeast(span / this.settings.maxDiscoverySteps),
    );
    const gridFrom = Math.floor(activeFrom / stepMs) * stepMs;
    const toMs = Math.floor(askedTo / stepMs) * stepMs;
    const grid = await this.#history.grid({
      tenantId,
      device,
      entityIds,
      fromMs: gridFrom,
      toMs,
      stepMs,
    });
    const discovery = discoverPatterns(grid, entityIds, { windowSteps });
    if (!discovery) {
      throw new Unprocessable(
        'not_enough_history',
        `Too little history to find patterns: fewer than 4 windows of ${(stepMs * windowSteps) / SECOND_MS} s have readings of every one of ${entityIds.join(', ')}`,
      );
    }
    const earlier = await this.#store.recogniser(tenantId, device.id);
    const labels = earlier ? carryLabels(earlier, discovery.recogniser) : new Map<number, string>();
    if (!(await this.#store.saveDiscovery(tenantId, device.id, job, discovery, labels))) {
      throw new JobTakenOver();
    }
    return {
      patterns: discovery.patterns.length,
      windows: discovery.windowCount,
      silhouette: discovery.silhouette === null ? null : Number(discovery.silhouette.toFixed(3)),
      entity_ids: entityIds,
      left_out: leftOut,
      step_seconds: stepMs / SECOND_MS,
      window_seconds: (stepMs * windowSteps) / SECOND_MS,
      from: new Date(gridFrom).toISOString(),
      to: new Date(toMs).toISOString(),
    };
  }

  /** The device's patterns and the mode it is in now. */
  async patterns(
    caller: PatternCaller,
    devicePk: number,
  ): Promise<{ patterns: PatternView[]; current_pattern: CurrentPattern | null }> {
    const device = await this.#device(caller.tenantId, devicePk);
    const [patterns, current] = await Promise.all([
      this.#store.patterns(caller.tenantId, device.id),
      this.#current(caller.tenantId, device),
    ]);
    return { patterns, current_pattern: current };
  }

  async label(
    caller: PatternCaller,
    devicePk: number,
    patternId: number,
    label: string | null,
  ): Promise<PatternView> {
    const device = await this.#device(caller.tenantId, devicePk);
    const changed = await this.#store.setLabel(caller.tenantId, device.id, patternId, label);
    if (!changed) throw new NotFound('pattern_not_found', 'The device has no such pattern');
    await this.#audit.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: 'pattern.label',
      target: `pattern:${patternId}`,
      details: { device_id: device.id },
      changes: { label: { before: changed.before, after: label } },
    });
    return changed.pattern;
  }

  /**
   * The mode of the device's latest complete window, for its detail: null without the plan,
   * without discovered patterns, or without readings in the window.
   */
  async current(tenantId: number, devicePk: number): Promise<CurrentPattern | null> {
    if (!(await this.#store.planAllows(tenantId))) return null;
    const device = await this.#store.device(tenantId, devicePk);
    return device ? this.#current(tenantId, device) : null;
  }

  async #current(tenantId: number, device: PatternDevice): Promise<CurrentPattern | null> {
    const stored = await this.#store.recogniser(tenantId, device.id);
    if (!stored) return null;
    const { recogniser } = stored;
    const toMs = Math.floor(this.#now() / recogniser.stepMs) * recogniser.stepMs;
    const fromMs = toMs - recogniser.windowSteps * recogniser.stepMs;
    const grid = await this.#history.grid({
      tenantId,
      device,
      entityIds: recogniser.entityIds,
      fromMs,
      toMs,
      stepMs: recogniser.stepMs,
    });
    const features = windowFeatures(grid.rows, recogniser, DEFAULT_DISCOVERY_SETTINGS.minCoverage);
    if (!features) return null;
    const { index, ratio } = closestPattern(recogniser, features);
    const novel = ratio > 1;
    return {
      pattern_id: novel ? null : (stored.patternIds[index] as number),
      label: novel ? null : (stored.labels[index] ?? null),
      novel,
      distance_ratio: Number(ratio.toFixed(3)),
      window: { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() },
    };
  }

  /** Each stretch of the range in one mode (or novel), for bands on the charts. */
  async timeline(
    caller: PatternCaller,
    devicePk: number,
    range: { from?: Date | undefined; to?: Date | undefined },
  ): Promise<{ segments: TimelineSegment[]; window_seconds: number | null }> {
    const device = await this.#device(caller.tenantId, devicePk);
    const stored = await this.#store.recogniser(caller.tenantId, device.id);
    if (!stored) return { segments: [], window_seconds: null };
    const { recogniser } = stored;
    const windowMs = recogniser.windowSteps * recogniser.stepMs;
    const asked = this.#range(
      range.from,
      range.to,
      DAY_MS,
      this.settings.maxTimelineWindows * windowMs,
    );
    const fromMs = Math.floor(asked.fromMs / windowMs) * windowMs;
    const toMs = Math.ceil(asked.toMs / windowMs) * windowMs;
    const grid = await this.#history.grid({
      tenantId: caller.tenantId,
      device,
      entityIds: recogniser.entityIds,
      fromMs,
      toMs,
      stepMs: recogniser.stepMs,
    });
    const matches = recognise(
      recogniser,
      gridWindows(grid, recogniser.windowSteps, recogniser, DEFAULT_DISCOVERY_SETTINGS.minCoverage),
    );
    return {
      segments: segmentsOf(stored, runs(matches)),
      window_seconds: windowMs / SECOND_MS,
    };
  }
}

/**
 * A default discovery leaves out an entity with fewer than this share of the densest one's
 * readings: the step follows the sparsest entity, so it would stretch every window to its pace.
 */
export const SPARSE_SHARE = 0.25;

/** Readings in the buckets from `fromMs` on. */
function totalReadings(counts: ReadingCounts, fromMs = Number.NEGATIVE_INFINITY): number {
  return counts.reduce((sum, b) => (b.timeMs >= fromMs ? sum + b.readings : sum), 0);
}

/** Where every entity has begun reporting: the latest first bucket (null: one has none). */
function commonStart(counts: readonly ReadingCounts[]): number | null {
  let start = Number.NEGATIVE_INFINITY;
  for (const buckets of counts) {
    const first = buckets[0];
    if (!first) return null;
    start = Math.max(start, first.timeMs);
  }
  return Number.isFinite(start) ? start : null;
}

/**
 * The entities a default discovery keeps, and those it leaves out (named in its result):
 * those with too few readings for windows of their own, or far fewer than the densest one.
 */
export function leaveOutSparse(
  entityIds: readonly string[],
  readings: readonly number[],
  needed: number,
): { kept: string[]; leftOut: Array<{ entity_id: string; readings: number }> } {
  const floor = Math.max(needed, SPARSE_SHARE * Math.max(0, ...readings));
  const kept: string[] = [];
  const leftOut: Array<{ entity_id: string; readings: number }> = [];
  entityIds.forEach((entityId, i) => {
    const count = readings[i] ?? 0;
    if (count >= floor) kept.push(entityId);
    else leftOut.push({ entity_id: entityId, readings: count });
  });
  // With every entity too sparse none is left out: the job fails and names each with its count.
  if (kept.length === 0) return { kept: [...entityIds], leftOut: [] };
  return { kept, leftOut };
}

function notEnoughHistory(
  entityIds: readonly string[],
  readings: readonly number[],
  needed: number,
) {
  const short = entityIds
    .map((entityId, i) => ({ entityId, count: readings[i] ?? 0 }))
    .filter((e) => e.count < needed)
    .map((e) => `${e.entityId} has ${e.count}`);
  return new Unprocessable(
    'not_enough_history',
    `Too few readings in the range to find patterns (${short.join(', ')}): at least ${needed} readings of each entity are needed`,
  );
}

/** A worker's job was taken over by another (it was past its deadline): it leaves it alone. */
class JobTakenOver extends Error {}

function segmentsOf(
  stored: StoredRecogniser,
  stretches: ReturnType<typeof runs>,
): TimelineSegment[] {
  return stretches.map((r) => ({
    from: new Date(r.fromMs).toISOString(),
    to: new Date(r.toMs).toISOString(),
    pattern_id: r.cluster === null ? null : (stored.patternIds[r.cluster] as number),
    label: r.cluster === null ? null : (stored.labels[r.cluster] ?? null),
    novel: r.cluster === null,
  }));
}
