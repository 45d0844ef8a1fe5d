import { alarmEvaluator } from '../alarms/composition.ts';
import { logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { liveConnections } from '../live/composition.ts';
import { influxClient } from '../timeseries/composition.ts';
import { InfluxStoredReadings } from './adapters/influx-stored-readings.ts';
import { anomalyScorer, scoringLedger } from './composition.ts';
import { AnomalyScoringPass } from './domain/scoring-pass.ts';

/** The scheduled anomaly scoring pass (functions/anomaly-scoring). */
export const anomalyScoringPass = once(() => {
  const { aws, influx } = config();
  const alarms = alarmEvaluator();
  return new AnomalyScoringPass({
    ledger: scoringLedger(),
    readings: new InfluxStoredReadings(influxClient(), influx.db),
    scorer: anomalyScorer(),
    // Alarm rules with an anomaly condition judge the anomalies found.
    anomalies: {
      anomaliesFound: async (nowMs, devices) => {
        await alarms.evaluateBatch(
          devices.map((device) => ({ ...device, readings: [] })),
          nowMs,
        );
      },
    },
    // Without a WebSocket API there is nobody to push to.
    live: aws.websocketManagementEndpoint ? liveConnections() : undefined,
    logger: logger().child({ component: 'anomaly-scoring' }),
  });
});
