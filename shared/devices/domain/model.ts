import type { EntityType } from '../../identifiers.ts';

export { MAX_BULK_DEVICES } from '../../identifiers.ts';

/**
 * The platform's own broker identities live here, where no device id may go: Mosquitto's
 * admin account, the platform's service account and the client ids of the rules emulator,
 * the data-plane endpoint and the provisioner all start with the prefix or are listed.
 * Compared case-insensitively, so no look-alike can be registered either.
 */
export const RESERVED_DEVICE_ID_PREFIX = 'easysmart-';
export const RESERVED_DEVICE_IDS: readonly string[] = ['admin'];

export function isReservedDeviceId(deviceId: string): boolean {
  const lower = deviceId.toLowerCase();
  return lower.startsWith(RESERVED_DEVICE_ID_PREFIX) || RESERVED_DEVICE_IDS.includes(lower);
}

/** A broker refuses to hand the platform's own identities, or another's, to a device. */
export class ReservedDeviceIdError extends Error {
  override readonly name = 'ReservedDeviceIdError';
}

export function assertNotReservedDeviceId(deviceId: string): void {
  if (isReservedDeviceId(deviceId)) {
    throw new ReservedDeviceIdError(
      `device id ${JSON.stringify(deviceId)} is reserved for the platform's own broker identities`,
    );
  }
}

export interface Device {
  id: number;
  tenant_id: number;
  device_id: string;
  name: string;
  type: string;
  location: string | null;
  status: 'online' | 'offline';
  discovery_mode: string;
  config: Record<string, unknown> | null;
  last_seen: string | null;
  created_at: string;
  updated_at: string;
  entity_count: number;
}

export interface Entity {
  id: number;
  entity_id: string;
  entity_type: EntityType;
  name: string;
  unit: string | null;
  icon: string | null;
  config: Record<string, unknown> | null;
  /** The span its sensor measures, announced by the device or set by the tenant. */
  measuring_range: EntityMeasuringRange | null;
  discovery_mode: 'auto' | 'manual';
  created_at: string;
}

/** A numeric entity's measuring range: the span its sensor measures, in its unit. */
export interface MeasuringRange {
  min: number;
  max: number;
}

/** The range in force and who gave it: the tenant's, else the device's announced one. */
export interface EntityMeasuringRange extends MeasuringRange {
  source: 'device' | 'user';
}

export interface NewDevice {
  device_id: string;
  name: string;
  type: string;
  location?: string | null;
  config?: Record<string, unknown> | null;
}

export type DevicePatch = Partial<Pick<NewDevice, 'name' | 'type' | 'location' | 'config'>>;

/** Why one row of a bulk registration cannot be registered. */
export interface BulkRowProblem {
  /** 1-based position of the row in what the caller sent (not counting a CSV header). */
  row: number;
  device_id?: string;
  code: string;
  message: string;
}

/** One row of a bulk registration: a device to register, or the problem its input has. */
export type BulkRow =
  | { row: number; device: NewDevice }
  | { row: number; device_id?: string; problem: Pick<BulkRowProblem, 'code' | 'message'> };
