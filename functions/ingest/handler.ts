import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { ingestionService } from '../../shared/ingestion/composition.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const ingestion = ingestionService();
const metrics = { logger: logger().child({ function: 'ingest' }), stage: config().stage };

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
  emitMetrics(
    metrics,
    {
      IngestedReadings: summary.readings,
      RejectedMessages: rejected,
      CommandsConfirmed: summary.confirmedCommands,
      AnomaliesDetected: summary.anomalies,
    },
    { fields: { messages: summary.messages, rejected: summary.rejected } },
  );
  return summary;
}
