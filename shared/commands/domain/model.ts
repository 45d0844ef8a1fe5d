import type { EntityType } from '../../identifiers.ts';

export type CommandStatus = 'sent' | 'confirmed' | 'timed_out' | 'failed';

/**
 * A command as the API answers it (DESIGN.md's contract): here `device_id` is the device's
 * registry id, the number in the route's path, not its physical id.
 */
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

/** The entity a command is for, as far as checking the value needs. */
export interface CommandableEntity {
  type: EntityType;
  config: Record<string, unknown> | null;
}

/** Where a command goes: the device's physical id (its topic) and the entity, if it has it. */
export interface CommandTarget {
  deviceId: string;
  entity: CommandableEntity | undefined;
}

export interface NewCommand {
  commandId: string;
  devicePk: number;
  entityId: string;
  value: unknown;
  triggeredBy: string;
}
