import type { Caller } from '../../accounts/domain/caller.ts';
import { Conflict, DependencyFailed, InvalidInput, NotFound } from '../../domain-errors.ts';
import type { CurrentPattern } from '../../patterns/domain/model.ts';
import {
  type ReadingStore,
  type SeriesFunction,
  SeriesQueryError,
} from '../../timeseries/domain/reading-store.ts';
import type { DeviceCredentialProvisioner } from './credential-provisioner.ts';
import type { DeviceStore } from './device-store.ts';
import {
  type DevicePatch,
  isReservedDeviceId,
  type NewDevice,
  RESERVED_DEVICE_ID_PREFIX,
  ReservedDeviceIdError,
} from './model.ts';

const deviceNotFound = () => new NotFound('device_not_found', 'No such device');

function brokerFailure(error: unknown): Conflict | DependencyFailed {
  if (error instanceof ReservedDeviceIdError) {
    return new Conflict(
      'broker_identity_taken',
      'The broker already has an identity with this device id that is not a device credential',
      { cause: error },
    );
  }
  return new DependencyFailed('broker_unavailable', 'The device broker did not accept the change', {
    cause: error,
  });
}

export interface TelemetryQuery {
  entityIds?: string[];
  from: Date;
  to: Date;
  every?: string;
  fn?: SeriesFunction;
}

export interface DeviceServiceOptions {
  store: DeviceStore;
  provisioner: DeviceCredentialProvisioner;
  /** Which broker issues the credentials (`aws-iot` or `mosquitto`), recorded per device. */
  provider: string;
  readings: ReadingStore;
  /** The device's current operating mode (pattern recognition), null where it has none. */
  currentPattern?: (tenantId: number, devicePk: number) => Promise<CurrentPattern | null>;
}

export class DeviceService {
  private readonly store: DeviceStore;
  private readonly provisioner: DeviceCredentialProvisioner;
  private readonly provider: string;
  private readonly readings: ReadingStore;
  private readonly currentPattern: NonNullable<DeviceServiceOptions['currentPattern']>;

  constructor(options: DeviceServiceOptions) {
    this.store = options.store;
    this.provisioner = options.provisioner;
    this.provider = options.provider;
    this.readings = options.readings;
    this.currentPattern = options.currentPattern ?? (async () => null);
  }

  async list(caller: Caller) {
    return { devices: await this.store.list(caller.tenantId) };
  }

  /** The seed's read path: metadata from PostgreSQL, each entity's latest value from InfluxDB. */
  async get(caller: Caller, devicePk: number) {
    const found = await this.store.get(caller.tenantId, devicePk);
    if (!found) throw deviceNotFound();
    const [latest, currentPattern] = await Promise.all([
      this.readings.latest(
        caller.tenantId,
        found.device.device_id,
        found.entities.map((entity) => ({
          entityId: entity.entity_id,
          entityType: entity.entity_type,
        })),
        found.retentionPolicy,
        found.priorTier,
      ),
      this.currentPattern(caller.tenantId, devicePk),
    ]);
    return {
      device: found.device,
      entities: found.entities.map((entity) => ({
        ...entity,
        latest: latest.get(entity.entity_id) ?? null,
      })),
      current_pattern: currentPattern,
    };
  }

  async telemetry(caller: Caller, devicePk: number, query: TelemetryQuery) {
    const found = await this.store.get(caller.tenantId, devicePk);
    if (!found) throw deviceNotFound();
    const known = new Set(found.entities.map((entity) => entity.entity_id));
    const unknown = query.entityIds?.filter((entityId) => !known.has(entityId)) ?? [];
    if (unknown.length > 0) {
      throw new NotFound('entity_not_found', `The device has no entity ${unknown.join(', ')}`);
    }
    if (query.from >= query.to)
      throw new InvalidInput('invalid_range', '`from` must be before `to`');
    const result = await this.readings
      .series({
        tenantId: caller.tenantId,
        deviceId: found.device.device_id,
        entities: found.entities
          .filter((entity) => !query.entityIds || query.entityIds.includes(entity.entity_id))
          .map((entity) => ({ entityId: entity.entity_id, entityType: entity.entity_type })),
        from: query.from,
        to: query.to,
        every: query.every,
        fn: query.fn,
        retentionPolicy: found.retentionPolicy,
        priorTier: found.priorTier,
      })
      .catch((error: unknown) => {
        if (error instanceof SeriesQueryError)
          throw new InvalidInput(error.code, error.message, { cause: error });
        throw error;
      });
    return { device_id: found.device.device_id, ...result };
  }

  register(caller: Caller, input: NewDevice) {
    if (isReservedDeviceId(input.device_id)) {
      throw new InvalidInput(
        'reserved_device_id',
        `device_id may not start with "${RESERVED_DEVICE_ID_PREFIX}" or be a name the platform's broker uses`,
      );
    }
    return this.store.create(caller.tenantId, caller.userId, input, {
      provider: this.provider,
      provision: (deviceId) =>
        this.provisioner.provision(deviceId).catch((error) => {
          throw brokerFailure(error);
        }),
      revoke: (deviceId) => this.provisioner.revoke(deviceId),
    });
  }

  async update(caller: Caller, devicePk: number, patch: DevicePatch) {
    const device = await this.store.update(caller.tenantId, caller.userId, devicePk, patch);
    if (!device) throw deviceNotFound();
    return { device };
  }

  async remove(caller: Caller, devicePk: number): Promise<void> {
    const removed = await this.store.remove(caller.tenantId, caller.userId, devicePk, (deviceId) =>
      this.provisioner.revoke(deviceId).catch((error) => {
        throw brokerFailure(error);
      }),
    );
    if (!removed) throw deviceNotFound();
  }
}
