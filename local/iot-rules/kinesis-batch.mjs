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
 * and the function host receiving, decoding and parsing it, for every reading. A record's
 * long data travels as its bytes rather than in base64 (see `compactRecordData`), and the
 * function host encodes it: a rule's output is JSON text, which base64 makes a third longer.
 *
 * Plain JavaScript: the function host (serverless-offline) loads it without a TypeScript
 * loader. Types in kinesis-batch.d.mts.
 */

import { Buffer, isAscii } from 'node:buffer';

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
 * (digits), its data (`compactRecordData`) and its approximate arrival time as a JSON number
 * of seconds.
 */
export function compactRecordText(partitionKeyJson, sequenceNumber, dataJson, arrivalSecondsText) {
  const [before, after] = compactRecordAround(partitionKeyJson, sequenceNumber, arrivalSecondsText);
  return `${before}${dataJson}${after}`;
}

/** The text of `compactRecordText` before its data and after it. */
export function compactRecordAround(partitionKeyJson, sequenceNumber, arrivalSecondsText) {
  return [`${partitionKeyJson},"${sequenceNumber}",`, `,${arrivalSecondsText}`];
}

/** Data of at most this many bytes travels in base64; longer data as its bytes. */
export const BASE64_DATA_BYTES = 1024;

/**
 * A record's data (bytes) in the batch's text: short data as its base64 (a JSON string, as in
 * Lambda's event), longer data as a JSON string of its bytes read as Latin-1, one character a
 * byte, in a list of one, which `expandKinesisBatch` turns back into exactly those bytes. For
 * a one-reading message's rule output, escaping its quotes (and encoding it in the function
 * host) cost more than base64; for a 50-reading one, base64 made the batch a third longer.
 */
export function compactRecordData(bytes) {
  return bytes.length <= BASE64_DATA_BYTES
    ? `"${bytes.toString('base64')}"`
    : `[${JSON.stringify(bytes.toString('latin1'))}]`;
}

/** The most bytes `writeJsonAsRecordData` writes for JSON text of `length` bytes. */
export function mostRecordDataBytes(length) {
  // Every byte escaped or two bytes of UTF-8, within a list's brackets and a string's quotes.
  return 2 * length + 4;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;

/**
 * Writes `compactRecordData(json)` into `target` at `at`, as UTF-8, for data that is JSON text
 * as JSON.stringify writes it (a rule's output: no raw control characters, which
 * `compactRecordData` would escape otherwise), and returns where it ends. Long ASCII text is
 * copied between its quotes and backslashes, each escaped: JSON.stringify of the text took a
 * sixth of the rules emulator's time with 50-reading messages. At most
 * `mostRecordDataBytes(json.length)` bytes.
 */
export function writeJsonAsRecordData(json, target, at) {
  if (json.length <= BASE64_DATA_BYTES || !isAscii(json)) {
    return at + target.write(compactRecordData(json), at, 'utf8');
  }
  let end = at;
  target[end++] = OPEN_LIST;
  target[end++] = QUOTE;
  let from = 0;
  let quote = json.indexOf(QUOTE);
  let backslash = json.indexOf(BACKSLASH);
  while (quote !== -1 || backslash !== -1) {
    const special = backslash === -1 || (quote !== -1 && quote < backslash) ? quote : backslash;
    end += json.copy(target, end, from, special);
    target[end++] = BACKSLASH;
    target[end++] = json[special];
    from = special + 1;
    if (special === quote) quote = json.indexOf(QUOTE, from);
    else backslash = json.indexOf(BACKSLASH, from);
  }
  end += json.copy(target, end, from);
  target[end++] = QUOTE;
  target[end++] = CLOSE_LIST;
  return end;
}

// The data of the record being expanded, made into base64 from here: one Buffer per record
// would take a new 8 KB pool every couple of records.
let dataScratch = Buffer.allocUnsafe(64 * 1024);

/** The base64 of the bytes that `compactRecordData` wrote as this text. */
function base64OfData(text) {
  if (text.length > dataScratch.length) dataScratch = Buffer.allocUnsafe(text.length);
  return dataScratch.toString('base64', 0, dataScratch.write(text, 0, 'latin1'));
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
    const data = records[at + 2];
    Records[index] = {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: records[at],
        sequenceNumber,
        data: typeof data === 'string' ? data : base64OfData(data[0]),
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
