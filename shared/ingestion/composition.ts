import { alarmEvaluator } from '../alarms/composition.ts';
import { anomalyScorer } from '../anomalies/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { liveConnections } from '../live/composition.ts';
import { readingStore } from '../timeseries/composition.ts';
import { IngestionService } from './ingestion-service.ts';
import { PostgresDeviceDirectory } from './postgres-device-directory.ts';

export const ingestionService = once(() => {
  const { aws, devices } = config();
  return new IngestionService(
    new PostgresDeviceDirectory(databasePool(), devices.commandTimeoutSeconds),
    readingStore(),
    logger().child({ component: 'ingestion' }),
    // Without a WebSocket API there is nobody to push to.
    aws.websocketManagementEndpoint ? liveConnections() : undefined,
    anomalyScorer(),
    undefined,
    undefined,
    // Alarm rules judge each batch's stored readings.
    alarmEvaluator(),
  );
});
