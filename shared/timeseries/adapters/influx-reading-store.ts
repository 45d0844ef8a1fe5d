import {
  type EntityRef,
  type LatestValue,
  type PriorTier,
  type ReadingStore,
  ReadingsRefusedError,
  SERIES_FUNCTIONS,
  type SeriesFunction,
  type SeriesPoint,
  type SeriesQuery,
  SeriesQueryError,
  type SeriesResult,
  type SeriesSource,
  TooManyPointsError,
  type WriteResult,
} from '../domain/reading-store.ts';
import {
  DEFAULT_RETENTION_PLANS,
  type RetentionPlan,
  ROLLUPS,
  type Rollup,
  rollupPolicy,
} from '../domain/retention.ts';
import type { Precision } from '../line-protocol.ts';
import {
  FIELDS,
  InvalidReadingError,
  MEASUREMENTS,
  type Reading,
  readingToLine,
  storageOf,
  writeReadingLine,
} from '../reading.ts';
import {
  BeyondRetentionError,
  type EncodedLines,
  FieldTypeConflictError,
  type InfluxClient,
  InfluxRequestError,
  type InfluxSeries,
  type InfluxValue,
} from './influx-client.ts';
import {
  type Aggregate,
  durationMs,
  type FieldExpr,
  type InfluxQL,
  InfluxQLError,
  type Source,
  statements,
  type TagFilter,
  tenantSelect,
} from './influxql.ts';

export interface InfluxReadingStoreOptions {
  client: InfluxClient;
  /** Defaults to the client's database. */
  database?: string;
  plans?: readonly RetentionPlan[];
  /** Most points one `series` call returns. */
  maxPoints?: number;
  now?: () => number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Raw points are read for spans up to this; the 5m rollup up to `FIVE_MINUTE_SPAN_MS`. */
const RAW_SPAN_MS = DAY_MS;
const FIVE_MINUTE_SPAN_MS = 31 * DAY_MS;
type Kind = 'numeric' | 'text' | 'switch';
const KINDS: readonly Kind[] = ['numeric', 'text', 'switch'];

function kindOf(ref: EntityRef): Kind {
  if (ref.entityType === 'switch') return 'switch';
  return ref.entityType === 'text' ? 'text' : 'numeric';
}

const STORAGE: Record<Kind, { measurement: string; field: string }> = {
  numeric: storageOf('sensor'),
  text: storageOf('text'),
  switch: storageOf('switch'),
};

const iso = (ms: number) => new Date(ms).toISOString();

/** Nanoseconds if any reading needs its time in them (the usual batch has none). */
function precisionOf(readings: readonly Reading[]): Precision {
  for (const reading of readings) if (reading.subMsNs !== undefined) return 'ns';
  return 'ms';
}

function timeOf(value: InfluxValue): number {
  if (typeof value !== 'number')
    throw new Error(`InfluxDB sent a non-numeric time: ${String(value)}`);
  return value;
}

/** What an aggregate over a rollup's fields is, per requested function. */
const ROLLUP_EXPRESSIONS: Record<SeriesFunction, FieldExpr> = {
  // Exact over any multiple of the rollup interval, unlike a mean of means.
  mean: {
    divide: [
      { fn: 'sum', field: 'sum' },
      { fn: 'sum', field: 'count' },
    ],
  },
  min: { fn: 'min', field: 'min' },
  max: { fn: 'max', field: 'max' },
  count: { fn: 'sum', field: 'count' },
  last: { fn: 'last', field: 'last' },
};

interface Read {
  statement: InfluxQL;
  /** Turns the statement's series into per-entity points. */
  collect(series: InfluxSeries[], into: (entityId: string, points: SeriesPoint[]) => void): void;
}

function collectValues(
  series: InfluxSeries[],
  into: (entityId: string, points: SeriesPoint[]) => void,
) {
  for (const s of series) {
    const entityId = s.tags.entity_id;
    if (entityId === undefined) continue;
    const valueColumn = s.columns.indexOf('value');
    const points: SeriesPoint[] = [];
    for (const row of s.values) {
      const value = row[valueColumn];
      if (value === null || value === undefined) continue;
      points.push({ time: iso(timeOf(row[0] ?? null)), value });
    }
    into(entityId, points);
  }
}

/**
 * `ReadingStore` over InfluxDB: raw points in each plan's policy, 5m/1h rollups (computed by
 * the rollup function, `InfluxRollups`) in `<policy>_5m` / `<policy>_1h`.
 */
export class InfluxReadingStore implements ReadingStore {
  readonly #client: InfluxClient;
  readonly #database: string;
  readonly #plans: Map<string, RetentionPlan>;
  readonly #maxPoints: number;
  readonly #now: () => number;

  constructor(options: InfluxReadingStoreOptions) {
    this.#client = options.client;
    this.#database = options.database ?? options.client.database;
    this.#plans = new Map(
      (options.plans ?? DEFAULT_RETENTION_PLANS).map((plan) => [plan.policy, plan]),
    );
    this.#maxPoints = options.maxPoints ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  #plan(policy: string): RetentionPlan {
    const plan = this.#plans.get(policy);
    if (!plan) throw new SeriesQueryError('unknown_policy', `unknown retention policy ${policy}`);
    return plan;
  }

  #source(policy: string, measurement: string): Source {
    return { database: this.#database, retentionPolicy: policy, measurement };
  }

  async writeReadings(readings: Reading[]): Promise<WriteResult> {
    try {
      return await this.#writeReadings(readings);
    } catch (error) {
      if (
        error instanceof FieldTypeConflictError ||
        (error instanceof InfluxRequestError && error.status === 400)
      ) {
        throw new ReadingsRefusedError(error.message, { cause: error });
      }
      throw error;
    }
  }

  async #writeReadings(readings: Reading[]): Promise<WriteResult> {
    const byPolicy = new Map<string, Reading[]>();
    const first = readings[0]?.retentionPolicy;
    if (readings.every((reading) => reading.retentionPolicy === first)) {
      // The usual batch (one tenant, or tenants on one plan) is written as given.
      if (first !== undefined) byPolicy.set(first, readings);
    } else {
      for (const reading of readings) {
        const group = byPolicy.get(reading.retentionPolicy);
        if (group) group.push(reading);
        else byPolicy.set(reading.retentionPolicy, [reading]);
      }
    }
    // Each line is made (and so checked) once, here, straight into the request bodies:
    // before any wait, so that nothing of it outlives this loop in the JavaScript heap.
    const encoded = new Map<string, { readings: Reading[]; lines: EncodedLines }>();
    const problems: Array<{ reading: Reading; problem: string }> = [];
    for (const [policy, group] of byPolicy) {
      const encoder = this.#client.encoder();
      const precision = precisionOf(group);
      for (const reading of group) {
        try {
          writeReadingLine(reading, encoder, precision);
        } catch (error) {
          if (!(error instanceof InvalidReadingError)) throw error;
          problems.push(...error.problems);
        }
      }
      encoded.set(policy, { readings: group, lines: encoder.finish() });
    }
    // All or nothing: a batch with a wrong reading is the caller's bug, not a partial write.
    if (problems.length > 0) throw new InvalidReadingError(problems);
    for (const policy of encoded.keys()) this.#plan(policy);
    const beyondRetention: Reading[] = [];
    for (const [policy, group] of encoded) {
      beyondRetention.push(...(await this.#writePolicy(policy, group.readings, group.lines)));
    }
    return { written: readings.length - beyondRetention.length, beyondRetention };
  }

  /**
   * On a retention refusal InfluxDB stores the rest of the batch and drops the points older
   * than its `now - duration`, sparing those that share a shard group with a kept point.
   * Either way the dropped ones are the batch's oldest, and the server's count says how
   * many: that identifies them exactly, whatever the skew between its clock and ours. The
   * rest is written again (idempotent: same series and timestamps), in case a server refused
   * the whole batch; if the limit moved meanwhile, the next refusal names the next oldest.
   */
  async #writePolicy(policy: string, readings: Reading[], lines: EncodedLines): Promise<Reading[]> {
    const beyond: Reading[] = [];
    let pending = readings;
    let pendingLines: EncodedLines | string[] = lines;
    const precision = precisionOf(readings);
    for (let attempt = 0; pending.length > 0; attempt++) {
      try {
        await this.#client.write(pendingLines, { retentionPolicy: policy, precision });
        break;
      } catch (error) {
        if (!(error instanceof BeyondRetentionError)) throw error;
        const retry: Reading[] = [];
        for (const batch of error.batches) {
          const sorted = pending
            .slice(batch.offset, batch.offset + batch.lines)
            .sort((a, b) => a.timeMs - b.timeMs);
          beyond.push(...sorted.slice(0, batch.dropped));
          retry.push(...sorted.slice(batch.dropped));
        }
        // The kept points were stored by the refused request itself: a third round only
        // chases a limit that keeps moving.
        if (attempt >= 2) break;
        pending = retry;
        // Made again (they were checked when first made): the first lines were not kept.
        pendingLines = retry.map((reading) => readingToLine(reading, precision));
      }
    }
    return beyond;
  }

  async latest(
    tenantId: number,
    deviceId: string,
    entities: EntityRef[],
    retentionPolicy: string,
    priorTier?: PriorTier,
  ): Promise<Map<string, LatestValue>> {
    this.#plan(retentionPolicy);
    if (priorTier) this.#plan(priorTier.policy);
    const latest = new Map<string, LatestValue>();
    const byKind = new Map<Kind, string[]>();
    for (const entity of entities) {
      const ids = byKind.get(kindOf(entity)) ?? [];
      ids.push(entity.entityId);
      byKind.set(kindOf(entity), ids);
    }
    if (byKind.size === 0) return latest;
    const kinds = [...byKind.keys()];
    // During a tier move the latest point may still be in either tier: the later one wins.
    const policies = priorTier ? [retentionPolicy, priorTier.policy] : [retentionPolicy];
    // One request; a statement per field because last() reports its point's time only
    // when it is the statement's only selector.
    const results = await this.#client.query(
      statements(
        policies.flatMap((policy) =>
          kinds.map((kind) =>
            tenantSelect({
              tenantId,
              from: this.#source(policy, STORAGE[kind].measurement),
              select: [{ expr: { fn: 'last', field: STORAGE[kind].field }, as: 'value' }],
              tags: { device_id: deviceId, entity_id: byKind.get(kind) ?? [] },
              groupBy: { tags: ['entity_id'] },
            }),
          ),
        ),
      ),
    );
    for (const result of results) {
      collectValues(result.series, (entityId, points) => {
        const point = points[0];
        const known = latest.get(entityId);
        if (point && (!known || point.time > known.time)) latest.set(entityId, point);
      });
    }
    return latest;
  }

  #chooseSource(spanMs: number, everyMs: number | undefined): SeriesSource {
    let source: SeriesSource =
      spanMs <= RAW_SPAN_MS ? 'raw' : spanMs <= FIVE_MINUTE_SPAN_MS ? '5m' : '1h';
    // A bucket must be made of whole rollup intervals, or a rollup cannot serve it.
    const serves = (rollup: SeriesSource) =>
      rollup === 'raw' || everyMs === undefined || everyMs % durationMs(rollup) === 0;
    while (!serves(source)) source = source === '1h' ? '5m' : 'raw';
    return source;
  }

  async series(query: SeriesQuery): Promise<SeriesResult> {
    const fromMs = query.from.getTime();
    const toMs = query.to.getTime();
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs > toMs) {
      throw new SeriesQueryError('invalid_range', '`from` must be a time before `to`');
    }
    let everyMs: number | undefined;
    if (query.every !== undefined) {
      try {
        everyMs = durationMs(query.every);
      } catch (error) {
        if (error instanceof InfluxQLError)
          throw new SeriesQueryError('invalid_every', error.message);
        throw error;
      }
    }
    const fn = query.fn ?? 'mean';
    if (!SERIES_FUNCTIONS.includes(fn)) {
      throw new SeriesQueryError('invalid_fn', `fn must be one of ${SERIES_FUNCTIONS.join(', ')}`);
    }
    this.#plan(query.retentionPolicy);
    if (query.priorTier) this.#plan(query.priorTier.policy);

    // Entity filters per kind: typed refs read only their measurement; bare ids read all.
    const filters = new Map<Kind, string[] | undefined>();
    const order: string[] = [];
    if (query.entities) {
      for (const entity of query.entities) {
        const ids = filters.get(kindOf(entity)) ?? [];
        ids.push(entity.entityId);
        filters.set(kindOf(entity), ids);
        order.push(entity.entityId);
      }
    } else {
      for (const kind of KINDS)
        filters.set(kind, query.entityIds ? [...query.entityIds] : undefined);
      order.push(...(query.entityIds ?? []));
    }

    const source = query.source ?? (query.raw ? 'raw' : this.#chooseSource(toMs - fromMs, everyMs));
    const collected = new Map<string, SeriesPoint[]>(order.map((id) => [id, []]));
    const add = (entityId: string, points: SeriesPoint[]) => {
      const list = collected.get(entityId);
      if (list) list.push(...points);
      else collected.set(entityId, [...points]);
    };
    if (filters.size > 0) {
      const reads: Read[] = [];
      for (const part of tierParts(query, fromMs, toMs)) {
        reads.push(
          ...(await this.#plannedReads(
            { ...query, retentionPolicy: part.policy },
            filters,
            source,
            fn,
            part.from,
            part.to,
            everyMs,
          )),
        );
      }
      if (reads.length > 0) {
        const results = await this.#client.query(statements(reads.map((read) => read.statement)));
        reads.forEach((read, index) => {
          read.collect(results[index]?.series ?? [], add);
        });
      }
    }

    let total = 0;
    const series = [...collected.entries()]
      .sort(([a], [b]) =>
        order.length > 0 ? order.indexOf(a) - order.indexOf(b) : a < b ? -1 : a > b ? 1 : 0,
      )
      .map(([entityId, points]) => {
        points.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
        total += points.length;
        return { entity_id: entityId, points };
      });
    if (total > this.#maxPoints) throw new TooManyPointsError(total, this.#maxPoints);
    return { source, series };
  }

  async #plannedReads(
    query: SeriesQuery,
    filters: Map<Kind, string[] | undefined>,
    source: SeriesSource,
    fn: SeriesFunction,
    fromMs: number,
    toMs: number,
    everyMs: number | undefined,
  ): Promise<Read[]> {
    const tagsFor = (kind: Kind): TagFilter => {
      const ids = filters.get(kind);
      return ids ? { device_id: query.deviceId, entity_id: ids } : { device_id: query.deviceId };
    };
    const raw = (kind: Kind) => this.#source(query.retentionPolicy, STORAGE[kind].measurement);
    const inclusive = { from: fromMs, to: toMs, toInclusive: true };
    const kinds = [...filters.keys()];

    // Every point of the range, unaggregated: count first so a huge answer is refused
    // before it is fetched.
    const rawPointKinds = kinds.filter(
      (kind) =>
        (everyMs === undefined && (kind !== 'numeric' || source === 'raw')) ||
        (everyMs !== undefined && kind === 'switch' && fn === 'mean'),
    );
    if (rawPointKinds.length > 0) {
      const counts = await this.#client.query(
        statements(
          rawPointKinds.map((kind) =>
            tenantSelect({
              tenantId: query.tenantId,
              from: raw(kind),
              select: [{ expr: { fn: 'count', field: STORAGE[kind].field }, as: 'value' }],
              tags: tagsFor(kind),
              time: inclusive,
            }),
          ),
        ),
      );
      let total = 0;
      for (const result of counts) {
        for (const s of result.series) for (const row of s.values) total += Number(row[1] ?? 0);
      }
      if (total > this.#maxPoints) throw new TooManyPointsError(total, this.#maxPoints);
    }
    if (everyMs !== undefined) {
      const buckets = Math.ceil((toMs - fromMs + 1) / everyMs);
      if (buckets > this.#maxPoints) throw new TooManyPointsError(buckets, this.#maxPoints);
    }

    const reads: Read[] = [];
    const pointsRead = (kind: Kind): Read => ({
      statement: tenantSelect({
        tenantId: query.tenantId,
        from: raw(kind),
        select: [{ expr: { field: STORAGE[kind].field }, as: 'value' }],
        tags: tagsFor(kind),
        time: inclusive,
        groupBy: { tags: ['entity_id'] },
      }),
      collect: collectValues,
    });
    const every = query.every;
    for (const kind of kinds) {
      if (kind === 'numeric' && source !== 'raw') {
        reads.push(...this.#rollupReads(query, source, fn, fromMs, toMs, everyMs, tagsFor(kind)));
      } else if (every === undefined || everyMs === undefined) {
        reads.push(pointsRead(kind));
      } else if (kind === 'switch' && fn === 'mean') {
        const read = pointsRead(kind);
        const bucketMs = everyMs;
        reads.push({
          statement: read.statement,
          collect: (series, into) => {
            read.collect(series, (entityId, points) =>
              into(entityId, meanOfStates(points, bucketMs)),
            );
          },
        });
      } else {
        // Text has no order or average: every function but count gives the bucket's last.
        const aggregate: Aggregate = kind === 'text' && fn !== 'count' ? 'last' : fn;
        reads.push({
          statement: tenantSelect({
            tenantId: query.tenantId,
            from: raw(kind),
            select: [{ expr: { fn: aggregate, field: STORAGE[kind].field }, as: 'value' }],
            tags: tagsFor(kind),
            time: inclusive,
            groupBy: { every, tags: ['entity_id'] },
            fill: 'none',
          }),
          collect: collectValues,
        });
      }
    }
    return reads;
  }

  /**
   * A rollup read, with the recent tail read raw: the rollup function may not have written
   * its buckets yet, and recomputes them for a while. Before the split the rollups are final
   * (readings arriving later than that are folded in by the function's backlog). The split
   * is on a bucket boundary, so each bucket comes whole from one source.
   */
  #rollupReads(
    query: SeriesQuery,
    source: Exclude<SeriesSource, 'raw'>,
    fn: SeriesFunction,
    fromMs: number,
    toMs: number,
    everyMs: number | undefined,
    tags: TagFilter,
  ): Read[] {
    const rollup = ROLLUPS.find((candidate) => candidate.name === source) as Rollup;
    const intervalMs = durationMs(rollup.interval);
    const every = query.every ?? rollup.interval;
    const bucketMs = everyMs ?? intervalMs;
    const split = Math.floor((this.#now() - rollup.settledMs) / bucketMs) * bucketMs;
    const end = toMs + 1;
    const reads: Read[] = [];
    const read = (from: Source, expr: FieldExpr, time: { from: number; to: number }): Read => ({
      statement: tenantSelect({
        tenantId: query.tenantId,
        from,
        select: [{ expr, as: 'value' }],
        tags,
        time,
        groupBy: { every, tags: ['entity_id'] },
        fill: 'none',
      }),
      collect: collectValues,
    });
    if (fromMs < Math.min(split, end)) {
      reads.push(
        read(
          this.#source(rollupPolicy(query.retentionPolicy, rollup), MEASUREMENTS.sensor),
          ROLLUP_EXPRESSIONS[fn],
          { from: fromMs, to: Math.min(split, end) },
        ),
      );
    }
    if (Math.max(fromMs, split) < end) {
      reads.push(
        read(
          this.#source(query.retentionPolicy, MEASUREMENTS.sensor),
          { fn, field: FIELDS.value },
          { from: Math.max(fromMs, split), to: end },
        ),
      );
    }
    return reads;
  }
}

/**
 * The query's range cut where a tier move has got to (`PriorTier`): older times from the
 * old tier, the rest from the new one, each time from exactly one. `to` is inclusive. The
 * move advances by whole days, so buckets that divide a day are never cut in two.
 */
function tierParts(
  query: SeriesQuery,
  fromMs: number,
  toMs: number,
): Array<{ policy: string; from: number; to: number }> {
  const prior = query.priorTier;
  if (!prior) return [{ policy: query.retentionPolicy, from: fromMs, to: toMs }];
  const parts: Array<{ policy: string; from: number; to: number }> = [];
  if (fromMs < prior.before) {
    parts.push({ policy: prior.policy, from: fromMs, to: Math.min(toMs, prior.before - 1) });
  }
  if (toMs >= prior.before) {
    parts.push({ policy: query.retentionPolicy, from: Math.max(fromMs, prior.before), to: toMs });
  }
  return parts;
}

/** Share of `true` states per bucket: InfluxQL has no mean over booleans. */
function meanOfStates(points: SeriesPoint[], everyMs: number): SeriesPoint[] {
  const buckets = new Map<number, { on: number; all: number }>();
  for (const point of points) {
    const start = Math.floor(Date.parse(point.time) / everyMs) * everyMs;
    const bucket = buckets.get(start) ?? { on: 0, all: 0 };
    bucket.all++;
    if (point.value === true) bucket.on++;
    buckets.set(start, bucket);
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([start, bucket]) => ({ time: iso(start), value: bucket.on / bucket.all }));
}
