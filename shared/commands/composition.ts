import { IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { IotDataPlanePublisher } from './adapters/iot-data-plane-publisher.ts';
import { PostgresCommandStore } from './adapters/postgres-command-store.ts';
import { CommandService } from './domain/command-service.ts';

/** Publishes to device topics (commands, edge models). */
export const devicePublisher = once(() => {
  const { aws } = config();
  // Without an explicit endpoint the SDK finds the account's IoT data endpoint itself.
  const client = new IoTDataPlaneClient({
    region: aws.region,
    ...(aws.iotDataEndpoint ? { endpoint: aws.iotDataEndpoint } : {}),
  });
  return new IotDataPlanePublisher(client);
});

export const commandService = once(() => {
  const { devices } = config();
  return new CommandService({
    store: new PostgresCommandStore({
      pool: databasePool(),
      timeoutSeconds: devices.commandTimeoutSeconds,
    }),
    publisher: devicePublisher(),
    metrics: { logger: logger().child({ component: 'commands' }), stage: config().stage },
  });
});
