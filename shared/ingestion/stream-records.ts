import type { KinesisStreamEvent } from 'aws-lambda';
import type { InboundRecord } from './ingestion-service.ts';

/**
 * The IoT rule outputs in a Kinesis event: each record's data is the rule's SELECT output as
 * JSON (the topic rule's Kinesis action writes it so), base64-encoded by Lambda. A record
 * that does not decode is handed on as it is, for ingestion to reject as not a rule event.
 */
export function streamRecords(event: KinesisStreamEvent): InboundRecord[] {
  const records = event.Records ?? [];
  const inbound: InboundRecord[] = new Array(records.length);
  for (let index = 0; index < records.length; index++) {
    const { data, sequenceNumber } = (records[index] as (typeof records)[number]).kinesis;
    let ruleOutput: unknown;
    try {
      ruleOutput = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
    } catch {
      ruleOutput = undefined;
    }
    // The last three digits are the sequence number modulo 1,000, without a BigInt.
    inbound[index] = { event: ruleOutput, ordinal: Number(sequenceNumber.slice(-3)) || 0 };
  }
  return inbound;
}
