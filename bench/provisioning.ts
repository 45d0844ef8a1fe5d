/**
 * What registering one more device costs the broker's credential store as the fleet grows
 * (`npm run bench:provisioning`), for the two stores Mosquitto 2.0 offers the local stack:
 * the dynamic-security plugin (a client and a role per device, its whole JSON state
 * rewritten on every command) and the password file with one ACL pattern (a line per
 * device, read again on SIGHUP). Each store gets a private broker; the fleet is filled in
 * bulk steps, and at each size one-by-one registrations are timed (each until the broker
 * accepts the new credential), with the store's size on disk.
 *
 *   npm run bench:provisioning -- [--max 10000] [--step 2000] [--probes 20] [--stores files,dynsec]
 */
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMosquitto } from '../local/services/mosquitto.ts';
import { MosquittoDynsecProvisioner } from '../shared/devices/adapters/mosquitto-dynsec-provisioner.ts';
import { MosquittoPasswordFileProvisioner } from '../shared/devices/adapters/mosquitto-password-file-provisioner.ts';
import type { DeviceCredentialProvisioner } from '../shared/devices/domain/credential-provisioner.ts';
import { temporaryDataDir } from '../test/support/servers.ts';

const { values } = parseArgs({
  options: {
    max: { type: 'string', default: '10000' },
    step: { type: 'string', default: '2000' },
    probes: { type: 'string', default: '20' },
    stores: { type: 'string', default: 'files,dynsec' },
  },
});
const MAX = Number(values.max);
const STEP = Number(values.step);
const PROBES = Number(values.probes);

const median = (items: number[]) =>
  [...items].sort((a, b) => a - b)[Math.floor(items.length / 2)] as number;
const load = () =>
  loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');

async function measure(store: 'files' | 'dynsec') {
  const data = await temporaryDataDir(`bench-provisioning-${store}`);
  const broker = await startMosquitto({ dataDir: data.dir });
  const provisioner: DeviceCredentialProvisioner & { close?: () => Promise<void> } =
    store === 'files'
      ? new MosquittoPasswordFileProvisioner({
          passwordFile: broker.devicePasswordFile,
          brokerUrl: broker.url,
          reloadTimeoutMs: 600_000,
        })
      : new MosquittoDynsecProvisioner({
          url: broker.url,
          ...broker.admin,
          requestTimeoutMs: 3_600_000,
        });
  const file =
    store === 'files' ? broker.devicePasswordFile : path.join(data.dir, 'state', 'dynsec.json');
  const firstProbe: number[] = [];
  try {
    console.log(`\n${store} (load average ${load()})`);
    console.log('fleet  one_by_one_median_ms  bulk_ms_per_device  store_kb');
    let fleet = 0;
    let bulkMsPerDevice = Number.NaN;
    while (true) {
      const probeTimes: number[] = [];
      for (let i = 0; i < PROBES; i++) {
        const deviceId = `probe-${fleet}-${i}`;
        const started = performance.now();
        await provisioner.provision(deviceId);
        probeTimes.push(performance.now() - started);
      }
      await provisioner.revokeMany(Array.from({ length: PROBES }, (_, i) => `probe-${fleet}-${i}`));
      if (fleet === 0) firstProbe.push(median(probeTimes));
      console.log(
        `${String(fleet).padStart(5)}  ${median(probeTimes).toFixed(1).padStart(20)}  ${bulkMsPerDevice.toFixed(2).padStart(18)}  ${(statSync(file).size / 1024).toFixed(0).padStart(8)}`,
      );
      if (fleet >= MAX) {
        console.log(
          `${store}: one-by-one at ${fleet} / at 0 = ${(median(probeTimes) / (firstProbe[0] as number)).toFixed(2)}x (load average ${load()})`,
        );
        break;
      }
      const ids = Array.from({ length: STEP }, (_, i) => `fleet-${fleet + i}`);
      const started = performance.now();
      await provisioner.provisionMany(ids);
      bulkMsPerDevice = (performance.now() - started) / STEP;
      fleet += STEP;
    }
  } finally {
    await provisioner.close?.();
    await broker.stop();
    await data.remove();
  }
}

for (const store of (values.stores as string).split(',')) {
  await measure(store as 'files' | 'dynsec');
}
