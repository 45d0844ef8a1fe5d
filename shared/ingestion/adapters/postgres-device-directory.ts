import type pg from 'pg';
import { inTenantTransaction, type Queryable } from '../../db/postgres.ts';
import type { EntityType } from '../../identifiers.ts';
import type {
  CommandConfirmation,
  DeviceContext,
  LateRollupHour,
  RejectionCount,
  SeenUpdate,
} from '../domain/model.ts';
import type { Discovery } from '../domain/payloads.ts';
import type { DeviceDirectory } from '../domain/ports.ts';
import { Rejection } from '../domain/rejection.ts';

interface ContextRow {
  id: number;
  tenant_id: number;
  plan: string;
  retention_policy: string;
  retention_days: number | null;
  anomaly_detection: DeviceContext['anomalyDetection'];
  entities: Record<string, { type: EntityType; config: Record<string, unknown> | null }>;
}

export class PostgresDeviceDirectory implements DeviceDirectory {
  constructor(
    private readonly pool: pg.Pool,
    /** Commands older than this are timed out and no longer confirmed. */
    private readonly commandTimeoutSeconds: number,
  ) {}

  async resolve(deviceId: string): Promise<DeviceContext | null> {
    const { rows } = await this.pool.query<ContextRow>('SELECT * FROM ingest_device_context($1)', [
      deviceId,
    ]);
    const row = rows[0];
    if (!row) return null;
    return {
      devicePk: row.id,
      deviceId,
      tenantId: row.tenant_id,
      plan: row.plan,
      retentionPolicy: row.retention_policy,
      retentionDays: row.retention_days,
      anomalyDetection: row.anomaly_detection,
      entities: row.entities,
    };
  }

  async applyDiscovery(device: DeviceContext, discovery: Discovery): Promise<void> {
    const entities = JSON.stringify(discovery.entities);
    await inTenantTransaction(this.pool, device.tenantId, async (client) => {
      // A device re-announces the same discovery on every connect: after a broker restart a
      // whole fleet does at once. Such a discovery is settled by one read, without the
      // tenant's lock, which would otherwise serialise every device of the tenant.
      if (await this.#discoveryUnchanged(client, device, entities, discovery.firmware)) return;
      if (discovery.entities.length > 0) {
        // One discovery of the tenant at a time, so two devices cannot both take the last
        // series the plan allows.
        await client.query('SELECT 1 FROM tenants FOR NO KEY UPDATE');
        const before = await this.#entityCounts(client, device.devicePk);
        await client.query(
          `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name, unit, icon, config, discovery_mode, mqtt_topic)
           SELECT $1, $2, e.entity_id, e.entity_type, e.name, e.unit, e.icon, e.config, 'auto',
                  'devices/' || $3 || '/' || e.entity_id || '/state'
           FROM jsonb_to_recordset($4::jsonb)
             AS e(entity_id text, entity_type text, name text, unit text, icon text, config jsonb)
           ON CONFLICT (device_id, entity_id) DO UPDATE
             SET entity_type = EXCLUDED.entity_type, name = EXCLUDED.name, unit = EXCLUDED.unit,
                 icon = EXCLUDED.icon, config = EXCLUDED.config, mqtt_topic = EXCLUDED.mqtt_topic
             WHERE entities.discovery_mode = 'auto'`,
          [device.devicePk, device.tenantId, device.deviceId, entities],
        );
        const after = await this.#entityCounts(client, device.devicePk);
        // Only growth is refused: a device over a cap its plan lowered still re-announces.
        if (after.onDevice > before.onDevice) {
          if (after.maxPerDevice !== null && after.onDevice > after.maxPerDevice) {
            throw new Rejection(
              'entity_limit_reached',
              `the plan allows ${after.maxPerDevice} entities per device`,
            );
          }
          // Counting the tenant's series only when it grew: a count of every entity per
          // discovery made a fleet's discoveries quadratic in its size.
          if (after.maxSeries !== null && (await this.#seriesInTenant(client)) > after.maxSeries) {
            throw new Rejection(
              'entity_limit_reached',
              `the plan allows ${after.maxSeries} series per tenant`,
            );
          }
        }
      }
      // Only fill what the user has not set: a name given at registration wins.
      await client.query(
        `UPDATE devices SET
           discovery_mode = 'auto',
           config = COALESCE(config, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object('firmware', $2::text)),
           updated_at = now()
         WHERE id = $1`,
        [device.devicePk, discovery.firmware ?? null],
      );
    });
  }

  /** True when applying the discovery would change neither an entity nor the device. */
  async #discoveryUnchanged(
    client: Queryable,
    device: DeviceContext,
    entities: string,
    firmware: string | undefined,
  ): Promise<boolean> {
    const { rows } = await client.query<{ unchanged: boolean }>(
      `SELECT NOT EXISTS (
                SELECT 1
                FROM jsonb_to_recordset($2::jsonb)
                  AS e(entity_id text, entity_type text, name text, unit text, icon text, config jsonb)
                LEFT JOIN entities x ON x.device_id = $1 AND x.entity_id = e.entity_id
                WHERE x.entity_id IS NULL
                   OR (x.discovery_mode = 'auto'
                       AND (x.entity_type::text, x.name, x.unit, x.icon, x.config, x.mqtt_topic)
                           IS DISTINCT FROM
                           (e.entity_type, e.name, e.unit, e.icon, e.config,
                            'devices/' || $3 || '/' || e.entity_id || '/state'))
              ) AND EXISTS (
                SELECT 1 FROM devices d
                WHERE d.id = $1 AND d.discovery_mode = 'auto'
                  AND ($4::text IS NULL OR d.config ->> 'firmware' = $4)
              ) AS unchanged`,
      [device.devicePk, entities, device.deviceId, firmware ?? null],
    );
    return rows[0]?.unchanged === true;
  }

  async #entityCounts(client: Queryable, deviceId: number) {
    const { rows } = await client.query<{
      on_device: number;
      max_entities_per_device: number | null;
      max_series: number | null;
    }>(
      `SELECT (SELECT count(*) FROM entities WHERE device_id = $1)::integer AS on_device,
              p.max_entities_per_device, p.max_series
       FROM tenant_plan tp JOIN plans p ON p.name = tp.plan`,
      [deviceId],
    );
    const row = rows[0];
    return {
      onDevice: row?.on_device ?? 0,
      maxPerDevice: row?.max_entities_per_device ?? null,
      maxSeries: row?.max_series ?? null,
    };
  }

  async #seriesInTenant(client: Queryable): Promise<number> {
    const { rows } = await client.query<{ in_tenant: number }>(
      'SELECT count(*)::integer AS in_tenant FROM entities',
    );
    return rows[0]?.in_tenant ?? 0;
  }

  async recordSeen(updates: SeenUpdate[]): Promise<void> {
    const byTenant = new Map<number, SeenUpdate[]>();
    for (const update of updates) {
      const list = byTenant.get(update.device.tenantId) ?? [];
      list.push(update);
      byTenant.set(update.device.tenantId, list);
    }
    for (const [tenantId, list] of byTenant) {
      await inTenantTransaction(this.pool, tenantId, (client) =>
        client.query(
          `UPDATE devices d SET
             status = COALESCE(u.status, d.status),
             last_seen = GREATEST(d.last_seen, u.last_seen)
           FROM jsonb_to_recordset($1::jsonb) AS u(id integer, status text, last_seen timestamptz)
           WHERE d.id = u.id`,
          [
            JSON.stringify(
              list.map((update) => ({
                id: update.device.devicePk,
                status: update.online === undefined ? null : update.online ? 'online' : 'offline',
                last_seen:
                  update.lastSeenMs === undefined
                    ? null
                    : new Date(update.lastSeenMs).toISOString(),
              })),
            ),
          ],
        ),
      );
    }
  }

  async confirmCommands(
    device: DeviceContext,
    confirmations: CommandConfirmation[],
  ): Promise<Map<string, string>> {
    if (confirmations.length === 0) return new Map();
    return inTenantTransaction(this.pool, device.tenantId, async (client) => {
      // A state echoing the command id confirms that command; a state without one confirms
      // the latest pending command for the entity that asked for this very value.
      const { rows } = await client.query<{ entity_id: string; triggered_by: string }>(
        `WITH reported AS (
           SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(entity_id text, value jsonb, command_id text)
         ), matched AS (
           SELECT DISTINCT ON (c.entity_id) c.id
           FROM commands c JOIN reported r ON r.entity_id = c.entity_id
           WHERE c.device_id = $1 AND c.status = 'sent'
             AND c.created_at >= now() - make_interval(secs => $3)
             AND (c.id::text = r.command_id OR (r.command_id IS NULL AND c.value = r.value))
           ORDER BY c.entity_id, c.created_at DESC
         )
         UPDATE commands c SET status = 'confirmed', updated_at = now()
         FROM matched WHERE c.id = matched.id
         RETURNING c.entity_id, c.triggered_by`,
        [
          device.devicePk,
          JSON.stringify(
            confirmations.map((confirmation) => ({
              entity_id: confirmation.entityId,
              value: confirmation.value,
              command_id: confirmation.commandId ?? null,
            })),
          ),
          this.commandTimeoutSeconds,
        ],
      );
      return new Map(rows.map((row) => [row.entity_id, row.triggered_by]));
    });
  }

  async planVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ version: number }>('SELECT version FROM plan_version');
    return rows[0]?.version ?? 0;
  }

  async markLateRollups(hours: LateRollupHour[]): Promise<void> {
    if (hours.length === 0) return;
    await this.pool.query('SELECT rollup_backlog_mark($1::jsonb)', [
      JSON.stringify(
        hours.map((hour) => ({
          tenant_id: hour.tenantId,
          policy: hour.policy,
          hour_ms: hour.hourMs,
        })),
      ),
    ]);
  }

  async recordRejections(counts: RejectionCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.pool.query('SELECT record_ingestion_rejections($1::jsonb)', [
      JSON.stringify(counts),
    ]);
  }
}
