import type { KinesisStreamEvent } from 'aws-lambda';

let sequence = 10_000_000;

/** A rule output as the topic rules' SELECT makes it: the payload base64, the publisher. */
export function ruleOutput(
  topic: string,
  payload: unknown,
  receivedAt = Date.now(),
  /** The MQTT client that published it; by default the device the topic names. */
  clientId?: string,
) {
  const bytes = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return {
    payload: bytes.toString('base64'),
    topic,
    client_id: clientId ?? topic.split('/')[1],
    received_at: receivedAt,
  };
}

/** The topic rules' partition key, topic(2): the device id. */
function partitionKeyOf(output: unknown): string {
  const topic = (output as { topic?: unknown } | null)?.topic;
  return typeof topic === 'string' ? (topic.split('/')[1] ?? topic) : 'none';
}

/**
 * The event the ingest stream's event source mapping hands the function (locally, the rules
 * emulator sends the same): one record per IoT rule output, in stream order, each record's
 * data the output's JSON in base64, with consecutive sequence numbers.
 */
export function kinesisEvent(
  outputs: unknown[],
  options: { alignSequence?: boolean } = {},
): KinesisStreamEvent {
  // Aligned, a burst's sequence numbers start at a multiple of 1,000 (see ingestion's times).
  if (options.alignSequence) sequence = Math.ceil(sequence / 1000) * 1000;
  return {
    Records: outputs.map((output) => {
      const sequenceNumber = `4959${String(sequence++).padStart(52, '0')}`;
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: partitionKeyOf(output),
          sequenceNumber,
          data: Buffer.from(JSON.stringify(output)).toString('base64'),
          approximateArrivalTimestamp: Date.now() / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shardId-000000000000:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::000000000000:role/ingest',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/IngestStream',
      };
    }),
  };
}
