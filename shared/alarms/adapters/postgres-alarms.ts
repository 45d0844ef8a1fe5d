import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { Alarm, AlarmRule, Condition, Notify, Severity } from '../domain/model.ts';
import type {
  AlarmEventView,
  AlarmFilter,
  AlarmRuleStore,
  AlarmStore,
  DeliveryView,
  RuleFields,
  RuleRecord,
} from '../domain/ports.ts';

interface RuleRow {
  id: number;
  tenant_id: number;
  name: string;
  device_pk: number | null;
  device_type: string | null;
  entity_id: string | null;
  severity: Severity;
  condition: Condition;
  notify: Notify;
  quiet_minutes: number;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

export function ruleOf(
  row: Omit<RuleRow, 'created_at' | 'updated_at' | 'enabled'> & { enabled?: boolean },
): AlarmRule {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    devicePk: row.device_pk,
    deviceType: row.device_type,
    entityId: row.entity_id,
    severity: row.severity,
    condition: row.condition,
    notify: { webhooks: row.notify.webhooks ?? [], emails: row.notify.emails ?? [] },
    quietMinutes: row.quiet_minutes,
    enabled: row.enabled ?? true,
  };
}

function recordOf(row: RuleRow): RuleRecord {
  return {
    ...ruleOf(row),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function ruleParams(fields: RuleFields) {
  return [
    fields.name,
    fields.devicePk,
    fields.deviceType,
    fields.entityId,
    fields.severity,
    JSON.stringify(fields.condition),
    JSON.stringify(fields.notify),
    fields.quietMinutes,
    fields.enabled,
  ];
}

export class PostgresAlarmRuleStore implements AlarmRuleStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(tenantId: number, createdBy: number, fields: RuleFields) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      // One addition at a time per tenant, so two requests cannot both take the last rule.
      await client.query('SELECT 1 FROM tenants FOR NO KEY UPDATE');
      const { rows: limits } = await client.query<{ limit: number | null; used: number }>(
        `SELECT p.max_alarm_rules AS limit, (SELECT count(*) FROM alarm_rules)::integer AS used
         FROM tenant_plan tp JOIN plans p ON p.name = tp.plan`,
      );
      const limit = limits[0];
      if (limit && limit.limit !== null && limit.used >= limit.limit) {
        return { refused: 'limit_reached' as const, limit: limit.limit };
      }
      if (fields.devicePk !== null) {
        const { rowCount } = await client.query('SELECT 1 FROM devices WHERE id = $1', [
          fields.devicePk,
        ]);
        if (!rowCount) return { refused: 'no_device' as const };
      }
      const { rows } = await client.query<RuleRow>(
        `INSERT INTO alarm_rules (tenant_id, name, device_pk, device_type, entity_id, severity, condition, notify, quiet_minutes, enabled, created_by)
         VALUES (app_current_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
        [...ruleParams(fields), createdBy],
      );
      return recordOf(rows[0] as RuleRow);
    });
  }

  async list(tenantId: number): Promise<RuleRecord[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<RuleRow>(
        'SELECT * FROM alarm_rules WHERE tenant_id = $1 ORDER BY id',
        [tenantId],
      );
      return rows.map(recordOf);
    });
  }

  async get(tenantId: number, id: number): Promise<RuleRecord | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<RuleRow>(
        'SELECT * FROM alarm_rules WHERE tenant_id = $1 AND id = $2',
        [tenantId, id],
      );
      return rows[0] ? recordOf(rows[0]) : null;
    });
  }

  async update(tenantId: number, id: number, fields: RuleFields): Promise<RuleRecord | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      if (fields.devicePk !== null) {
        const { rowCount } = await client.query('SELECT 1 FROM devices WHERE id = $1', [
          fields.devicePk,
        ]);
        if (!rowCount) return null;
      }
      const { rows: previous } = await client.query<RuleRow>(
        'SELECT * FROM alarm_rules WHERE tenant_id = $1 AND id = $2 FOR UPDATE',
        [tenantId, id],
      );
      if (!previous[0]) return null;
      const { rows } = await client.query<RuleRow>(
        `UPDATE alarm_rules SET name = $1, device_pk = $2, device_type = $3, entity_id = $4,
           severity = $5, condition = $6, notify = $7, quiet_minutes = $8, enabled = $9, updated_at = now()
         WHERE tenant_id = $10 AND id = $11 RETURNING *`,
        [...ruleParams(fields), tenantId, id],
      );
      const before = previous[0];
      const after = rows[0] as RuleRow;
      if (
        before.device_pk !== after.device_pk ||
        before.device_type !== after.device_type ||
        before.entity_id !== after.entity_id
      ) {
        // Other devices or another entity: what the rule remembered was about something else.
        await client.query('DELETE FROM alarm_rule_states WHERE tenant_id = $1 AND rule_id = $2', [
          tenantId,
          id,
        ]);
      } else if (JSON.stringify(before.condition) !== JSON.stringify(after.condition)) {
        // A new condition restarts its `for_seconds` wait, but an alarm still open stays one
        // occurrence: forgetting that it is over the limit would count the next reading again.
        await client.query(
          `UPDATE alarm_rule_states s SET pending_since = NULL
           WHERE s.tenant_id = $1 AND s.rule_id = $2
             AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.tenant_id = s.tenant_id
               AND a.rule_id = s.rule_id AND a.device_pk = s.device_pk AND a.status <> 'cleared')`,
          [tenantId, id],
        );
      }
      return recordOf(after);
    });
  }

  async remove(tenantId: number, id: number, at: Date): Promise<RuleRecord | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows: cleared } = await client.query<{ id: number }>(
        `UPDATE alarms SET status = 'cleared', cleared_at = $3, last_at = $3
         WHERE tenant_id = $1 AND rule_id = $2 AND status <> 'cleared' RETURNING id`,
        [tenantId, id, at],
      );
      for (const alarm of cleared) {
        await client.query(
          `INSERT INTO alarm_events (tenant_id, alarm_id, type, at, reason)
           VALUES ($1, $2, 'cleared', $3, 'rule deleted')`,
          [tenantId, alarm.id, at],
        );
      }
      const { rows } = await client.query<RuleRow>(
        'DELETE FROM alarm_rules WHERE tenant_id = $1 AND id = $2 RETURNING *',
        [tenantId, id],
      );
      return rows[0] ? recordOf(rows[0]) : null;
    });
  }

  async planFeatures(
    tenantId: number,
  ): Promise<{ anomalyDetection: boolean; predictiveMaintenance: boolean }> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{
        anomaly_detection: string;
        predictive_maintenance: boolean;
      }>(
        `SELECT p.anomaly_detection, p.predictive_maintenance
         FROM tenant_plan tp JOIN plans p ON p.name = tp.plan WHERE tp.tenant_id = $1`,
        [tenantId],
      );
      return {
        anomalyDetection: (rows[0]?.anomaly_detection ?? 'none') !== 'none',
        predictiveMaintenance: rows[0]?.predictive_maintenance === true,
      };
    });
  }
}

const ALARM_COLUMNS = `id, rule_id, rule_name, device_pk AS device_id, entity_id, severity, status, count,
  value, reason, started_at, last_at, acknowledged_by, acknowledged_at, cleared_at`;

interface AlarmRow
  extends Omit<Alarm, 'started_at' | 'last_at' | 'acknowledged_at' | 'cleared_at'> {
  started_at: Date;
  last_at: Date;
  acknowledged_at: Date | null;
  cleared_at: Date | null;
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

function alarmOf(row: AlarmRow): Alarm {
  return {
    ...row,
    started_at: row.started_at.toISOString(),
    last_at: row.last_at.toISOString(),
    acknowledged_at: iso(row.acknowledged_at),
    cleared_at: iso(row.cleared_at),
  };
}

export class PostgresAlarmStore implements AlarmStore {
  constructor(private readonly pool: pg.Pool) {}

  async list(tenantId: number, filter: AlarmFilter): Promise<Alarm[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      // Open alarms first (active before acknowledged), the most severe and newest first.
      const { rows } = await client.query<AlarmRow>(
        `SELECT ${ALARM_COLUMNS} FROM alarms
         WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR severity = $3)
           AND ($4::integer IS NULL OR device_pk = $4)
         ORDER BY CASE status WHEN 'active' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END,
                  CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'minor' THEN 2 ELSE 3 END,
                  started_at DESC, id DESC
         LIMIT $5`,
        [
          tenantId,
          filter.status ?? null,
          filter.severity ?? null,
          filter.devicePk ?? null,
          filter.limit,
        ],
      );
      return rows.map(alarmOf);
    });
  }

  async get(tenantId: number, id: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<AlarmRow>(
        `SELECT ${ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND id = $2`,
        [tenantId, id],
      );
      if (!rows[0]) return null;
      const { rows: history } = await client.query<AlarmEventView & { at: Date }>(
        `SELECT type, at, value, user_id, reason FROM alarm_events
         WHERE tenant_id = $1 AND alarm_id = $2 ORDER BY id`,
        [tenantId, id],
      );
      const { rows: deliveries } = await client.query<
        Omit<DeliveryView, 'created_at' | 'delivered_at' | 'next_attempt_at'> & {
          created_at: Date;
          delivered_at: Date | null;
          next_attempt_at: Date;
        }
      >(
        `SELECT id, event, channel, target, status, attempts, last_status, last_error, created_at,
                delivered_at, next_attempt_at
         FROM alarm_deliveries WHERE tenant_id = $1 AND alarm_id = $2 ORDER BY id`,
        [tenantId, id],
      );
      return {
        alarm: alarmOf(rows[0]),
        history: history.map((event) => ({ ...event, at: event.at.toISOString() })),
        deliveries: deliveries.map((delivery) => ({
          ...delivery,
          created_at: delivery.created_at.toISOString(),
          delivered_at: iso(delivery.delivered_at),
          next_attempt_at:
            delivery.status === 'pending' ? delivery.next_attempt_at.toISOString() : null,
        })),
      };
    });
  }

  async acknowledge(tenantId: number, id: number, userId: number, at: Date) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<AlarmRow>(
        `UPDATE alarms SET status = 'acknowledged', acknowledged_by = $3, acknowledged_at = $4
         WHERE tenant_id = $1 AND id = $2 AND status = 'active' RETURNING ${ALARM_COLUMNS}`,
        [tenantId, id, userId, at],
      );
      if (rows[0]) {
        await client.query(
          `INSERT INTO alarm_events (tenant_id, alarm_id, type, at, user_id) VALUES ($1, $2, 'acknowledged', $3, $4)`,
          [tenantId, id, at, userId],
        );
        return { alarm: alarmOf(rows[0]) };
      }
      const { rows: existing } = await client.query<AlarmRow>(
        `SELECT ${ALARM_COLUMNS} FROM alarms WHERE tenant_id = $1 AND id = $2`,
        [tenantId, id],
      );
      return existing[0]
        ? { refused: 'not_open' as const, alarm: alarmOf(existing[0]) }
        : { refused: 'not_found' as const };
    });
  }
}
