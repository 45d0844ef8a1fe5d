import type pg from 'pg';
import { assertWithinPlanLimit } from '../../accounts/adapters/postgres-plan-limits.ts';
import { inTenantTransaction, isUniqueViolation, type Queryable } from '../../db/postgres.ts';
import { Conflict } from '../../domain-errors.ts';
import {
  TIER_COLUMNS,
  type TierRow,
  tiersOf,
} from '../../timeseries/adapters/postgres-tenant-storage.ts';
import type { DeviceCredentials } from '../domain/credential-provisioner.ts';
import type { DeviceStore } from '../domain/device-store.ts';
import type { Device, DevicePatch, Entity, MeasuringRange, NewDevice } from '../domain/model.ts';

const DEVICE_COLUMNS = `d.id, d.tenant_id, d.device_id, d.name, d.type, d.location, d.status,
  d.discovery_mode, d.config, to_json(d.last_seen) #>> '{}' AS last_seen,
  to_json(d.created_at) #>> '{}' AS created_at, to_json(d.updated_at) #>> '{}' AS updated_at,
  (SELECT count(*) FROM entities e WHERE e.device_id = d.id)::integer AS entity_count`;
const ENTITY_COLUMNS = `e.id, e.entity_id, e.entity_type, e.name, e.unit, e.icon, e.config,
  CASE WHEN e.set_measuring_range IS NOT NULL
         THEN e.set_measuring_range || '{"source": "user"}'::jsonb
       WHEN e.announced_measuring_range IS NOT NULL
         THEN e.announced_measuring_range || '{"source": "device"}'::jsonb
  END AS measuring_range,
  e.discovery_mode, to_json(e.created_at) #>> '{}' AS created_at`;

async function selectDevice(client: Queryable, devicePk: number): Promise<Device | null> {
  const { rows } = await client.query<Device>(
    `SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = $1`,
    [devicePk],
  );
  return rows[0] ?? null;
}

async function audit(
  client: Queryable,
  tenantId: number,
  userId: number,
  action: string,
  device: Pick<Device, 'id' | 'device_id'>,
  details?: object,
) {
  await client.query(
    `INSERT INTO audit_log (tenant_id, user_id, action, target, details) VALUES ($1, $2, $3, $4, $5)`,
    [
      tenantId,
      userId,
      action,
      `device:${device.id}`,
      JSON.stringify({ device_id: device.device_id, ...details }),
    ],
  );
}

/**
 * Serialises every registration and removal of one physical id, platform-wide, for the rest
 * of the transaction: the broker credential and the row then change together, and a removal
 * never revokes a credential that a concurrent re-registration has just issued. Taken before
 * any row lock, so these transactions cannot deadlock on each other.
 */
async function lockDeviceId(client: Queryable, deviceId: string): Promise<void> {
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('device:' || $1, 0))`, [
    deviceId,
  ]);
}

export class PostgresDeviceStore implements DeviceStore {
  constructor(private readonly pool: pg.Pool) {}

  list(tenantId: number): Promise<Device[]> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<Device>(
        `SELECT ${DEVICE_COLUMNS} FROM devices d ORDER BY d.id`,
      );
      return rows;
    });
  }

  get(tenantId: number, devicePk: number) {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const device = await selectDevice(client, devicePk);
      if (!device) return null;
      const { rows } = await client.query<Entity>(
        `SELECT ${ENTITY_COLUMNS} FROM entities e WHERE e.device_id = $1 ORDER BY e.entity_id`,
        [devicePk],
      );
      const storage = await client.query<TierRow>(`SELECT ${TIER_COLUMNS} FROM tenant_storage`);
      return { device, entities: rows, ...tiersOf(storage.rows[0]) };
    });
  }

  async create(
    tenantId: number,
    userId: number,
    input: NewDevice,
    credentials: {
      provider: string;
      provision: (deviceId: string) => Promise<DeviceCredentials>;
      revoke: (deviceId: string) => Promise<void>;
    },
  ): Promise<{ device: Device; credentials: DeviceCredentials }> {
    try {
      return await inTenantTransaction(this.pool, tenantId, async (client) => {
        await lockDeviceId(client, input.device_id);
        await assertWithinPlanLimit(client, 'devices');
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO devices (tenant_id, user_id, device_id, name, type, location, config)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
          [
            tenantId,
            userId,
            input.device_id,
            input.name,
            input.type,
            input.location ?? null,
            input.config ? JSON.stringify(input.config) : null,
          ],
        );
        const devicePk = inserted.rows[0]?.id as number;
        const provisioned = await credentials.provision(input.device_id);
        try {
          await client.query(
            `INSERT INTO device_credentials (device_id, tenant_id, provider, client_id, certificate_id)
             VALUES ($1, $2, $3, $4, $5)`,
            [
              devicePk,
              tenantId,
              credentials.provider,
              provisioned.client_id,
              provisioned.certificate_id ?? null,
            ],
          );
          await audit(
            client,
            tenantId,
            userId,
            'device.register',
            { id: devicePk, device_id: input.device_id },
            // The credential change itself (never its secret): issued with the device.
            {
              credential: {
                change: 'issued',
                provider: credentials.provider,
                client_id: provisioned.client_id,
              },
            },
          );
          return {
            device: (await selectDevice(client, devicePk)) as Device,
            credentials: provisioned,
          };
        } catch (error) {
          // The broker accepted a credential for a device the registry will not have: take
          // it back while the id is still locked, so no concurrent registration's is hit.
          await credentials.revoke(input.device_id).catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new Conflict('device_id_taken', 'A device with this device_id is already registered');
      }
      throw error;
    }
  }

  async registeredDeviceIds(tenantId: number, deviceIds: readonly string[]): Promise<Set<string>> {
    if (deviceIds.length === 0) return new Set();
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      // Physical ids are unique across tenants, which row-level security hides from each
      // other: the registry's lookup function answers whether an id is taken, not by whom.
      const { rows } = await client.query<{ device_id: string }>(
        `SELECT wanted.device_id FROM unnest($1::text[]) AS wanted(device_id)
         WHERE EXISTS (SELECT 1 FROM device_registry_lookup(wanted.device_id))`,
        [deviceIds],
      );
      return new Set(rows.map((row) => row.device_id));
    });
  }

  async createMany(
    tenantId: number,
    userId: number,
    inputs: readonly NewDevice[],
    credentials: {
      provider: string;
      provisionMany: (deviceIds: readonly string[]) => Promise<Map<string, DeviceCredentials>>;
      revokeMany: (deviceIds: readonly string[]) => Promise<void>;
    },
  ): Promise<Array<{ device: Device; credentials: DeviceCredentials }>> {
    const deviceIds = inputs.map((input) => input.device_id);
    try {
      return await inTenantTransaction(this.pool, tenantId, async (client) => {
        await assertWithinPlanLimit(client, 'devices', inputs.length);
        // One statement for the whole batch. A concurrent registration or removal of one of
        // these ids waits on the unique index until this transaction ends, so the broker's
        // credentials and the rows still change together without a lock per id.
        const inserted = await client.query<{ id: number; device_id: string }>(
          `INSERT INTO devices (tenant_id, user_id, device_id, name, type, location, config)
           SELECT $1, $2, d.device_id, d.name, d.type, d.location, d.config::jsonb
           FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS d(device_id, name, type, location, config)
           RETURNING id, device_id`,
          [
            tenantId,
            userId,
            deviceIds,
            inputs.map((input) => input.name),
            inputs.map((input) => input.type),
            inputs.map((input) => input.location ?? null),
            inputs.map((input) => (input.config ? JSON.stringify(input.config) : null)),
          ],
        );
        const pkOf = new Map(inserted.rows.map((row) => [row.device_id, row.id]));
        const pks = deviceIds.map((deviceId) => pkOf.get(deviceId) as number);
        const provisioned = await credentials.provisionMany(deviceIds);
        try {
          const issued = deviceIds.map((deviceId) => {
            const credential = provisioned.get(deviceId);
            if (!credential) throw new Error(`the broker returned no credential for ${deviceId}`);
            return credential;
          });
          await client.query(
            `INSERT INTO device_credentials
               (device_id, tenant_id, provider, client_id, certificate_id, claim_certificate_id)
             SELECT c.device_pk, $1, $2, c.client_id, c.certificate_id, c.claim_certificate_id
             FROM unnest($3::integer[], $4::text[], $5::text[], $6::text[])
               AS c(device_pk, client_id, certificate_id, claim_certificate_id)`,
            [
              tenantId,
              credentials.provider,
              pks,
              issued.map((credential) => credential.client_id),
              issued.map((credential) => credential.certificate_id ?? null),
              issued.map((credential) => credential.claim_certificate_id ?? null),
            ],
          );
          // Kept beyond the devices' rows, so the claim is retired even when they are removed.
          const claimIds = [
            ...new Set(issued.flatMap((credential) => credential.claim_certificate_id ?? [])),
          ];
          if (claimIds.length > 0) {
            await client.query(
              'INSERT INTO fleet_claims (certificate_id, tenant_id) SELECT unnest($2::text[]), $1',
              [tenantId, claimIds],
            );
          }
          await client.query(
            `INSERT INTO audit_log (tenant_id, user_id, action, target, details)
             SELECT $1, $2, 'device.register', 'device:' || a.device_pk,
               jsonb_build_object('device_id', a.device_id, 'bulk', true,
                 'credential', jsonb_build_object('change', 'issued', 'provider', $5::text,
                   'client_id', a.client_id))
             FROM unnest($3::integer[], $4::text[], $6::text[]) AS a(device_pk, device_id, client_id)`,
            [
              tenantId,
              userId,
              pks,
              deviceIds,
              credentials.provider,
              issued.map((credential) => credential.client_id),
            ],
          );
          const { rows } = await client.query<Device>(
            `SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = ANY($1::integer[])`,
            [pks],
          );
          const byPk = new Map(rows.map((row) => [row.id, row]));
          return pks.map((pk, index) => ({
            device: byPk.get(pk) as Device,
            credentials: issued[index] as DeviceCredentials,
          }));
        } catch (error) {
          // The broker issued credentials for devices the registry will not have.
          await credentials.revokeMany(deviceIds).catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new Conflict(
          'device_id_taken',
          'A device of this batch was registered meanwhile; no device was created',
        );
      }
      throw error;
    }
  }

  update(
    tenantId: number,
    userId: number,
    devicePk: number,
    patch: DevicePatch,
  ): Promise<Device | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rowCount } = await client.query(
        `UPDATE devices SET
           name = CASE WHEN $2::boolean THEN $3 ELSE name END,
           type = CASE WHEN $4::boolean THEN $5 ELSE type END,
           location = CASE WHEN $6::boolean THEN $7 ELSE location END,
           config = CASE WHEN $8::boolean THEN $9::jsonb ELSE config END,
           updated_at = now()
         WHERE id = $1`,
        [
          devicePk,
          patch.name !== undefined,
          patch.name ?? null,
          patch.type !== undefined,
          patch.type ?? null,
          patch.location !== undefined,
          patch.location ?? null,
          patch.config !== undefined,
          patch.config ? JSON.stringify(patch.config) : null,
        ],
      );
      if (!rowCount) return null;
      const device = (await selectDevice(client, devicePk)) as Device;
      await audit(client, tenantId, userId, 'device.update', device, {
        fields: Object.keys(patch),
      });
      return device;
    });
  }

  setMeasuringRange(
    tenantId: number,
    userId: number,
    devicePk: number,
    entityId: string,
    range: MeasuringRange | null,
  ): Promise<Entity | null> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<Entity>(
        `UPDATE entities e SET set_measuring_range = $3::jsonb
         WHERE e.device_id = $1 AND e.entity_id = $2
         RETURNING ${ENTITY_COLUMNS}`,
        [devicePk, entityId, range ? JSON.stringify({ min: range.min, max: range.max }) : null],
      );
      const entity = rows[0];
      if (!entity) return null;
      const device = (await selectDevice(client, devicePk)) as Device;
      await audit(client, tenantId, userId, 'entity_measuring_range.set', device, {
        entity_id: entityId,
        measuring_range: range,
      });
      return entity;
    });
  }

  advancedDetection(tenantId: number): Promise<boolean> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const { rows } = await client.query<{ level: string }>(
        `SELECT p.anomaly_detection AS level
         FROM tenant_plan tp JOIN plans p ON p.name = tp.plan WHERE tp.tenant_id = $1`,
        [tenantId],
      );
      return rows[0]?.level === 'advanced';
    });
  }

  remove(
    tenantId: number,
    userId: number,
    devicePk: number,
    revoke: (deviceId: string) => Promise<void>,
  ): Promise<boolean> {
    return inTenantTransaction(this.pool, tenantId, async (client) => {
      const found = await client.query<{ device_id: string }>(
        `SELECT device_id FROM devices WHERE id = $1`,
        [devicePk],
      );
      const deviceId = found.rows[0]?.device_id;
      if (deviceId === undefined) return false;
      await lockDeviceId(client, deviceId);
      const { rowCount } = await client.query(`DELETE FROM devices WHERE id = $1`, [devicePk]);
      if (!rowCount) return false;
      await audit(
        client,
        tenantId,
        userId,
        'device.delete',
        { id: devicePk, device_id: deviceId },
        { credential: { change: 'revoked' } },
      );
      // Revoked last, just before commit: if the broker refuses, the device stays registered
      // with its credential; nothing that could still fail comes after it.
      await revoke(deviceId);
      return true;
    });
  }
}
