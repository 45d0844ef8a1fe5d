import type pg from 'pg';
import { joinDetectorState } from '../../anomalies/adapters/detector-state-codec.ts';
import type { ModelStore } from '../../anomalies/domain/ports.ts';
import { inTenantTransaction, tenantPlanHas } from '../../db/postgres.ts';
import { NotFound, Unprocessable } from '../../domain-errors.ts';
import type { TrainedModel } from '../../ml/domain/model.ts';
import type {
  DeviceReport,
  EdgeAnomaly,
  EdgeDeployment,
  EdgeDeploymentStore,
  ModelSnapshot,
  NewDeployment,
  RunningModel,
} from '../domain/ports.ts';

/** The newest deployment stays 'sent' in its row; past the timeout every reader sees it failed. */
const DEPLOYMENT_COLUMNS = `id, device_id AS "deviceId", entity_id AS "entityId", version, checksum,
  size_bytes AS "sizeBytes", weight_encoding AS "weightEncoding",
  CASE WHEN status = 'sent' AND created_at < now() - make_interval(secs => $TIMEOUT) THEN 'failed' ELSE status END AS status,
  CASE WHEN status = 'sent' AND created_at < now() - make_interval(secs => $TIMEOUT) THEN 'no_confirmation' ELSE status_reason END AS "statusReason",
  to_json(created_at) #>> '{}' AS "createdAt", to_json(updated_at) #>> '{}' AS "updatedAt"`;

const RECENT_ANOMALIES = 20;

export class PostgresEdgeStore implements EdgeDeploymentStore {
  readonly #columns: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly models: ModelStore<TrainedModel>,
    timeoutSeconds: number,
  ) {
    this.#columns = DEPLOYMENT_COLUMNS.replaceAll('$TIMEOUT', String(Math.trunc(timeoutSeconds)));
  }

  planAllows(tenantId: number): Promise<boolean> {
    return tenantPlanHas(this.pool, tenantId, 'edge_deployment');
  }

  async snapshot(
    tenantId: number,
    deviceId: number,
    entityId: string,
    version: string | null,
  ): Promise<ModelSnapshot> {
    const found = await inTenantTransaction(this.pool, tenantId, async (client) => {
      const device = await client.query<{ physical_id: string; entity_type: string | null }>(
        `SELECT d.device_id AS physical_id, e.entity_type FROM devices d
         LEFT JOIN entities e ON e.device_id = d.id AND e.entity_id = $2
         WHERE d.id = $1`,
        [deviceId, entityId],
      );
      const row = device.rows[0];
      if (!row) throw new NotFound('device_not_found', 'No such device');
      if (!row.entity_type) throw new NotFound('entity_not_found', 'The device has no such entity');
      const model = await client.query<{ storage_key: string }>(
        `SELECT storage_key FROM ml_models
         WHERE device_id = $1 AND entity_id = $2
           AND (($3::text IS NULL AND status = 'active') OR (version = $3 AND status <> 'rejected'))
         ORDER BY created_at DESC LIMIT 1`,
        [deviceId, entityId, version],
      );
      const stored = model.rows[0];
      if (!stored && version !== null) {
        throw new NotFound('model_not_found', `The entity has no model ${version}`);
      }
      if (!stored) {
        throw new Unprocessable(
          'no_active_model',
          'The entity has no active anomaly model yet: train one (POST /api/ml/models) first',
        );
      }
      const state = await client.query<{
        detector: string;
        state: unknown;
        profile: Buffer | null;
        last_time_ms: string;
      }>(
        `SELECT s.detector, s.state, p.profile, s.last_time_ms
         FROM ml_detector_states s
         LEFT JOIN ml_detector_profiles p ON p.device_id = s.device_id AND p.entity_id = s.entity_id
         WHERE s.device_id = $1 AND s.entity_id = $2`,
        [deviceId, entityId],
      );
      const saved = state.rows[0];
      return {
        physicalId: row.physical_id,
        storageKey: stored.storage_key,
        detectorState:
          saved?.detector === 'advanced'
            ? joinDetectorState(saved.state, saved.profile).state
            : null,
        lastTimeMs: saved?.detector === 'advanced' ? Number(saved.last_time_ms) : null,
      };
    });
    const model = await this.models.load(found.storageKey);
    if (!model)
      throw new Unprocessable('no_active_model', 'The model file is missing from the store');
    return {
      physicalId: found.physicalId,
      model,
      detectorState: found.detectorState,
      lastTimeMs: found.lastTimeMs,
    };
  }

  record(tenantId: number, d: NewDeployment): Promise<EdgeDeployment> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<EdgeDeployment>(
        `INSERT INTO edge_deployments
           (tenant_id, device_id, entity_id, version, checksum, size_bytes, weight_encoding, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING ${this.#columns}`,
        [
          tenantId,
          d.deviceId,
          d.entityId,
          d.version,
          d.checksum,
          d.sizeBytes,
          d.weightEncoding,
          d.requestedBy,
        ],
      );
      return rows[0] as EdgeDeployment;
    });
  }

  async markFailed(tenantId: number, deploymentId: number, reason: string): Promise<void> {
    await inTenantTransaction(this.pool, tenantId, (client) =>
      client.query(
        `UPDATE edge_deployments SET status = 'failed', status_reason = $2, updated_at = now()
         WHERE id = $1`,
        [deploymentId, reason],
      ),
    );
  }

  current(tenantId: number, deviceId: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const device = await client.query('SELECT 1 FROM devices WHERE id = $1', [deviceId]);
      if (!device.rowCount) throw new NotFound('device_not_found', 'No such device');
      const deployment = await client.query<EdgeDeployment>(
        `SELECT ${this.#columns} FROM edge_deployments WHERE device_id = $1 ORDER BY id DESC LIMIT 1`,
        [deviceId],
      );
      const running = await client.query<RunningModel>(
        `SELECT version, checksum, to_json(reported_at) #>> '{}' AS "reportedAt"
         FROM edge_device_models WHERE device_id = $1`,
        [deviceId],
      );
      const anomalies = await client.query<EdgeAnomaly>(
        `SELECT entity_id AS "entityId", (extract(epoch FROM time) * 1000)::float8 AS "timeMs",
                value, score, reason, model_version AS "modelVersion"
         FROM edge_anomalies WHERE device_id = $1 ORDER BY time DESC LIMIT ${RECENT_ANOMALIES}`,
        [deviceId],
      );
      return {
        deployment: deployment.rows[0] ?? null,
        running: running.rows[0] ?? null,
        anomalies: anomalies.rows,
      };
    });
  }

  async applyReport(tenantId: number, deviceId: number, report: DeviceReport): Promise<void> {
    await inTenantTransaction(this.pool, tenantId, async (client) => {
      const newest = `(SELECT id FROM edge_deployments WHERE device_id = $1 ORDER BY id DESC LIMIT 1)`;
      if (report.status === 'confirmed') {
        await client.query(
          `INSERT INTO edge_device_models (device_id, tenant_id, version, checksum)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (device_id) DO UPDATE
             SET version = EXCLUDED.version, checksum = EXCLUDED.checksum, reported_at = now()`,
          [deviceId, tenantId, report.version, report.checksum],
        );
        // A late confirmation still counts: the device runs exactly what was sent.
        await client.query(
          `UPDATE edge_deployments SET status = 'confirmed', status_reason = NULL, updated_at = now()
           WHERE id = ${newest} AND version = $2 AND checksum = $3 AND status <> 'confirmed'`,
          [deviceId, report.version, report.checksum],
        );
      } else {
        await client.query(
          `UPDATE edge_deployments SET status = 'failed', status_reason = $3, updated_at = now()
           WHERE id = ${newest} AND version = $2 AND status = 'sent'`,
          [deviceId, report.version, report.reason ?? 'refused'],
        );
      }
      if (report.anomalies.length > 0) {
        await client.query(
          `INSERT INTO edge_anomalies (device_id, tenant_id, entity_id, time, value, score, reason, model_version)
           SELECT $1, $2, a.entity_id, to_timestamp(a.time_ms / 1000.0), a.value, a.score, a.reason, $3
           FROM jsonb_to_recordset($4::jsonb)
             AS a(entity_id text, time_ms bigint, value float8, score float8, reason text)
           ON CONFLICT (device_id, entity_id, time) DO NOTHING`,
          [
            deviceId,
            tenantId,
            report.version,
            JSON.stringify(
              report.anomalies.map((a) => ({
                entity_id: a.entityId,
                time_ms: a.timeMs,
                value: a.value,
                score: a.score,
                reason: a.reason,
              })),
            ),
          ],
        );
      }
    });
  }
}
