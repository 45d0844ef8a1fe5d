import { alarmEvaluator } from '../alarms/composition.ts';
import { scoringLedger } from '../anomalies/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { edgeModelService } from '../edge/composition.ts';
import { liveConnections } from '../live/composition.ts';
import { readingStore } from '../timeseries/composition.ts';
import { PostgresDeviceDirectory } from './adapters/postgres-device-directory.ts';
import { IngestionService } from './domain/ingestion-service.ts';

export const ingestionService = once(() => {
  const { aws, devices } = config();
  return new IngestionService({
    directory: new PostgresDeviceDirectory(databasePool(), devices.commandTimeoutSeconds),
    readings: readingStore(),
    logger: logger().child({ component: 'ingestion' }),
    // Without a WebSocket API there is nobody to push to.
    live: aws.websocketManagementEndpoint ? liveConnections() : undefined,
    // Anomaly scoring runs on a schedule; readings stored late move its read positions back.
    lateForScoring: scoringLedger(),
    edgeReports: edgeModelService(),
    // Alarm rules judge each batch's stored readings.
    storedReadings: alarmEvaluator(),
    seenIntervalMs: devices.silence.lastSeenWriteS * 1000,
  });
});
