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

function contextOf(deviceId: string, row: ContextRow): DeviceContext {
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
    return row ? contextOf(deviceId, row) : null;
  }

  async resolveMany(deviceIds: readonly string[]): Promise<Map<string, DeviceContext>> {
    if (deviceIds.length === 0) return new Map();
    const { rows } = await this.pool.query<ContextRow & { physical_id: string }>(
      `SELECT ids.physical_id, c.*
       FROM unnest($1::text[]) AS ids(physical_id), LATERAL ingest_device_context(ids.physical_id) c`,
      [deviceIds],
    );
    return new Map(rows.map((row) => [row.physical_id, contextOf(row.physical_id, row)]));
  }

  /** One device's discovery: `applyDiscoveries` of one, its refusal thrown. */
  async applyDiscovery(device: DeviceContext, discovery: Discovery): Promise<void> {
    const [refused] = await this.applyDiscoveries(device.tenantId, [{ device, discovery }]);
    if (refused instanceof Rejection) throw refused;
  }

  /**
   * A tenant's discoveries in one transaction (a fleet powering up announces thousands at
   * once: a transaction each, every one taking the tenant's lock, held ingestion to about
   * 20 a second). Each device is judged on its own, in order, as if alone.
   */
  async applyDiscoveries(
    tenantId: number,
    items: ReadonlyArray<{ device: DeviceContext; discovery: Discovery }>,
  ): Promise<Array<Rejection | 'unchanged' | null>> {
    const refused: Array<Rejection | 'unchanged' | null> = items.map(() => null);
    if (items.length === 0) return refused;
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      // A device re-announces the same discovery on every connect: after a broker restart a
      // whole fleet does at once. Such a discovery is settled by one read, without the
      // tenant's lock, which would otherwise serialise every device of the tenant.
      const unchanged = await this.#unchangedDiscoveries(client, items);
      for (const position of unchanged) refused[position] = 'unchanged';
      const changed = items
        .map((item, position) => ({ ...item, position }))
        .filter((item) => !unchanged.has(item.position));
      if (changed.length === 0) return refused;
      const accepted: typeof changed = [];
      const announcing = changed.filter((item) => item.discovery.entities.length > 0);
      if (announcing.length > 0) {
        // One discovery of the tenant at a time, so two devices cannot both take the last
        // series the plan allows.
        await client.query('SELECT 1 FROM tenants FOR NO KEY UPDATE');
        const caps = await this.#planCaps(client);
        const existing = await this.#entityIdsOf(
          client,
          announcing.map((item) => item.device.devicePk),
        );
        // Counted only when some device grows: a count of every entity per discovery made
        // a fleet's discoveries quadratic in its size.
        let series: number | undefined;
        for (const item of changed) {
          const known = existing.get(item.device.devicePk) ?? new Set<string>();
          const added = item.discovery.entities.filter((e) => !known.has(e.entity_id)).length;
          // Only growth is refused: a device over a cap its plan lowered still re-announces.
          if (added > 0 && caps.maxPerDevice !== null && known.size + added > caps.maxPerDevice) {
            refused[item.position] = new Rejection(
              'entity_limit_reached',
              `the plan allows ${caps.maxPerDevice} entities per device`,
            );
            continue;
          }
          if (added > 0 && caps.maxSeries !== null) {
            series ??= await this.#seriesInTenant(client);
            if (series + added > caps.maxSeries) {
              refused[item.position] = new Rejection(
                'entity_limit_reached',
                `the plan allows ${caps.maxSeries} series per tenant`,
              );
              continue;
            }
            series += added;
          }
          accepted.push(item);
        }
        const entities = accepted.flatMap((item) =>
          item.discovery.entities.map((entity) => ({
            ...entity,
            measuring_range: entity.measuring_range ?? null,
            device_pk: item.device.devicePk,
            device_id: item.device.deviceId,
          })),
        );
        if (entities.length > 0) {
          await client.query(
            `INSERT INTO entities (device_id, tenant_id, entity_id, entity_type, name, unit, icon, config, discovery_mode, mqtt_topic, announced_measuring_range)
             SELECT e.device_pk, $1, e.entity_id, e.entity_type, e.name, e.unit, e.icon, e.config, 'auto',
                    'devices/' || e.device_id || '/' || e.entity_id || '/state', e.measuring_range
             FROM jsonb_to_recordset($2::jsonb)
               AS e(device_pk integer, device_id text, entity_id text, entity_type text, name text,
                    unit text, icon text, config jsonb, measuring_range jsonb)
             ON CONFLICT (device_id, entity_id) DO UPDATE
               SET entity_type = EXCLUDED.entity_type, name = EXCLUDED.name, unit = EXCLUDED.unit,
                   icon = EXCLUDED.icon, config = EXCLUDED.config, mqtt_topic = EXCLUDED.mqtt_topic,
                   announced_measuring_range = EXCLUDED.announced_measuring_range
               WHERE entities.discovery_mode = 'auto'`,
            [tenantId, JSON.stringify(entities)],
          );
        }
      } else {
        accepted.push(...changed);
      }
      if (accepted.length > 0) {
        // Only fill what the user has not set: a name given at registration wins.
        await client.query(
          `UPDATE devices d SET
             discovery_mode = 'auto',
             config = COALESCE(d.config, '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object('firmware', u.firmware)),
             report_interval_s = COALESCE(u.report_interval_s, d.report_interval_s),
             updated_at = now()
           FROM jsonb_to_recordset($1::jsonb) AS u(id integer, firmware text, report_interval_s integer)
           WHERE d.id = u.id`,
          [
            JSON.stringify(
              accepted.map((item) => ({
                id: item.device.devicePk,
                firmware: item.discovery.firmware ?? null,
                report_interval_s: item.discovery.report_interval_s ?? null,
              })),
            ),
          ],
        );
      }
      return refused;
    });
  }

  /**
   * The positions of the discoveries that would change neither an entity nor the device.
   * The device is read by a scalar subquery, looked up by its key once per discovery: as an
   * EXISTS, the planner (which takes a freshly registered fleet's devices for one row) joined
   * every device with every discovery and ran the entity comparison for each pair: a
   * fleet's re-announcements after a broker restart took time quadratic in their number.
   */
  async #unchangedDiscoveries(
    client: Queryable,
    items: ReadonlyArray<{ device: DeviceContext; discovery: Discovery }>,
  ): Promise<Set<number>> {
    const { rows } = await client.query<{ position: number }>(
      `SELECT a.position
         FROM jsonb_to_recordset($1::jsonb)
           AS a(position integer, device_pk integer, device_id text, firmware text,
                report_interval_s integer, entities jsonb)
        WHERE NOT EXISTS (
                SELECT 1
                FROM jsonb_to_recordset(a.entities)
                  AS e(entity_id text, entity_type text, name text, unit text, icon text, config jsonb,
                       measuring_range jsonb)
                LEFT JOIN entities x ON x.device_id = a.device_pk AND x.entity_id = e.entity_id
                WHERE x.entity_id IS NULL
                   OR (x.discovery_mode = 'auto'
                       AND (x.entity_type::text, x.name, x.unit, x.icon, x.config, x.mqtt_topic,
                            x.announced_measuring_range)
                           IS DISTINCT FROM
                           (e.entity_type, e.name, e.unit, e.icon, e.config,
                            'devices/' || a.device_id || '/' || e.entity_id || '/state',
                            e.measuring_range))
              ) AND (
                SELECT d.discovery_mode = 'auto'
                  AND (a.firmware IS NULL OR d.config ->> 'firmware' = a.firmware)
                  AND (a.report_interval_s IS NULL OR d.report_interval_s = a.report_interval_s)
                FROM devices d WHERE d.id = a.device_pk
              )`,
      [
        JSON.stringify(
          items.map((item, position) => ({
            position,
            device_pk: item.device.devicePk,
            device_id: item.device.deviceId,
            firmware: item.discovery.firmware ?? null,
            report_interval_s: item.discovery.report_interval_s ?? null,
            entities: item.discovery.entities,
          })),
        ),
      ],
    );
    return new Set(rows.map((row) => row.position));
  }

  async #planCaps(client: Queryable) {
    const { rows } = await client.query<{
      max_entities_per_device: number | null;
      max_series: number | null;
    }>(
      `SELECT p.max_entities_per_device, p.max_series
       FROM tenant_plan tp JOIN plans p ON p.name = tp.plan`,
    );
    return {
      maxPerDevice: rows[0]?.max_entities_per_device ?? null,
      maxSeries: rows[0]?.max_series ?? null,
    };
  }

  async #entityIdsOf(client: Queryable, devicePks: number[]): Promise<Map<number, Set<string>>> {
    const { rows } = await client.query<{ device_id: number; entity_ids: string[] }>(
      `SELECT device_id, array_agg(entity_id) AS entity_ids
       FROM entities WHERE device_id = ANY($1::integer[]) GROUP BY device_id`,
      [devicePks],
    );
    return new Map(rows.map((row) => [row.device_id, new Set(row.entity_ids)]));
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
