import { randomUUID } from 'node:crypto';
import type { Caller } from '../../accounts/domain/caller.ts';
import { DependencyFailed, InvalidInput, NotFound } from '../../domain-errors.ts';
import { emitMetrics, type MetricsContext } from '../../metrics.ts';
import type { Command, CommandableEntity, CommandTarget } from './model.ts';
import type { CommandPublisher, CommandStore } from './ports.ts';

const finiteOr = (value: unknown, fallback: number) =>
  typeof value === 'number' && Number.isFinite(value) ? value : fallback;

/** Checks a commanded value against what the entity accepts; the device is never sent junk. */
export function validateCommandValue(entity: CommandableEntity, value: unknown) {
  const config = entity.config ?? {};
  switch (entity.type) {
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

export interface CommandServiceOptions {
  store: CommandStore;
  publisher: CommandPublisher;
  metrics?: MetricsContext;
}

export interface CommandRequest {
  devicePk: number;
  entityId: string;
  value: unknown;
}

/** Sends commands to devices' entities and answers what became of them. */
export class CommandService {
  readonly #store: CommandStore;
  readonly #publisher: CommandPublisher;
  readonly #metrics: MetricsContext | undefined;

  constructor(options: CommandServiceOptions) {
    this.#store = options.store;
    this.#publisher = options.publisher;
    this.#metrics = options.metrics;
  }

  async send(caller: Caller, request: CommandRequest): Promise<Command> {
    const { devicePk, entityId, value } = request;
    const commandId = randomUUID();
    const { target, command } = await this.#store.create(
      caller.tenantId,
      { commandId, devicePk, entityId, value, triggeredBy: `user_${caller.userId}` },
      (found) => acceptTarget(found, value),
    );
    try {
      await this.#publisher.publish(`devices/${target.deviceId}/${entityId}/set`, {
        value,
        command_id: commandId,
      });
    } catch (error) {
      this.#count('failed');
      await this.#store.markFailed(caller.tenantId, commandId);
      throw new DependencyFailed(
        'broker_unavailable',
        'The command could not be delivered to the broker',
        { cause: error },
      );
    }
    this.#count('sent');
    return command;
  }

  async get(caller: Caller, devicePk: number, commandId: string): Promise<Command> {
    const command = await this.#store.get(caller.tenantId, devicePk, commandId);
    if (!command) throw new NotFound('command_not_found', 'No such command');
    return command;
  }

  /** A device the tenant does not have is a 404, as on every other device route. */
  async list(caller: Caller, devicePk: number): Promise<Command[]> {
    const commands = await this.#store.listRecent(caller.tenantId, devicePk);
    if (!commands) throw new NotFound('device_not_found', 'No such device');
    return commands;
  }

  #count(outcome: 'sent' | 'failed'): void {
    if (this.#metrics)
      emitMetrics(this.#metrics, { Commands: 1 }, { dimensions: { Outcome: outcome } });
  }
}

function acceptTarget(target: CommandTarget | undefined, value: unknown): void {
  if (!target) throw new NotFound('device_not_found', 'No such device');
  if (!target.entity) throw new NotFound('entity_not_found', 'The device has no such entity');
  validateCommandValue(target.entity, value);
}
