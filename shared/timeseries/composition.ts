import type pg from 'pg';
import { databasePool, once, secretStore } from '../composition.ts';
import { config, required } from '../config.ts';
import { InfluxClient, influxCredentials } from './adapters/influx-client.ts';
import { InfluxReadingStore } from './adapters/influx-reading-store.ts';
import { InfluxRollups, InfluxTierData, influxQlPurger } from './adapters/influx-tiers.ts';
import { influxV2Purger, influxV2Settings } from './adapters/influx-v2-schema.ts';
import { PostgresRollupBacklog } from './adapters/postgres-rollup-backlog.ts';
import { PostgresTierMoveLog } from './adapters/postgres-tier-moves.ts';
import { ROLLUP_RECENT_MS } from './domain/retention.ts';
import { RollupService } from './domain/rollups.ts';
import { type TierMoveOptions, TierMoveService } from './domain/tier-moves.ts';

export const influxClient = once(() => {
  const { influx } = config();
  return new InfluxClient({
    url: required(influx.url, 'INFLUX_URL'),
    database: influx.db,
    ...influxCredentials(influx, secretStore),
  });
});

export const readingStore = once(() => new InfluxReadingStore({ client: influxClient() }));

/** Tier moves over the given PostgreSQL pool (the app's, or an operator's). */
export function tierMoves(
  pool: pg.Pool,
  client: InfluxClient,
  options: TierMoveOptions = {},
): TierMoveService {
  const rollups = new InfluxRollups(client, client.database);
  const settings = config();
  // InfluxQL's DELETE exists on 1.x only; 2.x deletes through its v2 API, bucket by bucket.
  const purge =
    settings.influx.version === '2'
      ? influxV2Purger({ ...influxV2Settings(settings, secretStore), database: client.database })
      : influxQlPurger(client, client.database);
  return new TierMoveService(
    new PostgresTierMoveLog(pool),
    new InfluxTierData(client, client.database, rollups, purge),
    options,
  );
}

export const tierMoveService = once(() => tierMoves(databasePool(), influxClient()));

export const rollupService = once(
  () =>
    new RollupService(
      new PostgresRollupBacklog(databasePool()),
      new InfluxRollups(influxClient(), influxClient().database),
      // Active: a device seen in the last half hour (last_seen is written at most once a minute).
      { recentMs: ROLLUP_RECENT_MS, activeMs: 30 * 60_000 },
    ),
);
