import type pg from 'pg';
import { inTenantTransaction } from '../../db/postgres.ts';
import type { EntityType } from '../../identifiers.ts';
import type { Command, CommandTarget, NewCommand } from '../domain/model.ts';
import type { CommandStore } from '../domain/ports.ts';

// A command unanswered for the timeout is timed out; the stored row keeps 'sent' and
// ingestion no longer confirms it, so every reader sees the same status without a sweeper.
const COMMAND_COLUMNS = `id AS command_id, device_id, entity_id, value,
  CASE WHEN status = 'sent' AND created_at < now() - make_interval(secs => $TIMEOUT) THEN 'timed_out' ELSE status END AS status,
  triggered_by, to_json(created_at) #>> '{}' AS created_at, to_json(updated_at) #>> '{}' AS updated_at`;

interface TargetRow {
  device_id: string;
  entity_type: EntityType | null;
  config: Record<string, unknown> | null;
}

export interface PostgresCommandStoreOptions {
  pool: pg.Pool;
  /** How long a sent command may wait for the device's confirmation before it is timed out. */
  timeoutSeconds: number;
}

/** Commands in PostgreSQL, under the tenant's row-level security. */
export class PostgresCommandStore implements CommandStore {
  readonly #pool: pg.Pool;
  readonly #columns: string;

  constructor(options: PostgresCommandStoreOptions) {
    this.#pool = options.pool;
    this.#columns = COMMAND_COLUMNS.replace('$TIMEOUT', String(Math.trunc(options.timeoutSeconds)));
  }

  create(
    tenantId: number,
    command: NewCommand,
    accept: (target: CommandTarget | undefined) => void,
  ): Promise<{ target: CommandTarget; command: Command }> {
    return inTenantTransaction(this.#pool, tenantId, async (client) => {
      const found = await client.query<TargetRow>(
        `SELECT d.device_id, e.entity_type, e.config FROM devices d
         LEFT JOIN entities e ON e.device_id = d.id AND e.entity_id = $2
         WHERE d.id = $1`,
        [command.devicePk, command.entityId],
      );
      const row = found.rows[0];
      const target: CommandTarget | undefined = row && {
        deviceId: row.device_id,
        entity: row.entity_type ? { type: row.entity_type, config: row.config } : undefined,
      };
      accept(target);
      const inserted = await client.query<Command>(
        `INSERT INTO commands (id, tenant_id, device_id, entity_id, value, triggered_by)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         RETURNING ${this.#columns}`,
        [
          command.commandId,
          tenantId,
          command.devicePk,
          command.entityId,
          JSON.stringify(command.value),
          command.triggeredBy,
        ],
      );
      // A command a person sends is on the audit trail, in the same transaction.
      const sender = /^user_(\d+)$/.exec(command.triggeredBy)?.[1];
      await client.query(
        `INSERT INTO audit_log (tenant_id, user_id, action, target, details)
         VALUES ($1, $2, 'command.send', $3, $4)`,
        [
          tenantId,
          sender === undefined ? null : Number(sender),
          `device:${command.devicePk}`,
          JSON.stringify({
            command_id: command.commandId,
            entity_id: command.entityId,
            value: command.value,
          }),
        ],
      );
      return { target: target as CommandTarget, command: inserted.rows[0] as Command };
    });
  }

  async markFailed(tenantId: number, commandId: string): Promise<void> {
    await inTenantTransaction(this.#pool, tenantId, (client) =>
      client.query(`UPDATE commands SET status = 'failed', updated_at = now() WHERE id = $1`, [
        commandId,
      ]),
    );
  }

  get(tenantId: number, devicePk: number, commandId: string): Promise<Command | undefined> {
    return inTenantTransaction(this.#pool, tenantId, async (client) => {
      const { rows } = await client.query<Command>(
        `SELECT ${this.#columns} FROM commands WHERE device_id = $1 AND id::text = $2`,
        [devicePk, commandId],
      );
      return rows[0];
    });
  }

  listRecent(tenantId: number, devicePk: number): Promise<Command[] | undefined> {
    return inTenantTransaction(this.#pool, tenantId, async (client) => {
      const device = await client.query('SELECT 1 FROM devices WHERE id = $1', [devicePk]);
      if (!device.rowCount) return undefined;
      const { rows } = await client.query<Command>(
        `SELECT ${this.#columns} FROM commands WHERE device_id = $1 ORDER BY created_at DESC LIMIT 100`,
        [devicePk],
      );
      return rows;
    });
  }
}
