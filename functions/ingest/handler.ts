import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { streamRecords } from '../../shared/ingestion/adapters/kinesis-records.ts';
import { ingestionService } from '../../shared/ingestion/composition.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const ingestion = ingestionService();
const metrics = { logger: logger().child({ function: 'ingest' }), stage: config().stage };

/**
 * Kinesis event source mapping with ReportBatchItemFailures (locally, the rules emulator
 * sends the same event). Rejected messages are counted, never failed: only the records an
 * infrastructure failure kept from being stored are reported, and the stream retries from
 * the first of them.
 */
export async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  const { summary, failed, error } = await ingestion.ingestBatch(streamRecords(event));
  const rejected = Object.values(summary.rejected).reduce((sum, n) => sum + (n ?? 0), 0);
  emitMetrics(
    metrics,
    {
      IngestedReadings: summary.readings,
      RejectedMessages: rejected,
      FailedMessages: failed.length,
      CommandsConfirmed: summary.confirmedCommands,
    },
    { fields: { messages: summary.messages, rejected: summary.rejected } },
  );
  if (failed.length > 0)
    metrics.logger.error('messages failed; retried', { failed: failed.length, error });
  return {
    batchItemFailures: failed.map((index) => ({
      itemIdentifier: event.Records[index]?.kinesis.sequenceNumber as string,
    })),
  };
}
