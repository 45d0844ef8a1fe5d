import type { Caller } from '../../accounts/domain/caller.ts';
import {
  Conflict,
  DependencyFailed,
  InvalidInput,
  NotFound,
  NotPermitted,
  Unprocessable,
} from '../../domain-errors.ts';
import type { CurrentPattern } from '../../patterns/domain/model.ts';
import {
  type ReadingStore,
  type SeriesFunction,
  SeriesQueryError,
} from '../../timeseries/domain/reading-store.ts';
import type {
  ClaimCredential,
  DeviceCredentialProvisioner,
  DeviceCredentials,
  FleetClaimIssuer,
} from './credential-provisioner.ts';
import type { DeviceStore } from './device-store.ts';
import {
  type BulkRow,
  type BulkRowProblem,
  type DevicePatch,
  isReservedDeviceId,
  MAX_BULK_DEVICES,
  type NewDevice,
  RESERVED_DEVICE_ID_PREFIX,
  ReservedDeviceIdError,
} from './model.ts';

const reservedMessage = `device_id may not start with "${RESERVED_DEVICE_ID_PREFIX}" or be a name the platform's broker uses`;

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
  /**
   * Where bulk registrations get one claim credential for the batch instead of a credential
   * per device (AWS IoT fleet provisioning by claim); absent, each device gets its own.
   */
  claims?: FleetClaimIssuer;
  /** Which broker issues the credentials (`aws-iot` or `mosquitto`), recorded per device. */
  provider: string;
  readings: ReadingStore;
  /** The device's current operating mode (pattern recognition), null where it has none. */
  currentPattern?: (tenantId: number, devicePk: number) => Promise<CurrentPattern | null>;
}

export class DeviceService {
  private readonly store: DeviceStore;
  private readonly provisioner: DeviceCredentialProvisioner;
  private readonly claims: FleetClaimIssuer | undefined;
  private readonly provider: string;
  private readonly readings: ReadingStore;
  private readonly currentPattern: NonNullable<DeviceServiceOptions['currentPattern']>;

  constructor(options: DeviceServiceOptions) {
    this.store = options.store;
    this.provisioner = options.provisioner;
    this.claims = options.claims;
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

  /**
   * Sets a numeric entity's measuring range as the tenant's own, which wins over the one
   * its device announces, or with neither bound clears it (the device's, if any, applies).
   */
  async setMeasuringRange(
    caller: Caller,
    devicePk: number,
    entityId: string,
    body: { min?: number | undefined; max?: number | undefined },
  ) {
    if (!(await this.store.advancedDetection(caller.tenantId))) {
      throw new NotPermitted(
        'plan_required',
        'A measuring range is used by the advanced anomaly detection: it needs the Industrial plan; upgrade to use it',
      );
    }
    const found = await this.store.get(caller.tenantId, devicePk);
    if (!found) throw deviceNotFound();
    const entity = found.entities.find((e) => e.entity_id === entityId);
    if (!entity) throw new NotFound('entity_not_found', 'The device has no such entity');
    if (entity.entity_type !== 'sensor' && entity.entity_type !== 'number') {
      throw new InvalidInput(
        'entity_not_numeric',
        `A measuring range needs a numeric entity (sensor or number); ${entityId} is a ${entity.entity_type}`,
      );
    }
    const { min, max } = body;
    if ((min === undefined) !== (max === undefined)) {
      throw new InvalidInput('invalid_measuring_range', 'Give both `min` and `max`, or neither');
    }
    if (min !== undefined && max !== undefined && !(min < max)) {
      throw new InvalidInput('invalid_measuring_range', '`min` must be less than `max`');
    }
    const range = min !== undefined && max !== undefined ? { min, max } : null;
    const saved = await this.store.setMeasuringRange(
      caller.tenantId,
      caller.userId,
      devicePk,
      entityId,
      range,
    );
    if (!saved) throw new NotFound('entity_not_found', 'The device has no such entity');
    return { entity_id: entityId, measuring_range: saved.measuring_range };
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
      throw new InvalidInput('reserved_device_id', reservedMessage);
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

  /**
   * Registers up to MAX_BULK_DEVICES devices at once, all or none. Every row is checked
   * before anything is created (its input, a reserved or repeated id, an id registered
   * already); if any fails, nothing is created and every failing row is reported. The
   * credentials come from the broker in a few large operations and are shown only here.
   */
  async registerMany(caller: Caller, rows: readonly BulkRow[]) {
    if (rows.length === 0) throw new InvalidInput('no_rows', 'At least one device is required');
    if (rows.length > MAX_BULK_DEVICES) {
      throw new InvalidInput(
        'too_many_rows',
        `At most ${MAX_BULK_DEVICES} devices can be registered at once (got ${rows.length})`,
      );
    }
    const problems: BulkRowProblem[] = [];
    const firstRowOf = new Map<string, number>();
    for (const row of rows) {
      if ('problem' in row) {
        problems.push({ row: row.row, device_id: row.device_id, ...row.problem });
        continue;
      }
      const deviceId = row.device.device_id;
      const first = firstRowOf.get(deviceId);
      if (isReservedDeviceId(deviceId)) {
        problems.push({
          row: row.row,
          device_id: deviceId,
          code: 'reserved_device_id',
          message: reservedMessage,
        });
      } else if (first !== undefined) {
        problems.push({
          row: row.row,
          device_id: deviceId,
          code: 'duplicate_device_id',
          message: `device_id ${deviceId} is also in row ${first}`,
        });
      } else {
        firstRowOf.set(deviceId, row.row);
      }
    }
    const taken = await this.store.registeredDeviceIds(caller.tenantId, [...firstRowOf.keys()]);
    for (const deviceId of taken) {
      problems.push({
        row: firstRowOf.get(deviceId) as number,
        device_id: deviceId,
        code: 'device_id_taken',
        message: 'A device with this device_id is already registered',
      });
    }
    if (problems.length > 0) {
      problems.sort((a, b) => a.row - b.row);
      throw new Unprocessable(
        'invalid_rows',
        `${problems.length} of ${rows.length} rows cannot be registered; no device was created`,
        { details: { rows: problems } },
      );
    }
    const accepted = rows.filter((row) => 'device' in row);
    const claims = this.claims;
    let claim: ClaimCredential | undefined;
    const credentials = claims
      ? {
          provider: this.provider,
          provisionMany: async (deviceIds: readonly string[]) => {
            claim = await claims.issueClaim().catch((error) => {
              throw brokerFailure(error);
            });
            const shared = claim;
            return new Map<string, DeviceCredentials>(
              deviceIds.map((deviceId) => [
                deviceId,
                {
                  client_id: deviceId,
                  claim_certificate_id: shared.certificate_id,
                  ...(shared.broker_url ? { broker_url: shared.broker_url } : {}),
                },
              ]),
            );
          },
          // Nothing but the claim exists yet: no device has made its certificate.
          revokeMany: async () => {
            if (claim) await claims.retireClaim(claim.certificate_id);
          },
        }
      : {
          provider: this.provider,
          provisionMany: (deviceIds: readonly string[]) =>
            this.provisioner.provisionMany(deviceIds).catch((error) => {
              throw brokerFailure(error);
            }),
          revokeMany: (deviceIds: readonly string[]) => this.provisioner.revokeMany(deviceIds),
        };
    const created = await this.store.createMany(
      caller.tenantId,
      caller.userId,
      accepted.map((row) => row.device),
      credentials,
    );
    return {
      devices: created.map((item, index) => ({ row: accepted[index]?.row as number, ...item })),
      ...(claim ? { claim } : {}),
    };
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
