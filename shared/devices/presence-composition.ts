import { databasePool, once } from '../composition.ts';
import { config } from '../config.ts';
import { PostgresPresenceStore } from './adapters/postgres-presence-store.ts';
import { PresenceSweep } from './domain/presence.ts';

// Apart from ./composition.ts, which bundles the AWS IoT SDK and the MQTT client.
export const presenceSweep = once(
  () => new PresenceSweep(new PostgresPresenceStore(databasePool()), config().devices.silence),
);
