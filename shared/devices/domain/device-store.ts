import type { PriorTier } from '../../timeseries/domain/reading-store.ts';
import type { DeviceCredentials } from './credential-provisioner.ts';
import type { Device, DevicePatch, Entity, MeasuringRange, NewDevice } from './model.ts';

/** Port: a tenant's device registry. Every call is scoped to one tenant. */
export interface DeviceStore {
  list(tenantId: number): Promise<Device[]>;
  /**
   * The device, its entities, the retention tier its tenant's readings go to, and during a
   * plan change's tier move the tier older readings are still read from.
   */
  get(
    tenantId: number,
    devicePk: number,
  ): Promise<{
    device: Device;
    entities: Entity[];
    retentionPolicy: string;
    priorTier?: PriorTier;
  } | null>;
  /**
   * Registers a device within the plan's limit. `provision` runs inside the same
   * transaction, so a broker failure leaves no row, and a failed commit is compensated by
   * `revoke`.
   */
  create(
    tenantId: number,
    userId: number,
    input: NewDevice,
    credentials: {
      provider: string;
      provision: (deviceId: string) => Promise<DeviceCredentials>;
      revoke: (deviceId: string) => Promise<void>;
    },
  ): Promise<{ device: Device; credentials: DeviceCredentials }>;
  /**
   * Registers many devices at once within the plan's limit, all or none: `provisionMany`
   * runs inside the same transaction, and a failed commit is compensated by `revokeMany`.
   * Results are in input order.
   */
  createMany(
    tenantId: number,
    userId: number,
    inputs: readonly NewDevice[],
    credentials: {
      provider: string;
      provisionMany: (deviceIds: readonly string[]) => Promise<Map<string, DeviceCredentials>>;
      revokeMany: (deviceIds: readonly string[]) => Promise<void>;
    },
  ): Promise<Array<{ device: Device; credentials: DeviceCredentials }>>;
  /** Which of these physical ids are registered already, in any tenant. */
  registeredDeviceIds(tenantId: number, deviceIds: readonly string[]): Promise<Set<string>>;
  update(
    tenantId: number,
    userId: number,
    devicePk: number,
    patch: DevicePatch,
  ): Promise<Device | null>;
  /**
   * Sets (or, with null, clears) the tenant's own measuring range of an entity, recorded in
   * the audit log; null when the device or entity does not exist.
   */
  setMeasuringRange(
    tenantId: number,
    userId: number,
    devicePk: number,
    entityId: string,
    range: MeasuringRange | null,
  ): Promise<Entity | null>;
  /** Whether the tenant's plan runs the advanced anomaly detection (which uses ranges). */
  advancedDetection(tenantId: number): Promise<boolean>;
  /** Deletes the device (entities cascade) once `revoke` succeeded; false if not found. */
  remove(
    tenantId: number,
    userId: number,
    devicePk: number,
    revoke: (deviceId: string) => Promise<void>,
  ): Promise<boolean>;
}
