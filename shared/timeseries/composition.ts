import { once } from '../composition.ts';
import { config, required } from '../config.ts';
import { InfluxClient, influxAuth } from './influx-client.ts';
import { InfluxReadingStore } from './influx-reading-store.ts';

export const influxClient = once(() => {
  const { influx } = config();
  const auth = influxAuth(influx);
  return new InfluxClient({
    url: required(influx.url, 'INFLUX_URL'),
    database: influx.db,
    ...(auth ? { auth } : {}),
  });
});

export const readingStore = once(() => new InfluxReadingStore({ client: influxClient() }));
