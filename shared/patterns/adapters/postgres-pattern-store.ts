import type pg from 'pg';
import { inTenantTransaction, tenantPlanHas } from '../../db/postgres.ts';
import {
  TIER_COLUMNS,
  type TierRow,
  tiersOf,
} from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type {
  Discovery,
  DiscoveryRequest,
  DiscoveryResult,
  PatternJob,
  PatternView,
} from '../domain/model.ts';
import type { PatternDevice, PatternStore, StoredRecogniser } from '../domain/ports.ts';

const JOB_COLUMNS = `id AS job_id, device_id, status, request, result,
  CASE WHEN error_code IS NULL THEN NULL
       ELSE json_build_object('code', error_code, 'message', error_message) END AS error,
  attempts, to_json(created_at) #>> '{}' AS created_at, to_json(started_at) #>> '{}' AS started_at,
  to_json(deadline_at) #>> '{}' AS deadline_at, to_json(finished_at) #>> '{}' AS finished_at`;

const PATTERN_COLUMNS = `p.id AS pattern_id, p.label, m.entity_ids, p.occurrences,
  json_build_object('from', to_json(p.example_from) #>> '{}', 'to', to_json(p.example_to) #>> '{}') AS example,
  p.total_ms / 1000.0 AS total_seconds, p.share, p.profile,
  to_json(m.discovered_at) #>> '{}' AS discovered_at`;

interface DeviceRow extends TierRow {
  id: number;
  device_id: string;
  entities: Array<{ entity_id: string; entity_type: string }>;
}

interface ModelRow {
  entity_ids: string[];
  step_ms: string;
  window_steps: number;
  centers: number[];
  scales: number[];
  patterns: Array<{ id: number; label: string | null; centroid: number[]; threshold: number }>;
}

/** Pattern recognition's tables, every query in the tenant's row-level-security context. */
export class PostgresPatternStore implements PatternStore {
  constructor(private readonly pool: pg.Pool) {}

  #inTenant<T>(tenantId: number, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTenantTransaction(this.pool, tenantId, work);
  }

  planAllows(tenantId: number): Promise<boolean> {
    return tenantPlanHas(this.pool, tenantId, 'pattern_recognition');
  }

  device(tenantId: number, devicePk: number): Promise<PatternDevice | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<DeviceRow>(
        `SELECT d.id, d.device_id, s.policy, s.prior_policy, s.prior_before,
           COALESCE((SELECT json_agg(json_build_object('entity_id', e.entity_id, 'entity_type', e.entity_type)
                                     ORDER BY e.entity_id)
                     FROM entities e WHERE e.device_id = d.id), '[]'::json) AS entities
         FROM devices d CROSS JOIN (SELECT ${TIER_COLUMNS} FROM tenant_storage) s
         WHERE d.id = $1 AND d.tenant_id = $2`,
        [devicePk, tenantId],
      );
      const row = rows[0];
      if (!row) return null;
      return {
        id: row.id,
        deviceId: row.device_id,
        entities: row.entities.map((e) => ({ entityId: e.entity_id, entityType: e.entity_type })),
        tier: tiersOf(row),
      };
    });
  }

  createJob(
    tenantId: number,
    devicePk: number,
    request: DiscoveryRequest,
    requestedBy: number,
    nowMs: number,
  ): Promise<PatternJob> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<PatternJob>(
        `INSERT INTO pattern_jobs (tenant_id, device_id, request, requested_by, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING ${JOB_COLUMNS}`,
        [tenantId, devicePk, JSON.stringify(request), requestedBy, new Date(nowMs)],
      );
      return rows[0] as PatternJob;
    });
  }

  job(tenantId: number, devicePk: number | null, jobId: number): Promise<PatternJob | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<PatternJob>(
        `SELECT ${JOB_COLUMNS} FROM pattern_jobs
         WHERE id = $1 AND ($2::integer IS NULL OR device_id = $2) AND tenant_id = $3`,
        [jobId, devicePk, tenantId],
      );
      return rows[0] ?? null;
    });
  }

  startJob(
    tenantId: number,
    seen: PatternJob,
    times: { nowMs: number; deadlineMs: number },
  ): Promise<PatternJob | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<PatternJob>(
        `UPDATE pattern_jobs SET status = 'running', attempts = attempts + 1, started_at = $5,
           deadline_at = $6
         WHERE id = $1 AND tenant_id = $2 AND status = $3 AND attempts = $4
         RETURNING ${JOB_COLUMNS}`,
        [
          seen.job_id,
          tenantId,
          seen.status,
          seen.attempts,
          new Date(times.nowMs),
          new Date(times.deadlineMs),
        ],
      );
      return rows[0] ?? null;
    });
  }

  finishJob(
    tenantId: number,
    seen: PatternJob,
    outcome: { result: DiscoveryResult } | { error: { code: string; message: string } },
    nowMs: number,
  ): Promise<boolean> {
    const [status, result, code, message] =
      'result' in outcome
        ? ['done', JSON.stringify(outcome.result), null, null]
        : ['failed', null, outcome.error.code, outcome.error.message];
    return this.#inTenant(tenantId, async (client) => {
      const { rowCount } = await client.query(
        `UPDATE pattern_jobs SET status = $5, result = $6, error_code = $7, error_message = $8,
           finished_at = $9
         WHERE id = $1 AND tenant_id = $2 AND status = $3 AND attempts = $4`,
        [
          seen.job_id,
          tenantId,
          seen.status,
          seen.attempts,
          status,
          result,
          code,
          message,
          new Date(nowMs),
        ],
      );
      return rowCount === 1;
    });
  }

  recogniser(tenantId: number, devicePk: number): Promise<StoredRecogniser | null> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<ModelRow>(
        `SELECT m.entity_ids, m.step_ms, m.window_steps, m.centers, m.scales,
           COALESCE((SELECT json_agg(json_build_object('id', p.id, 'label', p.label,
                                                       'centroid', p.centroid, 'threshold', p.threshold)
                                     ORDER BY p.position)
                     FROM patterns p WHERE p.device_id = m.device_id), '[]'::json) AS patterns
         FROM pattern_models m WHERE m.device_id = $1 AND m.tenant_id = $2`,
        [devicePk, tenantId],
      );
      const row = rows[0];
      if (!row || row.patterns.length === 0) return null;
      return {
        recogniser: {
          entityIds: row.entity_ids,
          stepMs: Number(row.step_ms),
          windowSteps: row.window_steps,
          centers: row.centers,
          scales: row.scales,
          centroids: row.patterns.map((p) => p.centroid),
          thresholds: row.patterns.map((p) => p.threshold),
        },
        patternIds: row.patterns.map((p) => p.id),
        labels: row.patterns.map((p) => p.label),
      };
    });
  }

  async saveDiscovery(
    tenantId: number,
    devicePk: number,
    job: PatternJob,
    discovery: Discovery,
    labels: Map<number, string>,
  ): Promise<boolean> {
    const { recogniser } = discovery;
    return this.#inTenant(tenantId, async (client) => {
      // Held until the patterns are saved: a worker that took the job over cannot finish
      // between this check and the save.
      const ours = await client.query(
        `SELECT 1 FROM pattern_jobs WHERE id = $1 AND tenant_id = $2 AND status = 'running'
           AND attempts = $3 FOR UPDATE`,
        [job.job_id, tenantId, job.attempts],
      );
      if (ours.rowCount !== 1) return false;
      // Replacing the row cascades to the device's earlier patterns.
      await client.query('DELETE FROM pattern_models WHERE device_id = $1 AND tenant_id = $2', [
        devicePk,
        tenantId,
      ]);
      await client.query(
        `INSERT INTO pattern_models (device_id, tenant_id, job_id, entity_ids, step_ms, window_steps,
                                     centers, scales, silhouette)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          devicePk,
          tenantId,
          job.job_id,
          recogniser.entityIds,
          recogniser.stepMs,
          recogniser.windowSteps,
          recogniser.centers,
          recogniser.scales,
          discovery.silhouette,
        ],
      );
      for (const [position, pattern] of discovery.patterns.entries()) {
        await client.query(
          `INSERT INTO patterns (tenant_id, device_id, position, label, centroid, threshold, occurrences,
                                 example_from, example_to, total_ms, share, profile)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            tenantId,
            devicePk,
            position,
            labels.get(pattern.cluster) ?? null,
            recogniser.centroids[pattern.cluster],
            recogniser.thresholds[pattern.cluster],
            pattern.occurrences,
            new Date(pattern.example.fromMs),
            new Date(pattern.example.toMs),
            pattern.totalMs,
            pattern.share,
            JSON.stringify(pattern.profile),
          ],
        );
      }
      return true;
    });
  }

  patterns(tenantId: number, devicePk: number): Promise<PatternView[]> {
    return this.#inTenant(tenantId, async (client) => {
      const { rows } = await client.query<PatternView>(
        `SELECT ${PATTERN_COLUMNS} FROM patterns p JOIN pattern_models m ON m.device_id = p.device_id
         WHERE p.device_id = $1 AND p.tenant_id = $2 ORDER BY p.share DESC, p.position`,
        [devicePk, tenantId],
      );
      return rows.map(numericView);
    });
  }

  setLabel(
    tenantId: number,
    devicePk: number,
    patternId: number,
    label: string | null,
  ): Promise<{ before: string | null; pattern: PatternView } | null> {
    return this.#inTenant(tenantId, async (client) => {
      const before = await client.query<{ label: string | null }>(
        `SELECT label FROM patterns WHERE id = $1 AND device_id = $2 AND tenant_id = $3 FOR UPDATE`,
        [patternId, devicePk, tenantId],
      );
      if (!before.rows[0]) return null;
      await client.query('UPDATE patterns SET label = $2 WHERE id = $1', [patternId, label]);
      const { rows } = await client.query<PatternView>(
        `SELECT ${PATTERN_COLUMNS} FROM patterns p JOIN pattern_models m ON m.device_id = p.device_id
         WHERE p.id = $1`,
        [patternId],
      );
      return { before: before.rows[0].label, pattern: numericView(rows[0] as PatternView) };
    });
  }
}

/** PostgreSQL's numeric comes back as text. */
function numericView(row: PatternView): PatternView {
  return { ...row, total_seconds: Number(row.total_seconds) };
}
