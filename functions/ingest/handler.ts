import { logger } from '../../shared/composition.ts';
import { ingestionService } from '../../shared/ingestion/composition.ts';

const ingestion = ingestionService();
const log = logger().child({ function: 'ingest' });

/**
 * IoT rule action. AWS invokes it with one rule output per message; the local rules
 * emulator may send an array of them to amortise invocations. Rejected messages are
 * counted and logged, never thrown: only an infrastructure failure fails the invocation,
 * so the rule's retry (or the emulator's) delivers the batch again.
 */
export async function handler(event: unknown) {
  const events = Array.isArray(event) ? event : [event];
  const summary = await ingestion.ingest(events);
  const rejected = Object.values(summary.rejected).reduce((sum, n) => sum + (n ?? 0), 0);
  // CloudWatch embedded metric format: the log line is also the metric.
  log.info('ingested', {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: 'EasySmart',
          Dimensions: [[]],
          Metrics: [
            { Name: 'IngestedReadings', Unit: 'Count' },
            { Name: 'RejectedMessages', Unit: 'Count' },
          ],
        },
      ],
    },
    IngestedReadings: summary.readings,
    RejectedMessages: rejected,
    messages: summary.messages,
    rejected: summary.rejected,
  });
  return summary;
}
