import type { Command, CommandTarget, NewCommand } from './model.ts';

/** Where commands are kept; every call is scoped to one tenant. */
export interface CommandStore {
  /**
   * Looks up the target and, if `accept` returns without throwing, stores the command, both
   * in one transaction so the device cannot vanish in between. `undefined`: no such device.
   */
  create(
    tenantId: number,
    command: NewCommand,
    accept: (target: CommandTarget | undefined) => void,
  ): Promise<{ target: CommandTarget; command: Command }>;
  markFailed(tenantId: number, commandId: string): Promise<void>;
  get(tenantId: number, devicePk: number, commandId: string): Promise<Command | undefined>;
  /** The device's latest commands, newest first; `undefined` when it has no such device. */
  listRecent(tenantId: number, devicePk: number): Promise<Command[] | undefined>;
}

/** Delivers a message to a device's topic through the broker. */
export interface CommandPublisher {
  publish(topic: string, payload: unknown): Promise<void>;
}
