import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compactRecordData,
  compactRecordText,
  expandKinesisBatch,
  isLocalKinesisBatch,
  LOCAL_KINESIS_BATCH_CLOSE,
  localKinesisBatchOpen,
  mostRecordDataBytes,
  writeJsonAsRecordData,
} from '../../local/iot-rules/kinesis-batch.mjs';

const stream = {
  shardId: 'shardId-000000000000',
  eventSourceArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/IngestStream',
  invokeIdentityArn: 'arn:aws:iam::000000000000:role/easysmart-local-ingest',
  awsRegion: 'us-east-1',
};

const records = [
  {
    partitionKey: 'plant-7_press:3',
    sequenceNumber: '49590000000000000000000000000000000000000000000000000123',
    bytes: Buffer.from('{"payload":"eyJ2YWx1ZSI6MX0=","topic":"devices/x/v/state"}'),
    arrivalSecondsText: '1765100000.123',
  },
  {
    partitionKey: 'ünïcode "quoted"',
    sequenceNumber: '49590000000000000000000000000000000000000000000000000124',
    bytes: Buffer.alloc(0),
    arrivalSecondsText: '1765100000',
  },
  {
    partitionKey: 'binary',
    sequenceNumber: '49590000000000000000000000000000000000000000000000000125',
    // Every byte value, UTF-8 that is not ASCII, and bytes that are not UTF-8 at all: long
    // enough to travel as its bytes (the others travel in base64).
    bytes: Buffer.concat([
      Buffer.from(Array.from({ length: 5 * 256 }, (_, at) => at % 256)),
      Buffer.from('ünïcode "quoted" \\ \n'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]),
    ]),
    arrivalSecondsText: '1765100001.5',
  },
].map((record) => ({ ...record, data: record.bytes.toString('base64') }));

/**
 * The text of a Kinesis event as Lambda delivers it to a function reading a stream (AWS
 * Lambda developer guide, "Using AWS Lambda with Amazon Kinesis", example event): these
 * records' values in it, every other field as the example has it.
 */
function awsEventText(): string {
  return `{"Records":[${records
    .map(
      (record) =>
        `{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":${JSON.stringify(record.partitionKey)},"sequenceNumber":"${record.sequenceNumber}","data":"${record.data}","approximateArrivalTimestamp":${record.arrivalSecondsText}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"${stream.shardId}:${record.sequenceNumber}","eventName":"aws:kinesis:record","invokeIdentityArn":"${stream.invokeIdentityArn}","awsRegion":"${stream.awsRegion}","eventSourceARN":"${stream.eventSourceArn}"}`,
    )
    .join(',')}]}`;
}

function localBatchText(): string {
  return `${localKinesisBatchOpen(stream)}${records
    .map((record) =>
      compactRecordText(
        JSON.stringify(record.partitionKey),
        record.sequenceNumber,
        compactRecordData(record.bytes),
        record.arrivalSecondsText,
      ),
    )
    .join(',')}${LOCAL_KINESIS_BATCH_CLOSE}`;
}

describe("the rules emulator's Kinesis batches, as the function host expands them", () => {
  it('become the event Lambda delivers: the same fields, values and order', () => {
    const local = JSON.parse(localBatchText());
    expect(isLocalKinesisBatch(local)).toBe(true);
    const event = expandKinesisBatch(local);
    expect(event).toEqual(JSON.parse(awsEventText()));
    // Field order too: the text of the expanded event is the text of Lambda's.
    expect(JSON.stringify(event)).toBe(awsEventText());
    expect(Buffer.byteLength(localBatchText())).toBeLessThan(Buffer.byteLength(awsEventText()));
  });

  it('leave every other event as it is', () => {
    for (const event of [
      JSON.parse(awsEventText()),
      {},
      [],
      null,
      'localKinesisBatch',
      { Records: [], localKinesis: {} },
    ]) {
      expect(isLocalKinesisBatch(event)).toBe(false);
    }
  });

  it('expand an empty batch to an event without records', () => {
    expect(expandKinesisBatch(JSON.parse(`${localKinesisBatchOpen(stream)}]}}`))).toEqual({
      Records: [],
    });
  });

  it("write a rule output's JSON text as compactRecordData does, within twice its length", () => {
    const target = Buffer.alloc(64 * 1024);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.jsonValue({ stringUnit: 'grapheme' }),
          // Long enough to travel as its bytes rather than in base64.
          fc.string({ minLength: 1100, maxLength: 3000 }),
          fc.string({ unit: 'grapheme', minLength: 600, maxLength: 2000 }),
          fc.dictionary(fc.string(), fc.string({ minLength: 300, maxLength: 900 }), {
            minKeys: 2,
            maxKeys: 5,
          }),
        ),
        fc.nat(16),
        (value, at) => {
          const json = Buffer.from(JSON.stringify(value) ?? 'null');
          const expected = Buffer.from(compactRecordData(json));
          const end = writeJsonAsRecordData(json, target, at);
          expect(target.subarray(at, end)).toEqual(expected);
          expect(end - at).toBeLessThanOrEqual(mostRecordDataBytes(json.length));
        },
      ),
    );
  });
});
