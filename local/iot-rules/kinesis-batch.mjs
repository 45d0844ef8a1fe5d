/**
 * How the rules emulator hands a batch of Kinesis records to the local function host, and
 * the Kinesis event the function gets from it.
 *
 * The event Lambda gives a function reading a Kinesis stream (AWS Lambda developer guide,
 * "Using AWS Lambda with Amazon Kinesis", example event) repeats the same text in every
 * record: the schema version, the event source, name and version, the shard, the role, the
 * region and the stream's ARN are each the same for the whole batch; only the partition key,
 * the sequence number, the data and the arrival time vary. Locally the batch crosses from the
 * emulator to the function host as those four values a record and the rest once, and the
 * function host builds the whole event before the handler runs: the same object, field for
 * field and in the same order, as parsing the event AWS sends. Written as JSON text
 * two and a half times the size, the repeated text cost the emulator building and sending it
 * and the function host receiving, decoding and parsing it, for every reading.
 *
 * Plain JavaScript: the function host (serverless-offline) loads it without a TypeScript
 * loader. Types in kinesis-batch.d.mts.
 */

/** The one key of a batch sent in this form (no event AWS sends has it). */
export const LOCAL_KINESIS_BATCH = 'localKinesisBatch';

/** Values in each record of `records`: partition key, sequence number, data, arrival time. */
const FIELDS = 4;

/** Whether an invocation's event is a batch in this form. */
export function isLocalKinesisBatch(event) {
  return (
    event !== null &&
    typeof event === 'object' &&
    !Array.isArray(event) &&
    Object.hasOwn(event, LOCAL_KINESIS_BATCH)
  );
}

/**
 * The JSON text before a batch's records, which follow as JSON values separated by commas
 * (see `compactRecordText`), and then `LOCAL_KINESIS_BATCH_CLOSE`.
 */
export function localKinesisBatchOpen({ shardId, eventSourceArn, invokeIdentityArn, awsRegion }) {
  return `{${JSON.stringify(LOCAL_KINESIS_BATCH)}:${JSON.stringify({
    shardId,
    eventSourceARN: eventSourceArn,
    invokeIdentityArn,
    awsRegion,
  }).slice(0, -1)},"records":[`;
}

export const LOCAL_KINESIS_BATCH_CLOSE = ']}}';

/**
 * A record's values in the batch's text: its partition key as JSON, its sequence number
 * (digits), its data (base64) and its approximate arrival time as a JSON number of seconds.
 */
export function compactRecordText(partitionKeyJson, sequenceNumber, data, arrivalSecondsText) {
  const [before, after] = compactRecordAround(partitionKeyJson, sequenceNumber, arrivalSecondsText);
  return `${before}${data}${after}`;
}

/** The text of `compactRecordText` before its data and after it. */
export function compactRecordAround(partitionKeyJson, sequenceNumber, arrivalSecondsText) {
  return [`${partitionKeyJson},"${sequenceNumber}","`, `",${arrivalSecondsText}`];
}

/**
 * The Kinesis event of a batch, as Lambda delivers it: what JSON.parse makes of the event's
 * text, with the same fields in the same order.
 */
export function expandKinesisBatch(event) {
  const batch = event[LOCAL_KINESIS_BATCH];
  const { shardId, eventSourceARN, invokeIdentityArn, awsRegion, records } = batch;
  const count = records.length / FIELDS;
  const Records = new Array(count);
  const eventIdPrefix = `${shardId}:`;
  for (let index = 0, at = 0; index < count; index++, at += FIELDS) {
    const sequenceNumber = records[at + 1];
    Records[index] = {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: records[at],
        sequenceNumber,
        data: records[at + 2],
        approximateArrivalTimestamp: records[at + 3],
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: eventIdPrefix + sequenceNumber,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn,
      awsRegion,
      eventSourceARN,
    };
  }
  return { Records };
}
