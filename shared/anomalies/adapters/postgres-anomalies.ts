import type pg from 'pg';
import { inTenantTransaction, tenantPlanHas } from '../../db/postgres.ts';
import type { Logger } from '../../logger.ts';
import { DEFAULT_CO_WINDOW, type ModelSettings } from '../../ml/domain/families.ts';
import { isMeasuringRange, type MeasuringRange } from '../../ml/domain/measuring-range.ts';
import { TimeSlices } from '../../time-slices.ts';
import { type TierRow, tiersOf } from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type {
  AnomalyLevel,
  ModelSummary,
  NewModel,
  TrainingCandidate,
  TypeSettings,
} from '../domain/model.ts';
import type {
  ActiveModel,
  AnomalyTarget,
  AnomalyTargets,
  DetectorStateStore,
  DeviceEntities,
  DeviceStateSave,
  MeasuringRangeSource,
  ModelRegistry,
  SavedDetectorState,
  TypeSettingsStore,
  WantedStates,
} from '../domain/ports.ts';
import {
  encodeDetectorState,
  joinDetectorState,
  type ProfilePart,
  type SplitDetectorState,
  type StoredProfile,
  splitDetectorState,
} from './detector-state-codec.ts';

interface TargetRow extends TierRow {
  device_id: string;
  level: AnomalyLevel;
  custom_models: boolean;
  entity_type: string | null;
}

/** Devices with their plan's detection level and storage tiers, under the tenant's RLS. */
export class PostgresAnomalyTargets implements AnomalyTargets {
  constructor(private readonly pool: pg.Pool) {}

  find(tenantId: number, devicePk: number, entityId?: string): Promise<AnomalyTarget | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TargetRow>(
        `SELECT d.device_id, s.policy, s.prior_policy, s.prior_before, p.anomaly_detection AS level, p.custom_models,
                (SELECT e.entity_type FROM entities e WHERE e.device_id = d.id AND e.entity_id = $2) AS entity_type
         FROM devices d, tenant_storage s, tenant_plan tp JOIN plans p ON p.name = tp.plan
         WHERE d.id = $1`,
        [devicePk, entityId ?? null],
      );
      const row = rows[0];
      if (!row) return undefined;
      return {
        deviceId: row.device_id,
        level: row.level,
        entityType: row.entity_type ?? undefined,
        customModels: row.custom_models,
        ...tiersOf(row),
      };
    });
  }

  customModels(tenantId: number): Promise<boolean> {
    return tenantPlanHas(this.pool, tenantId, 'custom_models');
  }
}

const MODEL_COLUMNS = `id, device_id, entity_id, kind, version, threshold, training_points, metrics, status,
  status_reason, origin, settings, to_json(trained_at) #>> '{}' AS trained_at`;

/** `ml_models`: the record of every trained model, under the tenant's RLS. */
export class PostgresModelRegistry implements ModelRegistry {
  constructor(private readonly pool: pg.Pool) {}

  list(tenantId: number): Promise<ModelSummary[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<ModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM ml_models ORDER BY created_at DESC LIMIT 500`,
      );
      return rows;
    });
  }

  active(tenantId: number, wanted: ReadonlyArray<DeviceEntities>): Promise<ActiveModel[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        device_id: number;
        entity_id: string;
        version: string;
        storage_key: string;
      }>(
        `SELECT m.device_id, m.entity_id, m.version, m.storage_key
         FROM ml_models m JOIN unnest($2::int[], $3::text[]) AS w(device_id, entity_id)
           ON m.device_id = w.device_id AND m.entity_id = w.entity_id
         WHERE m.tenant_id = $1 AND m.status = 'active'`,
        [tenantId, ...pairsOf(wanted)],
      );
      return rows.map((row) => ({
        devicePk: row.device_id,
        entityId: row.entity_id,
        version: row.version,
        storageKey: row.storage_key,
      }));
    });
  }

  record(tenantId: number, model: NewModel): Promise<ModelSummary> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      if (model.status === 'active') {
        await client.query(
          `UPDATE ml_models SET status = 'superseded' WHERE device_id = $1 AND entity_id = $2 AND status = 'active'`,
          [model.devicePk, model.entityId],
        );
      }
      const { rows } = await client.query<ModelSummary>(
        `INSERT INTO ml_models (tenant_id, device_id, entity_id, kind, version, storage_key, threshold,
                                training_points, metrics, trained_at, status, status_reason, origin, settings)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING ${MODEL_COLUMNS}`,
        [
          tenantId,
          model.devicePk,
          model.entityId,
          model.kind,
          model.version,
          model.storageKey,
          model.threshold,
          model.trainingPoints,
          JSON.stringify(model.metrics),
          model.trainedAt,
          model.status,
          model.statusReason,
          model.origin,
          JSON.stringify(model.settings),
        ],
      );
      return rows[0] as ModelSummary;
    });
  }

  find(tenantId: number, modelId: number): Promise<ModelSummary | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<ModelSummary>(
        `SELECT ${MODEL_COLUMNS} FROM ml_models WHERE id = $1`,
        [modelId],
      );
      return rows[0];
    });
  }

  /** Rejected models are never activated; the caller refuses them, the WHERE makes sure. */
  activate(tenantId: number, modelId: number): Promise<ModelSummary | undefined> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows: found } = await client.query<{ device_id: number; entity_id: string }>(
        `SELECT device_id, entity_id FROM ml_models WHERE id = $1 AND status <> 'rejected' FOR UPDATE`,
        [modelId],
      );
      const model = found[0];
      if (!model) return undefined;
      await client.query(
        `UPDATE ml_models SET status = 'superseded'
         WHERE device_id = $1 AND entity_id = $2 AND status = 'active' AND id <> $3`,
        [model.device_id, model.entity_id, modelId],
      );
      const { rows } = await client.query<ModelSummary>(
        `UPDATE ml_models SET status = 'active' WHERE id = $1 RETURNING ${MODEL_COLUMNS}`,
        [modelId],
      );
      return rows[0];
    });
  }

  /** Across tenants through the migration's SECURITY DEFINER function. */
  async trainingCandidates(maxAgeDays: number, maxModels: number): Promise<TrainingCandidate[]> {
    const { rows } = await this.pool.query<{
      tenant_id: number;
      device_id: number;
      physical_id: string;
      entity_id: string;
      settings: unknown;
    }>('SELECT * FROM ml_training_candidates($1, $2)', [maxAgeDays, maxModels]);
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      devicePk: row.device_id,
      deviceId: row.physical_id,
      entityId: row.entity_id,
      settings: row.settings,
    }));
  }
}

/** The (device, entity) pairs asked for, as two parallel arrays for `unnest`. */
/** The measuring ranges entities have (announced in discovery or set by the tenant). */
export class PostgresMeasuringRanges implements MeasuringRangeSource {
  constructor(private readonly pool: pg.Pool) {}

  rangesOf(
    tenantId: number,
    wanted: ReadonlyArray<DeviceEntities>,
  ): Promise<Map<number, Map<string, MeasuringRange>>> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        device_id: number;
        entity_id: string;
        min: number;
        max: number;
      }>(
        `SELECT e.device_id, e.entity_id, (r.range ->> 'min')::float8 AS min,
                (r.range ->> 'max')::float8 AS max
         FROM entities e JOIN unnest($2::int[], $3::text[]) AS w(device_id, entity_id)
           ON e.device_id = w.device_id AND e.entity_id = w.entity_id
         CROSS JOIN LATERAL (
           SELECT COALESCE(e.set_measuring_range, e.announced_measuring_range) AS range
         ) r
         WHERE e.tenant_id = $1 AND r.range IS NOT NULL`,
        [tenantId, ...pairsOf(wanted)],
      );
      const ranges = new Map<number, Map<string, MeasuringRange>>();
      for (const row of rows) {
        const range = { min: row.min, max: row.max };
        if (!isMeasuringRange(range)) continue;
        const byEntity = ranges.get(row.device_id) ?? new Map<string, MeasuringRange>();
        byEntity.set(row.entity_id, range);
        ranges.set(row.device_id, byEntity);
      }
      return ranges;
    });
  }
}

function pairsOf(wanted: ReadonlyArray<DeviceEntities>): [number[], string[]] {
  const devices: number[] = [];
  const entities: string[] = [];
  for (const { devicePk, entityIds } of wanted) {
    for (const entityId of entityIds) {
      devices.push(devicePk);
      entities.push(entityId);
    }
  }
  return [devices, entities];
}

interface StateRow {
  device_id: number;
  entity_id: string;
  detector: 'basic' | 'advanced';
  state: unknown;
  profile: Buffer | null;
  /** Which of the profile came: 'none' (not asked for), else from block `first` (null: all). */
  part: 'none' | 'some';
  first: number | null;
  last_time_ms: string | number;
}

const DAY_MS = 86_400_000;

/**
 * The states asked for, each with what its scoring needs of its profile: a profile's blocks
 * are the detector's time-of-day bins, so readings from `from` to `to` need the blocks of
 * their bins (one more on each side, against rounding at a bin's edge); a span that wraps
 * past midnight or is longer than half a day loads the whole profile. A block the scoring
 * touches but was not loaded is a hole, and the detector fails on it rather than guess.
 */
const LOAD_STATES = `
  SELECT s.device_id, s.entity_id, s.detector, s.state, s.last_time_ms,
         CASE WHEN w.part = 2 THEN 'none' ELSE 'some' END AS part,
         b.first,
         CASE WHEN w.part = 2 THEN NULL
              WHEN b.first IS NULL THEN p.profile
              ELSE substring(p.profile FROM b.first * b.bytes + 1 FOR (b.last - b.first + 1) * b.bytes)
         END AS profile
  FROM ml_detector_states s
  JOIN unnest($2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::int[])
       AS w(device_id, entity_id, from_ms, to_ms, part)
    ON s.device_id = w.device_id AND s.entity_id = w.entity_id
  LEFT JOIN ml_detector_profiles p ON p.device_id = s.device_id AND p.entity_id = s.entity_id
  LEFT JOIN LATERAL (
    SELECT CASE WHEN w.part = 1 AND p.records > 0 AND w.to_ms - w.from_ms < ${DAY_MS / 2}
                     AND f.bin - 1 >= 0 AND t.bin + 1 < p.records AND f.bin <= t.bin
                THEN f.bin - 1 END AS first,
           t.bin + 1 AS last,
           octet_length(p.profile) / p.records AS bytes
    FROM (SELECT (((w.from_ms % ${DAY_MS} + ${DAY_MS}) % ${DAY_MS}) * p.records / ${DAY_MS})::int AS bin) f,
         (SELECT (((w.to_ms % ${DAY_MS} + ${DAY_MS}) % ${DAY_MS}) * p.records / ${DAY_MS})::int AS bin) t
  ) b ON true
  WHERE s.tenant_id = $1`;

/**
 * `ml_detector_states` (each entity's detector after the last reading it scored, without its
 * time-of-day profiles) and `ml_detector_profiles` (those profiles, rewritten only when the
 * state carries more changes to them than it should): detector-state-codec.ts.
 */
export class PostgresDetectorStates implements DetectorStateStore {
  readonly #logger: Logger | undefined;
  readonly #profiles: boolean;

  /**
   * `profiles: false` stores each state whole, as before the profiles were kept apart (the
   * baseline bench/scoring.ts measures against); states stored either way are read.
   */
  constructor(
    private readonly pool: pg.Pool,
    options: { logger?: Logger; profiles?: boolean } = {},
  ) {
    this.#logger = options.logger;
    this.#profiles = options.profiles ?? true;
  }

  async load(
    tenantId: number,
    wanted: ReadonlyArray<WantedStates>,
  ): Promise<Map<number, SavedDetectorState[]>> {
    const rows = await inTenantTransaction(this.pool, tenantId, async (client) => {
      const devices: number[] = [];
      const entities: string[] = [];
      const from: Array<number | null> = [];
      const to: Array<number | null> = [];
      const parts: number[] = [];
      for (const { devicePk, entityIds, scored } of wanted) {
        for (const entityId of entityIds) {
          const span = scored?.[entityId];
          devices.push(devicePk);
          entities.push(entityId);
          from.push(span ? span.fromMs : null);
          to.push(span ? span.toMs : null);
          // 0: the whole profile, 1: the blocks of the span, 2: none (not scored).
          parts.push(!scored ? 0 : span ? 1 : 2);
        }
      }
      const { rows } = await client.query<StateRow>(LOAD_STATES, [
        tenantId,
        devices,
        entities,
        from,
        to,
        parts,
      ]);
      return rows;
    });
    // Decoded once the connection is back in the pool, and a slice at a time: a pass loads
    // thousands of states, and other work of the process waits while they are decoded.
    const slices = new TimeSlices();
    const byDevice = new Map<number, SavedDetectorState[]>();
    for (const row of rows) {
      if (slices.due()) await slices.turn();
      const list = byDevice.get(row.device_id) ?? [];
      list.push({
        entityId: row.entity_id,
        detector: row.detector,
        ...this.#joined(row),
        lastTimeMs: Number(row.last_time_ms),
      });
      byDevice.set(row.device_id, list);
    }
    return byDevice;
  }

  /** The stored parts as one state; a state that cannot be read is given as none to restore. */
  #joined(row: StateRow): { state: unknown; stored?: StoredProfile } {
    try {
      const part: ProfilePart =
        row.part === 'none' ? 'none' : row.first === null ? 'whole' : { first: row.first };
      const { state, stored } = joinDetectorState(row.state, row.profile, part);
      return stored ? { state, stored } : { state };
    } catch (error) {
      // The scorer starts the entity's detector afresh from an unreadable state, and the
      // save replaces it.
      this.#logger?.warn('detector state unreadable', {
        deviceId: row.device_id,
        entityId: row.entity_id,
        error,
      });
      return { state: null };
    }
  }

  /**
   * Compare-and-set for many devices, in one short transaction with nothing but PostgreSQL
   * in it: every entity to save is locked (in key order, so two invocations never deadlock)
   * and must still hold the state the update was computed from, or still have none. A device
   * with an entity that moved saves nothing; the others are written `SAVE_DEVICES` devices a
   * statement (and the profiles to rewrite in another). A first state inserted concurrently (not yet
   * visible to the lock) is caught by the insert: the device's other first states written
   * here are then removed again.
   */
  async saveIfUnchanged(
    tenantId: number,
    saves: ReadonlyArray<DeviceStateSave>,
  ): Promise<Set<number>> {
    const moved = new Set<number>();
    if (saves.length === 0) return moved;
    await inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        device_id: number;
        entity_id: string;
        last_time_ms: string;
      }>(
        `SELECT s.device_id, s.entity_id, s.last_time_ms
         FROM ml_detector_states s JOIN unnest($2::int[], $3::text[]) AS w(device_id, entity_id)
           ON s.device_id = w.device_id AND s.entity_id = w.entity_id
         WHERE s.tenant_id = $1
         ORDER BY s.device_id, s.entity_id FOR UPDATE OF s`,
        [
          tenantId,
          ...pairsOf(
            saves.map(({ devicePk, updates }) => ({
              devicePk,
              entityIds: updates.map((update) => update.entityId),
            })),
          ),
        ],
      );
      const current = new Map(
        rows.map((row) => [stateKey(row.device_id, row.entity_id), Number(row.last_time_ms)]),
      );
      for (const { devicePk, updates } of saves) {
        const unchanged = updates.every(
          (update) => (current.get(stateKey(devicePk, update.entityId)) ?? null) === update.basedOn,
        );
        if (!unchanged) moved.add(devicePk);
      }
      const unmoved = saves.filter(({ devicePk }) => !moved.has(devicePk));
      for (let start = 0; start < unmoved.length; start += SAVE_DEVICES) {
        await this.#write(client, tenantId, unmoved.slice(start, start + SAVE_DEVICES), moved);
      }
    });
    return moved;
  }

  /**
   * Writes some locked, unmoved devices' states (see `saveIfUnchanged`); a device whose first
   * state another invocation inserted meanwhile is added to `moved`, with nothing of it kept.
   */
  async #write(
    client: pg.PoolClient,
    tenantId: number,
    saves: ReadonlyArray<DeviceStateSave>,
    moved: Set<number>,
  ): Promise<void> {
    const written = saves.flatMap((save) => rowsOf(save, this.#profiles));
    const fresh = written.filter((row) => row.based_on === null);
    if (fresh.length > 0) {
      const { rows: inserted } = await client.query<{ device_id: number; entity_id: string }>(
        `${INSERT_STATES} ON CONFLICT (device_id, entity_id) DO NOTHING RETURNING device_id, entity_id`,
        [tenantId, ...stateColumns(fresh)],
      );
      const done = new Set(inserted.map((row) => stateKey(row.device_id, row.entity_id)));
      const raced = new Set(
        fresh
          .filter((row) => !done.has(stateKey(row.device_id, row.entity_id)))
          .map((row) => row.device_id),
      );
      if (raced.size > 0) {
        const undo = inserted.filter((row) => raced.has(row.device_id));
        await client.query(
          `DELETE FROM ml_detector_states s USING unnest($2::int[], $3::text[]) AS w(device_id, entity_id)
           WHERE s.tenant_id = $1 AND s.device_id = w.device_id AND s.entity_id = w.entity_id`,
          [tenantId, undo.map((row) => row.device_id), undo.map((row) => row.entity_id)],
        );
        for (const devicePk of raced) moved.add(devicePk);
      }
    }
    const known = written.filter((row) => row.based_on !== null && !moved.has(row.device_id));
    if (known.length > 0) {
      // Locked above and still as loaded: an update, not an insert that conflicts.
      await client.query(
        `UPDATE ml_detector_states s
         SET detector = u.detector, state = u.state, last_time_ms = u.last_time_ms, updated_at = now()
         FROM ${STATE_ROWS}
         WHERE s.tenant_id = $1 AND s.device_id = u.device_id AND s.entity_id = u.entity_id`,
        [tenantId, ...stateColumns(known)],
      );
    }
    const kept = written.filter((row) => !moved.has(row.device_id));
    const profiles = kept.filter((row) => row.profile !== null);
    if (profiles.length > 0) {
      await client.query(
        `INSERT INTO ml_detector_profiles (device_id, tenant_id, entity_id, profile, records)
         SELECT w.device_id, $1, w.entity_id, w.profile, w.records
         FROM unnest($2::int[], $3::text[], $4::bytea[], $5::int[]) AS w(device_id, entity_id, profile, records)
         ON CONFLICT (device_id, entity_id) DO UPDATE SET profile = EXCLUDED.profile, records = EXCLUDED.records`,
        [
          tenantId,
          profiles.map((row) => row.device_id),
          profiles.map((row) => row.entity_id),
          profiles.map((row) => row.profile),
          profiles.map((row) => row.records),
        ],
      );
    }
    // Changed blocks written into stored profiles: one run of each profile a statement.
    const runs = kept.flatMap((row) =>
      (row.blocks ?? []).map((run, index) => ({ ...run, index, row })),
    );
    for (let index = 0; runs.some((run) => run.index === index); index++) {
      const these = runs.filter((run) => run.index === index);
      await client.query(
        `UPDATE ml_detector_profiles p SET profile = overlay(p.profile PLACING w.bytes FROM w.at + 1)
         FROM unnest($2::int[], $3::text[], $4::int[], $5::bytea[]) AS w(device_id, entity_id, at, bytes)
         WHERE p.tenant_id = $1 AND p.device_id = w.device_id AND p.entity_id = w.entity_id`,
        [
          tenantId,
          these.map((run) => run.row.device_id),
          these.map((run) => run.row.entity_id),
          these.map((run) => run.at),
          these.map((run) => run.bytes),
        ],
      );
    }
  }
}

/**
 * The devices whose states one statement writes (and encodes just before it): a scoring pass
 * saves hundreds of devices at once, and encoding and sending all their states in one go held
 * the process for hundreds of milliseconds, where locally every function shares one process.
 */
const SAVE_DEVICES = 25;

const stateKey = (devicePk: number, entityId: string) => `${devicePk}\u0000${entityId}`;

/** A device's updates as rows: the state for `INSERT_STATES`, the profile apart. */
const rowsOf = ({ devicePk, detector, updates }: DeviceStateSave, profiles: boolean) =>
  updates.map((update) => {
    const split: SplitDetectorState = profiles
      ? splitDetectorState(update.state, (update.stored as StoredProfile | undefined) ?? null)
      : { state: encodeDetectorState(update.state), profile: null, blocks: null, records: 0 };
    return {
      device_id: devicePk,
      entity_id: update.entityId,
      detector,
      state: split.state,
      profile: split.profile,
      blocks: split.blocks,
      records: split.records,
      last_time_ms: update.lastTimeMs,
      based_on: update.basedOn,
    };
  });

/** Rows as `INSERT_STATES`' parallel arrays. */
const stateColumns = (rows: ReturnType<typeof rowsOf>) => [
  rows.map((row) => row.device_id),
  rows.map((row) => row.entity_id),
  rows.map((row) => row.detector),
  rows.map((row) => row.state),
  rows.map((row) => row.last_time_ms),
];

// Parallel arrays, not one JSON document of rows: PostgreSQL parsed that document as jsonb
// and then each state in it again.
const STATE_ROWS = `unnest($2::int[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[])
    AS u(device_id, entity_id, detector, state, last_time_ms)`;
const INSERT_STATES = `INSERT INTO ml_detector_states (device_id, tenant_id, entity_id, detector, state, last_time_ms)
  SELECT u.device_id, $1, u.entity_id, u.detector, u.state, u.last_time_ms FROM ${STATE_ROWS}`;

const TYPE_SETTINGS_COLUMNS = `device_type, entity_id, settings->>'family' AS family,
  (settings->>'windowSize')::int AS window_size, settings->>'size' AS size,
  COALESCE(settings->'coEntities', '[]'::jsonb) AS co_entities,
  COALESCE((settings->>'coWindow')::int, ${DEFAULT_CO_WINDOW}) AS co_window,
  to_json(updated_at) #>> '{}' AS updated_at`;

/** `ml_model_settings`: families and settings chosen per device type, under the tenant's RLS. */
export class PostgresTypeSettings implements TypeSettingsStore {
  constructor(private readonly pool: pg.Pool) {}

  put(tenantId: number, deviceType: string, entityId: string, settings: ModelSettings) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TypeSettings>(
        `INSERT INTO ml_model_settings (tenant_id, device_type, entity_id, settings)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, device_type, entity_id)
           DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()
         RETURNING ${TYPE_SETTINGS_COLUMNS}`,
        [tenantId, deviceType, entityId, JSON.stringify(settings)],
      );
      return rows[0] as TypeSettings;
    });
  }

  list(tenantId: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<TypeSettings>(
        `SELECT ${TYPE_SETTINGS_COLUMNS} FROM ml_model_settings WHERE tenant_id = $1
         ORDER BY device_type, entity_id`,
        [tenantId],
      );
      return rows;
    });
  }

  forDevice(tenantId: number, devicePk: number, entityId: string) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ settings: ModelSettings }>(
        `SELECT ms.settings FROM ml_model_settings ms JOIN devices d ON d.type = ms.device_type
         WHERE ms.tenant_id = $1 AND d.id = $2 AND ms.entity_id = $3`,
        [tenantId, devicePk, entityId],
      );
      return rows[0]?.settings;
    });
  }
}
