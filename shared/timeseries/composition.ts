import { once, secretStore } from '../composition.ts';
import { config, required } from '../config.ts';
import { InfluxClient, influxCredentials } from './influx-client.ts';
import { InfluxReadingStore } from './influx-reading-store.ts';

export const influxClient = once(() => {
  const { influx } = config();
  return new InfluxClient({
    url: required(influx.url, 'INFLUX_URL'),
    database: influx.db,
    ...influxCredentials(influx, secretStore),
  });
});

export const readingStore = once(() => new InfluxReadingStore({ client: influxClient() }));
