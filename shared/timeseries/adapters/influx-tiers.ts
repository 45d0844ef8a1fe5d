import { ROLLUPS, rollupPolicy } from '../domain/retention.ts';
import type { TierData, TimeRange } from '../domain/tier-moves.ts';
import { type FieldValue, toLine } from '../line-protocol.ts';
import { FIELDS, MEASUREMENTS } from '../reading.ts';
import { BeyondRetentionError, type InfluxClient, type InfluxSeries } from './influx-client.ts';
import {
  durationMs,
  type InfluxQL,
  type Source,
  statements,
  tenantDelete,
  tenantSelect,
} from './influxql.ts';

/** The raw measurements a tenant has in a tier; rollups are recomputed, not copied. */
const RAW_MEASUREMENTS = [MEASUREMENTS.sensor, MEASUREMENTS.relay, MEASUREMENTS.predictions];
/** A range holding more points than this is copied in twelfths, so no answer is huge. */
const MAX_POINTS_PER_READ = 50_000;
const MIN_SPLIT_MS = 60_000;
const FIVE_MINUTES_MS = durationMs('5m');
const HOUR_MS = durationMs('1h');

const floorTo = (ms: number, step: number) => Math.floor(ms / step) * step;
const ceilTo = (ms: number, step: number) => Math.ceil(ms / step) * step;

/** Points of `SELECT * ... GROUP BY *` answers as line protocol (every field as it came). */
function linesOf(series: InfluxSeries[], measurement: string): string[] {
  const lines: string[] = [];
  for (const s of series) {
    for (const row of s.values) {
      const fields: Record<string, FieldValue> = {};
      for (let column = 1; column < s.columns.length; column++) {
        const value = row[column];
        if (value !== null && value !== undefined) fields[s.columns[column] as string] = value;
      }
      if (Object.keys(fields).length === 0) continue;
      lines.push(toLine({ measurement, tags: s.tags, fields, timeMs: Number(row[0]) }));
    }
  }
  return lines;
}

/**
 * The 5-minute and 1-hour rollups, computed by the platform over InfluxQL reads and
 * line-protocol writes (no continuous queries, no SELECT ... INTO: neither exists on
 * InfluxDB 3, and 2.x's v1 API has no INTO). A window is always recomputed whole from its
 * source, so computing it again gives the same points: idempotent, and late readings are
 * folded in by recomputing their windows.
 */
export class InfluxRollups {
  constructor(
    private readonly client: InfluxClient,
    private readonly database: string,
  ) {}

  #source(policy: string, measurement = MEASUREMENTS.sensor): Source {
    return { database: this.database, retentionPolicy: policy, measurement };
  }

  /**
   * Recomputes the tenant's 5-minute windows touching [from, to) from raw points, then the
   * hours touching it from the 5-minute points. Returns the rollup points written.
   */
  async recompute(tenantId: number, policy: string, from: number, to: number): Promise<number> {
    const [fiveMinute, hourly] = ROLLUPS;
    if (!fiveMinute || !hourly) throw new Error('rollups are 5m and 1h');
    const start5 = floorTo(from, FIVE_MINUTES_MS);
    const end5 = ceilTo(to, FIVE_MINUTES_MS);
    const [raw] = await this.client.query(
      tenantSelect({
        tenantId,
        from: this.#source(policy),
        select: (['mean', 'min', 'max', 'count', 'sum', 'last'] as const).map((fn) => ({
          expr: { fn, field: FIELDS.value },
          as: fn,
        })),
        time: { from: start5, to: end5 },
        groupBy: { every: fiveMinute.interval, tags: '*' },
        fill: 'none',
      }),
      { timeoutMs: 120_000 },
    );
    let written = await this.#write(raw?.series ?? [], rollupPolicy(policy, fiveMinute), false);
    const [five] = await this.client.query(
      tenantSelect({
        tenantId,
        from: this.#source(rollupPolicy(policy, fiveMinute)),
        select: [
          { expr: { fn: 'sum', field: 'sum' }, as: 'sum' },
          { expr: { fn: 'sum', field: 'count' }, as: 'count' },
          { expr: { fn: 'min', field: 'min' }, as: 'min' },
          { expr: { fn: 'max', field: 'max' }, as: 'max' },
          { expr: { fn: 'last', field: 'last' }, as: 'last' },
        ],
        time: { from: floorTo(from, HOUR_MS), to: ceilTo(to, HOUR_MS) },
        groupBy: { every: hourly.interval, tags: '*' },
        fill: 'none',
      }),
      { timeoutMs: 120_000 },
    );
    written += await this.#write(five?.series ?? [], rollupPolicy(policy, hourly), true);
    return written;
  }

  async #write(series: InfluxSeries[], policy: string, meanFromSum: boolean): Promise<number> {
    const lines: string[] = [];
    for (const s of series) {
      const column = (name: string) => s.columns.indexOf(name);
      const [sum, count, min, max, last, mean] = ['sum', 'count', 'min', 'max', 'last', 'mean'].map(
        column,
      ) as [number, number, number, number, number, number];
      for (const row of s.values) {
        const n = Number(row[count] ?? 0);
        if (n === 0) continue;
        const total = Number(row[sum]);
        lines.push(
          toLine({
            measurement: MEASUREMENTS.sensor,
            tags: s.tags,
            fields: {
              mean: meanFromSum ? total / n : Number(row[mean]),
              min: Number(row[min]),
              max: Number(row[max]),
              // An integer field, as the continuous queries wrote it.
              count: BigInt(n),
              sum: total,
              last: Number(row[last]),
            },
            timeMs: Number(row[0]),
          }),
        );
      }
    }
    if (lines.length === 0) return 0;
    try {
      await this.client.write(lines, { retentionPolicy: policy });
    } catch (error) {
      // A window starting before what the tier keeps: its older part is gone anyway.
      if (!(error instanceof BeyondRetentionError)) throw error;
      return lines.length - error.dropped;
    }
    return lines.length;
  }
}

/** `TierData` over InfluxDB's v1 API: what tier moves read, write and delete. */
export class InfluxTierData implements TierData {
  constructor(
    private readonly client: InfluxClient,
    private readonly database: string,
    private readonly rollups: InfluxRollups,
    /** Deletes a tenant's points older than a time from every tier (see `influxPurger`). */
    private readonly purge: (tenantId: number, before: number) => Promise<void>,
  ) {}

  #source(policy: string, measurement: string): Source {
    return { database: this.database, retentionPolicy: policy, measurement };
  }

  async oldest(tenantId: number, policy: string): Promise<number | null> {
    const results = await this.client.query(
      statements(
        RAW_MEASUREMENTS.map((measurement) =>
          tenantSelect({
            tenantId,
            from: this.#source(policy, measurement),
            select: [{ expr: { all: true } }],
            limit: 1,
          }),
        ),
      ),
    );
    let oldest: number | null = null;
    for (const result of results) {
      const time = result.series[0]?.values[0]?.[0];
      if (typeof time === 'number' && (oldest === null || time < oldest)) oldest = time;
    }
    return oldest;
  }

  async copy(
    tenantId: number,
    fromPolicy: string,
    toPolicy: string,
    range: TimeRange,
  ): Promise<number> {
    let copied = 0;
    let first: number | undefined;
    let last: number | undefined;
    for (const measurement of RAW_MEASUREMENTS) {
      const part = await this.#copyRange(tenantId, fromPolicy, toPolicy, measurement, range);
      copied += part.points;
      if (part.first !== undefined) first = Math.min(first ?? part.first, part.first);
      if (part.last !== undefined) last = Math.max(last ?? part.last, part.last);
    }
    if (first !== undefined && last !== undefined) {
      await this.rollups.recompute(tenantId, toPolicy, first, last + 1);
    }
    return copied;
  }

  async #copyRange(
    tenantId: number,
    fromPolicy: string,
    toPolicy: string,
    measurement: string,
    range: TimeRange,
  ): Promise<{ points: number; first?: number; last?: number }> {
    const from = this.#source(fromPolicy, measurement);
    const time = range.to === undefined ? { from: range.from } : { from: range.from, to: range.to };
    const [counted] = await this.client.query(
      tenantSelect({ tenantId, from, select: [{ expr: { fn: 'count', field: '*' } }], time }),
    );
    const countRow = counted?.series[0]?.values[0] ?? [];
    const points = Math.max(0, ...countRow.slice(1).map((value) => Number(value ?? 0)));
    if (points === 0) return { points: 0 };
    const span = (range.to ?? Date.now() + HOUR_MS) - range.from;
    if (points > MAX_POINTS_PER_READ && span > MIN_SPLIT_MS) {
      const total = { points: 0 } as { points: number; first?: number; last?: number };
      const end = range.to ?? range.from + span;
      const step = Math.ceil(span / 12);
      for (let start = range.from; start < end; start += step) {
        const isLast = start + step >= end;
        const part = await this.#copyRange(tenantId, fromPolicy, toPolicy, measurement, {
          from: start,
          ...(isLast && range.to === undefined ? {} : { to: Math.min(start + step, end) }),
        });
        total.points += part.points;
        if (part.first !== undefined) total.first = Math.min(total.first ?? part.first, part.first);
        if (part.last !== undefined) total.last = Math.max(total.last ?? part.last, part.last);
      }
      return total;
    }
    const [answer] = await this.client.query(
      tenantSelect({
        tenantId,
        from,
        select: [{ expr: { all: true } }],
        time,
        groupBy: { tags: '*' },
      }),
      { timeoutMs: 120_000 },
    );
    const series = answer?.series ?? [];
    const lines = linesOf(series, measurement);
    let first: number | undefined;
    let last: number | undefined;
    for (const s of series) {
      for (const row of s.values) {
        const t = Number(row[0]);
        if (first === undefined || t < first) first = t;
        if (last === undefined || t > last) last = t;
      }
    }
    let dropped = 0;
    try {
      await this.client.write(lines, { retentionPolicy: toPolicy });
    } catch (error) {
      // The new tier's limit passed some points while the move ran: they expire anyway.
      if (!(error instanceof BeyondRetentionError)) throw error;
      dropped = error.dropped;
    }
    return {
      points: lines.length - dropped,
      ...(first !== undefined ? { first } : {}),
      ...(last !== undefined ? { last } : {}),
    };
  }

  purgeBefore(tenantId: number, before: number): Promise<void> {
    return this.purge(tenantId, before);
  }
}

/**
 * InfluxDB 1.x: `DELETE` acts on every retention policy of the database (InfluxQL cannot
 * name one), which is what a purge of the tenant's older points needs.
 */
export function influxQlPurger(client: InfluxClient, database: string) {
  return async (tenantId: number, before: number): Promise<void> => {
    const statement: InfluxQL = tenantDelete({ tenantId, database, time: { to: before } });
    await client.query(statement, { timeoutMs: 120_000 });
  };
}
