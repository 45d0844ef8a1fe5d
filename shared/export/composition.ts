import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { auditTrail } from '../audit/composition.ts';
import { databasePool, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { PostgresDeviceStore } from '../devices/adapters/postgres-device-store.ts';
import { readingStore } from '../timeseries/composition.ts';
import { FileExportStore } from './adapters/file-export-store.ts';
import { PostgresExportJobStore } from './adapters/postgres-export-jobs.ts';
import { S3ExportStore } from './adapters/s3-export-store.ts';
import { SeriesExportReader } from './adapters/series-export-reader.ts';
import { type ExportJobDispatcher, ExportService } from './domain/export.ts';

const exportFiles = once(() => {
  const { exports, aws } = config();
  if (exports.store === 's3') {
    return new S3ExportStore(
      new S3Client({ region: aws.region }),
      required(exports.bucket, 'EXPORT_BUCKET'),
    );
  }
  // Required when a link is made, not before: a function that never exports needs neither.
  return new FileExportStore(exports.dir, () => ({
    publicUrl: required(exports.publicUrl, 'EXPORT_PUBLIC_URL'),
    linkSecret: required(exports.linkSecret, 'EXPORT_LINK_SECRET'),
  }));
});

const lambdaClient = once(() => {
  const { aws, alarms } = config();
  return new LambdaClient({
    region: aws.region,
    ...(alarms.lambdaEndpoint ? { endpoint: alarms.lambdaEndpoint } : {}),
  });
});

export const exportService = once(() => {
  const { exports } = config();
  // Without a worker function (a test calling functions in-process) the job runs here.
  const dispatcher: ExportJobDispatcher = exports.workerFunction
    ? {
        dispatch: async (tenantId, jobId) => {
          await lambdaClient().send(
            new InvokeCommand({
              FunctionName: exports.workerFunction,
              InvocationType: 'Event',
              Payload: new TextEncoder().encode(JSON.stringify({ tenantId, jobId })),
            }),
          );
        },
      }
    : { dispatch: (tenantId, jobId) => service.runJob(tenantId, jobId) };
  const service: ExportService = new ExportService({
    devices: new PostgresDeviceStore(databasePool()),
    reader: new SeriesExportReader(readingStore()),
    files: exportFiles(),
    jobs: new PostgresExportJobStore(databasePool()),
    dispatcher,
    audit: auditTrail(),
    linkTtlSeconds: exports.linkTtlSeconds,
  });
  return service;
});
