import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Caller } from '../../accounts/tokens.ts';
import { inTenantTransaction } from '../../db/postgres.ts';
import { DependencyFailed, InvalidInput, NotFound } from '../../domain-errors.ts';
import { emitMetrics, type MetricsContext } from '../../metrics.ts';
import type { CommandPublisher } from '../adapters/iot-data-plane-publisher.ts';

export type CommandStatus = 'sent' | 'confirmed' | 'timed_out' | 'failed';

export interface Command {
  command_id: string;
  device_id: number;
  entity_id: string;
  value: unknown;
  status: CommandStatus;
  triggered_by: string;
  created_at: string;
  updated_at: string;
}

// A command unanswered for the timeout is timed out; the stored row keeps 'sent' and
// ingestion no longer confirms it, so every reader sees the same status without a sweeper.
const COMMAND_COLUMNS = `id AS command_id, device_id, entity_id, value,
  CASE WHEN status = 'sent' AND created_at < now() - make_interval(secs => $TIMEOUT) THEN 'timed_out' ELSE status END AS status,
  triggered_by, to_json(created_at) #>> '{}' AS created_at, to_json(updated_at) #>> '{}' AS updated_at`;

interface EntityRow {
  device_id: string;
  entity_type: string;
  config: Record<string, unknown> | null;
}

const finiteOr = (value: unknown, fallback: number) =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;

/** Checks a commanded value against what the entity accepts; the device is never sent junk. */
export function validateCommandValue(
  entity: Pick<EntityRow, 'entity_type' | 'config'>,
  value: unknown,
) {
  const config = entity.config ?? {};
  switch (entity.entity_type) {
    case 'switch':
      if (typeof value !== 'boolean')
        throw new InvalidInput('invalid_value', 'A switch takes true or false');
      return;
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new InvalidInput('invalid_value', 'A number entity takes a finite number');
      }
      const min = finiteOr(config.min, Number.NEGATIVE_INFINITY);
      const max = finiteOr(config.max, Number.POSITIVE_INFINITY);
      if (value < min || value > max) {
        throw new InvalidInput(
          'invalid_value',
          `Value must be between ${config.min ?? '-∞'} and ${config.max ?? '∞'}`,
        );
      }
      const step = finiteOr(config.step, 0);
      if (step > 0) {
        const steps = (value - (Number.isFinite(min) ? min : 0)) / step;
        if (Math.abs(steps - Math.round(steps)) > 1e-9) {
          throw new InvalidInput(
            'invalid_value',
            `Value must be a multiple of ${step}${Number.isFinite(min) ? ` from ${min}` : ''}`,
          );
        }
      }
      return;
    }
    case 'text': {
      const maxLength = Math.min(finiteOr(config.max_length, 255), 1024);
      if (typeof value !== 'string' || value.length > maxLength) {
        throw new InvalidInput(
          'invalid_value',
          `A text entity takes a string of at most ${maxLength} characters`,
        );
      }
      return;
    }
    default:
      throw new InvalidInput('not_commandable', 'Sensors report values; they take no commands');
  }
}

export class CommandService {
  readonly #columns: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly publisher: CommandPublisher,
    timeoutSeconds: number,
    private readonly metrics?: MetricsContext,
  ) {
    this.#columns = COMMAND_COLUMNS.replace('$TIMEOUT', String(Math.trunc(timeoutSeconds)));
  }

  async send(
    caller: Caller,
    deviceRowId: number,
    entityId: string,
    value: unknown,
  ): Promise<Command> {
    const commandId = randomUUID();
    const { entity, command } = await inTenantTransaction(
      this.pool,
      caller.tenantId,
      async (client) => {
        const found = await client.query<EntityRow>(
          `SELECT d.device_id, e.entity_type, e.config FROM devices d
         LEFT JOIN entities e ON e.device_id = d.id AND e.entity_id = $2
         WHERE d.id = $1`,
          [deviceRowId, entityId],
        );
        const row = found.rows[0];
        if (!row) throw new NotFound('device_not_found', 'No such device');
        if (!row.entity_type)
          throw new NotFound('entity_not_found', 'The device has no such entity');
        validateCommandValue(row, value);
        const inserted = await client.query<Command>(
          `INSERT INTO commands (id, tenant_id, device_id, entity_id, value, triggered_by)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         RETURNING ${this.#columns}`,
          [
            commandId,
            caller.tenantId,
            deviceRowId,
            entityId,
            JSON.stringify(value),
            `user_${caller.userId}`,
          ],
        );
        return { entity: row, command: inserted.rows[0] as Command };
      },
    );

    try {
      await this.publisher.publish(`devices/${entity.device_id}/${entityId}/set`, {
        value,
        command_id: commandId,
      });
    } catch (error) {
      this.#count('failed');
      await inTenantTransaction(this.pool, caller.tenantId, (client) =>
        client.query(`UPDATE commands SET status = 'failed', updated_at = now() WHERE id = $1`, [
          commandId,
        ]),
      );
      throw new DependencyFailed(
        'broker_unavailable',
        'The command could not be delivered to the broker',
        { cause: error },
      );
    }
    this.#count('sent');
    return command;
  }

  #count(outcome: 'sent' | 'failed'): void {
    if (this.metrics)
      emitMetrics(this.metrics, { Commands: 1 }, { dimensions: { Outcome: outcome } });
  }

  async get(caller: Caller, deviceRowId: number, commandId: string): Promise<Command> {
    const commands = await this.#select(caller, 'device_id = $1 AND id::text = $2', [
      deviceRowId,
      commandId,
    ]);
    if (!commands[0]) throw new NotFound('command_not_found', 'No such command');
    return commands[0];
  }

  /** A device the tenant does not have is a 404, as on every other device route. */
  list(caller: Caller, deviceRowId: number): Promise<Command[]> {
    return inTenantTransaction(this.pool, caller.tenantId, async (client) => {
      const device = await client.query('SELECT 1 FROM devices WHERE id = $1', [deviceRowId]);
      if (!device.rowCount) throw new NotFound('device_not_found', 'No such device');
      const { rows } = await client.query<Command>(
        `SELECT ${this.#columns} FROM commands WHERE device_id = $1 ORDER BY created_at DESC LIMIT 100`,
        [deviceRowId],
      );
      return rows;
    });
  }

  #select(caller: Caller, where: string, params: unknown[]): Promise<Command[]> {
    return inTenantTransaction(this.pool, caller.tenantId, async (client) => {
      const { rows } = await client.query<Command>(
        `SELECT ${this.#columns} FROM commands WHERE ${where}`,
        params,
      );
      return rows;
    });
  }
}
