import type { KinesisStreamEvent } from 'aws-lambda';

export declare const LOCAL_KINESIS_BATCH: 'localKinesisBatch';
export declare const LOCAL_KINESIS_BATCH_CLOSE: string;
export declare function isLocalKinesisBatch(event: unknown): boolean;
export declare function localKinesisBatchOpen(stream: {
  shardId: string;
  eventSourceArn: string;
  invokeIdentityArn: string;
  awsRegion: string;
}): string;
export declare function compactRecordText(
  partitionKeyJson: string,
  sequenceNumber: string,
  dataJson: string,
  arrivalSecondsText: string,
): string;
export declare const BASE64_DATA_BYTES: number;
export declare function compactRecordData(bytes: Buffer): string;
export declare function writeJsonAsRecordData(json: Buffer, target: Buffer, at: number): number;
export declare function mostRecordDataBytes(length: number): number;
export declare function compactRecordAround(
  partitionKeyJson: string,
  sequenceNumber: string,
  arrivalSecondsText: string,
): [before: string, after: string];
export declare function expandKinesisBatch(event: unknown): KinesisStreamEvent;
