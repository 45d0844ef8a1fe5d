import type { Caller } from '../accounts/tokens.ts';
import { HttpError, notFound } from '../http/errors.ts';
import type { DeviceCredentialProvisioner } from './credential-provisioner.ts';
import type { DeviceStore } from './device-store.ts';
import type { DevicePatch, NewDevice } from './model.ts';

const deviceNotFound = () => notFound('device_not_found', 'No such device');

function brokerFailure(error: unknown): HttpError {
  return new HttpError(502, 'broker_unavailable', 'The device broker did not accept the change', {
    cause: error,
    expose: true,
  });
}

export class DeviceService {
  constructor(
    private readonly store: DeviceStore,
    private readonly provisioner: DeviceCredentialProvisioner,
    private readonly provider: string,
  ) {}

  async list(caller: Caller) {
    return { devices: await this.store.list(caller.tenantId) };
  }

  async get(caller: Caller, id: number) {
    const found = await this.store.get(caller.tenantId, id);
    if (!found) throw deviceNotFound();
    return found;
  }

  register(caller: Caller, input: NewDevice) {
    return this.store.create(caller.tenantId, caller.userId, input, {
      provider: this.provider,
      provision: (deviceId) =>
        this.provisioner.provision(deviceId).catch((error) => {
          throw brokerFailure(error);
        }),
      revoke: (deviceId) => this.provisioner.revoke(deviceId),
    });
  }

  async update(caller: Caller, id: number, patch: DevicePatch) {
    const device = await this.store.update(caller.tenantId, caller.userId, id, patch);
    if (!device) throw deviceNotFound();
    return { device };
  }

  async remove(caller: Caller, id: number): Promise<void> {
    const removed = await this.store.remove(caller.tenantId, caller.userId, id, (deviceId) =>
      this.provisioner.revoke(deviceId).catch((error) => {
        throw brokerFailure(error);
      }),
    );
    if (!removed) throw deviceNotFound();
  }
}
